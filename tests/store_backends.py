"""What the store tests need to look under the interface, for either backend.

The progress tables' every column (``active_day``, ``enrolled_at``...) and the raw
tables are not part of the Store interface, so the tests read them with SQL: one
text with ``?`` placeholders, run on the SQLite reader or on the PostgreSQL pool
(``?`` becomes ``$1``, ``$2``...). ``elsewhere`` runs SQL as another process would,
on a connection of its own.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from jacmon.events import Event
from jacmon.store import ProgressChanges, Projection, Store, StoredEvent, postgres_dsn


def is_postgres(location: Path | str) -> bool:
    return postgres_dsn(location) is not None


def _numbered(sql: str) -> str:
    counter = iter(range(1, 1000))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


async def rows(store: Store, sql: str, *params: Any) -> list[dict[str, Any]]:
    """``sql`` (``?`` placeholders) run on ``store``'s own read connection, as dicts."""
    pool = getattr(getattr(store, "db", None), "pool", None)
    if pool is not None:
        return [dict(r) for r in await pool.fetch(_numbered(sql), *params)]
    async with store.db.reader.execute(sql, params) as cursor:
        return [dict(row) for row in await cursor.fetchall()]


async def one(store: Store, sql: str, *params: Any) -> dict[str, Any]:
    found = await rows(store, sql, *params)
    assert len(found) == 1, found
    return found[0]


async def elsewhere(location: Path | str, sql: str) -> list[tuple]:
    """Run ``sql`` (no parameters; several statements for PostgreSQL) on a separate
    connection, committed: what another process would do."""
    if is_postgres(location):
        conn = await asyncpg.connect(postgres_dsn(location))
        try:
            if sql.lstrip().upper().startswith("SELECT"):
                return [tuple(r) for r in await conn.fetch(sql)]
            await conn.execute(sql)
            return []
        finally:
            await conn.close()
    conn = sqlite3.connect(location)
    try:
        result = conn.execute(sql).fetchall()
        conn.commit()
        return result
    finally:
        conn.close()


async def install_failing_cursor_trigger(location: Path | str) -> None:
    """Make writing the cursor value 'boom' fail: the last statement of a batch's
    transaction, so everything before it must roll back."""
    if is_postgres(location):
        await elsewhere(
            location,
            "CREATE FUNCTION fail_cursor() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.value = 'boom' THEN RAISE EXCEPTION 'forced failure'; END IF;"
            " RETURN NEW; END $$;"
            " CREATE TRIGGER fail_cursor BEFORE INSERT OR UPDATE ON cursors"
            " FOR EACH ROW EXECUTE FUNCTION fail_cursor();",
        )
        return
    await elsewhere(
        location,
        "CREATE TRIGGER fail_cursor BEFORE INSERT ON cursors WHEN NEW.value = 'boom' "
        "BEGIN SELECT RAISE(ABORT, 'forced failure'); END",
    )


@dataclass
class Ingested:
    """A committed batch and what projecting it changed (``IngestOutcome`` + changes)."""

    stored: list[StoredEvent]
    duplicate_indexes: list[int]
    last_seq: int
    changes: ProgressChanges
    spans: list[Projection]


async def ingest_projected(store: Store, events: Sequence[Event], **kwargs: Any) -> Ingested:
    """Ingest one batch, then project until progress is current, as the server's projector
    would right after it: for the tests of the progress rules, which read progress next."""
    outcome = await store.ingest(events, **kwargs)
    spans = await store.catch_up()
    changes = ProgressChanges()
    for span in spans:
        changes.paths.extend(span.changes.paths)
        changes.modules.extend(span.changes.modules)
        changes.learners.extend(span.changes.learners)
        changes.recounted |= span.changes.recounted
    return Ingested(outcome.stored, outcome.duplicate_indexes, outcome.last_seq, changes, spans)
