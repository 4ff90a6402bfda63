"""The engagement task on hand-made activity: inactivity, engagement drop, low consistency."""

from __future__ import annotations

from datetime import UTC, datetime

from test_tasks_fixtures import NOW, ago, alerts, enrol, ev, ingest, open_store, progress, run_task


def _rules_by_learner(found: list[dict]) -> dict[str, dict[str, dict]]:
    out: dict[str, dict[str, dict]] = {}
    for a in found:
        if a["state"] == "firing":
            out.setdefault(a["learner"], {})[a["rule"]] = a
    return out


async def test_engagement_rules_on_hand_made_activity(tmp_path):
    events = [
        # w: last active 4 days ago, after activity 20 days ago.
        enrol("w", "p1", ago(20)),
        progress("w", "p1", "m1", ago(4), 10),
        # c: last active 10 days ago.
        enrol("c", "p1", ago(30)),
        progress("c", "p1", "m1", ago(10), 10),
        # ok: active on 5 local days, the last one 12 hours ago.
        enrol("ok", "p1", ago(20)),
        *(
            progress("ok", "p1", "m1", ago(d), 5 * i)
            for i, d in enumerate((5.5, 3.5, 2.5, 1.5, 0.5))
        ),
        # done: finished its path; idle but not monitored.
        enrol("done", "p1", ago(20)),
        ev("path.completed", "done", ago(10), path="p1"),
        # new: enrolled 2 days ago: too new to judge on consistency, not idle.
        enrol("new", "p1", ago(2)),
        # three: active on 3 of the last 14 days, the last one 12 hours ago.
        enrol("three", "p1", ago(20)),
        *(progress("three", "p1", "m1", ago(d), 5 * i) for i, d in enumerate((2.5, 1.5, 0.5))),
    ]
    store = await open_store(tmp_path, events)
    try:
        result = await run_task(store, "engagement")
        assert result.outcome_detail.summary["learners_monitored"] == 5
        found = _rules_by_learner(await alerts(store))
        assert set(found) == {"w", "c", "three"}
        # One condition, one alert: w's idleness is inactivity, not also an engagement drop.
        assert set(found["w"]) == {"inactivity", "low_consistency"}
        assert found["w"]["inactivity"]["severity"] == "warning"
        assert found["w"]["inactivity"]["numbers"]["idle_days"] == 4.0
        assert found["w"]["low_consistency"]["numbers"]["active_days"] == 1
        # c: idle 10 days (critical); nothing in the 3 days before the last 3: no drop.
        assert set(found["c"]) == {"inactivity", "low_consistency"}
        assert found["c"]["inactivity"]["severity"] == "critical"
        assert found["c"]["inactivity"]["numbers"]["idle_days"] == 10.0
        assert set(found["three"]) == {"low_consistency"}
        assert found["three"]["low_consistency"]["numbers"]["active_days"] == 3

        # A fourth active day: not low any more (4 is not < 4), but below the clear 5: holds.
        await ingest(store, [progress("three", "p1", "m1", ago(3.5), 1)])
        await run_task(store, "engagement")
        held = _rules_by_learner(await alerts(store))["three"]["low_consistency"]
        assert held["id"] == found["three"]["low_consistency"]["id"]
        assert held["numbers"]["active_days"] == 4
        # A fifth: cleared.
        await ingest(store, [progress("three", "p1", "m1", ago(5.5), 1)])
        await run_task(store, "engagement")
        assert "three" not in _rules_by_learner(await alerts(store))

        # w comes back: inactivity resolves; c finishing stops its monitoring.
        await ingest(
            store,
            [
                progress("w", "p1", "m1", ago(0.1), 20),
                ev("path.completed", "c", ago(0.1), path="p1"),
            ],
        )
        await run_task(store, "engagement")
        now_firing = _rules_by_learner(await alerts(store))
        assert set(now_firing) == {"w"}
        assert set(now_firing["w"]) == {"low_consistency"}
        resolved = [a for a in await alerts(store, state="resolved") if a["learner"] == "c"]
        assert {a["rule"] for a in resolved} == {"inactivity", "low_consistency"}
    finally:
        await store.close()


async def test_active_days_are_local_calendar_days(tmp_path):
    # 23:30 and 00:30 UTC are two UTC days but one Berlin day (00:30 and 01:30 CET).
    events = [
        enrol("z", "p1", ago(20)),
        progress("z", "p1", "m1", datetime(2026, 2, 26, 10, 0, tzinfo=UTC), 5),
        progress("z", "p1", "m1", datetime(2026, 2, 27, 23, 30, tzinfo=UTC), 10),
        progress("z", "p1", "m1", datetime(2026, 2, 28, 0, 30, tzinfo=UTC), 15),
        progress("z", "p1", "m1", NOW, 20),
    ]
    store = await open_store(tmp_path, events)
    try:
        # UTC: the 26th, 27th, 28th and 2nd: 4 active days, not fewer than 4.
        await run_task(store, "engagement")
        assert await alerts(store, rule="low_consistency") == []
        tasks = {"engagement": {"min_active_days": 5}}
        await run_task(store, "engagement", tasks=tasks)
        (utc,) = await alerts(store, rule="low_consistency")
        assert utc["numbers"]["active_days"] == 4
    finally:
        await store.close()
    store = await open_store(tmp_path / "berlin", events)
    try:
        # Berlin: the 26th, 28th and 2nd: 3 active days.
        await run_task(store, "engagement", tasks={"timezone": "Europe/Berlin"})
        (berlin,) = await alerts(store, rule="low_consistency")
        assert berlin["numbers"]["active_days"] == 3
    finally:
        await store.close()
