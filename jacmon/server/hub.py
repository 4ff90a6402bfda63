"""Fan-out to stream clients: per-stream sequence numbers and a delivery policy per stream.

Every connected client is a :class:`Subscriber` with its own writer task, so a
slow client never holds up the others. What happens when it falls behind
depends on the stream:

* activity: frames queue up to ``buffer_frames``; past that the client is
  closed with 4008 and resumes from the store with ``?since=``;
* alerts: every change is queued, none is skipped or merged;
* metrics: only the newest sample waits (latest value wins);
* dashboard: changed rows are merged by key, so a slow client gets one frame
  with the newest version of each row.

On every stream a client is closed with 4008 when it leaves more than
``max_unsent_bytes`` unread (queued frames, the connection's write buffer and
its socket's kernel send buffer, which is capped for that reason) or when one
frame takes longer than ``send_timeout_s`` to go out: a client that never
reads holds a bounded amount of memory for a bounded time.

Frames for everyone are encoded once and the same bytes go to every client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.exceptions import ConnectionClosed

from jacmon.protocol import CloseCode, ServerType, Stream, envelope, envelope_from_json, event_json
from jacmon.store import ProgressChanges, StoredEvent

log = logging.getLogger("jacmon.hub")

#: Unsent bytes a client's socket may hold before its frames queue instead (websockets'
#: own default write limit: 32 KiB).
WRITE_LIMIT_BYTES = 32 * 1024

#: The reason sent with close code 4008. Fixed and short: a close frame's reason holds at
#: most 123 bytes, and a reason built from the request would also repeat its ?token=.
TOO_SLOW_REASON = "too slow; reconnect with ?since=<last seq>"

#: The largest kernel send buffer asked for on a stream socket, in bytes. Setting it also
#: stops the kernel growing the buffer on its own (to ~4 MiB per socket on Linux).
MAX_SOCKET_SEND_BUFFER = 256 * 1024

#: What one dashboard row takes once encoded, in bytes (about 150-250): how a client's
#: merged, not yet encoded rows count against its unsent byte bound.
ROW_BYTES_ESTIMATE = 200

#: How the dashboard identifies a row of each kind, to merge updates to it.
ROW_KEYS: dict[str, tuple[str, ...]] = {
    "paths": ("path",),
    "modules": ("path", "module"),
    "learners": ("learner",),
    "learner_paths": ("learner", "path"),
}


@dataclass(eq=False)
class Subscriber:
    """One client of one stream."""

    ws: ServerConnection
    stream: Stream
    learner: str | None
    buffer_frames: int
    #: The id of the token it connected with (None: tokenless), for log lines.
    token_id: str | None = None
    #: While syncing (snapshot or replay being sent), live items wait here unencoded.
    syncing: bool = True
    sync_events: list[StoredEvent] = field(default_factory=list)
    sync_alerts: list[dict[str, Any]] = field(default_factory=list)
    #: dashboard, while syncing: (progress_seq, rows by kind) delivered meanwhile.
    sync_progress: list[tuple[int, dict[str, list[dict[str, Any]]]]] = field(default_factory=list)
    #: dashboard: the projection watermark of what this client was given (its snapshot
    #: or its last rows): nothing it has reflects an event after it.
    progress_seq: int = 0
    outbox: deque[bytes] = field(default_factory=deque)
    latest_sample: bytes | None = None
    pending_rows: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    dropped: bool = False
    writer: asyncio.Task | None = None
    #: The seq of the newest data frame handed to this client (queued behind nothing
    #: it has not been given): activity and alerts never re-send at or below it, and
    #: non-data frames (hello, pong, error) carry it, so any frame's seq is safe to
    #: resume from.
    delivered_seq: int = 0
    #: metrics: the seq of ``latest_sample``, given once it is written.
    latest_sample_seq: int = 0
    #: The writer task is inside ws.send (so a direct write now could overtake it).
    sending: bool = False
    #: Bytes of the frames in ``outbox``.
    queued_bytes: int = 0
    #: Of those, bytes of the snapshot or replay the client asked for: they do not count
    #: as falling behind (a resume may replay more than ``max_unsent_bytes``).
    requested_bytes: int = 0
    #: The kernel send buffer of its socket, in bytes (0: unknown).
    socket_buffer_bytes: int = 0


@dataclass
class HubCounters:
    """Totals for /metrics."""

    frames_sent: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Stream})
    conflated: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Stream})
    dropped_clients: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in Stream})


class Hub:
    """The fan-out point between producers (ingest, tasks, sampler) and stream clients."""

    def __init__(
        self,
        *,
        activity_flush_s: float = 0.05,
        dashboard_flush_s: float = 0.5,
        max_unsent_bytes: int = 4 * 1024 * 1024,
        send_timeout_s: float = 30.0,
    ):
        """Flush intervals in seconds; a stream client is closed as too slow once it has
        over ``max_unsent_bytes`` unread or one frame takes over ``send_timeout_s`` seconds.
        """
        self.activity_flush_s = activity_flush_s
        self.dashboard_flush_s = dashboard_flush_s
        self.max_unsent_bytes = max_unsent_bytes
        self.send_timeout_s = send_timeout_s
        self.subscribers: dict[Stream, set[Subscriber]] = {s: set() for s in Stream}
        self.counters = HubCounters()
        #: Current sequence number per stream (activity: store seq; alerts: change seq).
        self.seq: dict[Stream, int] = {s: 0 for s in Stream}
        #: Learners in the store as of the last dashboard flush (progress frames carry it).
        self.total_learners = 0
        #: The projection watermark of the last rows handed to dashboard clients, and the
        #: newest one the projector's spans brought (the pending rows reach it).
        self.progress_seq = 0
        self.received_progress_seq = 0
        self._pending_events: list[StoredEvent] = []
        self._pending_progress: list[ProgressChanges] = []
        self._flush_wake = asyncio.Event()
        self._closing: set[asyncio.Task] = set()

    # Subscribers

    def add(self, sub: Subscriber) -> None:
        self.subscribers[sub.stream].add(sub)
        sub.socket_buffer_bytes = self._cap_socket_buffer(sub.ws)
        sub.writer = asyncio.create_task(self._write_loop(sub), name=f"writer-{sub.stream}")

    def _cap_socket_buffer(self, ws: ServerConnection) -> int:
        """Cap the kernel send buffer of a client's socket; returns its size in bytes.

        A quarter of ``max_unsent_bytes`` at most is asked for (Linux doubles the
        value asked), so the kernel never holds most of a client's allowance.
        """
        transport = ws.transport
        sock = transport.get_extra_info("socket") if transport is not None else None
        if sock is None:
            return 0
        wanted = min(MAX_SOCKET_SEND_BUFFER, self.max_unsent_bytes // 4)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, wanted)
            return sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)
        except OSError as exc:
            # Not fatal: the byte bound then counts only what this process holds.
            log.warning("cannot cap a socket's send buffer: %s", exc)
            return 0

    async def remove(self, sub: Subscriber) -> None:
        self.subscribers[sub.stream].discard(sub)
        if sub.writer is not None:
            sub.writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sub.writer

    def connection_counts(self) -> dict[str, int]:
        return {s.value: len(subs) for s, subs in self.subscribers.items() if s != Stream.INGEST}

    def go_live(self, sub: Subscriber, frames: Iterable[bytes]) -> None:
        """End syncing: queue ``frames`` (snapshot or replay, already filtered) in order."""
        for frame in frames:
            sub.outbox.append(frame)
            sub.queued_bytes += len(frame)
            sub.requested_bytes += len(frame)
        sub.syncing = False
        sub.sync_events.clear()
        sub.sync_alerts.clear()
        sub.sync_progress.clear()
        sub.wake.set()

    def send_direct(self, sub: Subscriber, frame: bytes) -> None:
        """Queue one frame for this client only (pong, error, a refresh snapshot)."""
        self._enqueue(sub, frame)

    def _enqueue(self, sub: Subscriber, frame: bytes) -> None:
        """Queue a frame behind the others; a client over its byte bound is closed instead."""
        if sub.dropped:
            return
        sub.outbox.append(frame)
        sub.queued_bytes += len(frame)
        unsent = self.unsent_bytes(sub)
        if unsent > self.max_unsent_bytes:
            self._drop(sub, f"{unsent} bytes unread, over {self.max_unsent_bytes}")
            return
        sub.wake.set()

    def unsent_bytes(self, sub: Subscriber) -> int:
        """What the client has not read yet, in bytes, counting its socket's kernel buffer
        as full (it is capped) and not counting the snapshot or replay it asked for."""
        transport = sub.ws.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        behind = sub.queued_bytes - sub.requested_bytes
        return behind + buffered + sub.socket_buffer_bytes

    def _take_frame(self, sub: Subscriber) -> bytes:
        """The next frame for the writer: queued ones first, then a sample, then rows."""
        if sub.outbox:
            frame = sub.outbox.popleft()
            sub.queued_bytes -= len(frame)
            sub.requested_bytes = max(0, sub.requested_bytes - len(frame))
            return frame
        if sub.latest_sample is not None:
            frame, sub.latest_sample = sub.latest_sample, None
            sub.delivered_seq = sub.latest_sample_seq
            return frame
        return self._progress_frame(sub)

    async def _write_loop(self, sub: Subscriber) -> None:
        stream = sub.stream.value
        ws = sub.ws
        try:
            while not sub.dropped:
                await sub.wake.wait()
                sub.wake.clear()
                while not (sub.syncing or sub.dropped) and (
                    sub.outbox or sub.latest_sample or sub.pending_rows
                ):
                    frame = self._take_frame(sub)
                    sub.sending = True
                    try:
                        # The deadline: a client that takes no bytes for this long is gone.
                        async with asyncio.timeout(self.send_timeout_s):
                            # text=True: the bytes are UTF-8 JSON; sent as a text frame as-is.
                            await ws.send(frame, text=True)
                    except TimeoutError:
                        self._drop(sub, f"a frame waited over {self.send_timeout_s:g} s")
                        return
                    finally:
                        sub.sending = False
                    self.counters.frames_sent[stream] += 1
        except ConnectionClosed:
            pass

    def _progress_frame(self, sub: Subscriber) -> bytes:
        """One ``progress`` frame of the client's merged rows, with the current learner
        total (a learner-scoped client's is its own learner: 1 once it has rows)."""
        data: dict[str, Any] = {kind: [] for kind in ROW_KEYS}
        for (kind, _), row in sub.pending_rows.items():
            data[kind].append(row)
        sub.pending_rows.clear()
        data["total_learners"] = self.total_learners if sub.learner is None else 1
        data["progress_seq"] = sub.progress_seq
        sub.delivered_seq = self.seq[Stream.DASHBOARD]
        return envelope(Stream.DASHBOARD, ServerType.PROGRESS, sub.delivered_seq, data)

    def _drop(self, sub: Subscriber, cause: str) -> None:
        """Close a client that fell too far behind (code 4008); it resumes from the store.

        ``cause`` is for the log only: the close reason is always TOO_SLOW_REASON.
        """
        if sub.dropped:
            return
        sub.dropped = True
        self.counters.dropped_clients[sub.stream.value] += 1
        # Never the request path: its query may hold a token secret.
        log.warning(
            "closing slow %s client (learner %s, token %s): %s",
            sub.stream.value,
            sub.learner or "-",
            sub.token_id or "-",
            cause,
        )
        sub.outbox.clear()
        sub.queued_bytes = sub.requested_bytes = 0
        sub.latest_sample = None
        sub.pending_rows.clear()
        sub.wake.set()
        # Keep a reference until it is done: the loop only holds tasks weakly.
        task = asyncio.create_task(close_slow_client(sub.ws, grace_s=self.send_timeout_s))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # Activity

    def publish_events(self, stored: list[StoredEvent]) -> None:
        """Queue committed events; they go out in frames every ``activity_flush_s``."""
        if stored:
            self._pending_events.extend(stored)
            self.seq[Stream.ACTIVITY] = stored[-1].seq
            self._flush_wake.set()

    def _flush_events(self) -> None:
        events, self._pending_events = self._pending_events, []
        if not events:
            return
        subs = self.subscribers[Stream.ACTIVITY]
        if not subs:
            return
        by_scope: dict[str | None, bytes] = {}
        # Clients with nothing queued and room in their socket buffer get the frame
        # written at once, all in one broadcast() pass (no task switch per client).
        direct: dict[bytes, list[ServerConnection]] = {}
        for sub in subs:
            if sub.dropped:
                continue
            if sub.syncing:
                sub.sync_events.extend(
                    e for e in events if sub.learner is None or e.event.learner == sub.learner
                )
                continue
            if sub.delivered_seq >= events[0].seq:
                # Its snapshot already held some of these (they were committed while it synced).
                frame = self.events_frame(
                    [e for e in events if e.seq > sub.delivered_seq], sub.learner
                )
            else:
                frame = by_scope.get(sub.learner, b"")
                if sub.learner not in by_scope:
                    frame = self.events_frame(events, sub.learner)
                    by_scope[sub.learner] = frame
            sub.delivered_seq = max(sub.delivered_seq, events[-1].seq)
            if not frame:
                continue
            if not sub.outbox and not sub.sending and self._has_room(sub.ws):
                direct.setdefault(frame, []).append(sub.ws)
                continue
            if len(sub.outbox) >= sub.buffer_frames:
                self._drop(sub, f"over {sub.buffer_frames} frames behind")
                continue
            self._enqueue(sub, frame)
        for frame, connections in direct.items():
            broadcast(connections, frame, text=True)
            self.counters.frames_sent[Stream.ACTIVITY.value] += len(connections)

    @staticmethod
    def _has_room(ws: ServerConnection) -> bool:
        """True while the socket's unsent bytes are under the connection's write limit.

        Past it the client is behind: its frames queue in the outbox, where the
        writer's awaited send applies backpressure and the buffer bound applies.
        """
        transport = ws.transport
        return transport is not None and transport.get_write_buffer_size() <= WRITE_LIMIT_BYTES

    @staticmethod
    def events_frame(events: list[StoredEvent], learner: str | None) -> bytes:
        """One ``events`` frame (empty bytes when no event is in scope).

        Built from the stored JSON text of each event, so no event is encoded
        twice; ``seq`` is the last event's.
        """
        in_scope = [e for e in events if learner is None or e.event.learner == learner]
        if not in_scope:
            return b""
        texts = ",".join(event_json(e.seq, e.body) for e in in_scope)
        return envelope_from_json(
            Stream.ACTIVITY, ServerType.EVENTS, in_scope[-1].seq, f'{{"events":[{texts}]}}'
        )

    # Dashboard

    def publish_progress(self, changes: ProgressChanges, progress_seq: int) -> None:
        """Queue the rows a projector span changed (as of watermark ``progress_seq``);
        summaries are recomputed and sent every flush."""
        self.received_progress_seq = max(self.received_progress_seq, progress_seq)
        if changes:
            self._pending_progress.append(changes)
            self._flush_wake.set()

    def take_progress(self) -> list[ProgressChanges]:
        pending, self._pending_progress = self._pending_progress, []
        return pending

    def put_back_progress(self, pending: list[ProgressChanges]) -> None:
        """Pending rows a flush could not send yet go back in front of newer ones."""
        self._pending_progress[:0] = pending

    def start_dashboard(self, sub: Subscriber, snapshot_seq: int) -> None:
        """After a dashboard client's snapshot (watermark ``snapshot_seq``) was read: keep
        only the rows delivered meanwhile that are newer than it, for after the snapshot."""
        if sub.progress_seq <= snapshot_seq:
            sub.pending_rows.clear()  # merged before: the snapshot has them or newer
        sub.progress_seq = max(sub.progress_seq, snapshot_seq)
        for seq, rows in sub.sync_progress:
            if seq > snapshot_seq:
                self._merge_rows(sub, rows)
                sub.progress_seq = max(sub.progress_seq, seq)
        sub.sync_progress.clear()

    def _merge_rows(self, sub: Subscriber, rows: dict[str, list[dict[str, Any]]]) -> None:
        """Merge rows into a client's pending set (the newest per key)."""
        for kind, kind_rows in rows.items():
            key_fields = ROW_KEYS[kind]
            for row in kind_rows:
                key = (kind, tuple(row[k] for k in key_fields))
                if key in sub.pending_rows:
                    self.counters.conflated[Stream.DASHBOARD.value] += 1
                sub.pending_rows[key] = row

    def deliver_rows(
        self,
        learner_rows: dict[str, list[dict[str, Any]]],
        summaries: dict[str, list[dict[str, Any]]],
        *,
        progress_seq: int,
        total_learners: int | None = None,
    ) -> None:
        """Merge changed rows into each dashboard client's pending set (newest per key).

        ``learner_rows`` carry a ``learner``: a learner-scoped client gets its
        own (its ``modules`` are its module rows); everyone else gets the
        ``learners`` and ``learner_paths`` rows and the ``summaries`` (path and
        module aggregates). Every row reflects the events up to ``progress_seq``
        and none after; a client whose snapshot is as new skips them.
        ``total_learners``: the store's learner count now (None: unchanged, when
        no unscoped client needed it).
        """
        if total_learners is not None:
            self.total_learners = total_learners
        self.progress_seq = max(self.progress_seq, progress_seq)
        if not any(learner_rows.values()) and not any(summaries.values()):
            for sub in self.subscribers[Stream.DASHBOARD]:
                if not sub.syncing:
                    sub.progress_seq = max(sub.progress_seq, progress_seq)
            return
        self.seq[Stream.DASHBOARD] += 1
        unscoped = {k: v for k, v in learner_rows.items() if k != "modules"} | summaries
        # Grouped once, not filtered once per learner-scoped client.
        by_learner: dict[str, dict[str, list]] = defaultdict(
            lambda: {kind: [] for kind in learner_rows}
        )
        for kind, rows in learner_rows.items():
            for row in rows:
                by_learner[row["learner"]][kind].append(row)
        nothing: dict[str, list] = {}
        for sub in self.subscribers[Stream.DASHBOARD]:
            if sub.progress_seq >= progress_seq:
                continue  # its snapshot was read at this watermark or a later one
            mine = unscoped if sub.learner is None else by_learner.get(sub.learner, nothing)
            if sub.syncing:
                # Its snapshot is being read: kept aside, merged if newer than the snapshot.
                sub.sync_progress.append((progress_seq, mine))
                continue
            sub.progress_seq = progress_seq
            self._merge_rows(sub, mine)
            # Rows merge by key, but new keys pile up while a client's last frame is stuck.
            pending = len(sub.pending_rows) * ROW_BYTES_ESTIMATE
            if sub.sending and pending + self.unsent_bytes(sub) > self.max_unsent_bytes:
                self._drop(sub, f"about {pending} bytes of rows unsent")
            elif sub.pending_rows and not sub.syncing:
                sub.wake.set()

    # Metrics

    def publish_sample(
        self, sample: dict[str, Any], per_learner: dict[str, dict] | None = None
    ) -> None:
        """Offer a sample to every metrics client; an unsent older one is replaced."""
        self.seq[Stream.METRICS] += 1
        seq = self.seq[Stream.METRICS]
        frame = envelope(Stream.METRICS, ServerType.SAMPLE, seq, sample)
        for sub in self.subscribers[Stream.METRICS]:
            mine = frame
            if sub.learner is not None:
                if per_learner is None or sub.learner not in per_learner:
                    continue
                mine = envelope(Stream.METRICS, ServerType.SAMPLE, seq, per_learner[sub.learner])
            if sub.syncing:
                continue
            if sub.latest_sample is not None:
                self.counters.conflated[Stream.METRICS.value] += 1
            sub.latest_sample = mine
            sub.latest_sample_seq = seq
            sub.wake.set()

    # Alerts

    def publish_alert_changes(self, changes: list[dict[str, Any]]) -> None:
        """Queue alert changes ({seq, change, alert}) to every alerts client; never dropped.

        A client whose snapshot or replay already held a change (read from the
        store before the feed saw it) does not get it again: each change reaches
        each client exactly once, in seq order.
        """
        if not changes:
            return
        self.seq[Stream.ALERTS] = max(self.seq[Stream.ALERTS], changes[-1]["seq"])
        frames: list[tuple[dict[str, Any], bytes]] = []
        for change in changes:
            try:
                frames.append((change, alert_frame(change)))
            except ValueError:
                # Not encodable (a value an older version stored): skip it, keep serving.
                log.warning("skipping alert change %s: not encodable as JSON", change["seq"])
        for sub in self.subscribers[Stream.ALERTS]:
            for change, frame in frames:
                if sub.learner is not None and change["alert"].get("learner") != sub.learner:
                    continue
                if sub.syncing:
                    sub.sync_alerts.append(change)
                elif change["seq"] > sub.delivered_seq:
                    self._enqueue(sub, frame)
                    sub.delivered_seq = change["seq"]

    # The flush loop

    async def run_flusher(self, on_progress) -> None:
        """Flush activity every ``activity_flush_s`` and progress every ``dashboard_flush_s``.

        ``on_progress`` is an async callable turning pending progress changes
        into row deltas (it reads summaries from the store).
        """
        last_dashboard = 0.0
        last_flush = 0.0
        while True:
            await self._flush_wake.wait()
            # A fixed cadence: a lone event goes out at once, a burst waits at most one
            # interval after the previous flush and then leaves as one frame.
            delay = last_flush + self.activity_flush_s - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._flush_wake.clear()
            self._flush_events()
            now = last_flush = time.monotonic()
            if self._pending_progress:
                if now - last_dashboard >= self.dashboard_flush_s:
                    pending = self.take_progress()
                    try:
                        sent = await on_progress(pending)
                    except Exception:
                        log.exception("dashboard flush failed")
                        sent = True
                    if sent:
                        last_dashboard = now
                    else:
                        # The store is ahead of the spans here: retry on the next tick.
                        self.put_back_progress(pending)
                if self._pending_progress:
                    self._flush_wake.set()


async def close_slow_client(ws: ServerConnection, *, grace_s: float) -> None:
    """Close with 4008; abort the connection if the close cannot be sent, or is not
    answered within ``grace_s`` seconds (the close frame waits behind what the client
    has not read, like any frame): either way the connection ends."""
    try:
        async with asyncio.timeout(grace_s):
            await ws.close(CloseCode.TOO_SLOW, TOO_SLOW_REASON)
    except TimeoutError:
        log.info("slow client did not answer the close; aborting")
    except Exception as exc:
        log.warning("closing a slow client failed (%s); aborting", exc)
    finally:
        transport = ws.transport
        if transport is not None and not transport.is_closing():
            transport.abort()


def alert_frame(change: dict[str, Any]) -> bytes:
    """The ``alert`` frame of one logged alert change ({seq, change, alert})."""
    return envelope(
        Stream.ALERTS,
        ServerType.ALERT,
        change["seq"],
        {"change": change["change"], "alert": change["alert"]},
    )
