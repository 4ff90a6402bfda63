"""The Redis bus between two nodes: every committed event reaches the other node once, in
seq order, through a Redis restart and a writer that died before it published; the
leader's projector spans reach it in watermark order, a lost one read back from the store.

Two stores on one SQLite file stand for two nodes of one shared store (the bus reads
gaps back from the store); Redis is a real ``redis-server`` of the test's own.
"""

from __future__ import annotations

import asyncio

from support import event, until

from jacmon.bus import EventsCommitted, ProgressProjected
from jacmon.bus import redis as redis_bus
from jacmon.bus.redis import RedisBus
from jacmon.events import validate_event
from jacmon.store import Store

TIMEOUT_S = 20.0


class Collector:
    """What one node's subscriber got: seqs in delivery order, and the projector spans
    ((first_seq, last_seq) and the learners whose rows came with each)."""

    def __init__(self, bus: RedisBus):
        self.seqs: list[int] = []
        self.spans: list[tuple[int, int]] = []
        self.learners: list[set[str]] = []
        bus.subscribe(EventsCommitted, self.take)
        bus.subscribe(ProgressProjected, self.take_progress)

    def take(self, fact: EventsCommitted) -> None:
        self.seqs += [e.seq for e in fact.stored]

    def take_progress(self, fact: ProgressProjected) -> None:
        self.spans.append((fact.first_seq, fact.last_seq))
        self.learners.append({row["learner"] for row in fact.changes.learners})

    async def until(self, last: int) -> None:
        await until(lambda: self.seqs and self.seqs[-1] >= last, f"seq {last}", TIMEOUT_S)

    async def until_projected(self, last: int) -> None:
        await until(
            lambda: self.spans and self.spans[-1][1] >= last, f"watermark {last}", TIMEOUT_S
        )


async def project(store: Store, bus: RedisBus | None, *, max_events: int = 50_000) -> int:
    """Fold what is committed (as the leader's projector does) and publish each span
    (unless ``bus`` is None: a leader that died between its commit and its publish)."""
    for span in await store.catch_up(max_events=max_events):
        if bus is not None:
            bus.publish(ProgressProjected(span.first_seq, span.last_seq, span.changes))
    return await store.progress_seq()


async def commit(store: Store, bus: RedisBus | None, first: int, count: int) -> int:
    """Store events ``first``.. on ``store`` and publish the batch (unless ``bus`` is None:
    a writer that died between its commit and its publish)."""
    events = [validate_event(event(n, learner=f"u{n % 7}")) for n in range(first, first + count)]
    outcome = await store.ingest(events)
    if bus is not None:
        bus.publish(EventsCommitted(outcome.stored))
    return outcome.last_seq


async def two_nodes(tmp_path, url):
    writer_store = await Store.open(tmp_path / "shared.db")
    reader_store = await Store.open(tmp_path / "shared.db")
    writer = RedisBus(url, writer_store, node="a")
    reader = RedisBus(url, reader_store, node="b")
    await writer.start()
    await reader.start()
    return writer_store, reader_store, writer, reader


async def close(*parts) -> None:
    """Close each part, naming the one that does not close within TIMEOUT_S (a hang
    seen twice in loaded CI runs ended only at pytest-timeout, saying nothing of where)."""
    for part in parts:
        try:
            await asyncio.wait_for(part.close(), TIMEOUT_S)
        except TimeoutError:
            raise AssertionError(f"{part!r} did not close within {TIMEOUT_S} s") from None


async def test_every_batch_reaches_the_other_node_once_in_order(tmp_path, redis_server):
    a_store, b_store, a, b = await two_nodes(tmp_path, redis_server.url)
    mine, theirs = Collector(a), Collector(b)
    try:
        last = 0
        for n in range(40):
            last = await commit(a_store, a, n * 25 + 1, 25)
        await theirs.until(last)
        assert theirs.seqs == list(range(1, last + 1))
        assert mine.seqs == list(range(1, last + 1))  # its own, at commit
        assert b.filled_events == 0  # nothing was lost: no store reads
        # The leader's spans follow, in watermark order, with their rows.
        watermark = await project(a_store, a, max_events=300)
        await theirs.until_projected(watermark)
        assert (
            theirs.spans
            == mine.spans
            == [(first, min(first + 299, last)) for first in range(1, last + 1, 300)]
        )
        assert all(theirs.learners) and theirs.learners == mine.learners
    finally:
        await close(a, b, a_store, b_store)


