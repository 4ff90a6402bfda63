"""Daily analytics: local-date boundaries and platform totals from per-learner day rows."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

#: Event types that count as a completion in the daily snapshot.
COMPLETION_TYPES = ("lesson.completed", "module.completed", "path.completed")


def day_bounds(day: date, tz: ZoneInfo) -> tuple[float, float]:
    """[start, end) of local date ``day`` in ``tz``, as epoch seconds.

    23 or 25 hours long on the days the clocks change.
    """
    start = datetime.combine(day, time(0), tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return start.timestamp(), end.timestamp()


def local_date(ts: float, tz: ZoneInfo) -> date:
    """The local date in ``tz`` at epoch seconds ``ts``."""
    return datetime.fromtimestamp(ts, tz).date()


@dataclass(slots=True)
class LearnerDay:
    """One learner's activity on one local date."""

    learner: str
    activities: int
    completions: int
    assessments: int
    #: Events that carried a score, and their average (0-100; None if none).
    scored: int
    avg_score: float | None
    #: Sum of session durations, in seconds.
    time_spent_s: float


@dataclass(slots=True)
class PlatformDay:
    """Totals over every learner on one local date."""

    active_learners: int
    activities: int
    completions: int
    assessments: int
    avg_score: float | None
    time_spent_s: float


def platform_totals(rows: Iterable[LearnerDay]) -> PlatformDay:
    """Sum the learner rows; the average score is weighted by each learner's scored events."""
    total = PlatformDay(0, 0, 0, 0, None, 0.0)
    score_sum = 0.0
    scored = 0
    for row in rows:
        total.active_learners += 1
        total.activities += row.activities
        total.completions += row.completions
        total.assessments += row.assessments
        total.time_spent_s += row.time_spent_s
        if row.scored and row.avg_score is not None:
            score_sum += row.avg_score * row.scored
            scored += row.scored
    total.avg_score = round(score_sum / scored, 2) if scored else None
    return total
