"""SIGKILL at random points of ingest and projection: nothing acknowledged is lost, and
progress ends up exactly the fold of every stored event.

Each round starts ``jacmon serve`` on one SQLite file and kills it with SIGKILL:
- while a producer streams batches of random size (a kill lands between a batch's
  commit and its projection, or inside a span);
- or right after it starts on a backlog of events committed while it was down
  (stored with the store's own ingest, as an offline import would), so the kill
  lands inside the long catch-up span.
Afterwards the server is started once more and left to catch up; then every
acknowledged id must be stored once, the seqs gap-free, and the progress tables
equal to the reference rules (jacmon/analytics/progress.py) over all events.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sqlite3
from pathlib import Path

import pytest
from progress_reference import Reference, assert_same, random_event, table
from support import until
from test_server_process import start_process

from jacmon.client.ingest import IngestClient
from jacmon.errors import JacmonError
from jacmon.events import validate_event
from jacmon.store import Store

#: Rounds of kill-and-restart (bounded: about 1-3 s each).
ROUNDS = 10


def watermarks(db: Path) -> tuple[int, int]:
    """(newest stored seq, projection watermark) read from the file."""
    with sqlite3.connect(db) as conn:
        (head,) = conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()
        (mark,) = conn.execute(
            "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta"
            " WHERE key = 'progress_seq'), 0)"
        ).fetchone()
    return head, mark


@pytest.mark.timeout(300)
async def test_sigkill_anywhere_leaves_progress_the_fold_of_every_event(tmp_path):
    db = tmp_path / "j.db"
    rng = random.Random(15)
    used: list[str] = []
    acknowledged: set[str] = set()
    counter = 0
    backlog_at_kill: list[int] = []

    def next_events(size: int) -> list[dict]:
        nonlocal counter
        events = [random_event(rng, counter + i, used) for i in range(size)]
        counter += size
        return events

    for round_number in range(ROUNDS):
        if round_number % 2:
            # A backlog committed while no server ran: the restart folds it in one span.
            store = await Store.open(db)
            try:
                for _ in range(10):
                    batch = next_events(2000)
                    await store.ingest([validate_event(e) for e in batch])
                    acknowledged.update(e["id"] for e in batch)
            finally:
                await store.close()
            process, _ = await start_process(db)
            await asyncio.sleep(rng.uniform(0.0, 0.4))
        else:
            process, port = await start_process(db)
            target = len(acknowledged) + rng.randrange(500, 4000)

            async def produce(port: int = port) -> None:
                async with IngestClient(f"ws://127.0.0.1:{port}") as client:
                    while True:
                        batch = next_events(rng.randrange(1, 400))
                        await client.send_batch(batch)
                        acknowledged.update(e["id"] for e in batch)

            producer = asyncio.create_task(produce())
            await until(
                lambda target=target, producer=producer: (
                    len(acknowledged) >= target or producer.done()
                ),
                "the producer to reach its target",
            )
            assert not producer.done(), producer.exception()
            await asyncio.sleep(rng.uniform(0.0, 0.05))
        process.send_signal(signal.SIGKILL)
        await process.wait()
        if round_number % 2 == 0:
            with pytest.raises(JacmonError):
                await producer
        head, mark = watermarks(db)
        assert mark <= head
        backlog_at_kill.append(head - mark)

    # Some kills must have landed with events committed but not yet folded in.
    assert any(backlog_at_kill), backlog_at_kill

    # The last start: the projector folds what is left within the lag bound.
    process, _ = await start_process(db)
    try:
        await until(lambda: (lambda h, m: h == m)(*watermarks(db)), "the projection to catch up")
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()

    with sqlite3.connect(db) as conn:
        ids = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY seq")]
        bodies = [row[0] for row in conn.execute("SELECT body FROM events ORDER BY seq")]
        seqs = [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert acknowledged <= set(ids)
    assert len(ids) == len(set(ids)), "each event stored once"
    assert seqs == list(range(1, len(seqs) + 1))

    events = [validate_event(json.loads(body)) for body in bodies]
    store = await Store.open(db)
    try:
        assert await store.progress_seq() == len(events)
        reference = Reference()
        reference.apply(events, store.catalog, set())
        for name, keys, expected in (
            ("module_progress", ("learner", "path", "module"), reference.modules),
            ("path_progress", ("learner", "path"), reference.paths),
            ("learners", ("learner",), reference.learners),
        ):
            assert_same(await table(store, name, keys), expected, name)
    finally:
        await store.close()
