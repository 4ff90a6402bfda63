"""Storing one batch: dedupe, sequence numbers, events and the cursor in one transaction."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from jacmon.events import Event
from jacmon.store.encoding import event_body
from jacmon.store.records import raise_other_content
from jacmon.store.sqlite.database import chunks
from jacmon.store.types import IngestOutcome, ReceivedRecord, StoredEvent

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


def store_batch(
    conn: sqlite3.Connection,
    events: Sequence[Event],
    *,
    next_seq: int,
    received: float,
    cursor: tuple[str, str] | None = None,
    records: Sequence[ReceivedRecord] = (),
) -> IngestOutcome:
    """Store ``events`` inside the caller's transaction.

    Events whose ``id`` is already stored, or repeated earlier in the batch, are
    duplicates: counted, not stored. The rest get consecutive sequence numbers
    from ``next_seq``; ``cursor`` (name, value), if given, is saved with them, and
    the pushed ``records`` they came from (one already kept stays as it was).
    Progress is not touched here: the projector folds these events in later
    (:mod:`.projection`).
    """
    known = _existing_ids(conn, [e.id for e in events])
    stored: list[StoredEvent] = []
    duplicates: list[int] = []
    seen = set(known)
    rows = []
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
        seq += 1
    if rows:
        conn.executemany(
            "INSERT INTO events (seq, id, type, ts, received, learner, path, module, item, score,"
            " success, progress, duration_s, attempt, session, body)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
    if cursor is not None:
        conn.execute(
            "INSERT INTO cursors (name, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (cursor[0], cursor[1], received),
        )
    if records:
        _refuse_other_content(conn, records)
        conn.executemany(
            "INSERT INTO received (source, id, received, digest, event_id, reason, token, body)"
            " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT (source, id) DO NOTHING",
            [
                (r.source, r.id, received, r.digest, r.event_id, r.reason, r.token, r.body)
                for r in records
            ],
        )
    return IngestOutcome(stored, duplicates, seq - 1)


def _refuse_other_content(conn: sqlite3.Connection, records: Sequence[ReceivedRecord]) -> None:
    """Raise :class:`RecordConflict` if a record that refuses it meets its id with another
    digest, kept already or earlier in ``records`` (inside the batch's transaction: the
    one writer makes the check and the insert one step)."""
    strict = [r for r in records if r.refuse_other_content]
    kept: dict[tuple[str, str], str] = {}
    for source in {r.source for r in strict}:
        for chunk in chunks([r.id for r in strict if r.source == source]):
            marks = ",".join("?" * len(chunk))
            rows = conn.execute(
                f"SELECT id, digest FROM received WHERE source = ? AND id IN ({marks})",
                (source, *chunk),
            )
            kept.update(((source, ident), digest) for ident, digest in rows)
    raise_other_content(strict, kept)
