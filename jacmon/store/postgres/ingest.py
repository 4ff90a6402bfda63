"""Storing one batch in PostgreSQL: dedupe, sequence numbers, events, progress, cursor.

Several nodes ingest into one database at once. :func:`store_batch` runs inside
the batch's transaction, in this order:

1. lock the ``events`` counter row (:func:`sequence.lock`). Every ingest
   transaction, on every node, queues here until the holder commits or rolls
   back. From here on the batch is alone: nothing another writer does can
   interleave with it;
2. look up which ids are already stored. READ COMMITTED gives each statement a
   fresh snapshot, so this sees every batch committed before the lock was
   granted; no other writer can insert one of these ids until we commit. So an
   id is stored once across nodes, and without the lock first two nodes could
   both find an id missing and one would fail on the UNIQUE constraint (losing
   its whole batch) or, worse, with a looser constraint store it twice;
3. allocate exactly as many seqs as there are new events (on the row already
   locked): seq order is commit order and a rollback returns the numbers, so
   the sequence has no holes (see :mod:`jacmon.store.postgres.sequence`);
4. insert the events, keep progress current (:mod:`.progress_sql`), store the
   producer's cursor; the caller commits right after.

The in-memory catalog is a cache of the shared catalog tables: under the lock
the tables' mark is compared with the one the cache was loaded at, and a stale
cache (another node discovered a module, or a catalog was loaded) is reloaded
first, so module positions and counts are decided on the current tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from jacmon.events import Event
from jacmon.store.catalog import Catalog
from jacmon.store.encoding import event_body
from jacmon.store.postgres import sequence
from jacmon.store.postgres.catalog import CatalogMark, catalog_mark, insert_discovered, load_catalog
from jacmon.store.postgres.progress_sql import (
    recompute_path_percents,
    update_learners,
    update_module_progress,
    update_path_progress,
)
from jacmon.store.types import IngestOutcome, ProgressChanges, StoredEvent

#: The events table's columns, in the order rows are built.
EVENT_COLUMNS = (
    "seq", "id", "type", "ts", "received", "learner", "path", "module", "item", "score",
    "success", "progress", "duration_s", "attempt", "session", "body",
)  # fmt: skip


async def insert_events(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """Insert event rows (in :data:`EVENT_COLUMNS` order) with COPY.

    COPY needs no ON CONFLICT here: duplicates were removed under the sequence lock.
    Measured against ``executemany`` of a one-row INSERT in docs/cluster-notes.md
    ("Ingest: COPY or executemany").
    """
    await conn.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)


def _event_row(seq: int, event: Event, received: float, body: str) -> tuple:
    score = event.score.percent if event.score is not None else None
    return (
        seq,
        event.id,
        event.type,
        float(event.ts),
        received,
        event.learner,
        event.path,
        event.module,
        event.item,
        None if score is None else float(score),
        None if event.success is None else int(event.success),
        None if event.progress is None else float(event.progress),
        None if event.duration_s is None else float(event.duration_s),
        event.attempt,
        event.session,
        body,
    )


async def store_batch(
    conn: asyncpg.Connection,
    catalog: Catalog,
    mark: CatalogMark,
    events: Sequence[Event],
    *,
    received: float,
    cursor: tuple[str, str] | None = None,
) -> tuple[IngestOutcome, Catalog, CatalogMark]:
    """Store ``events`` inside the caller's transaction (see the module docstring).

    ``catalog`` (loaded at ``mark``) is not changed: the returned catalog and mark
    are what the caller keeps once the transaction commits. ``received`` is the
    arrival time in epoch seconds.
    """
    last = await sequence.lock(conn)
    if await catalog_mark(conn) != mark:
        catalog, mark = await load_catalog(conn)
    ids = [e.id for e in events]
    known = {
        r[0] for r in await conn.fetch("SELECT id FROM events WHERE id = ANY($1::text[])", ids)
    }
    fresh: list[tuple[int, Event]] = []
    duplicates: list[int] = []
    seen = set(known)
    for index, event in enumerate(events):
        if event.id in seen:
            duplicates.append(index)
            continue
        seen.add(event.id)
        fresh.append((index, event))
    changes = ProgressChanges()
    stored: list[StoredEvent] = []
    if fresh:
        seqs = await sequence.allocate(conn, len(fresh))
        rows = []
        # (path, None) and (path, module) in event order, so discovered modules get
        # stable positions.
        pairs: dict[tuple[str, str | None], None] = {}
        for seq, (_, event) in zip(seqs, fresh, strict=True):
            body = event_body(event)
            stored.append(StoredEvent(seq, event, body))
            rows.append(_event_row(seq, event, received, body))
            if event.path is not None:
                pairs[(event.path, None)] = None
                if event.module is not None:
                    pairs[(event.path, event.module)] = None
        await insert_events(conn, rows)
        catalog = _copy(catalog)
        found = catalog.discover(pairs)
        if found.paths or found.modules:
            await insert_discovered(conn, found)
            mark = await catalog_mark(conn)
        changes = await _update_progress(conn, catalog, found.changed, seqs.start, seqs.stop - 1)
        last = seqs.stop - 1
    if cursor is not None:
        await conn.execute(
            "INSERT INTO cursors (name, value, updated) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            cursor[0],
            cursor[1],
            received,
        )
    return IngestOutcome(stored, duplicates, changes, last), catalog, mark


def _copy(catalog: Catalog) -> Catalog:
    """A copy :meth:`Catalog.discover` may change without touching the cache (the
    transaction may still roll back)."""
    return Catalog(
        dict(catalog.module_counts), set(catalog.authoritative), set(catalog.known_modules)
    )


async def _update_progress(
    conn: asyncpg.Connection, catalog: Catalog, recount: set[str], first_seq: int, last_seq: int
) -> ProgressChanges:
    """Progress for the events stored as ``first_seq``..``last_seq``; the changed rows.

    ``recount``: paths whose module count the batch changed (their learners' percents
    are re-derived first).
    """
    changes = ProgressChanges()
    if recount:
        await recompute_path_percents(
            conn, {p: catalog.module_counts.get(p, 0) for p in recount}, catalog.authoritative
        )
        changes.recounted = set(recount)
    changes.modules = await update_module_progress(conn, first_seq, last_seq)
    changes.paths = await update_path_progress(conn, first_seq, last_seq)
    changes.learners = await update_learners(conn, first_seq, last_seq)
    return changes
