"""The four streams: what a client gets on connect, on resume and on refresh.

Each function returns the frames to queue when a subscriber goes live. Live
items that arrived while these were being read wait in the subscriber's sync
buffer and are appended here, filtered by sequence number, so nothing is lost
and nothing is sent twice.
"""

from __future__ import annotations

from jacmon.protocol import ServerType, Stream, envelope, envelope_from_json, event_json
from jacmon.server.context import ServerContext
from jacmon.server.hub import Hub, Subscriber, alert_frame

#: Events in the activity snapshot.
ACTIVITY_SNAPSHOT_EVENTS = 50
#: Events per frame when replaying from the store.
REPLAY_FRAME_EVENTS = 500


def _activity_frames(rows: list[tuple[int, str]], *, reset: bool | None) -> list[bytes]:
    """Stored (seq, body) rows as events frames of at most REPLAY_FRAME_EVENTS; or, with
    ``reset`` given, as one snapshot. Bodies are spliced in as stored, not re-encoded."""
    if reset is not None:
        seq = rows[-1][0] if rows else 0
        events = ",".join(event_json(s, body) for s, body in rows)
        data = f'{{"events":[{events}],"reset":{"true" if reset else "false"}}}'
        return [envelope_from_json(Stream.ACTIVITY, ServerType.SNAPSHOT, seq, data)]
    frames = []
    for start in range(0, len(rows), REPLAY_FRAME_EVENTS):
        chunk = rows[start : start + REPLAY_FRAME_EVENTS]
        events = ",".join(event_json(s, body) for s, body in chunk)
        frames.append(
            envelope_from_json(
                Stream.ACTIVITY, ServerType.EVENTS, chunk[-1][0], f'{{"events":[{events}]}}'
            )
        )
    return frames


async def activity_frames(
    ctx: ServerContext, sub: Subscriber, since: int | None
) -> tuple[list[bytes], bool]:
    """(frames, resumed): the missed events after ``since``, or a snapshot of the last 50.

    A ``since`` older than the replay window (or than the oldest stored event)
    gets a snapshot flagged ``reset``: the client knows it has a gap.
    """
    store = ctx.store
    last = store.last_seq
    frames: list[bytes]
    resumed = False
    # A since from the future (another database, or a reset one) starts over, and so
    # does one older than the replay window or than the oldest event retention kept.
    since_ok = since is not None and last - ctx.settings.replay_window <= since <= last
    if since_ok:
        oldest = await store.oldest_seq()
        since_ok = oldest == 0 or since >= oldest - 1
    if since_ok:
        rows = await store.event_rows_since(since, learner=sub.learner)
        frames = _activity_frames(rows, reset=None)
        high = rows[-1][0] if rows else since
        resumed = True
    else:
        rows = await store.recent_event_rows(ACTIVITY_SNAPSHOT_EVENTS, learner=sub.learner)
        frames = _activity_frames(rows, reset=since is not None)
        high = rows[-1][0] if rows else 0
    live = [e for e in sub.sync_events if e.seq > high]
    if live:
        frame = Hub.events_frame(live, sub.learner)
        if frame:
            frames.append(frame)
        high = live[-1].seq
    sub.delivered_seq = high
    return frames, resumed


async def alerts_frames(
    ctx: ServerContext, sub: Subscriber, since: int | None
) -> tuple[list[bytes], bool]:
    """The changes after ``since`` if still stored, else a snapshot of the firing alerts."""
    store = ctx.store
    # Read the high-water mark first: a change landing in between is then sent
    # as a delta too, and deltas are idempotent by alert id.
    high = await store.last_alert_change_seq()
    frames: list[bytes] = []
    resumed = False
    if since is not None and since <= high:
        # Retention may have removed the changes right after since: then it is a gap.
        first = await store.alert_changes_since(since, limit=1)
        if not first or first[0]["seq"] == since + 1:
            changes = await store.alert_changes_since(since, learner=sub.learner)
            frames = [alert_frame(c) for c in changes]
            high = max([high, *(c["seq"] for c in changes)])
            resumed = True
    if not resumed:
        alerts = await store.open_alerts(learner=sub.learner)
        frames = [
            envelope(
                Stream.ALERTS,
                ServerType.SNAPSHOT,
                high,
                {"alerts": alerts, "reset": since is not None},
            )
        ]
    live = [c for c in sub.sync_alerts if c["seq"] > high]
    frames.extend(alert_frame(c) for c in live)
    sub.delivered_seq = live[-1]["seq"] if live else high
    return frames, resumed


async def metrics_frames(ctx: ServerContext, sub: Subscriber) -> list[bytes]:
    """The last 15 minutes of samples (always a fresh snapshot: metrics do not replay).

    A learner-scoped client waits for that learner's windows to be filled from the
    store, so its snapshot already counts the learner's stored events.
    """
    if sub.learner is not None:
        await ctx.sampler.learner_ready(sub.learner)
    samples = ctx.sampler.history_for(sub.learner)
    sub.delivered_seq = ctx.hub.seq[Stream.METRICS]
    return [
        envelope(
            Stream.METRICS,
            ServerType.SNAPSHOT,
            sub.delivered_seq,
            {"samples": samples, "interval_s": ctx.settings.metrics_interval_s},
        )
    ]


async def dashboard_frames(ctx: ServerContext, sub: Subscriber) -> list[bytes]:
    """Progress per path, module and learner (always a fresh snapshot)."""
    snapshot = await ctx.store.progress_snapshot(learner=sub.learner, now=ctx.now())
    # Rows delivered while reading go after it only if newer than its watermark.
    ctx.hub.start_dashboard(sub, snapshot["progress_seq"])
    sub.delivered_seq = ctx.hub.seq[Stream.DASHBOARD]
    return [envelope(Stream.DASHBOARD, ServerType.SNAPSHOT, sub.delivered_seq, snapshot)]


async def initial_frames(
    ctx: ServerContext, sub: Subscriber, since: int | None
) -> tuple[list[bytes], bool]:
    """Dispatch to the stream's snapshot/resume logic; returns (frames, resumed)."""
    if sub.stream == Stream.ACTIVITY:
        return await activity_frames(ctx, sub, since)
    if sub.stream == Stream.ALERTS:
        return await alerts_frames(ctx, sub, since)
    if sub.stream == Stream.METRICS:
        return await metrics_frames(ctx, sub), False
    return await dashboard_frames(ctx, sub), False
