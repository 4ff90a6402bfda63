"""The gap-free event sequence under concurrent writers on separate connections (real PostgreSQL).

Each writer stands for a node: its own connection, batches of random size, some
rolled back. Stored seqs must be exactly 1..K, and a reader polling during the
run must never see a hole (seq k+1 committed while k is not).
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from jacmon.errors import StoreError
from jacmon.store.postgres import PgDatabase, sequence

WRITERS = 6
BATCHES_PER_WRITER = 25


@pytest.fixture
async def dsn(pg_dsn: str) -> str:
    """``pg_dsn`` migrated to the latest schema."""
    db = await PgDatabase.open(pg_dsn)
    await db.close()
    return pg_dsn


async def insert_events(conn: asyncpg.Connection, seqs: range, tag: str) -> None:
    await conn.executemany(
        "INSERT INTO events (seq, id, type, ts, received, learner, body)"
        " VALUES ($1, $2, 'module.progressed', 0, 0, 'u1', '{}')",
        [(seq, f"{tag}-{seq}") for seq in seqs],
    )


class Rollback(Exception):
    """A batch that fails after taking its numbers."""


async def test_numbers_are_taken_in_the_transaction_and_given_back_on_rollback(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            assert await sequence.allocate(conn, 3) == range(1, 4)
            assert await sequence.allocate(conn, 1) == range(4, 5)
        with pytest.raises(Rollback):
            async with conn.transaction():
                assert await sequence.allocate(conn, 10) == range(5, 15)
                raise Rollback
        async with conn.transaction():
            assert await sequence.lock(conn) == 4
            assert await sequence.allocate(conn, 2) == range(5, 7)
        assert await sequence.last_value(conn) == 6
        # Each sequence counts on its own.
        async with conn.transaction():
            assert await sequence.allocate(conn, 1, sequence.ALERT_CHANGES) == range(1, 2)
    finally:
        await conn.close()


async def test_outside_a_transaction_allocation_is_refused(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        with pytest.raises(StoreError, match="inside the batch's transaction"):
            await sequence.allocate(conn, 1)
        with pytest.raises(StoreError, match="inside the batch's transaction"):
            await sequence.lock(conn)
        async with conn.transaction():
            with pytest.raises(StoreError, match="no sequence 'nope'"):
                await sequence.allocate(conn, 1, "nope")
        with pytest.raises(ValueError, match="count must be >= 1"):
            await sequence.allocate(conn, 0)
    finally:
        await conn.close()


async def test_a_second_writer_waits_for_the_first_to_commit(dsn: str) -> None:
    first, second = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        tx = first.transaction()
        await tx.start()
        assert await sequence.allocate(first, 2) == range(1, 3)

        async def other_node() -> range:
            async with second.transaction():
                return await sequence.allocate(second, 1)

        waiting = asyncio.create_task(other_node())
        await asyncio.sleep(0.5)
        assert not waiting.done()  # held by the row lock until the first one ends
        await insert_events(first, range(1, 3), "a")
        await tx.commit()
        assert await asyncio.wait_for(waiting, 10) == range(3, 4)
    finally:
        await first.close()
        await second.close()


async def test_a_writer_that_dies_mid_batch_gives_its_numbers_back(dsn: str) -> None:
    doomed, survivor = await asyncpg.connect(dsn), await asyncpg.connect(dsn)
    try:
        tx = doomed.transaction()
        await tx.start()
        assert await sequence.allocate(doomed, 5) == range(1, 6)
        doomed.terminate()  # the node dies: the server rolls its transaction back
        async with survivor.transaction():
            assert await asyncio.wait_for(sequence.allocate(survivor, 1), 10) == range(1, 2)
    finally:
        await survivor.close()


async def test_concurrent_writers_with_rollbacks_store_exactly_1_to_k_in_commit_order(
    dsn: str,
) -> None:
    rng = random.Random(1414)
    plans = [
        [
            (rng.randint(1, 5), rng.random() < 0.3, rng.random() * 0.004)
            for _ in range(BATCHES_PER_WRITER)
        ]
        for _ in range(WRITERS)
    ]
    committed = 0
    observations: list[tuple[int, int]] = []
    done = asyncio.Event()

    async def writer(number: int) -> None:
        nonlocal committed
        conn = await asyncpg.connect(dsn)
        try:
            for batch, (size, roll_back, pause) in enumerate(plans[number]):
                try:
                    async with conn.transaction():
                        # As ingest will: lock, dedupe against what is stored, then allocate.
                        await sequence.lock(conn)
                        ids = [f"w{number}-b{batch}-{i}" for i in range(size)]
                        known = await conn.fetchval(
                            "SELECT count(*) FROM events WHERE id = ANY($1::text[])", ids
                        )
                        assert known == 0
                        seqs = await sequence.allocate(conn, size)
                        await conn.executemany(
                            "INSERT INTO events (seq, id, type, ts, received, learner, body)"
                            " VALUES ($1, $2, 'module.progressed', 0, 0, 'u1', '{}')",
                            list(zip(seqs, ids, strict=True)),
                        )
                        await asyncio.sleep(pause)  # hold the lock a while: others queue
                        if roll_back:
                            raise Rollback
                except Rollback:
                    continue
                committed += size
        finally:
            await conn.close()

    async def reader() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            while not done.is_set():
                # One statement, one snapshot: the highest seq and how many there are.
                top, count = await conn.fetchrow(
                    "SELECT coalesce(max(seq), 0), count(*) FROM events"
                )
                observations.append((top, count))
        finally:
            await conn.close()

    reading = asyncio.create_task(reader())
    try:
        await asyncio.wait_for(asyncio.gather(*(writer(n) for n in range(WRITERS))), 120)
    finally:
        done.set()
        await reading

    conn = await asyncpg.connect(dsn)
    try:
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM events ORDER BY seq")]
        last = await sequence.last_value(conn)
    finally:
        await conn.close()
    # Every snapshot the reader took held exactly 1..max: never k+1 without k.
    holes = [(top, count) for top, count in observations if top != count]
    assert not holes, f"a reader saw seqs with holes (max, count): {holes[:5]}"
    tops = [top for top, _ in observations]
    assert tops == sorted(tops)  # and never went backwards
    assert len(set(tops)) > WRITERS  # it watched the run, not just its end
    assert seqs == list(range(1, committed + 1))
    assert last == committed
    rolled_back = sum(size for plan in plans for size, back, _ in plan if back)
    assert rolled_back > 0 and committed > 0


async def test_a_postgres_sequence_would_leave_a_hole(dsn: str) -> None:
    """Why sequence.py does not use nextval: a rolled-back batch's numbers are gone."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE SEQUENCE naive")
        with pytest.raises(Rollback):
            async with conn.transaction():
                await conn.fetchval("SELECT nextval('naive')")
                raise Rollback
        assert await conn.fetchval("SELECT nextval('naive')") == 2  # 1 is a hole
    finally:
        await conn.close()
