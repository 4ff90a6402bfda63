"""The bus between nodes: committed batches on a Redis stream, ordered and gap-filled by seq.

Why a Redis **stream** and not pub/sub: a subscriber that reads slowly (a busy
node, a long GC pause) or reconnects after a blip picks up where it left off
within the stream's length, instead of losing whatever was published meanwhile;
pub/sub drops it (and disconnects a subscriber whose output buffer fills). Neither
is trusted for completeness: each node delivers strictly by the store's gap-free
``seq`` (:class:`~jacmon.bus.sequencer.Sequencer`), so whatever the bus loses
(a trimmed entry, a Redis restart, a writer that died between its commit and its
publish) shows as a gap and is read back from the store before anything after it
is delivered. Never a silent gap, never a repeat.

Committed events travel here (the hot path), and the leader's projector spans
(:class:`~jacmon.bus.facts.ProgressProjected`: the progress rows each span
changed), ordered by their watermark: a span that does not follow the last one
delivered (an entry lost, a leader that died between its commit and its
publish) is replaced by the rows read back from the store with the watermark
they reflect, so no node's dashboards miss a change or go back in time. Alert
changes, revoked tokens and catalog reloads are small seq'd tables every node
already polls in the shared store (1 s and 5 s), so they reach every node
without the bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from jacmon.bus.base import Bus
from jacmon.bus.facts import EventsCommitted, Fact, ProgressProjected
from jacmon.bus.sequencer import Sequencer
from jacmon.errors import EventValidationError
from jacmon.events import Event, validate_event
from jacmon.logs import redact
from jacmon.store import Store
from jacmon.store.types import ProgressChanges, StoredEvent

log = logging.getLogger("jacmon.bus")

#: The stream every node appends its committed batches to and reads everyone's from.
STREAM_KEY = "jacmon:events"
#: Entries the stream keeps (approximately): a reader further behind fills from the store.
STREAM_MAXLEN = 100_000
#: Entries read per XREAD, and how long one blocks waiting for new ones, in ms.
READ_COUNT = 500
READ_BLOCK_MS = 1000
#: How long any Redis reply may take beyond a blocking read's wait, in seconds.
SOCKET_TIMEOUT_S = 10.0
#: How long a gap may stay open before it is read from the store, in seconds: a message
#: from another node usually arrives within a few ms of its commit.
GAP_WAIT_S = 0.2
#: How often the store's newest seq is compared with what was delivered, in seconds
#: (finds a gap no later message reveals: a writer that died before publishing).
HEAD_CHECK_S = 1.0
#: Events read from the store per query when filling a gap.
FILL_CHUNK = 5000
#: Pause before reconnecting to Redis after a failure, in seconds (doubling to the max).
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0
#: Batches waiting to be appended while Redis is away; beyond it the oldest are dropped
#: (the other nodes fill them from the store by seq).
OUTBOX_LIMIT = 10_000


def encode_batch(fact: EventsCommitted, node: str) -> dict[str, str]:
    """The stream entry of one committed batch: its events' stored text."""
    body = {"events": [[e.seq, e.body] for e in fact.stored]}
    return {"node": node, "batch": json.dumps(body, separators=(",", ":"))}


def encode_progress(fact: ProgressProjected, node: str) -> dict[str, str]:
    """The stream entry of one projector span: its watermarks and the rows it changed."""
    changes = fact.changes
    body = {
        "first_seq": fact.first_seq,
        "last_seq": fact.last_seq,
        "paths": changes.paths,
        "modules": changes.modules,
        "learners": changes.learners,
        "recounted": sorted(changes.recounted),
    }
    return {"node": node, "progress": json.dumps(body, separators=(",", ":"))}


