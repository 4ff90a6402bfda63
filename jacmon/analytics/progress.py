"""Progress rules as pure functions: how events move module, path and learner progress.

This is the reference statement of the rules. A span of events folds into one
:class:`BatchProgress` (one delta per learner x module, learner x path and
learner), and the ``apply_*`` functions below turn an old row and a delta into
the new row. The store applies the same rules as set-based SQL in its projector
(jacmon/store/sqlite/progress_sql.py, jacmon/store/postgres/progress_sql.py);
tests hold them to the same results over random event streams, spans and
restarts. Nothing here touches the database.

Every rule is a function of the *set* of events, not of their order or of how
they were cut into spans: a late event (an LRS forwarding statements hours
after they happened) gives the same rows as if it had come on time, and
progress projected in spans of any size is the same. That is why a streak is
computed from the set of active days (kept beside the rows: the store's
``learner_days`` and ``path_days`` tables) and why unenrolment compares the
latest unenrolment with the latest other event on the path by time.

Rules, in short (docs/architecture.md has the full table):

* module percent = the highest ``progress`` seen, 100 once ``module.completed``;
  it never goes down.
* path percent = sum of its modules' percents / the catalog's module count.
* time spent = the sum of ``duration_s`` on events in that scope; a
  ``session.ended`` duration counts for the learner, not for a module.
* XP: lesson 10, module 50, path 200, assessment passed 25, an attempt
  score/10, any other event 1. Level = 1 + floor(sqrt(xp / 100)).
* Streak = the run of days in a row (UTC days with at least one event) that ends
  at the latest active day; the learner's longest streak = the longest such run.
* A path is unenrolled while its latest ``path.unenrolled`` is at or after every
  other event on it (by event time); completed once ``path.completed`` arrives or,
  with an authoritative catalog, once every module is completed (at the time the
  last of them was).
"""

from __future__ import annotations

import itertools
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


@dataclass(frozen=True, slots=True)
class Streak:
    """What a set of active days (UTC day numbers) says about streaks."""

    #: The latest active day.
    active_day: int
    #: Days in a row ending at ``active_day``.
    current: int
    #: The longest run of days in a row.
    longest: int

    @classmethod
    def of(cls, days: set[int]) -> Streak:
        """The streaks of ``days`` (not empty)."""
        ordered = sorted(days)
        run = longest = 1
        for earlier, later in itertools.pairwise(ordered):
            run = run + 1 if later - earlier == 1 else 1
            longest = max(longest, run)
        return cls(ordered[-1], run, longest)


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
    #: Latest event other than an unenrolment, to tell whether the learner came back.
    last_engaged: float | None = None
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
        if event.type != "path.unenrolled":
            path.last_engaged = ts if path.last_engaged is None else max(path.last_engaged, ts)

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


def _earliest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _latest(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return max(present) if present else None


def apply_path(
    row: dict | None,
    delta: PathDelta,
    *,
    module_percent_sum: float,
    modules_completed: int,
    modules_completed_at: float | None,
    module_count: int,
    catalog_is_authoritative: bool,
    days: set[int],
) -> dict:
    """The path_progress row after ``delta``.

    ``module_percent_sum``, ``modules_completed`` and ``modules_completed_at`` (the
    latest completion time) are over the learner's module rows of this path *after*
    the span; ``module_count`` is the catalog's; ``days`` every day the learner was
    active on the path, the span's included. With an authoritative catalog (loaded
    from a file), finishing every module completes the path; with one discovered
    from events, only a ``path.completed`` event does.
    """
    if row is None:
        row = {
            "status": "enrolled",
            "percent": 0.0,
            "modules_completed": 0,
            "time_spent_s": 0.0,
            "xp": 0,
            "level": 1,
            "streak_days": 0,
            "active_day": 0,
            "enrolled_at": None,
            "first_activity": delta.first,
            "last_activity": delta.last,
            "completed_at": None,
            "unenrolled_at": None,
            "last_engaged": None,
        }
    else:
        row = dict(row)
    row["enrolled_at"] = _earliest(row["enrolled_at"], delta.enrolled_at)
    row["unenrolled_at"] = _latest(row["unenrolled_at"], delta.unenrolled_at)
    row["last_engaged"] = _latest(row["last_engaged"], delta.last_engaged)
    completed_at = _earliest(row["completed_at"], delta.completed_at)
    if catalog_is_authoritative and module_count > 0 and modules_completed >= module_count:
        completed_at = _earliest(completed_at, modules_completed_at)
    row["completed_at"] = completed_at
    row["modules_completed"] = modules_completed
    if completed_at is not None:
        row["status"] = "completed"
        row["percent"] = 100.0
    else:
        count = max(module_count, 1)
        row["percent"] = min(100.0, module_percent_sum / count)
        left = row["unenrolled_at"]
        if left is not None and (row["last_engaged"] is None or left >= row["last_engaged"]):
            row["status"] = "unenrolled"
        else:
            row["status"] = "in_progress" if module_percent_sum > 0 else "enrolled"
    row["time_spent_s"] += delta.time_spent_s
    row["xp"] += delta.xp
    row["level"] = level_for_xp(row["xp"])
    streak = Streak.of(days)
    row["streak_days"], row["active_day"] = streak.current, streak.active_day
    row["first_activity"] = min(row["first_activity"], delta.first)
    row["last_activity"] = max(row["last_activity"], delta.last)
    return row


def apply_learner(row: dict | None, delta: LearnerDelta, *, days: set[int]) -> dict:
    """The learners row after ``delta``; ``days``: every day the learner was active,
    the span's included."""
    if row is None:
        row = {
            "events": 0,
            "time_spent_s": 0.0,
            "xp": 0,
            "level": 1,
            "streak_days": 0,
            "longest_streak": 0,
            "active_day": 0,
            "first_activity": delta.first,
            "last_activity": delta.last,
        }
    else:
        row = dict(row)
    row["events"] += delta.events
    row["time_spent_s"] += delta.time_spent_s
    row["xp"] += delta.xp
    row["level"] = level_for_xp(row["xp"])
    streak = Streak.of(days)
    row["streak_days"], row["active_day"] = streak.current, streak.active_day
    row["longest_streak"] = streak.longest
    row["first_activity"] = min(row["first_activity"], delta.first)
    row["last_activity"] = max(row["last_activity"], delta.last)
    return row
