"""The tokens table in SQLite: records and hashes; making and checking tokens is the
server's (:mod:`jacmon.server.auth`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiosqlite

from jacmon.store.sqlite.database import Database, chunks


async def insert_token(db: Database, record: dict[str, Any], secret_hash: str) -> None:
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO tokens (id, hash, role, learner, can_ack, name, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                record["id"],
                secret_hash,
                record["role"],
                record["learner"],
                int(record["can_ack"]),
                record["name"],
                record["created"],
            ),
        )


async def list_tokens(conn: aiosqlite.Connection) -> list[dict[str, Any]]:
    async with conn.execute(
        "SELECT id, role, learner, can_ack, name, created, revoked FROM tokens"
        " ORDER BY created DESC"
    ) as cursor:
        rows = await cursor.fetchall()
    return [dict(row) | {"can_ack": bool(row["can_ack"])} for row in rows]


async def revoke_token(db: Database, token_id: str, *, now: float) -> bool:
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL", (now, token_id)
        )
        return cursor.rowcount > 0


async def active_token_count(conn: aiosqlite.Connection) -> int:
    async with conn.execute("SELECT count(*) FROM tokens WHERE revoked IS NULL") as cursor:
        (count,) = await cursor.fetchone()
    return count


async def token_for_auth(conn: aiosqlite.Connection, token_id: str) -> dict[str, Any] | None:
    async with conn.execute(
        "SELECT hash, role, learner, can_ack, revoked FROM tokens WHERE id = ?", (token_id,)
    ) as cursor:
        row = await cursor.fetchone()
    return None if row is None else dict(row) | {"can_ack": bool(row["can_ack"])}


async def revoked_among(conn: aiosqlite.Connection, token_ids: Sequence[str]) -> set[str]:
    revoked: set[str] = set()
    for chunk in chunks(list(token_ids)):
        marks = ",".join("?" * len(chunk))
        async with conn.execute(
            f"SELECT id FROM tokens WHERE revoked IS NOT NULL AND id IN ({marks})", list(chunk)
        ) as cursor:
            revoked.update(row[0] for row in await cursor.fetchall())
    return revoked
