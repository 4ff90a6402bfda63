"""The one pump: a source's batches into a sink, tallied, with one backoff while a side is away.

A *source* yields :class:`Batch` values for one pass over what it has now (a
file to its end, every LRS page there is). The pump resumes it after a
``yield`` only once the sink stored that batch (and its cursor), so code after
the ``yield`` may move the source's own position forward. A *sink* stores a
batch in one transaction and answers with an :class:`~jacmon.client.ingest.Ack`:
:class:`~jacmon.client.ingest.IngestClient` over WebSocket,
:class:`~jacmon.sources.remote.RemoteSink` (the same, reconnecting), or the
server's in-process twin.

:meth:`Pump.drain` runs one pass and raises whatever fails (a file,
``jacmon ingest --lrs`` without ``--follow``). :meth:`Pump.follow` runs passes
until a stop event, ``interval_s`` apart, and rides out outages: while the
source or the sink is :class:`Unavailable` it waits with one :class:`Backoff`
(the first wait, doubling, capped), which starts afresh whenever something
succeeds or the side that is away changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from jacmon.errors import JacmonError

if TYPE_CHECKING:
    # Annotations only: the LRS client imports this module's errors without websockets.
    from jacmon.client.ingest import Ack

logger = logging.getLogger("jacmon.sources.pump")


class Unavailable(JacmonError):
    """A side of the pump cannot be reached right now (down, timing out, overloaded); retry."""


class SinkAway(Unavailable):
    """The sink's connection failed. A batch whose ack was lost may have been stored, so the
    source re-reads its cursor before the next pass (and the sink reconnects, if it can)."""


class Sink(Protocol):
    """Where the pump puts batches, and where a source reads its cursor back."""

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        """Store ``events`` and ``cursor`` (name, value) in one transaction; the ack."""
        ...

    async def get_cursor(self, name: str) -> str | None:
        """The value last stored for cursor ``name`` with a batch, or None if never."""
        ...


class Source(Protocol):
    """Something that has batches of events to send."""

    def batches(self) -> AsyncGenerator[Batch, None]:
        """One pass: the batches there are now. The pump resumes the generator after a
        batch only once the sink stored it."""
        ...


class FollowedSource(Source, Protocol):
    """A source read again and again (:meth:`Pump.follow`), with a position in the sink."""

    def reload(self) -> None:
        """The sink failed: re-read the position from the sink before the next pass."""
        ...


@dataclass(slots=True)
class Batch:
    """Events to store together, with the cursor that moves with them (None: none)."""

    events: list[Any]
    #: (name, value) stored in the same transaction as the events.
    cursor: tuple[str, str] | None = None
    #: For each event: (0-based index in the input or None, where it came from). Used to
    #: name a rejected event; an event without one is named by its index in the batch.
    origins: Sequence[tuple[int | None, str]] = ()


@dataclass(slots=True)
class Refusal:
    """One event that was not stored: where it came from and why.

    ``index`` is its 0-based position in the input, when the source counts one.
    """

    where: str
    error: str
    index: int | None = None

    def as_dict(self) -> dict[str, Any]:
        # The shape of the ingest ack's rejections ({index, error}), plus where.
        return {"index": self.index, "where": self.where, "error": self.error}


@dataclass(slots=True)
class Tally:
    """Running totals of one pump. Sources keep their own counts in a subclass."""

    #: Events the sink stored for the first time.
    accepted: int = 0
    #: Events the sink already had (a re-read, a re-run).
    duplicates: int = 0
    #: Events refused, by the sink (with its reason) or by the source's own checks.
    rejected: list[Refusal] = field(default_factory=list)
    #: Times the pump waited for a side that was away (or for a fault to clear).
    outages: int = 0

    def add(self, batch: Batch, ack: Ack) -> None:
        """Count the sink's answer to ``batch``."""
        self.accepted += ack.accepted
        self.duplicates += ack.duplicates
        for rejection in ack.rejected:
            if rejection.index < len(batch.origins):
                index, where = batch.origins[rejection.index]
            else:
                index, where = None, f"event {rejection.index}"
            self.rejected.append(Refusal(where, rejection.error, index))

    def refuse(self, where: str, error: str, index: int | None = None) -> None:
        """Count an event the source itself found bad (it is never sent)."""
        self.rejected.append(Refusal(where, error, index))


