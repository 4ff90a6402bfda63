"""From the bus to this node's stream clients: committed facts into the hub's queues.

The hub owns per-client delivery (scopes, buffers, slow-client policy); this
module subscribes it to the bus and turns progress changes into dashboard rows
(the summaries a row change moves are read back from the store at each flush).
"""

from __future__ import annotations

from jacmon.bus import AlertsChanged, EventsCommitted
from jacmon.protocol import Stream
from jacmon.server.context import ServerContext
from jacmon.store import ProgressChanges
from jacmon.store.rows import learner_path_row, learner_row, module_row


def subscribe_hub(ctx: ServerContext) -> None:
    """Feed the hub from the bus: events and progress rows, alert changes."""
    hub = ctx.hub

    def on_events(fact: EventsCommitted) -> None:
        hub.publish_events(fact.stored)
        hub.publish_progress(fact.changes)

    def on_alerts(fact: AlertsChanged) -> None:
        hub.publish_alert_changes(fact.changes)

    ctx.bus.subscribe(EventsCommitted, on_events)
    ctx.bus.subscribe(AlertsChanged, on_alerts)


async def flush_progress(ctx: ServerContext, pending: list[ProgressChanges]) -> None:
    """Turn pending progress changes into dashboard rows: learner rows plus new summaries."""
    subs = ctx.hub.subscribers[Stream.DASHBOARD]
    if not subs:
        return
    learners: dict[str, dict] = {}
    learner_paths: dict[tuple, dict] = {}
    modules: dict[tuple, dict] = {}
    for changes in pending:
        for row in changes.learners:
            learners[row["learner"]] = learner_row(row)
        for row in changes.paths:
            learner_paths[(row["learner"], row["path"])] = learner_path_row(row)
        for row in changes.modules:
            modules[(row["learner"], row["path"], row["module"])] = row
    summaries: dict[str, list] = {"paths": [], "modules": []}
    total_learners = None
    if any(s.learner is None for s in subs):
        paths = sorted({key[1] for key in learner_paths})
        module_keys = sorted({(key[1], key[2]) for key in modules})
        summaries["paths"] = await ctx.store.path_summaries(paths, now=ctx.now())
        if module_keys:
            summaries["modules"] = await ctx.store.module_summaries(module_keys)
        total_learners = await ctx.store.learner_count()
    own_modules = []
    if any(s.learner is not None for s in subs):
        # Learner-scoped clients see their own module rows.
        own_modules = [module_row(row) for row in modules.values()]
    ctx.hub.deliver_rows(
        {
            "learners": list(learners.values()),
            "learner_paths": list(learner_paths.values()),
            "modules": own_modules,
        },
        summaries,
        total_learners=total_learners,
    )
