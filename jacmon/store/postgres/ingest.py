"""Storing one batch in PostgreSQL: dedupe, sequence numbers, events, cursor.

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
4. insert the events and store the producer's cursor; the caller commits right
   after, and that commit is the acknowledgement.

Progress and the catalog are not touched here: the projector
(:mod:`.projection`) folds the committed events in later, on whichever node, and
never takes the counter lock, so a batch never waits for progress to be computed.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from jacmon.events import Event
from jacmon.store.encoding import event_body
from jacmon.store.postgres import sequence
from jacmon.store.postgres.received import keep_records
from jacmon.store.types import IngestOutcome, ReceivedRecord, StoredEvent

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
    events: Sequence[Event],
    *,
    received: float,
    cursor: tuple[str, str] | None = None,
    records: Sequence[ReceivedRecord] = (),
) -> IngestOutcome:
    """Store ``events`` inside the caller's transaction (see the module docstring).

    ``received`` is the arrival time in epoch seconds; ``cursor`` (name, value), if
    given, is saved with the events, and the pushed ``records`` they came from.
    """
    last = await sequence.lock(conn)
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
    stored: list[StoredEvent] = []
    if fresh:
        seqs = await sequence.allocate(conn, len(fresh))
        rows = []
        for seq, (_, event) in zip(seqs, fresh, strict=True):
            body = event_body(event)
            stored.append(StoredEvent(seq, event, body))
            rows.append(_event_row(seq, event, received, body))
        await insert_events(conn, rows)
        last = seqs.stop - 1
    if cursor is not None:
        await conn.execute(
            "INSERT INTO cursors (name, value, updated) VALUES ($1, $2, $3) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            cursor[0],
            cursor[1],
            received,
        )
    if records:
        await keep_records(conn, records, received=received)
    return IngestOutcome(stored, duplicates, last)
