"""The ``daily_analytics`` task: a snapshot per learner per local date, and platform totals.

Idempotent per date: a date's rows are replaced as a whole, so running it twice
(a catch-up, a manual run) leaves the same rows.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date, timedelta

from jacmon.analytics.daily import (
    COMPLETION_TYPES,
    LearnerDay,
    day_bounds,
    local_date,
    platform_totals,
)
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec


@dataclass(slots=True)
class DailyParams:
    """Which dates the task computes."""

    #: Also compute up to this many earlier dates that have no snapshot yet (after downtime).
    backfill_days: int = 3
    #: Include today so far (recomputed by every run) besides yesterday.
    include_today: bool = False


_TYPES = ",".join(f"'{t}'" for t in COMPLETION_TYPES)

_DAY_SQL = f"""
SELECT learner,
       count(*),
       sum(type IN ({_TYPES})),
       sum(type = 'assessment.attempted'),
       count(score),
       avg(score),
       coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0)
FROM events
WHERE ts >= ? AND ts < ?
GROUP BY learner
"""


async def _dates(ctx: TaskContext, params: DailyParams) -> list[date]:
    yesterday = local_date(ctx.now, ctx.tz) - timedelta(days=1)
    earlier = [yesterday - timedelta(days=n) for n in range(params.backfill_days, 0, -1)]
    done: set[str] = set()
    if earlier:
        marks = ",".join("?" * len(earlier))
        async with ctx.reader.execute(
            f"SELECT day FROM daily_platform_stats WHERE day IN ({marks})",
            [d.isoformat() for d in earlier],
        ) as cursor:
            done = {row[0] for row in await cursor.fetchall()}
    dates = [d for d in earlier if d.isoformat() not in done] + [yesterday]
    if params.include_today:
        dates.append(yesterday + timedelta(days=1))
    return dates


async def run(ctx: TaskContext) -> TaskOutcome:
    params: DailyParams = ctx.params
    per_day: dict[str, list[LearnerDay]] = {}
    for day in await _dates(ctx, params):
        start, end = day_bounds(day, ctx.tz)
        async with ctx.reader.execute(_DAY_SQL, (start, end)) as cursor:
            per_day[day.isoformat()] = [LearnerDay(*row) for row in await cursor.fetchall()]
    totals = {day: platform_totals(rows) for day, rows in per_day.items()}
    outcome = TaskOutcome(
        summary={
            "dates": list(per_day),
            "learners": {day: len(rows) for day, rows in per_day.items()},
            "platform": {day: astuple(t) for day, t in totals.items()},
        },
        writes={
            "daily_learner_stats": sum(len(rows) for rows in per_day.values()),
            "daily_platform_stats": len(per_day),
        },
    )
    if ctx.dry_run:
        return outcome
    async with ctx.writing() as conn:
        for day, rows in per_day.items():
            await conn.execute("DELETE FROM daily_learner_stats WHERE day = ?", (day,))
            await conn.executemany(
                "INSERT INTO daily_learner_stats (day, learner, activities, completions,"
                " assessments, scored, avg_score, time_spent_s) VALUES (?,?,?,?,?,?,?,?)",
                [(day, *astuple(r)) for r in rows],
            )
            await conn.execute(
                "INSERT OR REPLACE INTO daily_platform_stats (day, active_learners, activities,"
                " completions, assessments, avg_score, time_spent_s, computed_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (day, *astuple(totals[day]), ctx.now),
            )
    return outcome


SPEC = TaskSpec(
    name="daily_analytics",
    description="per-learner daily snapshot (activities, completions, scores, time) and totals",
    cron="0 2 * * *",
    grace_s=6 * 3600.0,
    timeout_s=600.0,
    params=DailyParams,
    run=run,
)
