"""The progress projection in PostgreSQL: fold the events after the watermark into progress.

The SQLite store's :mod:`jacmon.store.sqlite.projection`, for several nodes on one
database. One span is one READ COMMITTED transaction:

1. lock the watermark row (``meta.progress_seq``, :data:`LOCK_WATERMARK_SQL`). Every
   projector, on every node, queues here until the holder commits or rolls back;
   when its turn comes, READ COMMITTED re-reads the locked row's newest version, so
   it starts where the previous span ended and no span is folded twice. ``jacmon
   catalog load`` takes the same lock (the catalog tables change only under it);
2. read the head from the events counter *as committed* (no lock: ingest must never
   wait for projection). Ingest holds the counter row from its allocation to its
   commit, so every seq up to the committed value is committed and visible to the
   statements that follow (see :mod:`.sequence`);
3. fold ``watermark+1 .. min(head, watermark+max_events)`` with the set-based
   statements of :mod:`.progress_sql` (the same whatever the span's size, so the
   result does not depend on how the log is cut), after discovering the span's
   paths and modules in the order they first appear (module positions are those
   ingest used to give);
4. store the new watermark; the caller commits right after.

A failure or cancellation before COMMIT rolls everything back, the watermark
included: the next span starts from the same place.
"""

from __future__ import annotations

import asyncpg

from jacmon.errors import StoreError
from jacmon.store.catalog import Catalog
from jacmon.store.postgres import sequence
from jacmon.store.postgres.catalog import CatalogMark, catalog_mark, insert_discovered, load_catalog
from jacmon.store.postgres.progress_sql import (
    recompute_path_percents,
    update_active_days,
    update_learners,
    update_module_progress,
    update_path_progress,
)
from jacmon.store.types import ProgressChanges, Projection

#: The projection watermark (0 before the first span), without a lock: for readers.
WATERMARK_SQL = "SELECT coalesce((SELECT value::bigint FROM meta WHERE key = 'progress_seq'), 0)"

#: The watermark, locked until the transaction ends: serialises projectors (and catalog
#: loads) across nodes.
LOCK_WATERMARK_SQL = "SELECT value::bigint FROM meta WHERE key = 'progress_seq' FOR UPDATE"

#: (path, module) of a span in the order each first appears (module NULL: the path alone).
_SPAN_PAIRS_SQL = (
    "SELECT path, module FROM events WHERE seq BETWEEN $1 AND $2 AND path IS NOT NULL"
    " GROUP BY path, module ORDER BY min(seq)"
)


async def lock_watermark(conn: asyncpg.Connection) -> int:
    """Lock the watermark row for the open transaction; the watermark (its newest value).

    Migration 5 creates the row; should it be missing (a hand-edited database) it is
    created at 0 first, so there is always a row to lock.
    """
    if not conn.is_in_transaction():
        # Outside a transaction the row lock would end with the statement.
        raise StoreError("the watermark is locked inside the span's transaction")
    low = await conn.fetchval(LOCK_WATERMARK_SQL)
    if low is None:
        await conn.execute(
            "INSERT INTO meta (key, value) VALUES ('progress_seq', '0') ON CONFLICT DO NOTHING"
        )
        low = await conn.fetchval(LOCK_WATERMARK_SQL)
    return low


async def watermark(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The projection watermark: progress is the fold of the events up to this seq."""
    return await conn.fetchval(WATERMARK_SQL)


def copy_catalog(catalog: Catalog) -> Catalog:
    """A copy :meth:`Catalog.discover` may change without touching the cache (the
    transaction may still roll back)."""
    return Catalog(
        dict(catalog.module_counts), set(catalog.authoritative), set(catalog.known_modules)
    )


async def project_span(
    conn: asyncpg.Connection, catalog: Catalog, mark: CatalogMark, max_events: int
) -> tuple[Projection | None, Catalog, CatalogMark]:
    """Inside the caller's transaction: fold the next span (at most ``max_events``
    events) and move the watermark (see the module docstring).

    ``catalog`` (the node's cache, loaded at ``mark``) is not changed: the returned
    catalog and mark are what the caller keeps once the transaction commits. The
    projection is None when there is nothing after the watermark.
    """
    if max_events < 1:
        raise ValueError(f"max_events must be at least 1, not {max_events}")
    low = await lock_watermark(conn)
    # Under the lock the catalog tables cannot change: a stale cache (another node
    # discovered a module, or a catalog was loaded) is reloaded before deciding
    # positions and counts on it.
    if await catalog_mark(conn) != mark:
        catalog, mark = await load_catalog(conn)
    head = await sequence.last_value(conn)
    if head <= low:
        return None, catalog, mark
    first, last = low + 1, min(head, low + max_events)
    pairs: dict[tuple[str, str | None], None] = {}
    for path, module in await conn.fetch(_SPAN_PAIRS_SQL, first, last):
        pairs[(path, None)] = None
        if module is not None:
            pairs[(path, module)] = None
    catalog = copy_catalog(catalog)
    found = catalog.discover(pairs)
    changes = ProgressChanges()
    if found.paths or found.modules:
        await insert_discovered(conn, found)
        mark = await catalog_mark(conn)
    if found.changed:
        await recompute_path_percents(
            conn, {p: catalog.module_counts.get(p, 0) for p in found.changed}, catalog.authoritative
        )
        changes.recounted = set(found.changed)
    changes.modules = await update_module_progress(conn, first, last)
    await update_active_days(conn, first, last)
    changes.paths = await update_path_progress(conn, first, last)
    changes.learners = await update_learners(conn, first, last)
    await conn.execute("UPDATE meta SET value = $1 WHERE key = 'progress_seq'", str(last))
    return Projection(first, last, changes), catalog, mark
