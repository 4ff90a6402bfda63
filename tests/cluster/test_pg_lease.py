"""The leader lease on PostgreSQL: one holder at a time, handed over when the holder's
session ends, and a fence that refuses the old holder's writes after the handover."""

from __future__ import annotations

import asyncpg
import pytest

from jacmon.store import Store
from jacmon.store.base import LeaseLost


async def open_nodes(dsn: str, count: int) -> list[Store]:
    return [await Store.open(dsn) for _ in range(count)]


async def close_all(stores: list[Store]) -> None:
    for store in stores:
        await store.close()


async def test_one_node_holds_the_lease_and_it_moves_when_the_session_ends(pg_dsn):
    a_store, b_store = await open_nodes(pg_dsn, 2)
    a, b = a_store.lease("leader"), b_store.lease("leader")
    try:
        assert await a.acquire() is True
        assert await b.acquire() is False
        assert await a.confirm() is True and await b.confirm() is False
        first = a.fence
        # The holder's session ends (a dead node, a cut network): PostgreSQL frees the lock.
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks"
                " WHERE locktype = 'advisory' AND pid <> pg_backend_pid()"
            )
        finally:
            await conn.close()
        assert await b.acquire() is True
        assert b.fence is not None and first is not None and b.fence.token > first.token
        assert await a.confirm() is False and a.fence is None
    finally:
        await a.release()
        await b.release()
        await close_all([a_store, b_store])


async def test_a_paused_old_leader_cannot_write_after_the_handover(pg_dsn):
    a_store, b_store = await open_nodes(pg_dsn, 2)
    a, b = a_store.lease("leader"), b_store.lease("leader")
    try:
        assert await a.acquire()
        stale = a.fence
        async with a_store.transaction(fence=stale) as tx:  # leading: the write goes through
            await tx.replace_velocity([("p", 1, 0, None, 1.0)], [])
        # A is "paused": its session is ended and B takes over before A notices.
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            )
        finally:
            await conn.close()
        assert await b.acquire()
        with pytest.raises(LeaseLost, match="no longer leads"):
            async with a_store.transaction(fence=stale) as tx:
                await tx.replace_velocity([("p", 9, 9, None, 2.0)], [])
        async with b_store.transaction(fence=b.fence) as tx:
            assert await tx.open_alerts_of_rules(frozenset({"inactivity"})) == []
        rows = await b_store.db.pool.fetch("SELECT this_week FROM path_velocity")
        assert [r["this_week"] for r in rows] == [1], "the stale leader's write committed"
    finally:
        await a.release()
        await b.release()
        await close_all([a_store, b_store])
