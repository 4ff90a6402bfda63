"""From the bus to this node's stream clients: committed facts into the hub's queues.

The hub owns per-client delivery (scopes, buffers, slow-client policy); this
module subscribes it to the bus and turns progress changes into dashboard rows
(the summaries a row change moves are read back from the store at each flush).
"""

from __future__ import annotations

from jacmon.bus import AlertsChanged, EventsCommitted, ProgressProjected
from jacmon.protocol import Stream
from jacmon.server.context import ServerContext
from jacmon.store import ProgressChanges
from jacmon.store.rows import learner_path_row, learner_row, module_row


def subscribe_hub(ctx: ServerContext) -> None:
    """Feed the hub from the bus: events, projected progress rows, alert changes."""
    hub = ctx.hub

    def on_events(fact: EventsCommitted) -> None:
        hub.publish_events(fact.stored)

    def on_progress(fact: ProgressProjected) -> None:
        hub.publish_progress(fact.changes, fact.last_seq)

    def on_alerts(fact: AlertsChanged) -> None:
        hub.publish_alert_changes(fact.changes)

    ctx.bus.subscribe(EventsCommitted, on_events)
    ctx.bus.subscribe(ProgressProjected, on_progress)
    ctx.bus.subscribe(AlertsChanged, on_alerts)


async def flush_progress(ctx: ServerContext, pending: list[ProgressChanges]) -> bool:
    """Turn pending progress changes into dashboard rows: learner rows plus new summaries.

    Every value sent reflects the events up to one watermark (``progress_seq``): the
    summaries are read in one snapshot with it, and the rows pending here must reach it.
    False (nothing sent; try again) when the store's watermark is ahead of the spans this
    node received: a span committed but not delivered yet would leave its rows behind
    the summaries.
    """
    hub = ctx.hub
    subs = hub.subscribers[Stream.DASHBOARD]
    if not subs:
        return True
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
    progress_seq = hub.received_progress_seq
    if any(s.learner is None for s in subs):
        paths = sorted({key[1] for key in learner_paths})
        module_keys = sorted({(key[1], key[2]) for key in modules})
        view = await ctx.store.progress_view(paths, module_keys, now=ctx.now())
        if view.progress_seq > hub.received_progress_seq:
            return False
        summaries["paths"], summaries["modules"] = view.paths, view.modules
        total_learners = view.total_learners
        progress_seq = view.progress_seq
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
        progress_seq=progress_seq,
        total_learners=total_learners,
    )
    return True
