"""Velocity: completions per week per path, learner pace, projected finish, stagnation.

Pure functions over what the ``velocity`` task reads: module completions per
path in the last ``window_days`` and the window before, and each learner's
in-progress paths (percent, first and last activity).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.alert_rules import AlertCondition, Evaluation

STAGNATION = "completion_stagnation"
RULES = frozenset({STAGNATION})


@dataclass(slots=True)
class VelocityRules:
    """Windows and thresholds of the velocity task (days)."""

    #: Completions are counted per window of this many days (this week vs last week).
    window_days: float = 7.0
    #: In progress with no activity on the path for this long: stagnation alert.
    stagnation_days: float = 5.0
    #: Stagnation is critical after this long.
    stagnation_critical_days: float = 14.0


@dataclass(slots=True)
class PathCompletions:
    path: str
    this_week: int
    last_week: int


@dataclass(slots=True)
class LearnerPath:
    """One learner's in-progress path."""

    learner: str
    path: str
    percent: float
    #: Enrolment or first activity on the path, and newest activity (epoch seconds).
    started: float
    last_activity: float


def change_pct(this_week: int, last_week: int) -> float | None:
    """Change from last week to this week in percent; None when last week had none."""
    if last_week == 0:
        return None
    return round((this_week - last_week) * 100.0 / last_week, 1)


def path_velocity(rows: Iterable[PathCompletions]) -> dict[str, dict[str, float | int | None]]:
    """``{path: {"this_week", "last_week", "change_pct"}}`` (what the metrics stream gets)."""
    return {
        r.path: {
            "this_week": r.this_week,
            "last_week": r.last_week,
            "change_pct": change_pct(r.this_week, r.last_week),
        }
        for r in rows
    }


def pace(item: LearnerPath, *, now: float) -> tuple[float, float | None]:
    """(percent per day since the learner started the path, projected finish in epoch seconds).

    The projection is None when there is no progress yet to extrapolate from.
    At least one day counts as elapsed, so a first-day burst is not a wild rate.
    """
    days = max((now - item.started) / SECONDS_PER_DAY, 1.0)
    rate = item.percent / days
    if rate <= 0:
        return 0.0, None
    remaining = max(100.0 - item.percent, 0.0)
    return round(rate, 3), now + remaining / rate * SECONDS_PER_DAY


def stagnation(items: Iterable[LearnerPath], rules: VelocityRules, *, now: float) -> Evaluation:
    """Completion stagnation: in progress, no activity on the path for ``stagnation_days``."""
    evaluation = Evaluation(RULES)
    for item in items:
        idle_days = (now - item.last_activity) / SECONDS_PER_DAY
        if idle_days < rules.stagnation_days:
            continue
        severity = "critical" if idle_days >= rules.stagnation_critical_days else "warning"
        evaluation.firing.append(
            AlertCondition(
                STAGNATION,
                severity,
                item.learner,
                item.path,
                f"no progress on {item.path} for {idle_days:.1f} days (at {item.percent:.0f}%)",
                {"idle_days": round(idle_days, 1), "percent": round(item.percent, 1)},
            )
        )
    return evaluation
