"""What platforms pushed (the ``received`` table) in PostgreSQL: keeping, digests, the log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from jacmon.store.types import ReceivedRecord, RecordConflict

#: The columns :func:`received_log` returns, in order.
LOG_COLUMNS = ("source", "id", "received", "event_id", "reason", "token", "body")


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
    for source in {r.source for r in strict}:
        mine = [r for r in strict if r.source == source]
        kept: dict[str, str] = {}
        for record in mine:  # what this batch inserted: its first record of the id
            kept.setdefault(record.id, record.digest)
        earlier = [r.id for r in mine if (source, r.id) not in inserted]
        if earlier:  # kept before this batch, or by a transaction it waited for
            kept.update(
                await conn.fetch(
                    "SELECT id, digest FROM received WHERE source = $1 AND id = ANY($2::text[])",
                    source,
                    earlier,
                )
            )
        conflicts = [r.id for r in mine if kept[r.id] != r.digest]
        if conflicts:
            raise RecordConflict(source, conflicts)


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
