"""Committed batches back into seq order, each event once: what a node delivers.

Batches reach a node from its own commits and, on a bus between nodes, from the
others', in whatever order the network gives. The store's sequence is gap-free
and in commit order, so the node delivers exactly ``next_seq``, ``next_seq + 1``,
...: a batch that starts later waits for the ones before it (they are committed
already, only not here yet), an event at or below what was delivered is a repeat
and is dropped. When a gap stays open (a message lost, a writer that died
between its commit and its publish, a bus restart) the caller reads the missing
seqs from the store and offers them like any batch.

No I/O here: the bus decides when a gap has waited long enough.
"""

from __future__ import annotations

import heapq
import itertools
import time
from collections.abc import Callable

from jacmon.bus.facts import EventsCommitted


class Sequencer:
    """Orders :class:`EventsCommitted` facts by seq and drops what was delivered."""

    def __init__(self, next_seq: int, *, clock: Callable[[], float] = time.monotonic):
        #: The seq the next delivered event must have.
        self.next_seq = next_seq
        self._clock = clock
        #: Waiting batches by first seq (a counter breaks ties without comparing facts).
        self._waiting: list[tuple[int, int, EventsCommitted]] = []
        self._order = itertools.count()
        #: When the current gap opened (clock seconds), None when nothing waits.
        self._gap_since: float | None = None

    def offer(self, fact: EventsCommitted) -> list[EventsCommitted]:
        """Take a committed batch; return the batches now deliverable, in seq order."""
        if not fact.stored or fact.last_seq < self.next_seq:
            return []  # all of it delivered already
        heapq.heappush(self._waiting, (fact.first_seq, next(self._order), fact))
        ready: list[EventsCommitted] = []
        while self._waiting and self._waiting[0][0] <= self.next_seq:
            _, _, head = heapq.heappop(self._waiting)
            if head.last_seq < self.next_seq:
                continue
            if head.first_seq < self.next_seq:
                # Partly delivered (a store fill overlapping a late message): the rest only.
                head = EventsCommitted([e for e in head.stored if e.seq >= self.next_seq])
            ready.append(head)
            self.next_seq = head.last_seq + 1
        self._gap_since = None if not self._waiting else (self._gap_since or self._clock())
        return ready

    def skip_to(self, seq: int) -> list[EventsCommitted]:
        """Give up on the seqs before ``seq`` (the store no longer has them); return the
        waiting batches now deliverable."""
        self.next_seq = max(self.next_seq, seq)
        ready: list[EventsCommitted] = []
        waiting, self._waiting = self._waiting, []
        self._gap_since = None
        for _, _, fact in sorted(waiting, key=lambda item: item[:2]):
            ready.extend(self.offer(fact))
        return ready

    def gap(self) -> tuple[int, int] | None:
        """The missing seqs ``(first, last)`` before the earliest waiting batch, or None."""
        if not self._waiting:
            return None
        return self.next_seq, self._waiting[0][0] - 1

    def gap_age(self) -> float:
        """How long the current gap has been open, in seconds (0 when there is none)."""
        return 0.0 if self._gap_since is None else self._clock() - self._gap_since

    def waiting(self) -> int:
        """Batches waiting behind a gap."""
        return len(self._waiting)
