"""Reading what platforms pushed (the ``received`` table): digests for conflicts, the log."""

from __future__ import annotations

from typing import Any

import aiosqlite

#: The columns :func:`received_log` returns, in order.
LOG_COLUMNS = ("source", "id", "received", "event_id", "reason", "token", "body")


async def received_log(
    conn: aiosqlite.Connection,
    *,
    limit: int,
    source: str | None,
    unmapped_only: bool,
) -> list[dict[str, Any]]:
    """The latest kept records, newest first, as dicts of :data:`LOG_COLUMNS`."""
    where, params = [], []
    if source is not None:
        where.append("source = ?")
        params.append(source)
    if unmapped_only:
        where.append("reason IS NOT NULL")
    clause = f"WHERE {' AND '.join(where)}" if where else ""
    async with conn.execute(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM received {clause} "
        "ORDER BY received DESC, rowid DESC LIMIT ?",
        (*params, limit),
    ) as cursor:
        return [dict(zip(LOG_COLUMNS, row, strict=True)) async for row in cursor]


async def received_totals(conn: aiosqlite.Connection) -> dict[str, dict[str, int]]:
    """Source -> {"mapped": n, "unmapped": n} over the records kept."""
    totals: dict[str, dict[str, int]] = {}
    async with conn.execute(
        "SELECT source, reason IS NULL, count(*) FROM received GROUP BY 1, 2"
    ) as cursor:
        async for source, mapped, count in cursor:
            totals.setdefault(source, {"mapped": 0, "unmapped": 0})[
                "mapped" if mapped else "unmapped"
            ] = count
    return totals
