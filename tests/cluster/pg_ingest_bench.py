"""Measure PgStore.ingest with the events written by COPY or by executemany (docs/cluster-notes.md).

Not a test: run it by hand on a quiet machine, from the repository root::

    .venv/bin/python tests/cluster/pg_ingest_bench.py [--batches 100 1000] [--repeat 30]

It starts a throwaway PostgreSQL (cluster_services: loopback TCP, fsync off, so the
numbers are the client's and the server's CPU, not the disk), opens a PgStore and,
for each batch size, ingests ``--repeat`` batches of new events (module progress of
200 learners over 4 paths) once with
:func:`jacmon.store.postgres.ingest.insert_events` (COPY) and once with an
``executemany`` of a one-row INSERT in its place, alternating, each on a database of
its own that keeps growing. It prints per way the median and best time of a whole
batch (lock, dedupe, seqs, events, cursor, commit) and of the events insert alone.
Progress is not part of a batch any more (a projection folded later, issue 15): the
time of one ``catch_up()`` folding all the batches ingested is printed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[2]))
from cluster_services import running_postgres

from jacmon.events import Event, validate_event
from jacmon.store import Store
from jacmon.store.postgres import ingest

EVENT_INSERT = (
    f"INSERT INTO events ({', '.join(ingest.EVENT_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(ingest.EVENT_COLUMNS) + 1))})"
)


async def insert_executemany(conn: asyncpg.Connection, rows: list[tuple]) -> None:
    """The alternative to COPY: one prepared one-row INSERT, sent for every row."""
    await conn.executemany(EVENT_INSERT, rows)


def batch(start: int, size: int) -> list[Event]:
    return [
        validate_event(
            {
                "id": f"e{n}",
                "type": "module.progressed",
                "ts": f"2026-01-{5 + n % 20:02d}T10:{n % 60:02d}:00Z",
                "learner": f"u{n % 200}",
                "path": f"p{n % 4}",
                "module": f"m{n % 7}",
                "progress": n % 100,
                "duration_s": 30,
                "platform": "bench",
            }
        )
        for n in range(start, start + size)
    ]


def timed(insert: Callable[[asyncpg.Connection, list[tuple]], Awaitable[None]], spent: list[float]):
    async def run(conn: asyncpg.Connection, rows: list[tuple]) -> None:
        start = time.perf_counter()
        await insert(conn, rows)
        spent.append(time.perf_counter() - start)

    return run


async def measure(dsns: dict[str, str], size: int, repeat: int) -> None:
    ways = {"COPY (copy_records_to_table)": ingest.insert_events,
            "executemany of a one-row INSERT": insert_executemany}  # fmt: skip
    stores = {name: await Store.open(dsns[name]) for name in ways}
    whole: dict[str, list[float]] = {name: [] for name in ways}
    inserts: dict[str, list[float]] = {name: [] for name in ways}
    original = ingest.insert_events
    projection: dict[str, float] = {}
    try:
        for round_ in range(repeat + 2):
            events = batch(round_ * size, size)
            for name, way in ways.items():
                spent: list[float] = []
                ingest.insert_events = timed(way, spent)
                start = time.perf_counter()
                await stores[name].ingest(events)
                if round_ >= 2:  # the first two warm the caches and the prepared statements
                    whole[name].append(time.perf_counter() - start)
                    inserts[name].extend(spent)
        for name, store in stores.items():
            start = time.perf_counter()
            await store.catch_up()
            projection[name] = time.perf_counter() - start
    finally:
        ingest.insert_events = original
        for store in stores.values():
            await store.close()
    print(f"batches of {size} events, median and best of {repeat}")
    for name in ways:
        w, i = whole[name], inserts[name]
        print(
            f"  {name:34} batch median {statistics.median(w) * 1000:6.2f} ms"
            f" best {min(w) * 1000:6.2f} ms ({size / statistics.median(w):8,.0f} events/s);"
            f" events insert median {statistics.median(i) * 1000:6.2f} ms"
            f" best {min(i) * 1000:6.2f} ms"
        )
    events = (repeat + 2) * size
    for name, seconds in projection.items():
        print(
            f"  {name:34} projection of all {events:,} events {seconds * 1000:8.2f} ms"
            f" ({events / seconds:8,.0f} events/s)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"asyncpg {asyncpg.__version__}")
    with running_postgres() as server:
        for size in args.batches:
            dsns = {}
            for index, name in enumerate(
                ("COPY (copy_records_to_table)", "executemany of a one-row INSERT")
            ):
                database = f"bench_{size}_{index}"
                server.create_database(database)
                dsns[name] = server.dsn(database)
            asyncio.run(measure(dsns, size, args.repeat))


if __name__ == "__main__":
    main()
