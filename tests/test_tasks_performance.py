"""The performance task on hand-computed scores: decline and consecutive-low alerts."""

from __future__ import annotations

from test_tasks_fixtures import ago, alerts, ingest, open_store, run_task, score

from jacmon.store.sqlite.alerts import alert_changes_since


def _by_learner(found: list[dict]) -> dict[str, dict]:
    return {a["learner"]: a for a in found}


async def test_decline_and_consecutive_low_fire_update_hold_and_resolve(tmp_path):
    events = [
        # a: previous window 80, 75, 70 (avg 75); recent 50, 55, 50 (avg 51.7): decline of 23.3.
        score("a", ago(12), 80),
        score("a", ago(10), 75),
        score("a", ago(9), 70),
        score("a", ago(3), 50),
        score("a", ago(2), 55),
        score("a", ago(1), 50),
        # b: 62 x3 then 58, 58, 61: avg 59 but only 3 points lower; newest 61 is not low.
        *(score("b", ago(d), 62) for d in (12, 11, 10)),
        score("b", ago(3), 58),
        score("b", ago(2), 58),
        score("b", ago(1), 61),
        # c: only 2 recent scores (no decline judged) but both low: consecutive low.
        *(score("c", ago(d), 90) for d in (12, 11, 10)),
        score("c", ago(2), 40),
        score("c", ago(1), 40),
    ]
    store = await open_store(tmp_path, events)
    try:
        result = await run_task(store, "performance")
        assert result.outcome_detail.summary["alerts"]["fire"] == 3
        decline = _by_learner(await alerts(store, rule="performance_decline"))
        low = _by_learner(await alerts(store, rule="consecutive_low_scores"))
        assert set(decline) == {"a"}
        assert decline["a"]["numbers"]["recent_avg"] == 51.7
        assert decline["a"]["numbers"]["previous_avg"] == 75.0
        assert decline["a"]["numbers"]["drop"] == 23.3
        assert decline["a"]["severity"] == "warning"
        assert "51.7" in decline["a"]["message"] and "75.0" in decline["a"]["message"]
        assert set(low) == {"a", "c"}
        assert low["a"]["numbers"]["low_run"] == 3
        assert low["c"]["numbers"] == {"low_run": 2, "latest": [40.0, 40.0]}

        # Same condition, same numbers: nothing new, no change logged.
        seq = (await alert_changes_since(store.db.reader, 0))[-1]["seq"]
        again = await run_task(store, "performance")
        assert again.outcome_detail.alerts == []
        assert await alert_changes_since(store.db.reader, seq) == []

        # A fourth low score: the same alerts update (numbers, severity), no new ones.
        await ingest(store, [score("a", ago(0.5), 45)])
        await run_task(store, "performance")
        changes = await alert_changes_since(store.db.reader, seq)
        assert sorted(c["change"] for c in changes) == ["updated", "updated"]
        low_a = _by_learner(await alerts(store, rule="consecutive_low_scores"))["a"]
        assert low_a["id"] == low["a"]["id"]
        assert low_a["severity"] == "critical" and low_a["numbers"]["low_run"] == 4
        decline_a = _by_learner(await alerts(store, rule="performance_decline"))["a"]
        assert decline_a["id"] == decline["a"]["id"] and decline_a["numbers"]["recent_avg"] == 50.0

        # Three 78s: recent avg (50+55+50+45+78*3)/7 = 62.0: above 60, below the clear 65.
        # The decline alert holds (still firing); the latest score 78 clears consecutive-low.
        await ingest(store, [score("a", ago(d), 78) for d in (0.4, 0.3, 0.2)])
        await run_task(store, "performance")
        decline_a = _by_learner(await alerts(store, rule="performance_decline"))["a"]
        assert decline_a["state"] == "firing" and decline_a["numbers"]["recent_avg"] == 62.0
        low_a = _by_learner(await alerts(store, rule="consecutive_low_scores"))["a"]
        assert low_a["state"] == "resolved"

        # Two 80s: avg (434 + 160) / 9 = 66.0 >= 65: the decline resolves.
        await ingest(store, [score("a", ago(d), 80) for d in (0.15, 0.1)])
        await run_task(store, "performance")
        decline_a = _by_learner(await alerts(store, rule="performance_decline"))["a"]
        assert decline_a["state"] == "resolved" and decline_a["resolved_at"] is not None

        # Low scores again: a new consecutive-low alert, not the resolved one reopened.
        await ingest(store, [score("a", ago(d), 30) for d in (0.05, 0.01)])
        await run_task(store, "performance")
        lows = [
            a for a in await alerts(store, rule="consecutive_low_scores") if a["learner"] == "a"
        ]
        assert [a["state"] for a in lows] == ["resolved", "firing"]
        assert lows[1]["id"] != lows[0]["id"]
        assert lows[1]["fingerprint"] == lows[0]["fingerprint"]
    finally:
        await store.close()


async def test_thresholds_come_from_config(tmp_path):
    events = [score("d", ago(d), 70) for d in (12, 11, 10)]
    events += [score("d", ago(d), 62) for d in (3, 2, 1)]
    store = await open_store(tmp_path, events)
    try:
        await run_task(store, "performance")
        assert await alerts(store) == []
        # A higher decline threshold and a higher "low" line make the same scores alert.
        tasks = {"performance": {"decline_threshold": 65, "low_score": 63}}
        await run_task(store, "performance", tasks=tasks)
        assert {a["rule"] for a in await alerts(store)} == {
            "performance_decline",
            "consecutive_low_scores",
        }
    finally:
        await store.close()
