"""Store methods' refusals and rules, the same on each backend (the ``store`` fixture):
what tests/store/test_store_same_answers.py cannot compare because it follows one
successful path."""

from __future__ import annotations

import pytest

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.errors import StoreError
from jacmon.store import Store
from jacmon.store.types import AlertError, SilenceError

NOW = 1772452800.0  # 2026-03-02T12:00:00Z


def condition(learner: str, rule: str = "inactivity", path: str | None = None) -> AlertCondition:
    return AlertCondition(rule, "warning", learner, path, f"{learner} is idle", {"days": 9.5})


async def fire(store: Store, *learners: str) -> list[dict]:
    async with store.transaction() as tx:
        return await tx.apply_alert_changes(
            [PlannedChange("fire", condition(who)) for who in learners], now=NOW
        )


async def test_alert_actions_are_scoped_and_checked(store):
    (first, second) = [c["alert"] for c in await fire(store, "u1", "u2")]
    assert [first["id"], second["id"]] == [1, 2]
    # Another learner's alert is answered exactly as a missing one.
    with pytest.raises(AlertError, match="alert 1 does not exist"):
        await store.acknowledge_alert(1, by="u2", learner="u2", now=NOW)
    with pytest.raises(AlertError, match="alert 9 does not exist"):
        await store.acknowledge_alert(9, by="ann", now=NOW)
    with pytest.raises(AlertError, match="needs a name"):
        await store.acknowledge_alert(1, by="", now=NOW)
    with pytest.raises(AlertError, match="is not in the future"):
        await store.acknowledge_alert(1, by="ann", expires_at=NOW - 1, now=NOW)
    with pytest.raises(AlertError, match="is not acknowledged"):
        await store.unacknowledge_alert(1, by="ann", now=NOW)
    change = await store.acknowledge_alert(1, by="u1", learner="u1", note="mine", now=NOW)
    assert change["change"] == "acknowledged"
    assert change["alert"]["acknowledged"] == {
        "by": "u1", "at": NOW, "note": "mine", "expires_at": None,
    }  # fmt: skip
    # Resolving keeps the acknowledgement as history; a resolved alert takes no action.
    async with store.transaction() as tx:
        (resolved,) = await tx.apply_alert_changes(
            [PlannedChange("resolve", None, alert=first, reason="cleared")], now=NOW + 1
        )
    assert resolved["alert"]["state"] == "resolved"
    assert resolved["alert"]["numbers"] == {"days": 9.5, "resolved_because": "cleared"}
    with pytest.raises(AlertError, match="alert 1 is resolved; only a firing alert"):
        await store.acknowledge_alert(1, by="ann", now=NOW + 2)
    # The same condition fires anew as a new alert.
    (again,) = await fire(store, "u1")
    assert again["alert"]["id"] == 3
    assert [c["seq"] for c in await store.alert_changes_since(0)] == [1, 2, 3, 4, 5]
    assert await store.alert_totals() == (3, {"inactivity": 2})


async def test_a_dry_run_transaction_reads_but_cannot_write(store):
    await fire(store, "u1")
    async with store.transaction(write=False) as view:
        assert [
            a["learner"] for a in await view.open_alerts_of_rules(frozenset({"inactivity"}))
        ] == ["u1"]
        assert await view.firing_rule_per_learner(["inactivity"]) == {"u1": "inactivity"}
        with pytest.raises(RuntimeError, match="read-only"):
            await view.apply_alert_changes([PlannedChange("fire", condition("u2"))], now=NOW)
        with pytest.raises(RuntimeError, match="read-only"):
            await view.replace_velocity([], [])
    assert len(await store.open_alerts()) == 1


async def test_a_failing_task_transaction_writes_nothing(store):
    with pytest.raises(ZeroDivisionError):
        async with store.transaction() as tx:
            await tx.apply_alert_changes([PlannedChange("fire", condition("u1"))], now=NOW)
            1 / 0  # noqa: B018 (the task fails after writing)
    assert await store.open_alerts() == []
    assert await store.last_alert_change_seq() == 0
    # The change log's numbers were given back: the next change is 1.
    (change,) = await fire(store, "u2")
    assert change["seq"] == 1


async def test_silence_refusals(store):
    with pytest.raises(SilenceError, match="at least one matcher"):
        await store.add_silence(by="ann", duration_s=60)
    with pytest.raises(SilenceError, match="needs a name"):
        await store.add_silence(by="", rule="inactivity", duration_s=60)
    with pytest.raises(SilenceError, match="silence 5 does not exist"):
        await store.expire_silence(5, by="ann")
    silence, _ = await store.add_silence(by="ann", rule="inactivity", duration_s=60)
    assert silence["state"] == "active"
    await store.expire_silence(silence["id"], by="ann")
    with pytest.raises(SilenceError, match="has already expired"):
        await store.expire_silence(silence["id"], by="ann")
    assert await store.list_silences() == []
    assert len(await store.list_silences(include_expired=True)) == 1


async def test_a_new_alert_under_an_active_silence_is_marked_silenced(store):
    silence, changes = await store.add_silence(by="ann", learner="u1", duration_s=3600)
    assert changes == []  # nothing firing yet
    (fired,) = await fire(store, "u1")
    # SQLite's json_object prints 15 significant digits: "until" is the end to ~1e-5 s.
    assert fired["alert"]["silenced"] == {
        "id": silence["id"], "until": pytest.approx(silence["ends_at"], abs=1e-3), "by": "ann",
        "note": None,
    }  # fmt: skip
    _, changes = await store.expire_silence(silence["id"], by="ann")
    assert [(c["change"], c["alert"]["silenced"]) for c in changes] == [("updated", None)]


async def test_a_second_run_of_a_task_is_skipped_and_abandoned_runs_are_found(store):
    run_id, started = await store.begin_run(
        "performance", trigger="manual", scheduled=None, started=NOW, live_run_ids=set()
    )
    assert started
    other, started_too = await store.begin_run(
        "performance", trigger="schedule", scheduled=NOW, started=NOW, live_run_ids={run_id}
    )
    assert not started_too
    (skipped,) = [r for r in await store.recent_runs(task="performance") if r["id"] == other]
    assert (skipped["outcome"], skipped["summary"]) == ("skipped", {"overlapped_run": run_id})
    assert await store.abandon_stale_runs(now=NOW, live_run_ids={run_id}) == []
    await store.finish_run(run_id, outcome="success", finished=NOW + 1, duration_s=1.0)
    missed = await store.record_run(
        "daily_analytics", outcome="missed", trigger="schedule", scheduled=NOW - 60, at=NOW
    )
    assert (await store.last_scheduled()) == {"daily_analytics": NOW - 60, "performance": NOW}
    assert (await store.last_runs())["performance"]["outcome"] == "success"
    assert missed > other
    assert await store.run_totals() == {
        "performance": {"success": 1, "skipped": 1},
        "daily_analytics": {"missed": 1},
    }


async def test_a_readonly_store_refuses_every_write(store_location):
    await (await Store.open(store_location)).close()  # create and migrate it
    readonly = await Store.open(store_location, readonly=True)
    try:
        record = {"id": "t", "role": "admin", "learner": None, "can_ack": True, "name": None,
                  "created": NOW}  # fmt: skip
        with pytest.raises(StoreError):
            await readonly.insert_token(record, "hash")
        with pytest.raises(StoreError):
            await readonly.add_silence(by="ann", rule="x", duration_s=1)
        assert await readonly.list_tokens() == []
        assert await readonly.open_alerts() == []
    finally:
        await readonly.close()
