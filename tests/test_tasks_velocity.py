"""The velocity task: completions per week per path, pace rows, stagnation and its inhibition."""

from __future__ import annotations

from test_tasks_fixtures import NOW, ago, alerts, enrol, ev, ingest, open_store, progress, run_task

from jacmon.monitoring.scheduler import Scheduler


def done(learner: str, path: str, module: str, days_ago: float) -> dict:
    return ev("module.completed", learner, ago(days_ago), path=path, module=module)


async def test_weekly_completions_pace_and_stagnation(tmp_path):
    events = [
        # p1: 3 completions in the last 7 days, 2 in the 7 before (+50%); one older.
        done("x", "p1", "m1", 1),
        done("y", "p1", "m1", 2),
        done("z", "p1", "m1", 6),
        done("x", "p1", "m2", 8),
        done("y", "p1", "m2", 13),
        done("z", "p1", "m2", 20),
        # p2: 1 this week, none the week before: no percentage.
        done("x", "p2", "m1", 3),
        # s: in progress on p1, nothing there for 6 days, but active on p2 12 hours ago.
        enrol("s", "p1", ago(10)),
        progress("s", "p1", "m1", ago(6), 40),
        enrol("s", "p2", ago(1)),
        progress("s", "p2", "m1", ago(0.5), 10),
    ]
    store = await open_store(tmp_path, events)
    published = []
    try:
        scheduler = Scheduler(store, {}, lambda: NOW, on_velocity=published.append)
        result = await scheduler.run_once("velocity")
        assert result.outcome == "success", result.error
        expected = {
            "p1": {"this_week": 3, "last_week": 2, "change_pct": 50.0},
            "p2": {"this_week": 1, "last_week": 0, "change_pct": None},
        }
        assert result.outcome_detail.velocity == expected
        assert published == [expected]
        async with store.db.reader.execute(
            "SELECT path, this_week, last_week, change_pct FROM path_velocity ORDER BY path"
        ) as cursor:
            assert [tuple(r) for r in await cursor.fetchall()] == [
                ("p1", 3, 2, 50.0),
                ("p2", 1, 0, None),
            ]

        # Pace: percent / days since enrolment; finish = now + remaining / pace days.
        async with store.db.reader.execute(
            "SELECT p.percent, l.pct_per_day, l.projected_finish FROM learner_pace l"
            " JOIN path_progress p USING (learner, path) WHERE l.learner = 's' AND l.path = 'p1'"
        ) as cursor:
            percent, rate, finish = await cursor.fetchone()
        assert percent > 0
        assert rate == round(percent / 10.0, 3)
        assert abs(finish - (NOW.timestamp() + (100 - percent) / rate * 86400)) < 1

        # z (last completion on p1 6 days ago) is stagnant too.
        stuck_by = {a["learner"]: a for a in await alerts(store, rule="completion_stagnation")}
        assert set(stuck_by) == {"s", "z"}
        stuck = stuck_by["s"]
        assert (stuck["path"], stuck["severity"]) == ("p1", "warning")
        assert stuck["numbers"]["idle_days"] == 6.0
        assert "p1" in stuck["message"] and "6.0 days" in stuck["message"]

        # Progress on p1 clears it.
        await ingest(store, [progress("s", "p1", "m1", ago(0.2), 60)])
        await run_task(store, "velocity")
        stuck_by = {a["learner"]: a for a in await alerts(store, rule="completion_stagnation")}
        assert stuck_by["s"]["state"] == "resolved"
        assert stuck_by["z"]["state"] == "firing"
    finally:
        await store.close()


async def test_learner_with_engagement_alert_gets_no_stagnation_alert(tmp_path):
    events = [
        # t: nothing at all for 6 days: inactive (engagement) and stagnant (velocity).
        enrol("t", "p1", ago(20)),
        progress("t", "p1", "m1", ago(6), 30),
        # u: stagnant on p1 but active on p2 yesterday: a stagnation alert only.
        enrol("u", "p1", ago(20)),
        progress("u", "p1", "m1", ago(6), 30),
        enrol("u", "p2", ago(2)),
        progress("u", "p2", "m1", ago(1), 10),
    ]
    store = await open_store(tmp_path, events)
    try:
        await run_task(store, "engagement")
        assert {a["learner"] for a in await alerts(store, rule="inactivity")} == {"t"}
        result = await run_task(store, "velocity")
        assert result.outcome_detail.summary["inhibited"] == 1
        (stuck,) = await alerts(store, rule="completion_stagnation")
        assert stuck["learner"] == "u"

        # Three days later u is idle too: the engagement alert inhibits the open stagnation one.
        later = ago(-3)
        await run_task(store, "engagement", later)
        await run_task(store, "velocity", later)
        (stuck,) = await alerts(store, rule="completion_stagnation")
        assert stuck["state"] == "resolved"
        assert stuck["numbers"]["resolved_because"].startswith("inhibited by ")
    finally:
        await store.close()
