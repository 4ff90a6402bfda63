"""The ``performance`` task: score trends per learner -> decline / consecutive-low alerts."""

from __future__ import annotations

from collections import defaultdict

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.performance import PerformanceRules, ScoreWindows, evaluate_performance
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec


async def run(ctx: TaskContext) -> TaskOutcome:
    rules: PerformanceRules = ctx.params
    now = ctx.now
    window = rules.window_days * SECONDS_PER_DAY
    windows = [
        ScoreWindows(*row)
        for row in await ctx.store.score_windows(start=now - 2 * window, mid=now - window, now=now)
    ]
    # Enough of the newest scores to see a run as long as the critical one, and then some.
    keep = max(rules.consecutive_low, rules.critical_consecutive) + 6
    # Per learner and path: a run of low scores belongs to the path they were scored on.
    latest: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    since = now - rules.lookback_days * SECONDS_PER_DAY
    for learner, path, score in await ctx.store.latest_scores(since=since, now=now, keep=keep):
        latest[learner, path].append(score)
    evaluation = evaluate_performance(windows, latest, rules)
    outcome = TaskOutcome(
        summary={
            "learners_with_scores": len({learner for learner, _ in latest}),
            "learners_compared": len(windows),
        }
    )
    async with ctx.writing() as tx:
        await ctx.reconcile_alerts(tx, evaluation, outcome)
    return outcome


SPEC = TaskSpec(
    name="performance",
    description="score trends per learner: performance-decline and consecutive-low alerts",
    cron="*/15 * * * *",
    grace_s=600.0,
    timeout_s=300.0,
    params=PerformanceRules,
    run=run,
)
