"""Which path an alert names, and one condition raising one alert (issue 11).

``consecutive_low_scores`` names the path scored on; ``inactivity`` and
``engagement_drop`` the unfinished path last active on; an idle learner gets
``inactivity`` only, and an alert raised before its rule named paths is replaced.
"""

from __future__ import annotations

from datetime import datetime

from test_tasks_fixtures import ago, alerts, enrol, ev, open_store, progress, run_task

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.store.sqlite.alerts import apply_alert_changes


def scored(learner: str, path: str, when: datetime, percent: float) -> dict:
    """An assessment attempt on ``path`` scoring ``percent``."""
    return ev(
        "assessment.attempted",
        learner,
        when,
        path=path,
        item="quiz",
        score={"raw": percent, "max": 100},
    )


def firing(found: list[dict]) -> list[dict]:
    return [a for a in found if a["state"] == "firing"]


async def test_low_scores_alert_names_the_path_they_were_scored_on(tmp_path):
    events = [
        scored("ada", "p1", ago(3), 40),
        scored("ada", "p1", ago(2), 35),
        scored("ada", "p2", ago(1), 95),
    ]
    store = await open_store(tmp_path, events)
    try:
        await run_task(store, "performance")
        low = firing(await alerts(store, rule="consecutive_low_scores"))
        assert [(a["learner"], a["path"]) for a in low] == [("ada", "p1")]
        assert low[0]["message"] == "the latest 2 scores on p1 are below 60 (35, 40)"
    finally:
        await store.close()


async def test_an_old_pathless_alert_is_replaced_by_the_per_path_one(tmp_path):
    events = [scored("ada", "p1", ago(2), 40), scored("ada", "p1", ago(1), 35)]
    store = await open_store(tmp_path, events)
    try:
        # What the performance task raised before alerts named a path.
        old = AlertCondition("consecutive_low_scores", "warning", "ada", None, "old", {})
        async with store.db.transaction() as conn:
            await apply_alert_changes(conn, [PlannedChange("fire", old)], now=ago(1).timestamp())
        await run_task(store, "performance")
        found = await alerts(store, rule="consecutive_low_scores")
        assert [(a["state"], a["path"]) for a in firing(found)] == [("firing", "p1")]
        (resolved,) = [a for a in found if a["state"] == "resolved"]
        assert resolved["path"] is None
        assert resolved["numbers"]["resolved_because"] == "replaced by the alert on path p1"
    finally:
        await store.close()


async def test_an_idle_learner_gets_one_inactivity_alert_with_its_path_and_date(tmp_path):
    events = [
        enrol("ada", "p1", ago(20)),
        # Busy 4 to 6 days ago (a level to drop from), then nothing: idle, not a "drop".
        *(progress("ada", "p1", "m1", ago(d), 10 * i) for i, d in enumerate((5.5, 5, 4.5, 4))),
    ]
    store = await open_store(tmp_path, events)
    try:
        result = await run_task(store, "engagement")
        found = firing(await alerts(store))
        assert [(a["rule"], a["path"]) for a in found if a["rule"] != "low_consistency"] == [
            ("inactivity", "p1")
        ]
        inactive = next(a for a in found if a["rule"] == "inactivity")
        assert inactive["message"] == (
            "no activity for 4.0 days, since 2026-02-26 12:00 UTC (enrolled on p1, not finished)"
        )
        assert result.outcome_detail.summary["alerts"]["fire"] == len(found)
    finally:
        await store.close()


async def test_an_active_learner_whose_activity_fell_gets_engagement_drop_only(tmp_path):
    events = [
        enrol("ada", "p1", ago(20)),
        enrol("ada", "p2", ago(20)),
        *(progress("ada", "p2", "m1", ago(d), 5 * i) for i, d in enumerate((5.5, 5, 4.5, 4))),
        *(progress("ada", "p1", "m1", ago(d), 5 * i) for i, d in enumerate((5.2, 4.8, 4.2, 3.8))),
        # Still active 12 hours ago on p1, but once where there were 8 events before.
        progress("ada", "p1", "m1", ago(0.5), 50),
    ]
    store = await open_store(tmp_path, events)
    try:
        await run_task(store, "engagement")
        # low_consistency (few active days) is a different condition and may also fire.
        found = [a for a in firing(await alerts(store)) if a["rule"] != "low_consistency"]
        assert [a["rule"] for a in found] == ["engagement_drop"]
        (drop,) = found
        assert drop["path"] == "p1"
        assert drop["numbers"] == {"recent_events": 1, "prior_events": 8, "fall_pct": 88}
        assert drop["message"] == (
            "activity fell 88% below this learner's own level on p1: "
            "1 events in the last 3 days after 8 in the 3 days before"
        )
    finally:
        await store.close()
