"""The ``velocity`` task: completions per week per path, learner pace, stagnation alerts.

A learner with a firing engagement alert gets no stagnation alert (inhibition):
the engagement alert already says they are not moving.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from jacmon.analytics import SECONDS_PER_DAY, engagement
from jacmon.analytics.alert_rules import fingerprint
from jacmon.analytics.velocity import (
    STAGNATION,
    LearnerPath,
    PathCompletions,
    VelocityRules,
    pace,
    path_velocity,
    stagnation,
)
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec


@dataclass(slots=True)
class VelocityParams(VelocityRules):
    """Velocity rules plus which firing alerts inhibit a stagnation alert."""

    #: Low consistency is left out: it says nothing about being stuck on one path.
    inhibited_by: list[str] = field(
        default_factory=lambda: [engagement.INACTIVITY, engagement.ENGAGEMENT_DROP]
    )


_COMPLETIONS_SQL = """
SELECT path, sum(completed_at > :mid), sum(completed_at <= :mid)
FROM module_progress
WHERE completed_at > :start AND completed_at <= :now
GROUP BY path
"""

_IN_PROGRESS_SQL = """
SELECT learner, path, percent, coalesce(enrolled_at, first_activity), last_activity
FROM path_progress WHERE status = 'in_progress'
"""


async def run(ctx: TaskContext) -> TaskOutcome:
    params: VelocityParams = ctx.params
    now = ctx.now
    window = params.window_days * SECONDS_PER_DAY
    counts: dict[str, PathCompletions] = {}
    async with ctx.reader.execute("SELECT path FROM catalog_paths ORDER BY path") as cursor:
        async for (path,) in cursor:
            counts[path] = PathCompletions(path, 0, 0)
    sql_params = {"mid": now - window, "start": now - 2 * window, "now": now}
    async with ctx.reader.execute(_COMPLETIONS_SQL, sql_params) as cursor:
        async for path, this_week, last_week in cursor:
            counts[path] = PathCompletions(path, this_week, last_week)
    velocity = path_velocity(counts.values())

    items: list[LearnerPath] = []
    async with ctx.reader.execute(_IN_PROGRESS_SQL) as cursor:
        async for learner, path, percent, started, last in cursor:
            items.append(LearnerPath(learner, path, percent, min(started, now), min(last, now)))
    pace_rows = []
    for item in items:
        rate, finish = pace(item, now=now)
        pace_rows.append((item.learner, item.path, item.percent, rate, finish, now))
    evaluation = stagnation(items, params, now=now)

    outcome = TaskOutcome(
        summary={"paths": len(velocity), "learners_in_progress": len(items)},
        writes={"path_velocity": len(velocity), "learner_pace": len(pace_rows)},
        velocity=velocity,
    )
    async with ctx.writing() as conn:
        inhibitors: dict[str, str] = {}
        if params.inhibited_by:
            marks = ",".join("?" * len(params.inhibited_by))
            async with conn.execute(
                f"SELECT learner, min(rule) FROM alerts WHERE state = 'firing'"
                f" AND rule IN ({marks}) GROUP BY learner",
                params.inhibited_by,
            ) as cursor:
                inhibitors = {learner: rule for learner, rule in await cursor.fetchall()}
        inhibited = {
            fingerprint(STAGNATION, c.learner, c.path): f"inhibited by {inhibitors[c.learner]}"
            for c in evaluation.firing
            if c.learner in inhibitors
        }
        outcome.summary["inhibited"] = len(inhibited)
        await ctx.reconcile_alerts(conn, evaluation, outcome, inhibited=inhibited)
        if not ctx.dry_run:
            await conn.execute("DELETE FROM path_velocity")
            await conn.executemany(
                "INSERT INTO path_velocity (path, this_week, last_week, change_pct, computed_at)"
                " VALUES (?,?,?,?,?)",
                [
                    (path, v["this_week"], v["last_week"], v["change_pct"], now)
                    for path, v in velocity.items()
                ],
            )
            await conn.execute("DELETE FROM learner_pace")
            await conn.executemany(
                "INSERT INTO learner_pace (learner, path, percent, pct_per_day,"
                " projected_finish, computed_at) VALUES (?,?,?,?,?,?)",
                pace_rows,
            )
    return outcome


SPEC = TaskSpec(
    name="velocity",
    description="completions per week per path, learner pace and finish, stagnation alerts",
    cron="0 */6 * * *",
    grace_s=3 * 3600.0,
    timeout_s=300.0,
    params=VelocityParams,
    run=run,
)
