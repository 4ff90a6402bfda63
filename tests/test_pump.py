"""The pump (jacmon/sources/pump.py): tally, backoff while the sink is away, recovery, stop.

The sink here is a tiny in-memory store with a switch that takes it away; the
source is a list of events read from a position kept in that store, as the LRS
tailer keeps its watermark. Waits are hundredths of a second.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Sequence
from typing import Any

import pytest

from jacmon.client.ingest import Ack, Rejection
from jacmon.errors import JacmonError
from jacmon.sources.pump import (
    Backoff,
    Batch,
    Outage,
    Pump,
    Refusal,
    SinkAway,
    Tally,
    Unavailable,
)

CURSOR = "test:position"


class MemorySink:
    """Stores events by id (a repeated id is a duplicate, a missing one is refused) and
    cursors; while ``away``, every call and reconnect raises :class:`SinkAway`."""

    def __init__(self) -> None:
        self.events: dict[str, Any] = {}
        self.cursors: dict[str, str] = {}
        self.away = False
        self.reconnects = 0

    def _check(self) -> None:
        if self.away:
            raise SinkAway("sink switched off")

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        self._check()
        ack = Ack(accepted=0, duplicates=0)
        for index, event in enumerate(events):
            if "id" not in event:
                ack.rejected.append(Rejection(index, "field 'id' is missing"))
            elif event["id"] in self.events:
                ack.duplicates += 1
            else:
                self.events[event["id"]] = event
                ack.accepted += 1
        if cursor is not None:
            self.cursors[cursor[0]] = cursor[1]
        return ack

    async def get_cursor(self, name: str) -> str | None:
        self._check()
        return self.cursors.get(name)

    async def reconnect(self) -> None:
        self.reconnects += 1
        self._check()


class ListSource:
    """``events`` in batches of ``size``, each batch's cursor the index after it."""

    def __init__(self, sink: MemorySink, events: list[dict[str, Any]], size: int = 2) -> None:
        self.sink = sink
        self.events = events
        self.size = size
        self.position: int | None = None
        self.reloads = 0

    def reload(self) -> None:
        self.reloads += 1
        self.position = None

    async def batches(self) -> AsyncGenerator[Batch, None]:
        if self.position is None:
            self.position = int(await self.sink.get_cursor(CURSOR) or 0)
        while self.position < len(self.events):
            end = min(self.position + self.size, len(self.events))
            origins = [(i, f"line {i + 1}") for i in range(self.position, end)]
            yield Batch(self.events[self.position : end], (CURSOR, str(end)), origins)
            # Resumed: the batch and its cursor are stored.
            self.position = end