def decode_progress(fields: dict[str, str]) -> ProgressProjected:
    """The projector span of one stream entry."""
    body = json.loads(fields["progress"])
    return ProgressProjected(
        int(body["first_seq"]),
        int(body["last_seq"]),
        ProgressChanges(
            paths=list(body.get("paths", [])),
            modules=list(body.get("modules", [])),
            learners=list(body.get("learners", [])),
            recounted=set(body.get("recounted", [])),
        ),
    )


def stored_event(seq: int, body: str) -> StoredEvent:
    """A stored event back from its stored JSON text.

    The text is what the clients get; the decoded :class:`Event` serves scoping and
    the metrics windows. A body this version cannot read is still delivered (with
    what can be read of it) and logged: dropping it would leave a gap in the seqs.
    """
    try:
        decoded: Any = json.loads(body)
        return StoredEvent(seq, validate_event(decoded), body)
    except (ValueError, EventValidationError) as exc:
        log.warning("stored event %d cannot be read back (%s); passing it on as stored", seq, exc)
        decoded = decoded if isinstance(decoded := _loads_or_none(body), dict) else {}
        learner = decoded.get("learner")
        event = Event(
            id=str(decoded.get("id", seq)),
            type=str(decoded.get("type", "unknown")),
            ts=0.0,
            ts_text="",
            learner=learner if isinstance(learner, str) else "",
        )
        return StoredEvent(seq, event, body)


def _text(value: Any) -> str:
    """A Redis reply's bytes as text."""
    return value.decode() if isinstance(value, bytes) else str(value)


