"""The ``daily_analytics`` task: a snapshot per learner per local date, and platform totals.

Idempotent per date: a date's rows are replaced as a whole, so running it twice
(a catch-up, a manual run) leaves the same rows.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import date, timedelta

from jacmon.analytics.daily import (
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


async def _dates(ctx: TaskContext, params: DailyParams) -> list[date]:
    yesterday = local_date(ctx.now, ctx.tz) - timedelta(days=1)
    earlier = [yesterday - timedelta(days=n) for n in range(params.backfill_days, 0, -1)]
    done = await ctx.store.daily_snapshot_days([d.isoformat() for d in earlier])
    dates = [d for d in earlier if d.isoformat() not in done] + [yesterday]
    if params.include_today:
        dates.append(yesterday + timedelta(days=1))
    return dates


async def run(ctx: TaskContext) -> TaskOutcome:
    params: DailyParams = ctx.params
    per_day: dict[str, list[LearnerDay]] = {}
    for day in await _dates(ctx, params):
        start, end = day_bounds(day, ctx.tz)
        rows = await ctx.store.learner_day_stats(start, end)
        per_day[day.isoformat()] = [LearnerDay(*row) for row in rows]
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
    async with ctx.writing() as tx:
        for day, rows in per_day.items():
            await tx.replace_daily_stats(
                day, [astuple(r) for r in rows], (*astuple(totals[day]), ctx.now)
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
