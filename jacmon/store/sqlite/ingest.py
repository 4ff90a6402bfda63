"""Storing one batch: dedupe, sequence numbers, events and progress in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from jacmon.events import Event
from jacmon.store.catalog import Catalog
from jacmon.store.encoding import event_body
from jacmon.store.sqlite.catalog import insert_discovered
from jacmon.store.sqlite.database import chunks
from jacmon.store.sqlite.progress_sql import (
    update_learners,
    update_module_progress,
    update_path_progress,
)
from jacmon.store.types import IngestOutcome, ProgressChanges, StoredEvent

#: SQLite primary result codes that mean the storage, not the batch, failed: what to say.
_STORAGE_PROBLEMS: dict[int, str] = {
    sqlite3.SQLITE_BUSY: "database {path} is locked by another writer",
    sqlite3.SQLITE_LOCKED: "database {path} is locked by another writer",
    sqlite3.SQLITE_READONLY: "database {path} is read-only; make the file, its -wal file "
    "and its directory writable",
    sqlite3.SQLITE_IOERR: "a disk I/O error occurred writing database {path}",
    sqlite3.SQLITE_CORRUPT: "database {path} is damaged",
    sqlite3.SQLITE_FULL: "the disk holding database {path} is full; free space and writes "
    "resume on their own",
    sqlite3.SQLITE_CANTOPEN: "a file of database {path} cannot be opened",
    sqlite3.SQLITE_NOTADB: "database {path} is not a database file any more",
}


def storage_problem(exc: BaseException, path: object) -> str | None:
    """A sentence naming the storage problem behind ``exc``, or None if it is not one."""
    if not isinstance(exc, sqlite3.Error):
        return None
    code = getattr(exc, "sqlite_errorcode", None)
    if code is None:
        return None
    template = _STORAGE_PROBLEMS.get(code & 0xFF)
    if template is None:
        return None
    return template.format(path=path) + f" (SQLite: {exc})"


def _existing_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0] for row in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
        )
    return found


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


def store_batch(
    conn: sqlite3.Connection,
    catalog: Catalog,
    events: Sequence[Event],
    *,
    next_seq: int,
    received: float,
    cursor: tuple[str, str] | None = None,
) -> IngestOutcome:
    """Store ``events`` inside the caller's transaction.

    Events whose ``id`` is already stored, or repeated earlier in the batch, are
    duplicates: counted, not stored. The rest get consecutive sequence numbers
    from ``next_seq``. Progress rows they touch are updated in the same
    transaction (by set-based SQL over the stored rows, see progress_sql), and
    ``cursor`` (name, value), if given, is saved with them.
    """
    known = _existing_ids(conn, [e.id for e in events])
    stored: list[StoredEvent] = []
    duplicates: list[int] = []
    seen = set(known)
    rows = []
    # (path, None) and (path, module) in event order, so discovered modules get
    # stable positions.
    pairs: dict[tuple[str, str | None], None] = {}
    seq = next_seq
    for index, event in enumerate(events):
        if event.id in seen:
            duplicates.append(index)
            continue
        seen.add(event.id)
        body = event_body(event)
        stored.append(StoredEvent(seq, event, body))
        score = event.score.percent if event.score is not None else None
        rows.append(
            (
                seq,
                event.id,
                event.type,
                event.ts,
                received,
                event.learner,
                event.path,
                event.module,
                event.item,
                score,
                event.success,
                event.progress,
                event.duration_s,
                event.attempt,
                event.session,
                body,
            )
        )
        if event.path is not None:
            pairs[(event.path, None)] = None
            if event.module is not None:
                pairs[(event.path, event.module)] = None
        seq += 1
    if rows:
        conn.executemany(
            "INSERT INTO events (seq, id, type, ts, received, learner, path, module, item, score,"
            " success, progress, duration_s, attempt, session, body)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        changes = _update_progress(conn, catalog, pairs, next_seq, seq - 1)
    else:
        changes = ProgressChanges()
    if cursor is not None:
        conn.execute(
            "INSERT INTO cursors (name, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (cursor[0], cursor[1], received),
        )
    return IngestOutcome(stored, duplicates, changes, seq - 1)


def _update_progress(
    conn: sqlite3.Connection,
    catalog: Catalog,
    pairs: dict[tuple[str, str | None], None],
    first_seq: int,
    last_seq: int,
) -> ProgressChanges:
    """Progress for the events stored as ``first_seq``..``last_seq``; the changed rows."""
    changes = ProgressChanges()
    found = catalog.discover(pairs)
    insert_discovered(conn, found)
    recount = found.changed
    if recount:
        recompute_path_percents(conn, catalog, recount)
        changes.recounted = recount
    changes.modules = update_module_progress(conn, first_seq, last_seq)
    changes.paths = update_path_progress(conn, first_seq, last_seq)
    changes.learners = update_learners(conn, first_seq, last_seq)
    return changes