def _loads_or_none(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def decode_batch(fields: dict[str, str]) -> EventsCommitted:
    """The committed batch of one stream entry."""
    body = json.loads(fields["batch"])
    return EventsCommitted([stored_event(int(seq), text) for seq, text in body["events"]])


class RedisBus(Bus):
    """Committed batches between the nodes of one cluster, through one Redis stream.

    ``store`` is the shared store (gaps are read from it); ``node`` names this node in
    the entries it appends (its own come back and are dropped by seq).
    """

    def __init__(self, url: str, store: Store, *, node: str, key: str = STREAM_KEY):
        super().__init__()
        self.url = url
        self.store = store
        self.node = node
        self.key = key
        self.sequencer = Sequencer(store.last_seq + 1)
        #: Entries appended and read, gaps filled from the store (for /metrics).
        self.appended = 0
        self.received = 0
        self.filled_events = 0
        self._redis: aioredis.Redis | None = None
        self._outbox: asyncio.Queue[dict[str, str]] = asyncio.Queue()
        self._outbox_dropped = 0
        self._problem: str | None = None
        self._tasks: list[asyncio.Task] = []
        self._filling = asyncio.Lock()
        self._last_head_gap: int | None = None
        #: The projection watermark delivered here (progress facts arrive in its order).
        self.progress_seq = 0
        #: Spans that arrived after a missed one, waiting for the fill from the store.
        self._progress_held: list[ProgressProjected] | None = None
        self._last_progress_gap: int | None = None

    @property
    def where(self) -> str:
        """The Redis address for messages (no password)."""
        return redact(self.url.split("@")[-1])

    async def start(self) -> None:
        """Connect (failing with a clear error if Redis cannot be reached) and start the
        reader, the writer and the gap watch."""
        self.progress_seq = await self.store.progress_seq()
        # A bound on every reply too (the blocking XREAD waits READ_BLOCK_MS at most): a
        # Redis that accepts but never answers must not hang a node's start or its loops.
        self._redis = aioredis.from_url(
            self.url,
            socket_connect_timeout=5,
            socket_timeout=READ_BLOCK_MS / 1000 + SOCKET_TIMEOUT_S,
        )
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            await self._redis.aclose()
            from jacmon.errors import ConfigError

            raise ConfigError(
                f"the bus at {self.where} cannot be reached ({exc}); start Redis or fix "
                "server.bus (--bus)"
            ) from None
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="bus-reader"),
            asyncio.create_task(self._write_loop(), name="bus-writer"),
            asyncio.create_task(self._watch_loop(), name="bus-gap-watch"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks = []
        if self._redis is not None:
            await self._redis.aclose()

    def problem(self) -> str | None:
        return self._problem

    # Publishing

    def publish(self, fact: Fact) -> None:
        if isinstance(fact, EventsCommitted):
            self._offer(fact)
            self._append(encode_batch(fact, self.node))
        elif isinstance(fact, ProgressProjected):
            self._offer_progress(fact)
            self._append(encode_progress(fact, self.node))
        else:
            self.deliver(fact)

    def _append(self, entry: dict[str, str]) -> None:
        if self._outbox.qsize() >= OUTBOX_LIMIT:
            self._outbox.get_nowait()
            self._outbox_dropped += 1
        self._outbox.put_nowait(entry)

    def _offer_progress(self, fact: ProgressProjected) -> None:
        """Deliver a span that follows the watermark delivered; hold it behind a missed
        one (the watch fills that from the store); drop one already covered."""
        if self._progress_held is not None:
            self._progress_held.append(fact)
        elif fact.last_seq <= self.progress_seq:
            return
        elif fact.first_seq > self.progress_seq + 1:
            self._progress_held = [fact]
        else:
            # Starting at or before the watermark delivered: its rows are as of a later one.
            self.progress_seq = fact.last_seq
            self.deliver(fact)

    def _offer(self, fact: EventsCommitted) -> None:
        """Deliver what is now in order; the store's head moves with it."""
        for ready in self.sequencer.offer(fact):
            self.store.last_seq = max(self.store.last_seq, ready.last_seq)
            self.deliver(ready)

    async def _write_loop(self) -> None:
        """Append this node's batches to the stream, in commit order."""
        assert self._redis is not None
        pause = RECONNECT_FIRST_S
        while True:
            entry = await self._outbox.get()
            while True:
                try:
                    await self._redis.xadd(self.key, entry, maxlen=STREAM_MAXLEN, approximate=True)
                    self.appended += 1
                    pause = RECONNECT_FIRST_S
                    break
                except (RedisError, OSError) as exc:
                    self._note_down(exc)
                    await asyncio.sleep(pause)
                    pause = min(pause * 2, RECONNECT_MAX_S)

    # Receiving

    async def _read_loop(self) -> None:
        """Read everyone's batches; after a failure, reconnect and read from the newest
        (what was missed meanwhile is a gap the watch fills from the store)."""
        assert self._redis is not None
        last_id = "$"
        pause = RECONNECT_FIRST_S
        while True:
            try:
                if last_id == "$":
                    # Start after the newest entry now, pinned to its id: a blocking read
                    # of "$" again and again could skip what lands between two reads.
                    newest = await self._redis.xrevrange(self.key, count=1)
                    last_id = _text(newest[0][0]) if newest else "0-0"
                answer = await self._redis.xread(
                    {self.key: last_id}, count=READ_COUNT, block=READ_BLOCK_MS
                )
            except (RedisError, OSError) as exc:
                self._note_down(exc)
                last_id = "$"
                await asyncio.sleep(pause)
                pause = min(pause * 2, RECONNECT_MAX_S)
                continue
            pause = RECONNECT_FIRST_S
            self._note_up()
            for _key, entries in answer or ():
                for entry_id, fields in entries:
                    last_id = _text(entry_id)
                    self._receive(fields)

    def _receive(self, raw: dict[Any, Any]) -> None:
        fields = {_text(k): _text(v) for k, v in raw.items()}
        if fields.get("node") == self.node:
            return  # our own: delivered at commit
        try:
            if "progress" in fields:
                self._offer_progress(decode_progress(fields))
                return
            fact = decode_batch(fields)
        except (KeyError, TypeError, ValueError) as exc:
            # A bad entry takes nothing away: its seqs show as a gap and come from the store.
            log.warning("skipping a bus entry that cannot be read: %s", exc)
            return
        self.received += 1
        self._offer(fact)

    # Gaps

    async def _watch_loop(self) -> None:
        """Fill gaps that stay open GAP_WAIT_S; every HEAD_CHECK_S compare with the store."""
        since_head_check = 0.0
        while True:
            await asyncio.sleep(GAP_WAIT_S / 2)
            since_head_check += GAP_WAIT_S / 2
            try:
                gap = self.sequencer.gap()
                if gap is not None and self.sequencer.gap_age() >= GAP_WAIT_S:
                    await self.fill(*gap)
                if self._progress_held is not None:
                    await self.fill_progress()
                if since_head_check >= HEAD_CHECK_S:
                    since_head_check = 0.0
                    await self._check_head()
                    await self._check_progress_head()
            except Exception as exc:
                # The store may be down: try again next round, never stop watching.
                log.warning("filling a gap from the store failed: %s", exc)

    async def _check_head(self) -> None:
        """A committed seq this node has not delivered, twice in a row: fill up to it."""
        head = await self.store.committed_seq()
        behind = head if head >= self.sequencer.next_seq else None
        if behind is not None and self._last_head_gap is not None:
            await self.fill(self.sequencer.next_seq, min(behind, self._last_head_gap))
        self._last_head_gap = behind

    async def _check_progress_head(self) -> None:
        """The store's watermark ahead of what was delivered, twice in a row (a span no
        entry brought: its projector died between commit and publish): fill it."""
        watermark = await self.store.progress_seq()
        behind = watermark if watermark > self.progress_seq else None
        if behind is not None and self._last_progress_gap is not None:
            await self.fill_progress()
        self._last_progress_gap = behind

    async def fill_progress(self) -> None:
        """Deliver, in place of missed spans, the current rows of every learner with events
        after the watermark delivered (read with the store's watermark in one snapshot),
        then the spans held behind them that are newer still."""
        async with self._filling:
            fill = await self.store.progress_rows_since(self.progress_seq)
            held, self._progress_held = self._progress_held or [], None
            if fill is not None:
                log.info("progress spans to %d read back from the store", fill.last_seq)
                self.progress_seq = fill.last_seq
                self.deliver(ProgressProjected(fill.first_seq, fill.last_seq, fill.changes))
            for fact in sorted(held, key=lambda f: f.last_seq):
                if fact.last_seq > self.progress_seq:
                    self.progress_seq = fact.last_seq
                    self.deliver(fact)

    async def fill(self, first: int, last: int) -> None:
        """Read events ``first``..``last`` from the store and deliver them in order."""
        async with self._filling:
            while True:
                first = max(first, self.sequencer.next_seq)
                if first > last:
                    return
                rows = await self.store.event_rows_since(
                    first - 1, limit=min(FILL_CHUNK, last - first + 1)
                )
                if not rows or rows[0][0] > first:
                    # Retention deleted them before this node saw them: nothing to deliver.
                    upto = rows[0][0] - 1 if rows else last
                    log.warning("seqs %d-%d are no longer stored; skipping them", first, upto)
                    for ready in self.sequencer.skip_to(upto + 1):
                        self.deliver(ready)
                    if not rows:
                        return
                stored = [stored_event(seq, body) for seq, body in rows]
                self.filled_events += len(stored)
                log.info("filled seqs %d-%d from the store", stored[0].seq, stored[-1].seq)
                self._offer(EventsCommitted(stored))
                first = stored[-1].seq + 1

    def _note_down(self, exc: BaseException) -> None:
        problem = f"the bus at {self.where} is unreachable ({type(exc).__name__}: {exc})"
        if problem != self._problem:
            log.error("%s; retrying", problem)
        self._problem = problem

    def _note_up(self) -> None:
        if self._problem is not None:
            log.warning("the bus at %s works again (was: %s)", self.where, self._problem)
            self._problem = None
