"""SQLite's WAL starts over under continuous ingest (SQLite only: WAL checkpoints).

A server takes checkpoints off the commit path and runs them from a connection of
its own every 2 s. Under continuous writes that checkpoint never caught up with
the writer, so the WAL never restarted: it grew by every page ever written (4.5
GB after 800,000 events, each read slower). Now a checkpoint that finds the WAL
long finishes under the write lock, and the next write starts the WAL over.
"""

from __future__ import annotations

import asyncio
import itertools
import random

from progress_reference import random_event

from jacmon.events import validate_event
from jacmon.store import Store
from jacmon.store.sqlite import database


async def test_the_wal_starts_over_while_ingest_never_pauses(tmp_path, monkeypatch):
    monkeypatch.setattr(database, "WAL_RESTART_FRAMES", 50)
    store = await Store.open(tmp_path / "jacmon.db")
    await store.begin_serving()  # the server's mode: no checkpoint inside a commit
    rng = random.Random(4)
    used: list[str] = []
    lengths: list[int] = []

    done = asyncio.Event()

    async def ingest() -> None:
        for n in range(60):
            await store.ingest(
                [validate_event(random_event(rng, n * 300 + i, used)) for i in range(300)]
            )
            await store.project()
        done.set()

    async def checkpoints() -> None:
        while not done.is_set():
            frames, _ = await store.db.checkpoint()
            lengths.append(frames)
            await asyncio.sleep(0.01)

    try:
        await asyncio.gather(ingest(), checkpoints())
        # The WAL starts over at the first write after a finished checkpoint: one more
        # checkpoint and batch, so the WAL's peak cannot simply be where ingest stopped.
        await store.db.checkpoint()
        await store.ingest([validate_event(random_event(rng, 60 * 300, used))])
        async with store.db.writer.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
            _, final, _ = await cursor.fetchone()
    finally:
        await store.close()
    # The WAL's length (frames since it last started over) came back down again and
    # again, instead of only growing.
    drops = sum(1 for before, after in itertools.pairwise(lengths) if after < before)
    assert drops >= 3, lengths
    assert final < max(lengths), (final, lengths)
