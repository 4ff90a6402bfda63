"""Leadership among the nodes of one PostgreSQL store: a session advisory lock, and a
fencing token in ``meta``.

The holder keeps one connection of its own (outside the pool, with TCP keepalives)
with ``pg_try_advisory_lock`` taken on it. When the holder dies, or its network
does, PostgreSQL ends that session and frees the lock:
another node's next :meth:`PgLease.acquire` succeeds. On taking the lock a node bumps
the token ``meta['lease:<name>']`` and remembers it as its :class:`Fence`.

Why a token besides the lock: a leader paused (GC, a stopped VM) past the moment its
session was ended may wake up and write before it notices. Its writes carry the
fence; :func:`check_fence` reads the token ``FOR SHARE`` inside the write's own
transaction and refuses a stale one. The new leader's bump takes the row lock
``FOR UPDATE``, so it waits for a write already checking and every later write of the
old leader sees the new token: nothing the old leader writes commits after the
handover.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from jacmon.store.base import Fence, Lease, LeaseLost
from jacmon.store.postgres.database import PgDatabase

log = logging.getLogger("jacmon.store")

#: Longest a lease check may take before the lease counts as lost, in seconds.
CONFIRM_TIMEOUT_S = 3.0

_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('jacmon lease: ' || $1, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('jacmon lease: ' || $1, 0))"
_BUMP = (
    "INSERT INTO meta (key, value) VALUES ($1, '1') ON CONFLICT (key) DO UPDATE"
    " SET value = (meta.value::bigint + 1)::text RETURNING value::bigint"
)
_TOKEN = "SELECT value::bigint FROM meta WHERE key = $1"

_CONNECTION_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


def _key(name: str) -> str:
    return f"lease:{name}"


async def check_fence(conn: asyncpg.Connection, fence: Fence) -> None:
    """Inside a write transaction: raise LeaseLost unless ``fence`` is the newest."""
    token = await conn.fetchval(_TOKEN + " FOR SHARE", _key(fence.name))
    if token != fence.token:
        raise LeaseLost(
            f"this node no longer leads ({fence.name} lease token {fence.token}, newest "
            f"{token}); another node runs the scheduler now, nothing was written"
        )


class PgLease(Lease):
    """One lease of a PostgreSQL store (see the module docstring)."""

    def __init__(self, db: PgDatabase, name: str):
        super().__init__(name)
        self.db = db
        self._conn: asyncpg.Connection | None = None

    async def acquire(self) -> bool:
        if self._conn is not None:
            return await self.confirm()
        try:
            conn = await self.db.connect_alone(f"jacmon lease {self.name}")
        except _CONNECTION_ERRORS as exc:
            log.info("lease %s: no connection to try it (%s)", self.name, exc)
            return False
        try:
            if not await conn.fetchval(_TRY_LOCK, self.name):
                await conn.close()
                return False
            token = await conn.fetchval(_BUMP, _key(self.name))
        except _CONNECTION_ERRORS as exc:
            log.info("lease %s: taking it failed (%s)", self.name, exc)
            await self._drop(conn)
            return False
        self._conn = conn
        self.fence = Fence(self.name, token)
        log.info("lease %s taken (token %d)", self.name, token)
        return True

    async def confirm(self) -> bool:
        conn = self._conn
        if conn is None or self.fence is None:
            return False
        try:
            async with asyncio.timeout(CONFIRM_TIMEOUT_S):
                token = await conn.fetchval(_TOKEN, _key(self.name))
        except _CONNECTION_ERRORS as exc:
            log.warning("lease %s lost: its connection failed (%s)", self.name, exc)
            await self._lose()
            return False
        if token != self.fence.token:
            log.warning("lease %s lost: token %s is newer than ours", self.name, token)
            await self._lose()
            return False
        return True

    async def release(self) -> None:
        conn, self._conn = self._conn, None
        self.fence = None
        if conn is None:
            return
        with contextlib.suppress(*_CONNECTION_ERRORS):
            await conn.fetchval(_UNLOCK, self.name)
        await self._drop(conn, terminate=False)

    async def _lose(self) -> None:
        conn, self._conn = self._conn, None
        self.fence = None
        if conn is not None:
            await self._drop(conn)

    async def _drop(self, conn: asyncpg.Connection, *, terminate: bool = True) -> None:
        """Close ``conn``; a broken one is terminated at once (its session, and any lock
        it held, end with it)."""
        if terminate:
            conn.terminate()
            return
        with contextlib.suppress(*_CONNECTION_ERRORS):
            await asyncio.wait_for(conn.close(), CONFIRM_TIMEOUT_S)
