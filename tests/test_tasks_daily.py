"""The daily_analytics task on a hand-computed local date (a DST day in Berlin)."""

from __future__ import annotations

from datetime import UTC, datetime

from test_tasks_fixtures import ev, open_store, run_task, score

BERLIN = {"timezone": "Europe/Berlin"}
# 2026-03-29 is 23 hours long in Berlin: 2026-03-28 23:00 UTC to 2026-03-29 22:00 UTC.
NOW = datetime(2026, 3, 30, 0, 0, tzinfo=UTC)  # 02:00 CEST on the 30th


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, tzinfo=UTC)


EVENTS = [
    # a on the 29th (local): a lesson, two scores (80, 60), a 600 s session.
    ev("lesson.completed", "a", utc(28, 23, 30), path="p", module="m", item="l1"),
    score("a", utc(29, 10), 80),
    score("a", utc(29, 10, 5), 60),
    ev("session.ended", "a", utc(29, 21, 59), duration_s=600),
    # Outside the 29th (local): 23:30 on the 28th and 00:30 on the 30th.
    ev("activity", "a", utc(28, 22, 30)),
    ev("activity", "a", utc(29, 22, 30)),
    # b: a module completed and a 90.
    ev("module.completed", "b", utc(29, 12), path="p", module="m"),
    score("b", utc(29, 12, 5), 90),
]


async def _rows(store, sql):
    async with store.db.reader.execute(sql) as cursor:
        return [tuple(r) for r in await cursor.fetchall()]


async def test_snapshot_per_learner_and_platform_totals(tmp_path):
    store = await open_store(tmp_path, EVENTS)
    try:
        result = await run_task(store, "daily_analytics", NOW, tasks=BERLIN)
        # Yesterday, plus the three days before it that had no snapshot yet.
        assert result.outcome_detail.summary["dates"] == [
            "2026-03-26",
            "2026-03-27",
            "2026-03-28",
            "2026-03-29",
        ]
        learners = await _rows(
            store,
            "SELECT learner, activities, completions, assessments, scored, avg_score,"
            " time_spent_s FROM daily_learner_stats WHERE day = '2026-03-29' ORDER BY learner",
        )
        assert learners == [("a", 4, 1, 2, 2, 70.0, 600.0), ("b", 2, 1, 1, 1, 90.0, 0.0)]
        platform = await _rows(
            store,
            "SELECT active_learners, activities, completions, assessments, avg_score,"
            " time_spent_s FROM daily_platform_stats WHERE day = '2026-03-29'",
        )
        # avg score weighted by scores: (80 + 60 + 90) / 3 = 76.67.
        assert platform == [(2, 6, 2, 3, 76.67, 600.0)]
        # The 28th (local) has a's 23:30 activity only.
        assert await _rows(
            store, "SELECT learner, activities FROM daily_learner_stats WHERE day = '2026-03-28'"
        ) == [("a", 1)]

        # Idempotent: a second run for the same date leaves the same rows, no duplicates.
        before = await _rows(store, "SELECT * FROM daily_learner_stats ORDER BY day, learner")
        again = await run_task(store, "daily_analytics", NOW, tasks=BERLIN)
        assert again.outcome_detail.summary["dates"] == ["2026-03-29"]
        after = await _rows(store, "SELECT * FROM daily_learner_stats ORDER BY day, learner")
        assert after == before
    finally:
        await store.close()


async def test_dry_run_reports_rows_and_writes_none(tmp_path):
    store = await open_store(tmp_path, EVENTS)
    try:
        tasks = {**BERLIN, "daily_analytics": {"backfill_days": 0}}
        result = await run_task(store, "daily_analytics", NOW, tasks=tasks, dry_run=True)
        assert result.outcome_detail.writes == {
            "daily_learner_stats": 2,
            "daily_platform_stats": 1,
        }
        assert await _rows(store, "SELECT count(*) FROM daily_learner_stats") == [(0,)]
        assert await _rows(store, "SELECT count(*) FROM task_runs") == [(0,)]
    finally:
        await store.close()
