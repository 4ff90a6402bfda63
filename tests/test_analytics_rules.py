"""The pure analytics: alert rules and the lifecycle plan, on small hand-computed tables."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from jacmon.analytics.alert_rules import (
    AlertCondition,
    Evaluation,
    fingerprint,
    plan_alert_changes,
)
from jacmon.analytics.daily import LearnerDay, day_bounds, platform_totals
from jacmon.analytics.engagement import EngagementRules, LearnerActivity, evaluate_engagement
from jacmon.analytics.performance import (
    PerformanceRules,
    ScoreWindows,
    consecutive_low_conditions,
    decline_conditions,
    low_run,
)
from jacmon.analytics.velocity import LearnerPath, VelocityRules, change_pct, pace, stagnation

DAY = 86400.0
RULES = PerformanceRules()


def test_fingerprint_is_rule_learner_path_and_unambiguous():
    assert fingerprint("r", "a", "p") == fingerprint("r", "a", "p")
    assert fingerprint("r", "a", "p") != fingerprint("r", "a", None)
    assert fingerprint("r", "a:b", "c") != fingerprint("r", "a", "b:c")
    assert len(fingerprint("r", None, None)) == 16


@pytest.mark.parametrize(
    ("recent", "previous", "fires", "holds"),
    [
        # recent avg, previous avg (3 scores each)
        ((59.9, 3), (65.0, 3), True, False),  # drop 5.1 > 5, below 60
        ((59.9, 3), (64.9, 3), False, True),  # drop exactly 5.0: not more than 5
        ((60.0, 3), (90.0, 3), False, True),  # not below 60; below the clear 65: holds
        ((65.0, 3), (90.0, 3), False, False),  # at the clear threshold: clears
        ((50.0, 2), (90.0, 3), False, True),  # too few recent scores to fire
        ((50.0, 3), (90.0, 2), False, True),  # too few previous scores
        ((50.0, 3), (None, 0), False, True),  # no previous window at all
    ],
)
def test_decline_boundaries(recent, previous, fires, holds):
    w = ScoreWindows("a", recent[1], recent[0], previous[1], previous[0])
    firing, holding = decline_conditions([w], RULES)
    assert bool(firing) is fires
    assert bool(holding) is holds


def test_decline_severity_and_message():
    (c,), _ = decline_conditions([ScoreWindows("a", 3, 35.0, 3, 80.0)], RULES)
    assert c.severity == "critical"  # 20+ points under the threshold
    assert c.numbers == {
        "recent_avg": 35.0,
        "recent_count": 3,
        "previous_avg": 80.0,
        "previous_count": 3,
        "drop": 45.0,
    }
    assert c.message.startswith("average score fell to 35.0 over the last 7 days (3 scores)")


def test_low_runs():
    assert low_run([50, 40, 70, 10], 60) == 2
    assert low_run([60, 10], 60) == 0
    assert low_run([], 60) == 0
    latest = {
        ("two", "p"): [50, 59.9, 80],
        ("one", "p"): [50, 61],
        ("four", None): [1, 2, 3, 4, 90],
        ("holding", "p"): [62, 10, 10],
        ("clear", "p"): [65, 10, 10],
    }
    firing, holding = consecutive_low_conditions(latest, RULES)
    assert {c.learner: c.severity for c in firing} == {"two": "warning", "four": "critical"}
    assert {c.learner for c in holding} == {"one", "holding"}


def _open(condition: AlertCondition, alert_id: int, **overrides) -> dict:
    alert = {
        "id": alert_id,
        "fingerprint": condition.fingerprint,
        "rule": condition.rule,
        "learner": condition.learner,
        "path": condition.path,
        "severity": condition.severity,
        "message": condition.message,
        "numbers": dict(condition.numbers),
    }
    alert.update(overrides)
    return alert


def test_plan_fires_updates_touches_resolves_and_leaves_other_rules_alone():
    same = AlertCondition("r1", "warning", "a", None, "m", {"x": 1})
    changed = AlertCondition("r1", "critical", "b", None, "m2", {"x": 2})
    new = AlertCondition("r1", "warning", "c", None, "m", {"x": 3})
    held = AlertCondition("r1", "warning", "d", None, "m", {"x": 4})
    not_yet = AlertCondition("r1", "warning", "e", None, "m", {"x": 5})
    gone = AlertCondition("r1", "warning", "f", None, "m", {})
    other_rule = AlertCondition("r2", "warning", "a", None, "m", {})
    open_alerts = [
        _open(same, 1),
        _open(changed, 2, severity="warning", numbers={"x": 1}),
        _open(held, 4),
        _open(gone, 6),
        _open(other_rule, 7),
    ]
    evaluation = Evaluation(frozenset({"r1"}), [same, changed, new], [held, not_yet])
    plan = plan_alert_changes(open_alerts, evaluation)
    summary = sorted(
        (c.action, (c.alert or {}).get("id"), c.condition.learner if c.condition else None)
        for c in plan
    )
    assert summary == [
        ("fire", None, "c"),
        ("resolve", 6, None),
        ("touch", 1, "a"),
        ("touch", 4, "d"),
        ("update", 2, "b"),
    ]
    (resolved,) = [c for c in plan if c.action == "resolve"]
    assert resolved.reason == "cleared"
    assert resolved.as_dict()["learner"] == "f"


def test_plan_inhibition_stops_new_alerts_and_resolves_open_ones():
    a = AlertCondition("stag", "warning", "a", "p", "m", {})
    b = AlertCondition("stag", "warning", "b", "p", "m", {})
    plan = plan_alert_changes(
        [_open(a, 1)],
        Evaluation(frozenset({"stag"}), [a, b]),
        inhibited={a.fingerprint: "inhibited by inactivity", b.fingerprint: "inhibited by x"},
    )
    assert [(c.action, c.reason) for c in plan] == [("resolve", "inhibited by inactivity")]


def test_engagement_boundaries():
    now = 100 * DAY
    rules = EngagementRules()

    def one(**kw) -> set[tuple[str, str]]:
        base = {
            "learner": "a",
            "last_activity": now,
            "first_activity": now - 30 * DAY,
            "recent_events": 1,
            "prior_events": 0,
            "active_days": 10,
        }
        base.update(kw)
        ev = evaluate_engagement([LearnerActivity(**base)], rules, now=now)
        return {(c.rule, c.severity) for c in ev.firing} | {(c.rule, "hold") for c in ev.holding}

    assert one() == set()
    assert one(last_activity=now - 2.99 * DAY) == set()
    assert one(last_activity=now - 3 * DAY) == {("inactivity", "warning")}
    assert one(last_activity=now - 7 * DAY) == {("inactivity", "critical")}
    # A drop: at most a quarter of the earlier level, from at least 4 events.
    assert one(recent_events=2, prior_events=8) == {("engagement_drop", "warning")}
    assert one(recent_events=3, prior_events=8) == set()
    assert one(recent_events=0, prior_events=3) == set()
    assert one(recent_events=0, prior_events=0) == set()
    assert one(active_days=3) == {("low_consistency", "info")}
    assert one(active_days=4) == {("low_consistency", "hold")}
    assert one(active_days=5) == set()
    # Newer than the 14-day window: not judged on consistency.
    assert one(active_days=1, first_activity=now - 13 * DAY) == set()


def test_velocity_change_pace_and_stagnation():
    assert change_pct(3, 2) == 50.0
    assert change_pct(1, 4) == -75.0
    assert change_pct(5, 0) is None
    now = 50 * DAY
    # 40% in 10 days: 4 %/day; 60% left: 15 days.
    rate, finish = pace(LearnerPath("a", "p", 40.0, now - 10 * DAY, now), now=now)
    assert rate == 4.0 and finish == now + 15 * DAY
    # Half a day in: counted as one day (no wild extrapolation from a burst).
    rate, _ = pace(LearnerPath("a", "p", 10.0, now - 0.5 * DAY, now), now=now)
    assert rate == 10.0
    assert pace(LearnerPath("a", "p", 0.0, now - 3 * DAY, now), now=now) == (0.0, None)
    items = [
        LearnerPath("a", "p", 30, now - 20 * DAY, now - 4.99 * DAY),
        LearnerPath("b", "p", 30, now - 20 * DAY, now - 5 * DAY),
        LearnerPath("c", "p", 30, now - 20 * DAY, now - 14 * DAY),
    ]
    firing = stagnation(items, VelocityRules(), now=now).firing
    assert [(c.learner, c.severity) for c in firing] == [("b", "warning"), ("c", "critical")]


def test_local_days_and_platform_totals():
    berlin = ZoneInfo("Europe/Berlin")
    start, end = day_bounds(date(2025, 3, 30), berlin)
    assert end - start == 23 * 3600
    start, end = day_bounds(date(2025, 10, 26), berlin)
    assert end - start == 25 * 3600
    total = platform_totals(
        [
            LearnerDay("a", 4, 1, 2, 2, 70.0, 600.0),
            LearnerDay("b", 2, 1, 1, 1, 90.0, 0.0),
            LearnerDay("c", 1, 0, 0, 0, None, 30.0),
        ]
    )
    assert (total.active_learners, total.activities, total.completions, total.assessments) == (
        3,
        7,
        2,
        3,
    )
    assert total.avg_score == 76.67 and total.time_spent_s == 630.0
    assert platform_totals([]).avg_score is None
