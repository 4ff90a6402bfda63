"""Alert persistence: acknowledgement, the change log the alerts stream tails, scoping."""

from __future__ import annotations

import time

import pytest
from test_tasks_fixtures import ago, alerts, ingest, open_store, run_task, score

from jacmon.errors import JacmonError
from jacmon.store import Store
from jacmon.store.sqlite.alerts import (
    acknowledge_alert,
    alert_changes_since,
    expire_acknowledgements,
    get_alert,
    last_alert_change_seq,
    open_alerts,
    unacknowledge_alert,
)

LOW = [
    score("a", ago(2), 40),
    score("a", ago(1), 45),
    score("b", ago(2), 30),
    score("b", ago(1), 35),
]


async def test_change_log_open_alerts_and_learner_scope(tmp_path):
    store = await open_store(tmp_path, LOW)
    try:
        assert await last_alert_change_seq(store.db.reader) == 0
        await run_task(store, "performance")
        changes = await alert_changes_since(store.db.reader, 0)
        assert [c["change"] for c in changes] == ["fired", "fired"]
        assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
        assert await last_alert_change_seq(store.db.reader) == changes[-1]["seq"]
        snapshot = await open_alerts(store.db.reader)
        assert [a["learner"] for a in snapshot] == ["a", "b"]
        first = snapshot[0]
        assert set(first) == {
            "id", "fingerprint", "rule", "severity", "state", "learner", "path", "message",
            "numbers", "first_seen", "last_seen", "resolved_at", "acknowledged", "acknowledgements",
            "silenced",
        }  # fmt: skip
        assert first["state"] == "firing" and first["acknowledged"] is None
        assert changes[0]["alert"] == first
        only_b = await alert_changes_since(store.db.reader, 0, learner="b")
        assert [c["alert"]["learner"] for c in only_b] == ["b"]
        assert [a["learner"] for a in await open_alerts(store.db.reader, learner="b")] == ["b"]
        assert len(await alert_changes_since(store.db.reader, 0, limit=1)) == 1
    finally:
        await store.close()


async def test_acknowledgement_is_a_flag_that_survives_updates_and_restarts(tmp_path):
    store = await open_store(tmp_path, LOW)
    try:
        await run_task(store, "performance")
        (alert_a,) = [a for a in await alerts(store) if a["learner"] == "a"]
        change = await acknowledge_alert(store.db, alert_a["id"], by="maria", note="calling them")
        assert change["change"] == "acknowledged"
        ack = change["alert"]["acknowledged"]
        assert (ack["by"], ack["note"], ack["expires_at"]) == ("maria", "calling them", None)
        assert change["alert"]["state"] == "firing"
        (logged,) = await alert_changes_since(store.db.reader, change["seq"] - 1)
        assert logged == change
        # The condition persists with new numbers: updated, still acknowledged.
        await ingest(store, [score("a", ago(0.5), 20)])
        await run_task(store, "performance")
    finally:
        await store.close()
    store = await Store.open(tmp_path / "jacmon.db")
    try:
        (alert_a,) = [a for a in await alerts(store) if a["learner"] == "a"]
        assert alert_a["numbers"]["low_run"] == 3
        assert alert_a["acknowledged"]["by"] == "maria"
        assert alert_a["state"] == "firing"
    finally:
        await store.close()


async def test_acknowledging_unknown_or_resolved_alerts_fails_clearly(tmp_path):
    store = await open_store(tmp_path, LOW)
    try:
        with pytest.raises(JacmonError, match="alert 999 does not exist"):
            await acknowledge_alert(store.db, 999, by="x")
        await run_task(store, "performance")
        await ingest(store, [score("a", ago(0.5), 90)])
        await run_task(store, "performance")
        (resolved,) = await alerts(store, state="resolved")
        with pytest.raises(JacmonError, match=f"alert {resolved['id']} is resolved"):
            await acknowledge_alert(store.db, resolved["id"], by="x")
        with pytest.raises(JacmonError, match="not in the future"):
            await acknowledge_alert(store.db, 2, by="x", expires_at=1.0)
        # Nothing was logged for the refused acknowledgements.
        kinds = [c["change"] for c in await alert_changes_since(store.db.reader, 0)]
        assert "acknowledged" not in kinds
    finally:
        await store.close()


async def first_alert_of(store, learner: str) -> dict:
    return next(a for a in await alerts(store) if a["learner"] == learner)


async def test_unacknowledging_withdraws_the_ack_and_keeps_the_history(tmp_path):
    store = await open_store(tmp_path, LOW)
    try:
        await run_task(store, "performance")
        alert_id = (await first_alert_of(store, "a"))["id"]
        with pytest.raises(JacmonError, match=f"alert {alert_id} is not acknowledged"):
            await unacknowledge_alert(store.db, alert_id, by="x")
        await acknowledge_alert(store.db, alert_id, by="ann", note="called")
        change = await unacknowledge_alert(store.db, alert_id, by="bob", note="wrong one")
        assert change["change"] == "unacknowledged"
        assert change["alert"]["acknowledged"] is None
        history = change["alert"]["acknowledgements"]
        assert [(e["action"], e["by"], e["note"]) for e in history] == [
            ("acknowledged", "ann", "called"),
            ("unacknowledged", "bob", "wrong one"),
        ]
        with pytest.raises(JacmonError, match="alert 999 does not exist"):
            await unacknowledge_alert(store.db, 999, by="x")
        # Scope: another learner's alert is answered as a missing one.
        with pytest.raises(JacmonError, match="does not exist"):
            await unacknowledge_alert(store.db, alert_id, by="x", learner="b")
        # Once resolved, there is nothing to withdraw.
        await acknowledge_alert(store.db, alert_id, by="ann")
        await ingest(store, [score("a", ago(0.5), 90)])
        await run_task(store, "performance")
        with pytest.raises(JacmonError, match="is resolved"):
            await unacknowledge_alert(store.db, alert_id, by="x")
    finally:
        await store.close()


async def test_an_expired_acknowledgement_says_so_in_the_history(tmp_path):
    store = await open_store(tmp_path, LOW)
    try:
        await run_task(store, "performance")
        alert_id = (await first_alert_of(store, "a"))["id"]
        now = time.time()
        await acknowledge_alert(store.db, alert_id, by="ann", expires_at=now + 60, now=now)
        async with store.db.transaction() as conn:
            await expire_acknowledgements(conn, now=now + 61)
        stored = await get_alert(store.db.reader, alert_id)
        assert stored["acknowledged"] is None
        assert [e["action"] for e in stored["acknowledgements"]] == ["acknowledged", "expired"]
    finally:
        await store.close()
