"""The ``meta`` table (key -> text): the database's id, the catalog's version, the
notifier's watermark."""

from __future__ import annotations

import asyncpg

SET_META = (
    "INSERT INTO meta (key, value) VALUES ($1, $2) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


async def get_meta(conn: asyncpg.Connection | asyncpg.Pool, key: str) -> str | None:
    """The ``meta`` value of ``key`` (None: not set)."""
    return await conn.fetchval("SELECT value FROM meta WHERE key = $1", key)


async def set_meta(conn: asyncpg.Connection, key: str, value: str) -> None:
    """Set ``meta`` ``key`` inside the caller's transaction."""
    await conn.execute(SET_META, key, value)
