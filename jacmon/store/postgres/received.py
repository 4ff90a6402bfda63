"""What platforms pushed (the ``received`` table) in PostgreSQL: keeping, digests, the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from jacmon.store.types import ReceivedRecord

#: The columns :func:`received_log` returns, in order.
LOG_COLUMNS = ("source", "id", "received", "event_id", "reason", "token", "body")


async def keep_records(
    conn: asyncpg.Connection, records: Sequence[ReceivedRecord], *, received: float
) -> None:
    """Insert ``records`` in the caller's transaction; one already kept stays as it was."""
    await conn.executemany(
        "INSERT INTO received (source, id, received, digest, event_id, reason, token, body)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (source, id) DO NOTHING",
        [
            (r.source, r.id, received, r.digest, r.event_id, r.reason, r.token, r.body)
            for r in records
        ],
    )


async def received_digests(pool: asyncpg.Pool, source: str, ids: Sequence[str]) -> dict[str, str]:
    """Id -> content digest of the records of ``source`` already kept among ``ids``."""
    rows = await pool.fetch(
        "SELECT id, digest FROM received WHERE source = $1 AND id = ANY($2::text[])",
        source,
        list(ids),
    )
    return {row[0]: row[1] for row in rows}


async def received_log(
    pool: asyncpg.Pool, *, limit: int, source: str | None, unmapped_only: bool
) -> list[dict[str, Any]]:
    """The latest kept records, newest first, as dicts of :data:`LOG_COLUMNS`."""
    rows = await pool.fetch(
        f"SELECT {', '.join(LOG_COLUMNS)} FROM received"
        " WHERE ($1::text IS NULL OR source = $1) AND (NOT $2 OR reason IS NOT NULL)"
        " ORDER BY received DESC, id DESC LIMIT $3",
        source,
        unmapped_only,
        limit,
    )
    return [dict(zip(LOG_COLUMNS, row, strict=True)) for row in rows]


async def received_totals(pool: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Source -> {"mapped": n, "unmapped": n} over the records kept."""
    totals: dict[str, dict[str, int]] = {}
    for source, mapped, count in await pool.fetch(
        "SELECT source, reason IS NULL, count(*) FROM received GROUP BY 1, 2"
    ):
        totals.setdefault(source, {"mapped": 0, "unmapped": 0})[
            "mapped" if mapped else "unmapped"
        ] = count
    return totals
