"""The alert_cleanup task: retention of resolved alerts, expired acks, events, run records."""

from __future__ import annotations

from test_tasks_fixtures import NOW, ago, alerts, ev, open_store, run_task

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.store.sqlite.alerts import (
    acknowledge_alert,
    alert_changes_since,
    apply_alert_changes,
    get_alert,
    last_alert_change_seq,
)


def cond(rule: str, learner: str) -> AlertCondition:
    return AlertCondition(rule, "warning", learner, None, f"{rule} for {learner}", {"n": 1})


async def _fire(store, condition: AlertCondition, at: float) -> dict:
    async with store.db.transaction() as conn:
        (change,) = await apply_alert_changes(conn, [PlannedChange("fire", condition)], now=at)
    return change["alert"]


async def _resolve(store, alert: dict, at: float) -> None:
    async with store.db.transaction() as conn:
        await apply_alert_changes(conn, [PlannedChange("resolve", None, alert, "cleared")], now=at)


async def test_cleanup_retires_old_resolved_alerts_and_expired_acks(tmp_path):
    store = await open_store(tmp_path)
    try:
        old = await _fire(store, cond("inactivity", "old"), ago(40).timestamp())
        await _resolve(store, old, ago(35).timestamp())
        recent = await _fire(store, cond("inactivity", "recent"), ago(20).timestamp())
        await _resolve(store, recent, ago(10).timestamp())
        lapsing = await _fire(store, cond("inactivity", "lapsing"), ago(5).timestamp())
        await acknowledge_alert(
            store.db, lapsing["id"], by="ops", expires_at=ago(1).timestamp(), now=ago(2).timestamp()
        )
        lasting = await _fire(store, cond("inactivity", "lasting"), ago(5).timestamp())
        await acknowledge_alert(
            store.db,
            lasting["id"],
            by="ops",
            expires_at=ago(-1).timestamp(),
            now=ago(2).timestamp(),
        )
        seq = await last_alert_change_seq(store.db.reader)

        dry = await run_task(store, "alert_cleanup", dry_run=True)
        assert dry.outcome_detail.summary["alerts_retired"] == 1
        assert await get_alert(store.db.reader, old["id"]) is not None

        result = await run_task(store, "alert_cleanup")
        assert result.outcome_detail.summary["alerts_retired"] == 1
        assert result.outcome_detail.summary["acks_expired"] == 1
        (planned,) = result.outcome_detail.alerts
        assert planned == {
            "action": "update",
            "alert_id": lapsing["id"],
            "rule": "inactivity",
            "severity": lapsing["severity"],
            "learner": "lapsing",
            "path": lapsing["path"],
            "message": lapsing["message"],
            "numbers": lapsing["numbers"],
            "reason": "acknowledgement expired",
        }
        assert await get_alert(store.db.reader, old["id"]) is None
        assert (await get_alert(store.db.reader, recent["id"]))["state"] == "resolved"
        assert (await get_alert(store.db.reader, lapsing["id"]))["acknowledged"] is None
        assert (await get_alert(store.db.reader, lasting["id"]))["acknowledged"]["by"] == "ops"
        (change,) = await alert_changes_since(store.db.reader, seq)
        assert change["change"] == "updated" and change["alert"]["id"] == lapsing["id"]
        assert {a["learner"] for a in await alerts(store)} == {"recent", "lapsing", "lasting"}
    finally:
        await store.close()


async def test_event_retention_applies_only_when_configured(tmp_path):
    events = [ev("activity", "a", ago(d)) for d in (100, 50, 5)]
    store = await open_store(tmp_path, events)
    try:
        await run_task(store, "alert_cleanup")
        async with store.db.reader.execute("SELECT count(*) FROM events") as cursor:
            assert (await cursor.fetchone())[0] == 3
        result = await run_task(
            store, "alert_cleanup", tasks={"alert_cleanup": {"event_retention_days": 60}}
        )
        assert result.outcome_detail.summary["events_deleted"] == 1
        async with store.db.reader.execute("SELECT min(ts) FROM events") as cursor:
            assert (await cursor.fetchone())[0] == ago(50).timestamp()
        assert NOW.timestamp() - ago(50).timestamp() < 60 * 86400
    finally:
        await store.close()
