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


async def run(ctx: TaskContext) -> TaskOutcome:
    params: VelocityParams = ctx.params
    now = ctx.now
    window = params.window_days * SECONDS_PER_DAY
    counts = {path: PathCompletions(path, 0, 0) for path in await ctx.store.catalog_path_ids()}
    completions = await ctx.store.path_completions(
        start=now - 2 * window, mid=now - window, now=now
    )
    for path, (this_week, last_week) in completions.items():
        counts[path] = PathCompletions(path, this_week, last_week)
    velocity = path_velocity(counts.values())
    items = [
        LearnerPath(learner, path, percent, min(started, now), min(last, now))
        for learner, path, percent, started, last in await ctx.store.in_progress_paths()
    ]
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
    async with ctx.writing() as tx:
        inhibitors = await tx.firing_rule_per_learner(params.inhibited_by)
        inhibited = {
            fingerprint(STAGNATION, c.learner, c.path): f"inhibited by {inhibitors[c.learner]}"
            for c in evaluation.firing
            if c.learner in inhibitors
        }
        outcome.summary["inhibited"] = len(inhibited)
        await ctx.reconcile_alerts(tx, evaluation, outcome, inhibited=inhibited)
        if not ctx.dry_run:
            await tx.replace_velocity(
                [
                    (path, v["this_week"], v["last_week"], v["change_pct"], now)
                    for path, v in velocity.items()
                ],
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
