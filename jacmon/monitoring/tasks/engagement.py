"""The ``engagement`` task: inactivity, engagement-drop and low-consistency alerts."""

from __future__ import annotations

from datetime import timedelta

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.daily import day_bounds, local_date
from jacmon.analytics.engagement import (
    EngagementRules,
    LearnerActivity,
    evaluate_engagement,
    inhibitions,
)
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec


async def run(ctx: TaskContext) -> TaskOutcome:
    rules: EngagementRules = ctx.params
    now = ctx.now
    today = local_date(now, ctx.tz)
    starts = [
        day_bounds(today - timedelta(days=back), ctx.tz)[0]
        for back in range(rules.consistency_days - 1, -1, -1)
    ]
    drop = rules.drop_days * SECONDS_PER_DAY
    window_start = min(starts[0], now - 2 * drop)
    stats = await ctx.store.activity_counts(
        recent=now - drop, prior=now - 2 * drop, day_starts=starts, start=window_start, now=now
    )
    monitored: list[LearnerActivity] = []
    for learner, first, last, path in await ctx.store.monitored_learners():
        recent, prior, days = stats.get(learner, (0, 0, 0))
        # Events stamped after "now" (a clock ahead of ours) do not count as idle time.
        last = min(last, now) if last is not None else None
        monitored.append(LearnerActivity(learner, last, first, recent, prior, days, path))
    evaluation = evaluate_engagement(monitored, rules, now=now)
    outcome = TaskOutcome(
        summary={"learners_monitored": len(monitored), "learners_active_in_window": len(stats)}
    )
    async with ctx.writing() as tx:
        await ctx.reconcile_alerts(tx, evaluation, outcome, inhibited=inhibitions(evaluation))
    return outcome


SPEC = TaskSpec(
    name="engagement",
    description="activity per learner: inactivity, engagement-drop and low-consistency alerts",
    cron="0 * * * *",
    grace_s=1800.0,
    timeout_s=300.0,
    params=EngagementRules,
    run=run,
)
