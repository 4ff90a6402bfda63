"""Silences: who stopped notifications for which alerts, why, and until when.

A silence matches alerts by any subset of rule, learner and path. Matched
alerts still fire and show everywhere, marked ``silenced``; the notifier does
not send them. Adding, expiring or the lapse of a silence logs an ``updated``
change for each firing alert whose silence changed, so every stream client
sees the new state.
"""

from __future__ import annotations

import time
from typing import Any

import aiosqlite

from jacmon.store.records import SILENCE_COLUMNS, silence_from_row
from jacmon.store.sqlite.alerts import ACTIVE_SILENCE_OF_ALERT, record_changes
from jacmon.store.sqlite.database import Database
from jacmon.store.types import SilenceError


async def _resilence(conn: aiosqlite.Connection, now: float) -> list[dict[str, Any]]:
    """Point every firing alert at its current active silence; log those that changed."""
    async with conn.execute(
        f"SELECT id, silence_id, ({ACTIVE_SILENCE_OF_ALERT}) AS want FROM alerts"
        " WHERE state = 'firing'",
        {"now": now},
    ) as cursor:
        changed = [(row[0], row[2]) for row in await cursor.fetchall() if row[1] != row[2]]
    if not changed:
        return []
    await conn.executemany(
        "UPDATE alerts SET silence_id = ? WHERE id = ?", [(want, aid) for aid, want in changed]
    )
    return await record_changes(conn, [(aid, "updated") for aid, _ in changed], now)


async def add_silence(
    db: Database,
    *,
    by: str,
    rule: str | None = None,
    learner: str | None = None,
    path: str | None = None,
    duration_s: float,
    note: str | None = None,
    now: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Silence matching alerts for ``duration_s`` seconds from now (epoch seconds).

    At least one matcher is needed (a silence of everything is a mistake more
    often than not). Returns the silence and the alert changes it caused.
    """
    if not any((rule, learner, path)):
        raise SilenceError("a silence needs at least one matcher: --rule, --learner or --path")
    if not by:
        raise SilenceError("a silence needs a name: who silences (--by NAME)")
    at = time.time() if now is None else now
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO silences (rule, learner, path, starts_at, ends_at, created_by, note)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (rule, learner, path, at, at + duration_s, by, note),
        )
        silence_id = cursor.lastrowid
        changes = await _resilence(conn, at)
        silence = await _get(conn, silence_id)
    return silence, changes


async def expire_silence(
    db: Database, silence_id: int, *, by: str, now: float | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """End a silence now; its alerts are sent again from their next notification."""
    at = time.time() if now is None else now
    async with db.transaction() as conn:
        silence = await _get(conn, silence_id)
        if silence is None:
            raise SilenceError(
                f"silence {silence_id} does not exist. List them with 'jacmon silence list'."
            )
        if silence["state"] == "expired":
            raise SilenceError(f"silence {silence_id} has already expired.")
        await conn.execute(
            "UPDATE silences SET expired_by = ?, expired_at = ? WHERE id = ?",
            (by, at, silence_id),
        )
        changes = await _resilence(conn, at)
        silence = await _get(conn, silence_id)
    return silence, changes


async def lapse_silences(
    conn: aiosqlite.Connection, *, now: float, since: float = 0.0
) -> list[dict[str, Any]]:
    """Inside the caller's transaction: alerts whose silence ran out (or began) change state.

    ``since`` is the previous check (epoch seconds): when no silence could have been
    in force since then, nothing can have changed and no alert is read (a platform
    with thousands of firing alerts and no silences pays one indexed lookup).
    """
    async with conn.execute(
        "SELECT 1 FROM silences WHERE expired_at IS NULL AND ends_at > ? LIMIT 1", (since,)
    ) as cursor:
        if await cursor.fetchone() is None:
            return []
    return await _resilence(conn, now)


async def list_silences(
    conn: aiosqlite.Connection, *, include_expired: bool = False
) -> list[dict[str, Any]]:
    """Silences, newest first; expired ones only with ``include_expired``."""
    async with conn.execute(f"SELECT {SILENCE_COLUMNS} FROM silences ORDER BY id DESC") as cursor:
        rows = [silence_from_row(row) for row in await cursor.fetchall()]
    return [s for s in rows if include_expired or s["state"] != "expired"]


async def active_silences(conn: aiosqlite.Connection, *, now: float) -> list[dict[str, Any]]:
    """Silences in force at ``now`` (epoch seconds)."""
    async with conn.execute(
        f"SELECT {SILENCE_COLUMNS} FROM silences WHERE expired_at IS NULL"
        " AND starts_at <= ? AND ends_at > ?",
        (now, now),
    ) as cursor:
        return [silence_from_row(row) for row in await cursor.fetchall()]


async def _get(conn: aiosqlite.Connection, silence_id: int) -> dict[str, Any] | None:
    async with conn.execute(
        f"SELECT {SILENCE_COLUMNS} FROM silences WHERE id = ?", (silence_id,)
    ) as c:
        row = await c.fetchone()
    return silence_from_row(row) if row else None