async def commit_through_an_outage(a_store, a, b, theirs, redis) -> None:
    """50 events delivered, then Redis stops and 100 more are committed while it is down;
    returns once the reader has noticed."""
    await theirs.until(await commit(a_store, a, 1, 50))
    redis.stop()
    for n in range(10):
        await commit(a_store, a, 51 + n * 10, 10)
    await until(b.problem, "the reader to notice the bus is down", TIMEOUT_S)
    assert "unreachable" in b.problem()


async def test_a_redis_restart_leaves_no_gap_and_no_repeat(tmp_path, own_redis):
    a_store, b_store, a, b = await two_nodes(tmp_path, own_redis.url)
    theirs = Collector(b)
    try:
        # Committed while the bus is down: the writer holds them to append later.
        await commit_through_an_outage(a_store, a, b, theirs, own_redis)
        own_redis.start()
        last = await commit(a_store, a, 1000, 5)
        await theirs.until(last)
        assert theirs.seqs == list(range(1, last + 1))
        await until(lambda: b.problem() is None, "the bus to be up again", TIMEOUT_S)
    finally:
        await close(a, b, a_store, b_store)


async def test_batches_lost_with_the_bus_and_their_writer_come_from_the_store(tmp_path, own_redis):
    a_store, b_store, a, b = await two_nodes(tmp_path, own_redis.url)
    theirs = Collector(b)
    try:
        await commit_through_an_outage(a_store, a, b, theirs, own_redis)
        # The writer dies with the batches it could not append; Redis restarts empty.
        await a.close()
        own_redis.start()
        a = RedisBus(own_redis.url, a_store, node="a2")
        await a.start()
        last = await commit(a_store, a, 1000, 5)
        await theirs.until(last)
        assert theirs.seqs == list(range(1, last + 1))
        assert b.filled_events >= 100  # the lost batches were read back from the store
    finally:
        await close(a, b, a_store, b_store)


async def test_a_commit_never_published_is_found_by_the_head_check(
    tmp_path, redis_server, monkeypatch
):
    monkeypatch.setattr(redis_bus, "HEAD_CHECK_S", 0.2)
    a_store, b_store, a, b = await two_nodes(tmp_path, redis_server.url)
    theirs = Collector(b)
    try:
        await commit(a_store, a, 1, 10)
        # The writer "dies" after its commit: no later message reveals the gap.
        last = await commit(a_store, None, 11, 10)
        await theirs.until(last)
        assert theirs.seqs == list(range(1, last + 1))
    finally:
        await close(a, b, a_store, b_store)


async def test_an_unreadable_entry_is_skipped_and_its_seqs_come_from_the_store(
    tmp_path, redis_server
):
    a_store, b_store, a, b = await two_nodes(tmp_path, redis_server.url)
    theirs = Collector(b)
    try:
        await a._redis.xadd(redis_bus.STREAM_KEY, {"node": "x", "batch": "{not json"})
        last = await commit(a_store, None, 1, 5)
        last = await commit(a_store, a, 6, 5)
        await theirs.until(last)
        assert theirs.seqs == list(range(1, last + 1))
    finally:
        await close(a, b, a_store, b_store)


async def test_a_span_never_published_is_read_back_with_its_watermark(
    tmp_path, redis_server, monkeypatch
):
    monkeypatch.setattr(redis_bus, "HEAD_CHECK_S", 0.2)
    a_store, b_store, a, b = await two_nodes(tmp_path, redis_server.url)
    theirs = Collector(b)
    try:
        await commit(a_store, a, 1, 14)  # learners u1..u6, u0
        await theirs.until_projected(await project(a_store, a))
        # The leader dies after committing a span, before publishing it: events 15-16
        # are u1 and u2's; nothing later reveals the gap but the store's watermark.
        await commit(a_store, a, 15, 2)
        await project(a_store, None)
        await theirs.until_projected(16)
        assert theirs.spans == [(1, 14), (15, 16)]
        assert theirs.learners[-1] == {"u1", "u2"}  # their current rows, read back

        # A later span that arrives after a missed one waits for the fill, then is
        # delivered only if newer (here: it is the fill's own watermark, so dropped).
        await commit(a_store, a, 17, 3)
        await project(a_store, None)
        await commit(a_store, a, 20, 1)
        await theirs.until_projected(await project(a_store, a))
        assert [last for _, last in theirs.spans] == sorted({last for _, last in theirs.spans})
        assert theirs.spans[-1][1] == 20
    finally:
        await close(a, b, a_store, b_store)
