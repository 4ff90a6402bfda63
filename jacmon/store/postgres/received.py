"""What platforms pushed (the ``received`` table) in PostgreSQL: keeping, the log, totals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from jacmon.store.records import RECEIVED_LOG_COLUMNS, raise_other_content, totals_by_source
from jacmon.store.types import ReceivedRecord


async def keep_records(
    conn: asyncpg.Connection, records: Sequence[ReceivedRecord], *, received: float
) -> None:
    """Insert ``records`` in the caller's transaction; one already kept stays as it was.

    Raises :class:`RecordConflict` when a record that refuses it (``refuse_other_content``)
    meets its id kept with another digest. Insert first, compare after: a node inserting
    the same id concurrently makes this insert wait for its commit, and the comparison,
    a later statement, then sees its row (READ COMMITTED), so two racing senders cannot
    both be told their different content is stored.
    """
    inserted = {
        (row[0], row[1])
        for row in await conn.fetch(
            "INSERT INTO received (source, id, received, digest, event_id, reason, token, body)"
            " SELECT * FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[],"
            " $5::text[], $6::text[], $7::text[], $8::text[])"
            " ON CONFLICT (source, id) DO NOTHING RETURNING source, id",
            [r.source for r in records],
            [r.id for r in records],
            [received] * len(records),
            [r.digest for r in records],
            [r.event_id for r in records],
            [r.reason for r in records],
            [r.token for r in records],
            [r.body for r in records],
        )
    }
    strict = [r for r in records if r.refuse_other_content]
    kept: dict[tuple[str, str], str] = {}
    for source in {r.source for r in strict}:
        # Kept before this batch, or by a transaction this insert waited for.
        earlier = [r.id for r in strict if r.source == source and (source, r.id) not in inserted]
        if earlier:
            rows = await conn.fetch(
                "SELECT id, digest FROM received WHERE source = $1 AND id = ANY($2::text[])",
                source,
                earlier,
            )
            kept.update(((source, ident), digest) for ident, digest in rows)
    raise_other_content(strict, kept)


async def received_log(
    pool: asyncpg.Pool, *, limit: int, source: str | None, unmapped_only: bool
) -> list[dict[str, Any]]:
    """The latest kept records, newest first, as dicts of :data:`RECEIVED_LOG_COLUMNS`."""
    rows = await pool.fetch(
        f"SELECT {', '.join(RECEIVED_LOG_COLUMNS)} FROM received"
        " WHERE ($1::text IS NULL OR source = $1) AND (NOT $2 OR reason IS NOT NULL)"
        " ORDER BY received DESC, id DESC LIMIT $3",
        source,
        unmapped_only,
        limit,
    )
    return [dict(zip(RECEIVED_LOG_COLUMNS, row, strict=True)) for row in rows]


async def received_totals(pool: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Source -> {"mapped": n, "unmapped": n} over the records kept."""
    return totals_by_source(
        await pool.fetch("SELECT source, reason IS NULL, count(*) FROM received GROUP BY 1, 2")
    )
