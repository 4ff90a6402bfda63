"""Engagement rules: inactivity, engagement drop and low consistency per learner.

Inputs are one row per learner enrolled on a path and not finished, with what
the ``engagement`` task reads in one pass over the last ``consistency_days``:
last activity, events in the last ``drop_days`` and in the ``drop_days`` before,
and distinct active days (local calendar days in the task time zone).

One condition, one alert: ``inactivity`` (days since the last activity) and
``engagement_drop`` (activity fell well below the learner's own earlier level
while they are still active) never both fire for one learner; an idle learner
gets ``inactivity`` only (see :func:`inhibitions`).

Which alerts name a path: ``inactivity`` and ``engagement_drop`` name the
enrolled, unfinished path the learner was last active on (the one to follow up
on); ``low_consistency`` counts active days over everything the learner does, so
it is learner-wide (path null).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

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
    #: Engagement drop compares the events of the last N days with those of the N before ...
    drop_days: float = 3.0
    #: ... and fires when the recent ones are at most this fraction of the earlier ones ...
    drop_ratio: float = 0.25
    #: ... provided the earlier N days had at least this many events (a real level to drop from).
    drop_min_prior_events: int = 4
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
    #: The enrolled, unfinished path last active on; None if unknown.
    path: str | None = None


def _date(ts: float) -> str:
    """An epoch time as a UTC date and minute, e.g. ``2026-11-30 14:02 UTC``."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def _on(path: str | None) -> str:
    return f" on {path}" if path else ""


def _days(seconds: float) -> float:
    return round(seconds / SECONDS_PER_DAY, 1)


def inactivity_condition(
    a: LearnerActivity, rules: EngagementRules, *, now: float
) -> AlertCondition | None:
    """Inactivity: no activity for ``inactive_warning_days`` or more (critical from the
    critical threshold); None if the learner is not idle that long or never started."""
    if a.last_activity is None:
        return None
    idle_days = (now - a.last_activity) / SECONDS_PER_DAY
    if idle_days < rules.inactive_warning_days:
        return None
    critical = idle_days >= rules.inactive_critical_days
    return AlertCondition(
        INACTIVITY,
        "critical" if critical else "warning",
        a.learner,
        a.path,
        f"no activity for {idle_days:.1f} days, since {_date(a.last_activity)}"
        f" (enrolled{_on(a.path)}, not finished)",
        {"idle_days": _days(now - a.last_activity), "last_activity": a.last_activity},
    )


def engagement_drop_condition(a: LearnerActivity, rules: EngagementRules) -> AlertCondition | None:
    """Engagement drop: the last ``drop_days`` had at most ``drop_ratio`` of the events of
    the ``drop_days`` before (which had at least ``drop_min_prior_events``); else None."""
    if a.prior_events < rules.drop_min_prior_events:
        return None
    if a.recent_events > a.prior_events * rules.drop_ratio:
        return None
    fall_pct = round(100 * (a.prior_events - a.recent_events) / a.prior_events)
    return AlertCondition(
        ENGAGEMENT_DROP,
        "warning",
        a.learner,
        a.path,
        f"activity fell {fall_pct}% below this learner's own level{_on(a.path)}: "
        f"{a.recent_events} events in the last {rules.drop_days:g} days after "
        f"{a.prior_events} in the {rules.drop_days:g} days before",
        {"recent_events": a.recent_events, "prior_events": a.prior_events, "fall_pct": fall_pct},
    )


def inhibitions(evaluation: Evaluation) -> dict[str, str]:
    """Fingerprints that must not alert, with why: an idle learner's engagement drop is
    the same condition as their inactivity, which alone alerts."""
    idle = {c.learner for c in evaluation.firing if c.rule == INACTIVITY}
    return {
        c.fingerprint: f"inhibited by {INACTIVITY}"
        for c in evaluation.firing + evaluation.holding
        if c.rule == ENGAGEMENT_DROP and c.learner in idle
    }


def evaluate_engagement(
    learners: Iterable[LearnerActivity], rules: EngagementRules, *, now: float
) -> Evaluation:
    """The three engagement rules over the monitored learners (``now`` in epoch seconds)."""
    evaluation = Evaluation(RULES)
    for a in learners:
        inactive = inactivity_condition(a, rules, now=now)
        if inactive is not None:
            evaluation.firing.append(inactive)
        drop = engagement_drop_condition(a, rules)
        if drop is not None:
            evaluation.firing.append(drop)
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
