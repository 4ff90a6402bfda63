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

#: Learners enrolled on a path and not finished it, with their overall first/last activity
#: and the unfinished path they were last active on (the path their alerts name).
_MONITORED_SQL = """
SELECT l.learner, l.first_activity, l.last_activity,
       (SELECT p.path FROM path_progress p
        WHERE p.learner = l.learner AND p.status IN ('enrolled', 'in_progress')
        ORDER BY p.last_activity DESC, p.path LIMIT 1)
FROM learners l
WHERE l.learner IN (
    SELECT learner FROM path_progress WHERE status IN ('enrolled', 'in_progress')
)
"""


def _active_day_sql(starts: list[float]) -> str:
    """A CASE that numbers each event's local day: boundaries differ on DST days."""
    branches = " ".join(
        f"WHEN ts >= {start!r} THEN {index}"
        for index, start in sorted(enumerate(starts), reverse=True)
    )
    return f"CASE {branches} END"


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
    # One pass over the window's events (the learner/ts index covers it).
    stats_sql = f"""
        SELECT learner,
               sum(ts > :recent),
               sum(ts > :prior AND ts <= :recent),
               count(DISTINCT CASE WHEN ts >= :first_day THEN {_active_day_sql(starts)} END)
        FROM events WHERE ts >= :start AND ts <= :now
        GROUP BY learner
    """
    params = {
        "recent": now - drop,
        "prior": now - 2 * drop,
        "first_day": starts[0],
        "start": window_start,
        "now": now,
    }
    stats: dict[str, tuple[int, int, int]] = {}
    async with ctx.reader.execute(stats_sql, params) as cursor:
        async for learner, recent, prior, days in cursor:
            stats[learner] = (recent, prior, days)
    monitored: list[LearnerActivity] = []
    async with ctx.reader.execute(_MONITORED_SQL) as cursor:
        async for learner, first, last, path in cursor:
            recent, prior, days = stats.get(learner, (0, 0, 0))
            # Events stamped after "now" (a clock ahead of ours) do not count as idle time.
            last = min(last, now) if last is not None else None
            monitored.append(LearnerActivity(learner, last, first, recent, prior, days, path))
    evaluation = evaluate_engagement(monitored, rules, now=now)
    outcome = TaskOutcome(
        summary={"learners_monitored": len(monitored), "learners_active_in_window": len(stats)}
    )
    async with ctx.writing() as conn:
        await ctx.reconcile_alerts(conn, evaluation, outcome, inhibited=inhibitions(evaluation))
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
