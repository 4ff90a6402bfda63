"""Progress rules as pure functions: how events move module, path and learner progress.

This is the reference statement of the rules. A batch folds into one
:class:`BatchProgress` (one delta per learner x module, learner x path and
learner), and the ``apply_*`` functions below turn an old row and a delta into
the new row. The store applies the same rules as set-based SQL inside the
ingest transaction (jacmon/store/sqlite/progress_sql.py); tests hold the two to the
same results over random event streams. Nothing here touches the database.

Rules, in short (docs/architecture.md has the full table):

* module percent = the highest ``progress`` seen, 100 once ``module.completed``;
  it never goes down.
* path percent = sum of its modules' percents / the catalog's module count.
* time spent = the sum of ``duration_s`` on events in that scope; a
  ``session.ended`` duration counts for the learner, not for a module.
* XP: lesson 10, module 50, path 200, assessment passed 25, an attempt
  score/10, any other event 1. Level = 1 + floor(sqrt(xp / 100)).
* Streak = days in a row (UTC days) with at least one event.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.events import Event

XP_BY_TYPE = {
    "lesson.completed": 10,
    "module.completed": 50,
    "path.completed": 200,
    "assessment.passed": 25,
}


def day_number(ts: float) -> int:
    """Days since the Unix epoch (UTC) of a timestamp in seconds.

    ``floor(ts / 86400)``, the same arithmetic as the store's SQL.
    """
    return math.floor(ts / SECONDS_PER_DAY)


def level_for_xp(xp: int) -> int:
    """Level 1 at 0 XP, 2 at 100, 3 at 400, 4 at 900 ..."""
    return 1 + math.isqrt(max(0, xp) // 100)


def xp_for_event(event: Event) -> int:
    """XP one event earns."""
    if event.type == "assessment.attempted":
        # int(x / 10), not x // 10: the same arithmetic as the store's SQL (CAST(x / 10)).
        return int(event.score.percent / 10) if event.score is not None else 0
    return XP_BY_TYPE.get(event.type, 1)


@dataclass(slots=True)
class DayRun:
    """The UTC days a batch was active on, reduced to what a streak needs."""

    first: int
    last: int
    #: Days in a row ending at ``last``.
    trailing: int

    @classmethod
    def of(cls, days: set[int]) -> DayRun:
        ordered = sorted(days)
        trailing = 1
        for earlier, later in zip(reversed(ordered[:-1]), reversed(ordered), strict=False):
            if later - earlier != 1:
                break
            trailing += 1
        return cls(ordered[0], ordered[-1], trailing)

    @property
    def trailing_start(self) -> int:
        """The first day of the run of days in a row that ends at ``last``."""
        return self.last - self.trailing + 1


def advance_streak(streak: int, active_day: int, run: DayRun) -> tuple[int, int]:
    """(streak, active_day) after a batch active on ``run``'s days.

    The streak extends when the batch's last run of days in a row reaches back
    to the day after the last active day (or earlier); days before a gap in the
    batch do not matter. Events older than the last active day change nothing.
    """
    if run.last <= active_day:
        return streak, active_day
    if run.trailing_start <= active_day + 1:
        return streak + (run.last - active_day), run.last
    return run.trailing, run.last


@dataclass(slots=True)
class ModuleDelta:
    """What one batch did to one learner x module."""

    progress: float = 0.0
    completed_at: float | None = None
    time_spent_s: float = 0.0
    first: float = math.inf
    last: float = -math.inf


@dataclass(slots=True)
class PathDelta:
    """What one batch did to one learner x path."""

    enrolled_at: float | None = None
    unenrolled_at: float | None = None
    completed_at: float | None = None
    #: Latest event other than an unenrollment, to tell whether the learner came back.
    last_engaged: float = -math.inf
    time_spent_s: float = 0.0
    xp: int = 0
    first: float = math.inf
    last: float = -math.inf
    days: set[int] = field(default_factory=set)


@dataclass(slots=True)
class LearnerDelta:
    """What one batch did to one learner."""

    events: int = 0
    time_spent_s: float = 0.0
    xp: int = 0
    first: float = math.inf
    last: float = -math.inf
    days: set[int] = field(default_factory=set)


@dataclass(slots=True)
class BatchProgress:
    """The per-key deltas of one batch of accepted events."""

    modules: dict[tuple[str, str, str], ModuleDelta] = field(default_factory=dict)
    paths: dict[tuple[str, str], PathDelta] = field(default_factory=dict)
    learners: dict[str, LearnerDelta] = field(default_factory=dict)

    def add(self, event: Event) -> None:
        """Fold one event into the deltas."""
        ts = event.ts
        day = day_number(ts)
        xp = xp_for_event(event)
        duration = event.duration_s or 0.0
        is_session = event.type.startswith("session.")

        learner = self.learners.get(event.learner)
        if learner is None:
            learner = self.learners[event.learner] = LearnerDelta()
        learner.events += 1
        learner.xp += xp
        learner.first = min(learner.first, ts)
        learner.last = max(learner.last, ts)
        learner.days.add(day)
        if event.type == "session.ended":
            learner.time_spent_s += duration

        if event.path is None:
            return
        path_key = (event.learner, event.path)
        path = self.paths.get(path_key)
        if path is None:
            path = self.paths[path_key] = PathDelta()
        path.xp += xp
        path.first = min(path.first, ts)
        path.last = max(path.last, ts)
        path.days.add(day)
        if not is_session:
            path.time_spent_s += duration
        if event.type == "path.enrolled":
            path.enrolled_at = ts if path.enrolled_at is None else min(path.enrolled_at, ts)
        elif event.type == "path.unenrolled":
            path.unenrolled_at = ts if path.unenrolled_at is None else max(path.unenrolled_at, ts)
        elif event.type == "path.completed":
            path.completed_at = ts if path.completed_at is None else min(path.completed_at, ts)
        if event.type not in ("path.unenrolled", "path.enrolled"):
            path.last_engaged = max(path.last_engaged, ts)

        if event.module is None:
            return
        module_key = (event.learner, event.path, event.module)
        module = self.modules.get(module_key)
        if module is None:
            module = self.modules[module_key] = ModuleDelta()
        module.first = min(module.first, ts)
        module.last = max(module.last, ts)
        if not is_session:
            module.time_spent_s += duration
        if event.progress is not None:
            module.progress = max(module.progress, event.progress)
        if event.type == "module.completed":
            module.progress = 100.0
            module.completed_at = (
                ts if module.completed_at is None else min(module.completed_at, ts)
            )


def apply_module(row: dict | None, delta: ModuleDelta) -> dict:
    """The module_progress row after ``delta`` (``row`` None: first activity)."""
    if row is None:
        row = {
            "status": "in_progress",
            "percent": 0.0,
            "time_spent_s": 0.0,
            "first_activity": delta.first,
            "last_activity": delta.last,
            "completed_at": None,
        }
    else:
        row = dict(row)
    completed_at = row["completed_at"]
    if delta.completed_at is not None:
        completed_at = (
            delta.completed_at if completed_at is None else min(completed_at, delta.completed_at)
        )
    row["completed_at"] = completed_at
    row["status"] = "completed" if completed_at is not None else "in_progress"
    row["percent"] = 100.0 if completed_at is not None else max(row["percent"], delta.progress)
    row["time_spent_s"] += delta.time_spent_s
    row["first_activity"] = min(row["first_activity"], delta.first)
    row["last_activity"] = max(row["last_activity"], delta.last)
    return row


def apply_path(
    row: dict | None,
    delta: PathDelta,
    *,
    module_percent_sum: float,
    modules_completed: int,
    module_count: int,
    catalog_is_authoritative: bool,
) -> dict:
    """The path_progress row after ``delta``.

    ``module_percent_sum`` and ``modules_completed`` are over the learner's
    module rows of this path *after* the batch; ``module_count`` is the
    catalog's. With an authoritative catalog (loaded from a file), finishing
    every module completes the path; with one discovered from events, only a
    ``path.completed`` event does.
    """
    run = DayRun.of(delta.days)
    if row is None:
        row = {
            "status": "enrolled",
            "percent": 0.0,
            "modules_completed": 0,
            "time_spent_s": 0.0,
            "xp": 0,
            "level": 1,
            "streak_days": 0,
            "active_day": run.first - 1,
            "enrolled_at": None,
            "first_activity": delta.first,
            "last_activity": delta.last,
            "completed_at": None,
        }
    else:
        row = dict(row)
    if delta.enrolled_at is not None and (
        row["enrolled_at"] is None or delta.enrolled_at < row["enrolled_at"]
    ):
        row["enrolled_at"] = delta.enrolled_at
    completed_at = row["completed_at"]
    if delta.completed_at is not None:
        completed_at = (
            delta.completed_at if completed_at is None else min(completed_at, delta.completed_at)
        )
    if (
        completed_at is None
        and catalog_is_authoritative
        and module_count > 0
        and modules_completed >= module_count
    ):
        completed_at = delta.last
    row["completed_at"] = completed_at
    row["modules_completed"] = modules_completed
    if completed_at is not None:
        row["status"] = "completed"
        row["percent"] = 100.0
    else:
        count = max(module_count, 1)
        row["percent"] = min(100.0, module_percent_sum / count)
        came_back = delta.last_engaged > -math.inf or delta.enrolled_at is not None
        if delta.unenrolled_at is not None and delta.unenrolled_at >= delta.last_engaged:
            row["status"] = "unenrolled"
        elif came_back or row["status"] != "unenrolled":
            row["status"] = "in_progress" if module_percent_sum > 0 else "enrolled"
    row["time_spent_s"] += delta.time_spent_s
    row["xp"] += delta.xp
    row["level"] = level_for_xp(row["xp"])
    row["streak_days"], row["active_day"] = advance_streak(
        row["streak_days"], row["active_day"], run
    )
    row["first_activity"] = min(row["first_activity"], delta.first)
    row["last_activity"] = max(row["last_activity"], delta.last)
    return row


def apply_learner(row: dict | None, delta: LearnerDelta) -> dict:
    """The learners row after ``delta``."""
    run = DayRun.of(delta.days)
    if row is None:
        row = {
            "events": 0,
            "time_spent_s": 0.0,
            "xp": 0,
            "level": 1,
            "streak_days": 0,
            "longest_streak": 0,
            "active_day": run.first - 1,
            "first_activity": delta.first,
            "last_activity": delta.last,
        }
    else:
        row = dict(row)
    row["events"] += delta.events
    row["time_spent_s"] += delta.time_spent_s
    row["xp"] += delta.xp
    row["level"] = level_for_xp(row["xp"])
    row["streak_days"], row["active_day"] = advance_streak(
        row["streak_days"], row["active_day"], run
    )
    row["longest_streak"] = max(row["longest_streak"], row["streak_days"])
    row["first_activity"] = min(row["first_activity"], delta.first)
    row["last_activity"] = max(row["last_activity"], delta.last)
    return row
