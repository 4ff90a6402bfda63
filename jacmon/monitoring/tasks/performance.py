"""The ``performance`` task: score trends per learner -> decline / consecutive-low alerts."""

from __future__ import annotations

from collections import defaultdict

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.performance import PerformanceRules, ScoreWindows, evaluate_performance
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec

# Both queries use the events_scores partial index (ts, learner, score).
_WINDOWS_SQL = """
SELECT learner,
       sum(ts > :mid), avg(CASE WHEN ts > :mid THEN score END),
       sum(ts <= :mid), avg(CASE WHEN ts <= :mid THEN score END)
FROM events
WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > :start AND ts <= :now
GROUP BY learner
"""

_LATEST_SQL = """
SELECT learner, path, score FROM (
    SELECT learner, path, score,
           row_number() OVER (PARTITION BY learner, path ORDER BY ts DESC) AS rn
    FROM events
    WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > :since AND ts <= :now
)
WHERE rn <= :keep
ORDER BY learner, path, rn
"""


async def run(ctx: TaskContext) -> TaskOutcome:
    rules: PerformanceRules = ctx.params
    now = ctx.now
    window = rules.window_days * SECONDS_PER_DAY
    windows: list[ScoreWindows] = []
    params = {"mid": now - window, "start": now - 2 * window, "now": now}
    async with ctx.reader.execute(_WINDOWS_SQL, params) as cursor:
        async for learner, n_recent, avg_recent, n_prev, avg_prev in cursor:
            windows.append(ScoreWindows(learner, n_recent, avg_recent, n_prev, avg_prev))
    # Enough of the newest scores to see a run as long as the critical one, and then some.
    keep = max(rules.consecutive_low, rules.critical_consecutive) + 6
    # Per learner and path: a run of low scores belongs to the path they were scored on.
    latest: dict[tuple[str, str | None], list[float]] = defaultdict(list)
    params = {"since": now - rules.lookback_days * SECONDS_PER_DAY, "now": now, "keep": keep}
    async with ctx.reader.execute(_LATEST_SQL, params) as cursor:
        async for learner, path, score in cursor:
            latest[learner, path].append(score)
    evaluation = evaluate_performance(windows, latest, rules)
    outcome = TaskOutcome(
        summary={
            "learners_with_scores": len({learner for learner, _ in latest}),
            "learners_compared": len(windows),
        }
    )
    async with ctx.writing() as conn:
        await ctx.reconcile_alerts(conn, evaluation, outcome)
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
