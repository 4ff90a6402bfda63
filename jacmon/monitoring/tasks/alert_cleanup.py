"""The ``alert_cleanup`` task: retire old resolved alerts, expired acks, old records.

Also applies the event retention policy when one is configured
(``event_retention_days``); progress rows are kept, they summarise the events.
"""

from __future__ import annotations

from dataclasses import dataclass

from jacmon.analytics import SECONDS_PER_DAY
from jacmon.analytics.alert_rules import PlannedChange
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec


@dataclass(slots=True)
class CleanupParams:
    """Retention periods, in days (None: keep forever)."""

    #: Resolved alerts older than this are deleted.
    retention_days: float = 30.0
    #: Events older than this are deleted; None keeps every event.
    event_retention_days: float | None = None
    #: Task run records older than this are deleted (the newest per task stays).
    run_retention_days: float | None = 90.0


async def run(ctx: TaskContext) -> TaskOutcome:
    params: CleanupParams = ctx.params
    now = ctx.now
    outcome = TaskOutcome()
    async with ctx.writing() as tx:
        expired = await tx.expire_acknowledgements(now=now, dry_run=ctx.dry_run)
        retired = await tx.retire_resolved(
            before=now - params.retention_days * SECONDS_PER_DAY, dry_run=ctx.dry_run
        )
        runs = 0
        if params.run_retention_days is not None:
            runs = await tx.prune_runs(
                before=now - params.run_retention_days * SECONDS_PER_DAY, dry_run=ctx.dry_run
            )
        events = 0
        if params.event_retention_days is not None:
            cutoff = now - params.event_retention_days * SECONDS_PER_DAY
            events = await tx.delete_events_before(cutoff, dry_run=ctx.dry_run)
    outcome.alerts.extend(
        PlannedChange("update", None, change["alert"], "acknowledgement expired").as_dict()
        for change in expired
    )
    outcome.summary = {
        "acks_expired": len(expired),
        "alerts_retired": retired,
        "runs_pruned": runs,
        "events_deleted": events,
    }
    outcome.writes = {
        "alerts (deleted)": retired,
        "task_runs (deleted)": runs,
        "events (deleted)": events,
        "alerts (ack cleared)": len(expired),
    }
    return outcome


SPEC = TaskSpec(
    name="alert_cleanup",
    description="retire resolved alerts past retention and expired acknowledgements",
    cron="0 3 * * 0",
    grace_s=24 * 3600.0,
    timeout_s=600.0,
    params=CleanupParams,
    run=run,
)
