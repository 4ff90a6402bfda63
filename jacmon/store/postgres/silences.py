"""Silences in PostgreSQL: the meaning of :mod:`jacmon.store.sqlite.silences`.

Re-pointing firing alerts at their silence locks them (``FOR UPDATE``) first, so two
nodes re-silencing at once log each change once.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg

from jacmon.store.postgres.alerts import ACTIVE_SILENCE_OF_ALERT, record_changes
from jacmon.store.postgres.database import PgDatabase
from jacmon.store.records import SILENCE_COLUMNS, silence_from_row
from jacmon.store.types import SilenceError


async def _resilence(conn: asyncpg.Connection, now: float) -> list[dict[str, Any]]:
    """Point every firing alert at its current active silence; log those that changed."""
    rows = await conn.fetch(
        f"SELECT id, silence_id, ({ACTIVE_SILENCE_OF_ALERT}) AS want FROM alerts"
        " WHERE state = 'firing' ORDER BY id FOR UPDATE",
        float(now),
    )
    changed = [(row[0], row[2]) for row in rows if row[1] != row[2]]
    if not changed:
        return []
    await conn.executemany(
        "UPDATE alerts SET silence_id = $1 WHERE id = $2", [(want, aid) for aid, want in changed]
    )
    return await record_changes(conn, [(aid, "updated") for aid, _ in changed], now)


async def add_silence(
    db: PgDatabase,
    *,
    by: str,
    rule: str | None = None,
    learner: str | None = None,
    path: str | None = None,
    duration_s: float,
    note: str | None = None,
    now: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Silence matching alerts for ``duration_s`` seconds from now; (silence, changes)."""
    if not any((rule, learner, path)):
        raise SilenceError("a silence needs at least one matcher: --rule, --learner or --path")
    if not by:
        raise SilenceError("a silence needs a name: who silences (--by NAME)")
    at = time.time() if now is None else float(now)
    async with db.transaction() as conn:
        silence_id = await conn.fetchval(
            "INSERT INTO silences (rule, learner, path, starts_at, ends_at, created_by, note)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            rule,
            learner,
            path,
            at,
            at + float(duration_s),
            by,
            note,
        )
        changes = await _resilence(conn, at)
        silence = await _get(conn, silence_id)
    return silence, changes


async def expire_silence(
    db: PgDatabase, silence_id: int, *, by: str, now: float | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """End a silence now; its alerts are sent again from their next notification."""
    at = time.time() if now is None else float(now)
    async with db.transaction() as conn:
        silence = await _get(conn, silence_id, lock=True)
        if silence is None:
            raise SilenceError(
                f"silence {silence_id} does not exist. List them with 'jacmon silence list'."
            )
        if silence["state"] == "expired":
            raise SilenceError(f"silence {silence_id} has already expired.")
        await conn.execute(
            "UPDATE silences SET expired_by = $1, expired_at = $2 WHERE id = $3",
            by,
            at,
            silence_id,
        )
        changes = await _resilence(conn, at)
        silence = await _get(conn, silence_id)
    return silence, changes


async def lapse_silences(
    conn: asyncpg.Connection, *, now: float, since: float = 0.0
) -> list[dict[str, Any]]:
    """Inside the caller's transaction: alerts whose silence ran out (or began) change
    state; nothing is read when no silence can have been in force since ``since``."""
    busy = await conn.fetchval(
        "SELECT 1 FROM silences WHERE expired_at IS NULL AND ends_at > $1 LIMIT 1", float(since)
    )
    if busy is None:
        return []
    return await _resilence(conn, now)


async def list_silences(
    conn: asyncpg.Pool, *, include_expired: bool = False
) -> list[dict[str, Any]]:
    """Silences, newest first; expired ones only with ``include_expired``."""
    found = await conn.fetch(f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY id DESC")
    rows = [silence_from_row(row) for row in found]
    return [s for s in rows if include_expired or s["state"] != "expired"]


async def _get(
    conn: asyncpg.Connection, silence_id: int, *, lock: bool = False
) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        silence_id,
    )
    return silence_from_row(row) if row else None