async def wait_until(condition, what: str, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def test_drain_tallies_accepted_duplicates_and_rejections_by_origin() -> None:
    sink = MemorySink()
    sink.events["e1"] = {"id": "e1"}  # already stored: a duplicate
    events = [{"id": "e0"}, {"id": "e1"}, {"no": "id"}, {"id": "e3"}, {"id": "e4"}]
    tally = Tally()
    seen: list[int] = []
    pump = Pump(sink, tally, on_batch=lambda t: seen.append(t.accepted))
    source = ListSource(sink, events)
    await pump.drain(source)
    assert (tally.accepted, tally.duplicates, tally.outages) == (3, 1, 0)
    assert tally.rejected == [Refusal("line 3", "field 'id' is missing", 2)]
    assert seen == [1, 2, 3]  # after each of the three batches
    assert sink.cursors[CURSOR] == "5"
    # A second pass starts from the position: nothing to send, nothing counted.
    await pump.drain(source)
    assert (tally.accepted, tally.duplicates) == (3, 1)


async def test_an_empty_batch_is_sent_only_with_a_cursor() -> None:
    class Empties:
        async def batches(self) -> AsyncGenerator[Batch, None]:
            yield Batch([])
            yield Batch([], (CURSOR, "moved"))

    sink = MemorySink()
    await Pump(sink, Tally()).drain(Empties())
    assert sink.cursors == {CURSOR: "moved"}


async def test_follow_backs_off_while_the_sink_is_away_then_recovers() -> None:
    sink = MemorySink()
    events = [{"id": f"e{i}"} for i in range(4)]
    source = ListSource(sink, events)
    tally = Tally()
    outages: list[Outage] = []
    pump = Pump(sink, tally, on_outage=outages.append)
    stop = asyncio.Event()
    backoff = Backoff(first_s=0.01, max_s=0.03)
    sink.away = True
    task = asyncio.create_task(pump.follow(source, stop, interval_s=0.01, backoff=backoff))
    try:
        await wait_until(lambda: len(outages) >= 5, "five outages")
        sink.away = False
        await wait_until(lambda: len(sink.events) == 4, "the events after recovery")
        # A second outage backs off from the first wait again.
        seen = len(outages)
        sink.away = True
        events.append({"id": "e4"})
        await wait_until(lambda: len(outages) >= seen + 2, "the second outage")
        sink.away = False
        await wait_until(lambda: len(sink.events) == 5, "the event sent after the second outage")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [o.wait_s for o in outages[:5]] == [0.01, 0.02, 0.03, 0.03, 0.03]
    assert [o.wait_s for o in outages[seen : seen + 2]] == [0.01, 0.02]
    assert {o.side for o in outages} == {"sink"}
    assert all(isinstance(o.error, SinkAway) for o in outages)
    assert tally.outages == len(outages)
    # Every event once: the cursor, re-read after each reconnect, kept the source in place.
    assert (tally.accepted, tally.duplicates, tally.rejected) == (5, 0, [])
    assert sink.cursors[CURSOR] == "5"
    # One reconnect after each wait; the two that worked made the source reload.
    assert sink.reconnects == len(outages)
    assert source.reloads == 2


async def test_a_source_outage_uses_the_same_backoff() -> None:
    class Flaky(ListSource):
        failures = 3

        async def batches(self) -> AsyncGenerator[Batch, None]:
            if self.failures:
                self.failures -= 1
                raise Unavailable("source switched off")
            async for batch in super().batches():
                yield batch

    sink = MemorySink()
    source = Flaky(sink, [{"id": "e0"}])
    outages: list[Outage] = []
    stop = asyncio.Event()
    pump = Pump(sink, Tally(), on_outage=outages.append)
    backoff = Backoff(first_s=0.01, max_s=0.02)
    task = asyncio.create_task(pump.follow(source, stop, interval_s=0.01, backoff=backoff))
    try:
        await wait_until(lambda: "e0" in sink.events, "the event")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [(o.side, o.wait_s) for o in outages] == [
        ("source", 0.01),
        ("source", 0.02),
        ("source", 0.02),
    ]
    assert source.reloads == 0  # the sink never failed: the position stands


async def test_faults_raise_unless_retried_then_wait_the_longest_delay() -> None:
    class Broken:
        passes = 0
        reloads = 0

        def reload(self) -> None:
            self.reloads += 1

        async def batches(self) -> AsyncGenerator[Batch, None]:
            self.passes += 1
            raise JacmonError("bad credentials")
            yield  # an async generator

    stop = asyncio.Event()
    backoff = Backoff(first_s=0.01, max_s=0.05)
    with pytest.raises(JacmonError, match="bad credentials"):
        await Pump(MemorySink(), Tally()).follow(Broken(), stop, interval_s=0.01, backoff=backoff)

    source = Broken()
    outages: list[Outage] = []
    pump = Pump(MemorySink(), Tally(), on_outage=outages.append, retry_faults=True)
    task = asyncio.create_task(pump.follow(source, stop, interval_s=0.01, backoff=backoff))
    try:
        await wait_until(lambda: len(outages) >= 2, "two faults")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert [(o.side, o.wait_s) for o in outages[:2]] == [("fault", 0.05), ("fault", 0.05)]
    assert source.reloads == len(outages)


async def test_stop_ends_follow_during_a_wait() -> None:
    sink = MemorySink()
    source = ListSource(sink, [{"id": "e0"}])
    stop = asyncio.Event()
    pump = Pump(sink, Tally())
    backoff = Backoff(first_s=60, max_s=60)
    task = asyncio.create_task(pump.follow(source, stop, interval_s=60, backoff=backoff))
    await wait_until(lambda: "e0" in sink.events, "the first pass")
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 10)
    # The minute-long wait between passes ended with the stop, not the minute.
    assert time.monotonic() - started < 5