@dataclass(frozen=True, slots=True)
class Backoff:
    """How long to wait while a side is away, in seconds: ``first_s``, then doubling, at most
    ``max_s``. A fault (an error retrying may not fix) waits ``max_s`` every time."""

    first_s: float
    max_s: float


#: What failed: the source, the sink, or anything else (a fault, retried only if asked).
Side = Literal["source", "sink", "fault"]


@dataclass(frozen=True, slots=True)
class Outage:
    """One wait of :meth:`Pump.follow`: what failed, the error, and the wait in seconds."""

    side: Side
    error: JacmonError
    wait_s: float


def log_outage(outage: Outage) -> None:
    """The default outage report: one warning line."""
    logger.warning("%s away (%s); retrying in %.1fs", outage.side, outage.error, outage.wait_s)


class _Waits:
    """The backoff's state: the next wait, restarted by :meth:`reset` or a change of side."""

    def __init__(self, policy: Backoff) -> None:
        self.policy = policy
        self._side: Side | None = None
        self._next = policy.first_s

    def next(self, side: Side) -> float:
        if side == "fault":
            # A fault waits the longest delay; whatever comes after it starts afresh.
            self._side = "fault"
            return self.policy.max_s
        if side != self._side:
            self._side, self._next = side, self.policy.first_s
        wait = self._next
        self._next = min(wait * 2, self.policy.max_s)
        return wait

    def reset(self) -> None:
        self._side = None


async def wait_unless_stopped(stop: asyncio.Event, seconds: float) -> None:
    """Sleep ``seconds`` or until ``stop`` is set, whichever comes first."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)


class Pump:
    """Sends batches from sources to ``sink`` and counts the answers in ``tally``.

    ``on_outage`` reports each wait of :meth:`follow` (default: :func:`log_outage`);
    ``on_batch`` is called with the tally after each stored batch (progress
    displays). With ``retry_faults``, :meth:`follow` also waits out errors that
    are not :class:`Unavailable` (``jacmon serve``'s tailer: a fixed LRS is
    picked up without a restart); without, it raises them.
    """

    def __init__(
        self,
        sink: Sink,
        tally: Tally,
        *,
        on_outage: Callable[[Outage], None] = log_outage,
        on_batch: Callable[[Tally], None] | None = None,
        retry_faults: bool = False,
    ) -> None:
        self.sink = sink
        self.tally = tally
        self.on_outage = on_outage
        self.on_batch = on_batch
        self.retry_faults = retry_faults

    async def drain(self, source: Source) -> None:
        """One pass: send every batch ``source`` yields and tally each ack; failures raise.

        A batch with neither events nor a cursor is not sent.
        """
        async with contextlib.aclosing(source.batches()) as batches:
            async for batch in batches:
                if not batch.events and batch.cursor is None:
                    continue
                ack = await self.sink.send_batch(batch.events, cursor=batch.cursor)
                self.tally.add(batch, ack)
                if self.on_batch is not None:
                    self.on_batch(self.tally)

    async def follow(
        self,
        source: FollowedSource,
        stop: asyncio.Event,
        *,
        interval_s: float,
        backoff: Backoff,
    ) -> None:
        """Pass after pass until ``stop`` is set, ``interval_s`` seconds apart once caught up,
        waiting as ``backoff`` says while a side is away.

        An interrupted pass starts over from the source's position after the wait.
        When the sink was away it reconnects first, if it has ``reconnect()`` (one
        that raises :class:`SinkAway` is another outage), and the source reloads.
        """
        waits = _Waits(backoff)
        reconnect = getattr(self.sink, "reconnect", None)
        reconnect_due = False
        while not stop.is_set():
            try:
                if reconnect_due:
                    await reconnect()
                    reconnect_due = False
                    waits.reset()
                    source.reload()
                await self.drain(source)
            except SinkAway as exc:
                if reconnect is not None:
                    reconnect_due = True
                else:
                    source.reload()
                wait = self._outage("sink", exc, waits)
            except Unavailable as exc:
                wait = self._outage("source", exc, waits)
            except JacmonError as exc:
                if not self.retry_faults:
                    raise
                wait = self._outage("fault", exc, waits)
                source.reload()
            else:
                waits.reset()
                wait = interval_s
            await wait_unless_stopped(stop, wait)

    def _outage(self, side: Side, error: JacmonError, waits: _Waits) -> float:
        wait = waits.next(side)
        self.tally.outages += 1
        self.on_outage(Outage(side, error, wait))
        return wait
