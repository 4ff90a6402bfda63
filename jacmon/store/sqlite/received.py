"""Reading what platforms pushed (the ``received`` table): the log and the totals."""

from __future__ import annotations

from typing import Any

import aiosqlite

from jacmon.store.records import RECEIVED_LOG_COLUMNS, totals_by_source


async def received_log(
    conn: aiosqlite.Connection,
    *,
    limit: int,
    source: str | None,
    unmapped_only: bool,
) -> list[dict[str, Any]]:
    """The latest kept records, newest first, as dicts of :data:`RECEIVED_LOG_COLUMNS`."""
    where, params = [], []
    if source is not None:
        where.append("source = ?")
        params.append(source)
    if unmapped_only:
        where.append("reason IS NOT NULL")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    async with conn.execute(
        f"SELECT {', '.join(RECEIVED_LOG_COLUMNS)} FROM received {clause} "
        "ORDER BY received DESC, rowid DESC LIMIT ?",
        (*params, limit),
    ) as cursor:
        return [dict(zip(RECEIVED_LOG_COLUMNS, row, strict=True)) async for row in cursor]


async def received_totals(conn: aiosqlite.Connection) -> dict[str, dict[str, int]]:
    """Source -> {"mapped": n, "unmapped": n} over the records kept."""
    async with conn.execute(
        "SELECT source, reason IS NULL, count(*) FROM received GROUP BY 1, 2"
    ) as cursor:
        return totals_by_source(await cursor.fetchall())
