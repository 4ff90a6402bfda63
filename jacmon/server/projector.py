"""The projector: folds committed events into progress behind ingest, on the leader.

Ingest acknowledges a batch once its events are committed; progress (module,
path and learner rows) is a projection of the event log that this loop keeps
current: each span folds everything after the watermark (at most
``max_span`` events) in one transaction with the new watermark
(:meth:`jacmon.store.base.Store.project`), then publishes the rows it changed
(:class:`~jacmon.bus.facts.ProgressProjected`) for the dashboards of every node.

Spans are made large on purpose: a span's cost is mostly per key (each learner,
path and module row it touches, and the learners' day sets), so folding 20,000
events over 2,000 learners costs ~6 us per event here where 1,000 cost ~36
(docs/benchmarks.md, "Spans"). After a commit wakes it, the projector
gathers until :data:`GATHER_EVENTS` events wait or the oldest has waited
:data:`GATHER_MAX_S`, then folds everything after the watermark in one span:
a bounded lag (well under a second) for a cost per event that falls as the load
rises. A span and an ingest batch take turns at the store's writer (an asyncio
lock, first come first served), so neither starves the other; ``max_span``
bounds how long one span holds it.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

from jacmon.bus import Bus, EventsCommitted, ProgressProjected
from jacmon.store import StorageUnavailable, Store
from jacmon.store.base import PROJECTION_SPAN

log = logging.getLogger("jacmon.projector")

#: Fold once this many committed events wait...
GATHER_EVENTS = 20_000
#: ...or once the oldest of them has waited this long, in seconds: the lag a span may add
#: so that a span is large (its cost per event falls as it grows).
GATHER_MAX_S = 0.4
#: How often the gathering projector looks at what waits, in seconds.
GATHER_POLL_S = 0.01
#: Pause after a failed span before trying again, in seconds (doubling to the max).
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 5.0
#: How often the projector looks at the store even without a wake-up, in seconds
#: (events another node committed while its bus was down, a backlog after a restart).
POLL_S = 1.0


class ProjectorStats:
    """What the projector did, for /metrics and the benchmark (counts since start)."""

    def __init__(self) -> None:
        self.spans = 0
        self.events = 0
        self.failures = 0
        #: Seconds spent in spans (the writer held by projection), total.
        self.busy_s = 0.0
        #: The watermark after the last span.
        self.progress_seq = 0
        #: The newest seq known committed (ingest's facts): lag in events is the difference.
        self.committed_seq = 0
        #: (last_seq, monotonic time) of batches committed and not yet projected: lag in
        #: seconds is how long the oldest has waited.
        self._unprojected: collections.deque[tuple[int, float]] = collections.deque()

    def committed(self, last_seq: int, at: float) -> None:
        self.committed_seq = max(self.committed_seq, last_seq)
        if last_seq > self.progress_seq:
            self._unprojected.append((last_seq, at))

    def projected(self, last_seq: int) -> None:
        self.progress_seq = max(self.progress_seq, last_seq)
        while self._unprojected and self._unprojected[0][0] <= self.progress_seq:
            self._unprojected.popleft()

    def lag_events(self) -> int:
        """Committed events not folded into progress yet."""
        return max(0, self.committed_seq - self.progress_seq)

    def oldest_unprojected_at(self) -> float | None:
        """When (monotonic seconds) the oldest batch not folded in yet was committed."""
        return self._unprojected[0][1] if self._unprojected else None

    def lag_s(self, now: float | None = None) -> float:
        """How long the oldest committed batch not folded in yet has waited, in seconds."""
        if not self._unprojected:
            return 0.0
        return max(0.0, (time.monotonic() if now is None else now) - self._unprojected[0][1])


class Projector:
    """Keeps the progress projection current while this node leads (see the module doc)."""

    def __init__(self, store: Store, bus: Bus, *, max_span: int = PROJECTION_SPAN):
        self.store = store
        self.bus = bus
        self.max_span = max_span
        self.stats = ProjectorStats()
        self._wake = asyncio.Event()
        bus.subscribe(EventsCommitted, self._on_commit)
        # Spans folded anywhere (this node's, or the leader's on another node): the lag
        # a follower's /metrics reports is the cluster's.
        bus.subscribe(ProgressProjected, self._on_projected)

    def _on_commit(self, fact: EventsCommitted) -> None:
        self.stats.committed(fact.last_seq, time.monotonic())
        self._wake.set()

    def _on_projected(self, fact: ProgressProjected) -> None:
        self.stats.projected(fact.last_seq)

    async def prime(self) -> None:
        """Read the watermark and the newest committed seq (every node, at start: the lag
        /metrics reports starts right)."""
        self.stats.projected(await self.store.progress_seq())
        self.stats.committed_seq = max(self.stats.committed_seq, await self.store.committed_seq())

    async def run(self) -> None:
        """Fold spans until cancelled; a failing span is retried, never skipped."""
        await self.prime()
        pause = RETRY_FIRST_S
        self._wake.set()  # a backlog from before a restart: fold it now
        while True:
            try:
                async with asyncio.timeout(POLL_S):
                    await self._wake.wait()
                await self._gather()
            except TimeoutError:
                pass  # a periodic look: fold whatever is there now
            self._wake.clear()
            try:
                await self.fold()
            except StorageUnavailable as exc:
                self._failed(exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                self._wake.set()
                continue
            except Exception as exc:
                # A row this version cannot fold must not stop progress for good: say
                # which span failed and keep trying (the store's data is unchanged).
                log.exception("projecting after seq %d failed", self.stats.progress_seq)
                self._failed(exc)
                await asyncio.sleep(pause)
                pause = min(pause * 2, RETRY_MAX_S)
                self._wake.set()
                continue
            pause = RETRY_FIRST_S

    async def _gather(self) -> None:
        """Wait until GATHER_EVENTS events wait or the oldest has waited GATHER_MAX_S."""
        oldest = self.stats.oldest_unprojected_at()
        deadline = (time.monotonic() if oldest is None else oldest) + GATHER_MAX_S
        while self.stats.lag_events() < GATHER_EVENTS:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, GATHER_POLL_S))

    def _failed(self, exc: BaseException) -> None:
        self.stats.failures += 1
        log.warning("projection paused: %s", exc)

    async def fold(self) -> None:
        """Fold what was gathered in one span, and more spans while a backlog of at least
        GATHER_EVENTS remains (after a restart, or a span that hit ``max_span``). Batches
        committed while a span runs wait for the next gathering: folding them at once
        would make many small, dear spans."""
        while True:
            started = time.monotonic()
            span = await self.store.project(max_events=self.max_span)
            if span is None:
                return
            self.stats.busy_s += time.monotonic() - started
            self.stats.spans += 1
            self.stats.events += span.last_seq - span.first_seq + 1
            self.bus.publish(ProgressProjected(span.first_seq, span.last_seq, span.changes))
            if self.stats.lag_events() < GATHER_EVENTS:
                return
            # Let ingest batches queued behind this span take the writer first.
            await asyncio.sleep(0)

    def prometheus_lines(self) -> list[str]:
        """The projector's samples in Prometheus text format (the node label is added by
        :func:`jacmon.server.ops.prometheus_text`)."""
        stats = self.stats
        lines: list[str] = []
        for metric, kind, help_text, value in (
            ("lag_events", "gauge", "Committed events not yet folded into progress.",
             stats.lag_events()),
            ("lag_seconds", "gauge", "How long the oldest committed batch not yet folded "
             "into progress has waited.", f"{stats.lag_s():.3f}"),
            ("seq", "gauge", "The projection watermark (progress_seq).", stats.progress_seq),
            ("spans_total", "counter", "Projector spans committed.", stats.spans),
            ("events_total", "counter", "Events folded into progress.", stats.events),
            ("failures_total", "counter", "Spans that failed (retried).", stats.failures),
        ):  # fmt: skip
            name = f"jacmon_projection_{metric}"
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"]
        return lines
