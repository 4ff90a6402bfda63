"""Engagement rules: inactivity, engagement drop and low consistency per learner.

Inputs are one row per learner enrolled on a path and not finished, with what
the ``engagement`` task reads in one pass over the last ``consistency_days``:
last activity, events in the last ``drop_days`` and in the ``drop_days`` before,
and distinct active days (local calendar days in the task time zone).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.alert_rules import AlertCondition, Evaluation

INACTIVITY = "inactivity"
ENGAGEMENT_DROP = "engagement_drop"
LOW_CONSISTENCY = "low_consistency"
RULES = frozenset({INACTIVITY, ENGAGEMENT_DROP, LOW_CONSISTENCY})


@dataclass(slots=True)
class EngagementRules:
    """Thresholds of the engagement rules (durations in days)."""

    #: No activity for this long: warning ...
    inactive_warning_days: float = 3.0
    #: ... and for this long: critical.
    inactive_critical_days: float = 7.0
    #: Engagement drop: nothing in the last N days after activity in the N before.
    drop_days: float = 3.0
    #: Low consistency: fewer than ``min_active_days`` active days in the last N days.
    consistency_days: int = 14
    min_active_days: int = 4
    #: A firing low-consistency alert clears at this many active days (hysteresis).
    consistency_clear_days: int = 5


@dataclass(slots=True)
class LearnerActivity:
    """One monitored learner's activity as of ``now``."""

    learner: str
    #: Newest event time (epoch seconds); None if the learner never did anything.
    last_activity: float | None
    #: First event time (epoch seconds): learners newer than the window are not judged on it.
    first_activity: float | None
    #: Events in the last ``drop_days`` and in the ``drop_days`` before those.
    recent_events: int
    prior_events: int
    #: Distinct active local days in the last ``consistency_days`` days (today included).
    active_days: int


def _days(seconds: float) -> float:
    return round(seconds / SECONDS_PER_DAY, 1)


def evaluate_engagement(
    learners: Iterable[LearnerActivity], rules: EngagementRules, *, now: float
) -> Evaluation:
    """The three engagement rules over the monitored learners (``now`` in epoch seconds)."""
    evaluation = Evaluation(RULES)
    for a in learners:
        if a.last_activity is not None:
            idle_days = (now - a.last_activity) / SECONDS_PER_DAY
            if idle_days >= rules.inactive_warning_days:
                critical = idle_days >= rules.inactive_critical_days
                evaluation.firing.append(
                    AlertCondition(
                        INACTIVITY,
                        "critical" if critical else "warning",
                        a.learner,
                        None,
                        f"no activity for {idle_days:.1f} days (enrolled, not finished)",
                        {
                            "idle_days": _days(now - a.last_activity),
                            "last_activity": a.last_activity,
                        },
                    )
                )
        if a.recent_events == 0 and a.prior_events > 0:
            evaluation.firing.append(
                AlertCondition(
                    ENGAGEMENT_DROP,
                    "warning",
                    a.learner,
                    None,
                    f"no activity in the last {rules.drop_days:g} days after "
                    f"{a.prior_events} events in the {rules.drop_days:g} days before",
                    {"recent_events": 0, "prior_events": a.prior_events},
                )
            )
        window_s = rules.consistency_days * SECONDS_PER_DAY
        if a.first_activity is None or now - a.first_activity < window_s:
            # Too new to have had the chance of enough active days.
            continue
        numbers = {"active_days": a.active_days, "window_days": rules.consistency_days}
        if a.active_days < rules.min_active_days:
            evaluation.firing.append(
                AlertCondition(
                    LOW_CONSISTENCY,
                    "info",
                    a.learner,
                    None,
                    f"active on {a.active_days} of the last {rules.consistency_days} days "
                    f"(fewer than {rules.min_active_days})",
                    numbers,
                )
            )
        elif a.active_days < rules.consistency_clear_days:
            evaluation.holding.append(
                AlertCondition(
                    LOW_CONSISTENCY,
                    "info",
                    a.learner,
                    None,
                    f"active on {a.active_days} of the last {rules.consistency_days} days "
                    f"(clears at {rules.consistency_clear_days})",
                    numbers,
                )
            )
    return evaluation
