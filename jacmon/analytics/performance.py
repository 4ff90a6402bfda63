"""Performance rules: score trends per learner -> decline and consecutive-low-score alerts.

Inputs are what the ``performance`` task reads in two set-based queries: per
learner the count and average of assessment scores (0-100) in the recent window
and in the window before it, and each learner's latest scores on each path (newest first).

Which alerts name a path: ``consecutive_low_scores`` belongs to the path whose
assessments scored low (one alert per learner and path; null only for scores
sent without a path); ``performance_decline`` compares a learner's averages over
all paths, so it is learner-wide (path null).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from jacmon.analytics.alert_rules import AlertCondition, Evaluation

DECLINE = "performance_decline"
CONSECUTIVE_LOW = "consecutive_low_scores"
RULES = frozenset({DECLINE, CONSECUTIVE_LOW})


@dataclass(slots=True)
class PerformanceRules:
    """Thresholds of the performance rules (scores 0-100, windows in days)."""

    #: The recent window: the last N days; the previous window is the N days before.
    window_days: float = 7.0
    #: Scores needed in each window before a decline is judged.
    min_scores: int = 3
    #: A decline fires when the recent average is below this ...
    decline_threshold: float = 60.0
    #: ... and more than this many points below the previous average.
    decline_points: float = 5.0
    #: A firing decline clears only once the recent average is at least this (hysteresis).
    decline_clear: float = 65.0
    #: A score below this is low.
    low_score: float = 60.0
    #: Consecutive low scores (newest first) that fire the alert.
    consecutive_low: int = 2
    #: A firing consecutive-low alert clears once the latest score is at least this.
    low_clear: float = 65.0
    #: Consecutive low scores at which the alert is critical instead of warning.
    critical_consecutive: int = 4
    #: Latest scores are looked for this far back, in days.
    lookback_days: float = 30.0


@dataclass(slots=True)
class ScoreWindows:
    """One learner's scores in the recent and the previous window."""

    learner: str
    recent_count: int
    recent_avg: float | None
    previous_count: int
    previous_avg: float | None


def _r(value: float) -> float:
    return round(value, 1)


def decline_conditions(
    windows: Iterable[ScoreWindows], rules: PerformanceRules
) -> tuple[list[AlertCondition], list[AlertCondition]]:
    """(firing, holding) performance-decline conditions.

    Fires when both windows have ``min_scores`` scores, the recent average is
    below ``decline_threshold`` and more than ``decline_points`` below the
    previous one. Holds (keeps a firing alert open) while the recent average is
    below ``decline_clear`` (with any number of recent scores: too few to judge
    is no reason to clear); no recent score at all clears it.
    """
    firing: list[AlertCondition] = []
    holding: list[AlertCondition] = []
    for w in windows:
        if w.recent_avg is None:
            continue
        numbers = {
            "recent_avg": _r(w.recent_avg),
            "recent_count": w.recent_count,
            "previous_avg": None if w.previous_avg is None else _r(w.previous_avg),
            "previous_count": w.previous_count,
        }
        fires = (
            w.recent_count >= rules.min_scores
            and w.previous_avg is not None
            and w.previous_count >= rules.min_scores
            and w.recent_avg < rules.decline_threshold
            # Rounded: averages carry float noise (64.9 - 59.9 is 5.000000000000007).
            and round(w.previous_avg - w.recent_avg, 6) > rules.decline_points
        )
        if fires:
            drop = w.previous_avg - w.recent_avg
            numbers["drop"] = _r(drop)
            message = (
                f"average score fell to {w.recent_avg:.1f} over the last "
                f"{rules.window_days:g} days ({w.recent_count} scores), "
                f"{drop:.1f} points below the {w.previous_avg:.1f} before"
            )
            severity = "critical" if w.recent_avg < rules.decline_threshold - 20 else "warning"
            firing.append(AlertCondition(DECLINE, severity, w.learner, None, message, numbers))
        elif w.recent_avg < rules.decline_clear:
            message = (
                f"average score {w.recent_avg:.1f} over the last {rules.window_days:g} days "
                f"is still below the clear threshold {rules.decline_clear:g}"
            )
            holding.append(AlertCondition(DECLINE, "warning", w.learner, None, message, numbers))
    return firing, holding


def low_run(scores: Sequence[float], below: float) -> int:
    """How many of ``scores`` (newest first) in a row, from the newest, are below ``below``."""
    run = 0
    for score in scores:
        if score >= below:
            break
        run += 1
    return run


#: A learner and a path (None: scores sent without one).
LearnerPath = tuple[str, str | None]


def consecutive_low_conditions(
    latest: Mapping[LearnerPath, Sequence[float]], rules: PerformanceRules
) -> tuple[list[AlertCondition], list[AlertCondition]]:
    """(firing, holding) consecutive-low-score conditions from the latest scores per path.

    ``latest`` maps (learner, path) to that learner's newest scores on that
    path, newest first. Fires when the newest ``consecutive_low`` or more scores
    are below ``low_score``; holds while the newest score is below ``low_clear``.
    """
    firing: list[AlertCondition] = []
    holding: list[AlertCondition] = []
    for (learner, path), scores in latest.items():
        if not scores:
            continue
        run = low_run(scores, rules.low_score)
        numbers = {"low_run": run, "latest": [_r(s) for s in scores[: max(run, 1)]]}
        if run >= rules.consecutive_low:
            severity = "critical" if run >= rules.critical_consecutive else "warning"
            shown = ", ".join(f"{s:.0f}" for s in scores[:run])
            where = f" on {path}" if path else ""
            message = f"the latest {run} scores{where} are below {rules.low_score:g} ({shown})"
            firing.append(
                AlertCondition(CONSECUTIVE_LOW, severity, learner, path, message, numbers)
            )
        elif scores[0] < rules.low_clear:
            message = (
                f"latest score {scores[0]:.0f} is still below the clear threshold "
                f"{rules.low_clear:g}"
            )
            holding.append(
                AlertCondition(CONSECUTIVE_LOW, "warning", learner, path, message, numbers)
            )
    return firing, holding


def evaluate_performance(
    windows: Iterable[ScoreWindows],
    latest: Mapping[LearnerPath, Sequence[float]],
    rules: PerformanceRules,
) -> Evaluation:
    """Both performance rules over the task's query results."""
    evaluation = Evaluation(RULES)
    for firing, holding in (
        decline_conditions(windows, rules),
        consecutive_low_conditions(latest, rules),
    ):
        evaluation.firing.extend(firing)
        evaluation.holding.extend(holding)
    return evaluation
