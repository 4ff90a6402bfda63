"""The tokens table in PostgreSQL: records and hashes (making and checking tokens is the
server's, :mod:`jacmon.server.auth`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import asyncpg

from jacmon.store.postgres.database import PgDatabase


async def insert_token(db: PgDatabase, record: dict[str, Any], secret_hash: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO tokens (id, hash, role, learner, can_ack, name, created)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            record["id"],
            secret_hash,
            record["role"],
            record["learner"],
            int(record["can_ack"]),
            record["name"],
            float(record["created"]),
        )


async def list_tokens(pool: asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT id, role, learner, can_ack, name, created, revoked FROM tokens"
        " ORDER BY created DESC"
    )
    return [dict(row) | {"can_ack": bool(row["can_ack"])} for row in rows]


async def revoke_token(db: PgDatabase, token_id: str, *, now: float) -> bool:
    async with db.transaction() as conn:
        status = await conn.execute(
            "UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL",
            float(now),
            token_id,
        )
    # The command tag is "UPDATE <rows>".
    return status != "UPDATE 0"


async def active_token_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM tokens WHERE revoked IS NULL")


async def token_for_auth(pool: asyncpg.Pool, token_id: str) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        "SELECT hash, role, learner, can_ack, revoked FROM tokens WHERE id = $1", token_id
    )
    return None if row is None else dict(row) | {"can_ack": bool(row["can_ack"])}


async def revoked_among(pool: asyncpg.Pool, token_ids: Sequence[str]) -> set[str]:
    rows = await pool.fetch(
        "SELECT id FROM tokens WHERE revoked IS NOT NULL AND id = ANY($1::text[])",
        list(token_ids),
    )
    return {row[0] for row in rows}
