"""One simulated learner's behaviour: sessions through the day, lessons, assessments, progress.

:func:`learner_events` turns a :class:`~jacmon.sim.population.LearnerProfile`
and its random stream into that learner's events in time order, as
``(t, body)`` pairs: ``t`` in seconds since the Unix epoch, ``body`` the
event without ``id`` and ``ts`` (the simulator numbers and stamps events when
it merges the learners).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping
from typing import Any

from jacmon.sim.catalog import SimModule, SimPath
from jacmon.sim.population import DAY_S, LearnerProfile

PASS_MARK = 60.0
"""Score (0-100) at or above which an assessment is passed."""

LESSON_CHECK_CHANCE = 0.5
"""Chance that a lesson ends with a short check (a scored assessment)."""

VIEW_CHANCE = 0.5
"""Chance that a lesson includes a separate activity event (video, reading)."""

# Dropout learners' session rate halves every this many days after dropout_at ...
_DROPOUT_HALF_LIFE_DAYS = 0.7
# ... and they are gone for good this many days after dropout_at.
_DROPOUT_GONE_DAYS = 3.0

# Night hours (UTC) in which a drawn session start is usually redrawn.
_NIGHT = (0.0, 7.0)
_NIGHT_REDRAW_CHANCE = 0.85

_RESOURCES = ("video", "reading", "exercise", "forum")

Event = tuple[float, dict[str, Any]]


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson-distributed count with ``mean`` (Knuth's method; means here are small)."""
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class _Learner:
    """The mutable state of one learner while their events are generated."""

    def __init__(
        self, profile: LearnerProfile, rng: random.Random, paths: Mapping[str, SimPath]
    ) -> None:
        self.p = profile
        self.rng = rng
        self.paths = paths
        self.path_no = 0  # index into profile.paths
        self.path: SimPath = paths[profile.paths[0]]
        self.enrolled = False
        self.module_no = 0
        self.lessons_done = 0
        self.quiz_attempts = 0
        self.scores_taken = 0
        self.sessions = 0
        self.stalled = False
        self.finished = False
        self.break_start = (
            profile.first_break_at if profile.first_break_at is not None else math.inf
        )
        self.break_end = (
            self.break_start + rng.uniform(2.0, 5.0) * DAY_S
            if profile.first_break_at is not None
            else math.inf
        )

    # -- when sessions happen ------------------------------------------------

    def day_rate(self, day_start: float) -> float | None:
        """Mean sessions on the day starting at ``day_start``; None when the learner is gone."""
        rate = self.p.sessions_per_day
        if self.p.dropout_at is not None:
            days_after = (day_start - self.p.dropout_at) / DAY_S
            if days_after >= _DROPOUT_GONE_DAYS:
                return None
            if days_after > 0:
                rate *= 0.5 ** (days_after / _DROPOUT_HALF_LIFE_DAYS)
        if self.stalled:
            # Stuck learners still drop by, less often.
            rate *= 0.6
        return rate

    def session_starts(self, day_start: float, rate: float) -> list[float]:
        """Session start times on one day, clustered around the learner's peak hour."""
        rng = self.rng
        count = _poisson(rng, rate)
        if self.p.archetype == "streak" or not self.enrolled:
            # Streak learners never skip a day; a new learner comes to start.
            count = max(1, count)
        starts = []
        for _ in range(count):
            hour = rng.gauss(self.p.peak_hour, 3.0) % 24.0
            # People mostly sleep at night: redraw most night-time starts.
            for _retry in range(3):
                if not (_NIGHT[0] <= hour < _NIGHT[1]) or rng.random() > _NIGHT_REDRAW_CHANCE:
                    break
                hour = rng.gauss(self.p.peak_hour, 3.0) % 24.0
            starts.append(day_start + hour * 3600.0)
        starts.sort()
        return starts

    def on_break(self, t: float) -> bool:
        """Whether ``t`` falls in one of an inactive learner's multi-day breaks."""
        while t >= self.break_end:
            self.break_start = self.break_end + self.rng.uniform(1.5, 4.0) * DAY_S
            self.break_end = self.break_start + self.rng.uniform(2.0, 5.0) * DAY_S
        return self.break_start <= t

    # -- what happens in a session -------------------------------------------

    def score(self, attempt: int) -> int:
        """One assessment score, 0-100, around the learner's current mean."""
        mean = self.p.ability
        if self.p.decline_after is not None and self.scores_taken >= self.p.decline_after:
            # The fall takes two assessments to reach its full depth, and retries
            # do not help: this learner is struggling, not unlucky.
            depth = min(1.0, (self.scores_taken - self.p.decline_after + 1) / 2)
            mean -= self.p.decline_drop * depth
        else:
            # A retry goes a little better: the learner studied the feedback.
            mean += 4.0 * min(attempt - 1, 3)
        self.scores_taken += 1
        return max(0, min(100, round(self.rng.gauss(mean, self.p.score_sd))))

    def assess(
        self, out: list[Event], t: float, module: SimModule, item: str, attempt: int, sid: str
    ) -> bool:
        """Append an attempt and its pass/fail at ``t``; return whether it passed."""
        value = self.score(attempt)
        passed = value >= PASS_MARK
        common = {
            "learner": self.p.id,
            "path": self.path.id,
            "module": module.id,
            "item": item,
            "score": {"raw": value, "min": 0, "max": 100},
            "success": passed,
            "attempt": attempt,
            "session": sid,
        }
        out.append((t, {"type": "assessment.attempted", **common}))
        out.append(
            (t + 1.0, {"type": "assessment.passed" if passed else "assessment.failed", **common})
        )
        return passed

    def session(self, t0: float) -> list[Event]:
        """All events of one session starting at ``t0``, in time order."""
        rng, p = self.rng, self.p
        self.sessions += 1
        sid = f"{p.id}-s{self.sessions}"
        lid = p.id
        t = t0
        out: list[Event] = [
            (t, {"type": "session.started", "learner": lid, "path": self.path.id, "session": sid})
        ]
        if not self.enrolled:
            self.enrolled = True
            t += 2.0
            out.append(
                (t, {"type": "path.enrolled", "learner": lid, "path": self.path.id, "session": sid})
            )
        t = self.browse(out, t, sid) if self.stalled else self.study(out, t, sid)
        t += rng.uniform(30.0, 300.0)
        out.append(
            (
                t,
                {
                    "type": "session.ended",
                    "learner": lid,
                    "path": self.path.id,
                    "session": sid,
                    "duration_s": round(t - t0, 1),
                },
            )
        )
        return out

    def browse(self, out: list[Event], t: float, sid: str) -> float:
        """A stalled learner's visit: looks at material, completes nothing."""
        rng = self.rng
        module = self.path.modules[self.module_no]
        for _ in range(rng.randint(1, 3)):
            t += rng.uniform(60.0, 600.0)
            lesson = min(self.lessons_done + 1, module.lessons)
            out.append((t, self.view(module, lesson, sid)))
        return t

    def view(self, module: SimModule, lesson: int, sid: str) -> dict[str, Any]:
        resource = self.rng.choice(_RESOURCES)
        return {
            "type": "activity",
            "learner": self.p.id,
            "path": self.path.id,
            "module": module.id,
            "item": f"{self.path.id}/{module.id}/l{lesson}/{resource}",
            "session": sid,
            "verb": "viewed",
        }

    def study(self, out: list[Event], t: float, sid: str) -> float:
        """Work through lessons (and the module quiz) until the session's budget runs out."""
        rng, p = self.rng, self.p
        lid = p.id
        budget = rng.randint(*p.lessons_per_session)
        while budget > 0 and not self.finished:
            if (
                p.stall_at is not None
                and self.path_no == 0
                and (self.module_no, self.lessons_done) == p.stall_at
            ):
                self.stalled = True
                return self.browse(out, t, sid)
            module = self.path.modules[self.module_no]
            if self.lessons_done < module.lessons:
                minutes = rng.lognormvariate(math.log(p.lesson_minutes), 0.35)
                lesson = self.lessons_done + 1
                if rng.random() < VIEW_CHANCE:
                    out.append((t + minutes * 30.0, self.view(module, lesson, sid)))
                t += minutes * 60.0
                self.lessons_done = lesson
                item = f"{self.path.id}/{module.id}/l{lesson}"
                out.append(
                    (
                        t,
                        {
                            "type": "lesson.completed",
                            "learner": lid,
                            "path": self.path.id,
                            "module": module.id,
                            "item": item,
                            "duration_s": round(minutes * 60.0, 1),
                            "session": sid,
                        },
                    )
                )
                # The quiz is the module's last step, so lessons alone never reach 100 %.
                progress = round(100.0 * lesson / (module.lessons + 1), 1)
                out.append((t + 1.0, self.progressed(module, progress, sid)))
                t += 2.0
                if rng.random() < LESSON_CHECK_CHANCE:
                    t += rng.uniform(60.0, 240.0)
                    self.assess(out, t, module, f"{item}/check", 1, sid)
                    t += 2.0
                budget -= 1
                continue
            # All lessons done: the module quiz.
            t += rng.uniform(300.0, 900.0)
            self.quiz_attempts += 1
            passed = self.assess(
                out, t, module, f"{self.path.id}/{module.id}/quiz", self.quiz_attempts, sid
            )
            t += 2.0
            if not passed:
                # A failed quiz ends the session; the learner retries next time.
                return t
            out.append((t, self.progressed(module, 100.0, sid)))
            t += 1.0
            out.append(
                (
                    t,
                    {
                        "type": "module.completed",
                        "learner": lid,
                        "path": self.path.id,
                        "module": module.id,
                        "session": sid,
                    },
                )
            )
            self.module_no += 1
            self.lessons_done = 0
            self.quiz_attempts = 0
            budget -= 1
            if self.module_no == len(self.path.modules):
                t += 1.0
                out.append(
                    (
                        t,
                        {
                            "type": "path.completed",
                            "learner": lid,
                            "path": self.path.id,
                            "session": sid,
                        },
                    )
                )
                t = self.next_path(out, t, sid)
        return t

    def progressed(self, module: SimModule, progress: float, sid: str) -> dict[str, Any]:
        return {
            "type": "module.progressed",
            "learner": self.p.id,
            "path": self.path.id,
            "module": module.id,
            "progress": progress,
            "session": sid,
        }

    def next_path(self, out: list[Event], t: float, sid: str) -> float:
        """After a completed path: enrol in the next one, or finish for good; returns the time."""
        self.path_no += 1
        if self.path_no >= len(self.p.paths) or self.rng.random() > self.p.continue_chance:
            self.finished = True
            return t
        self.path = self.paths[self.p.paths[self.path_no]]
        self.module_no = 0
        self.lessons_done = 0
        self.quiz_attempts = 0
        t += 5.0
        out.append(
            (
                t,
                {
                    "type": "path.enrolled",
                    "learner": self.p.id,
                    "path": self.path.id,
                    "session": sid,
                },
            )
        )
        return t


def learner_events(
    profile: LearnerProfile, rng: random.Random, paths: Mapping[str, SimPath]
) -> Iterator[Event]:
    """The learner's events in time order, ``(t, body)``; ends when they finish or drop out."""
    learner = _Learner(profile, rng, paths)
    not_before = profile.enroll_at
    day_start = math.floor(not_before / DAY_S) * DAY_S
    while True:
        rate = learner.day_rate(day_start)
        if rate is None:
            return
        for start in learner.session_starts(day_start, rate):
            # Sessions never overlap: skip a start that falls in (or just after) the last one.
            if start < not_before or learner.on_break(start):
                continue
            events = learner.session(start)
            yield from events
            if learner.finished:
                return
            not_before = events[-1][0] + rng.uniform(20.0, 120.0) * 60.0
        day_start += DAY_S
