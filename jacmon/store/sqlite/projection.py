"""The progress projection on SQLite: fold the events after the watermark into progress.

One span is one transaction on the writer: read the watermark (``meta.progress_seq``),
fold the events ``watermark+1 .. min(head, watermark+max_events)`` with the
set-based statements of :mod:`.progress_sql` (the same ones whatever the span's
size, so the result does not depend on how the log is cut), discover the span's
paths and modules in the order they first appear, and store the new watermark.
A crash before COMMIT leaves rows and watermark as they were; the next span
starts from the same place.
"""

from __future__ import annotations

import sqlite3

from jacmon.store.catalog import Catalog
from jacmon.store.sqlite.catalog import insert_discovered
from jacmon.store.sqlite.progress_sql import (
    update_active_days,
    update_learners,
    update_module_progress,
    update_path_progress,
)
from jacmon.store.types import ProgressChanges, Projection

#: The newest stored seq (the high-water mark survives retention deleting every event).
HEAD_SQL = (
    "SELECT max(coalesce((SELECT max(seq) FROM events), 0),"
    " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'), 0))"
)

#: The projection watermark (0 before the first span).
WATERMARK_SQL = (
    "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'progress_seq'), 0)"
)

#: (path, module) of a span in the order each first appears (module NULL: the path alone).
_SPAN_PAIRS_SQL = (
    "SELECT path, module FROM events WHERE seq BETWEEN ? AND ? AND path IS NOT NULL"
    " GROUP BY path, module ORDER BY min(seq)"
)


def recompute_path_percents(conn: sqlite3.Connection, catalog: Catalog, paths: set[str]) -> None:
    """Re-derive every learner's percent on ``paths`` after their module count changed.

    On a path whose catalog came from a file, learners who have completed
    every listed module complete the path (as the next event would make them).
    """
    mine = (
        " FROM module_progress m"
        " JOIN catalog_modules c ON c.path = m.path AND c.module = m.module"
        " WHERE m.learner = path_progress.learner AND m.path = path_progress.path"
    )
    for path in paths:
        count = max(catalog.module_counts.get(path, 0), 1)
        conn.execute(
            f"UPDATE path_progress SET percent = min(100.0, coalesce((SELECT sum(m.percent){mine}),"
            f" 0) / ?), modules_completed = (SELECT count(*){mine} AND m.status = 'completed')"
            " WHERE path = ? AND status != 'completed'",
            (count, path),
        )
        if path in catalog.authoritative:
            conn.execute(
                "UPDATE path_progress SET status = 'completed', percent = 100.0,"
                f" completed_at = (SELECT max(m.completed_at){mine})"
                " WHERE path = ? AND status != 'completed' AND modules_completed >= ?",
                (path, count),
            )


def watermark(conn: sqlite3.Connection) -> int:
    """The projection watermark: progress is the fold of the events up to this seq."""
    return conn.execute(WATERMARK_SQL).fetchone()[0]


def project_span(conn: sqlite3.Connection, catalog: Catalog, max_events: int) -> Projection | None:
    """Inside the caller's write transaction: fold the next span (at most ``max_events``
    events) and move the watermark; None when there is nothing after it.

    ``catalog`` is the store's cache: discovery adds to it (the caller reloads it if
    the transaction rolls back).
    """
    if max_events < 1:
        raise ValueError(f"max_events must be at least 1, not {max_events}")
    low = watermark(conn)
    head = conn.execute(HEAD_SQL).fetchone()[0]
    if head <= low:
        return None
    first, last = low + 1, min(head, low + max_events)
    pairs: dict[tuple[str, str | None], None] = {}
    for path, module in conn.execute(_SPAN_PAIRS_SQL, (first, last)):
        pairs[(path, None)] = None
        if module is not None:
            pairs[(path, module)] = None
    changes = ProgressChanges()
    found = catalog.discover(pairs)
    insert_discovered(conn, found)
    if found.changed:
        recompute_path_percents(conn, catalog, found.changed)
        changes.recounted = set(found.changed)
    changes.modules = update_module_progress(conn, first, last)
    update_active_days(conn, first, last)
    changes.paths = update_path_progress(conn, first, last)
    changes.learners = update_learners(conn, first, last)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES ('progress_seq', ?)"
        " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (str(last),),
    )
    return Projection(first, last, changes)
