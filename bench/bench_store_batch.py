"""Where each event's time goes, in-process: decode, validate, store_batch, projection.

    /work/.venv/bin/python bench/bench_store_batch.py [--events 100000] [--batch 1000]
        [--span 20000]
    /work/.venv/bin/python bench/bench_store_batch.py --threads [--runs 2]

No server and no WebSocket: the same events as bench_ingest.py, decoded and
validated the way the server does, then stored with ``store_batch`` on a plain
sqlite3 connection to a fresh database file, one transaction per batch (what the
ack waits for); then folded into progress by ``project_span`` in spans of
``--span`` events, one transaction each (what the projector does behind ingest).
Each progress statement (jacmon/store/sqlite/progress_sql.py) is timed on its
own: execute (the work inside SQLite) and fetching the RETURNING rows. Reported
in microseconds per event, so the parts add up to the whole.

``--threads`` asks whether a second core helps inside one process: the same
work serially, then with decode and validation of the next batch on the main
thread while a writer thread stores the current one (a queue of 2 batches).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import queue
import sqlite3
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import msgspec
from common import make_event

import jacmon.store.sqlite.ingest as ingest_module
import jacmon.store.sqlite.projection as projection_module
from jacmon.events import validate_event
from jacmon.plain_events import decode_plain_events
from jacmon.store.catalog import Catalog
from jacmon.store.sqlite import progress_sql
from jacmon.store.sqlite.catalog import load_catalog_sync
from jacmon.store.sqlite.database import Database


@contextlib.contextmanager
def fresh_database() -> Iterator[sqlite3.Connection]:
    """A migrated jacmon database in a temporary directory, opened as the server's writer is."""
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-store-") as tmp:
        path = Path(tmp) / "jacmon.db"

        async def create() -> None:
            await (await Database.open(path)).close()

        asyncio.run(create())
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous = NORMAL")
        try:
            yield conn
        finally:
            conn.close()


def timed_statements(seconds: dict[str, float]) -> None:
    """Wrap the projection's statements so each records its execute and fetch time."""
    for name, sql in (
        ("module_progress", progress_sql._MODULE_SQL),
        ("path_progress", progress_sql._PATH_SQL),
        ("learners", progress_sql._LEARNER_SQL),
    ):

        def run(conn, first_seq, last_seq, name=name, sql=sql):
            started = time.perf_counter()
            cursor = conn.cursor()
            cursor.row_factory = None
            cursor.execute(sql, {"first_seq": first_seq, "last_seq": last_seq})
            executed = time.perf_counter()
            names = [column[0] for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            seconds[f"{name}: execute"] += executed - started
            seconds[f"{name}: fetch rows"] += time.perf_counter() - executed
            return rows

        setattr(projection_module, f"update_{name}", run)

    def days(conn, first_seq, last_seq):
        started = time.perf_counter()
        progress_sql.update_active_days(conn, first_seq, last_seq)
        seconds["active days: execute"] += time.perf_counter() - started

    projection_module.update_active_days = days


def store_one(conn: sqlite3.Connection, catalog: Catalog, batch: list, next_seq: int) -> int:
    """Store one batch of validated events in its own transaction; the next free seq."""
    conn.execute("BEGIN IMMEDIATE")
    outcome = ingest_module.store_batch(conn, batch, next_seq=next_seq, received=time.time())
    conn.execute("COMMIT")
    return outcome.last_seq + 1


def project_all(conn: sqlite3.Connection, catalog: Catalog, span: int) -> None:
    """Fold everything stored in spans of ``span`` events, one transaction each."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        folded = projection_module.project_span(conn, catalog, span)
        conn.execute("COMMIT")
        if folded is None:
            return


def store_all(conn: sqlite3.Connection, batches) -> None:
    """Store each batch of validated events in its own transaction."""
    catalog = load_catalog_sync(conn)
    next_seq = 1
    for batch in batches:
        next_seq = store_one(conn, catalog, batch, next_seq)
    project_all(conn, catalog, 20_000)


def decoded(frames: list[str]):
    for frame in frames:
        yield [validate_event(body) for body in msgspec.json.decode(frame)]


def serial_rate(frames: list[str], events: int) -> float:
    with fresh_database() as conn:
        started = time.perf_counter()
        store_all(conn, decoded(frames))
        elapsed = time.perf_counter() - started
    return events / elapsed


def threaded_rate(frames: list[str], events: int) -> float:
    with fresh_database() as conn:
        handoff: queue.Queue = queue.Queue(maxsize=2)

        def from_queue():
            while (batch := handoff.get()) is not None:
                yield batch

        writer = threading.Thread(target=store_all, args=(conn, from_queue()))
        started = time.perf_counter()
        writer.start()
        for batch in decoded(frames):
            handoff.put(batch)
        handoff.put(None)
        writer.join()
        elapsed = time.perf_counter() - started
    return events / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--span", type=int, default=20_000, help="events per projector span")
    parser.add_argument("--threads", action="store_true", help="serial vs two threads")
    parser.add_argument("--runs", type=int, default=2, help="runs of --threads")
    args = parser.parse_args()

    events = [make_event(n, learners=args.learners) for n in range(args.events)]
    frames = [
        json.dumps(events[i : i + args.batch], separators=(",", ":"))
        for i in range(0, len(events), args.batch)
    ]
    if args.threads:
        for run in range(args.runs):
            serial = serial_rate(frames, len(events))
            threaded = threaded_rate(frames, len(events))
            print(f"run {run}: serial {serial:,.0f} events/s, two threads {threaded:,.0f} events/s")
        return
    seconds: dict[str, float] = defaultdict(float)
    timed_statements(seconds)
    started = time.perf_counter()
    for frame in frames:
        decode_plain_events(frame)
    fast_path = 1e6 * (time.perf_counter() - started) / args.events
    with fresh_database() as conn:
        catalog = load_catalog_sync(conn)
        next_seq = 1
        for frame in frames:
            started = time.perf_counter()
            bodies = msgspec.json.decode(frame)
            parsed = time.perf_counter()
            batch = [validate_event(body) for body in bodies]
            validated = time.perf_counter()
            next_seq = store_one(conn, catalog, batch, next_seq)
            done = time.perf_counter()
            seconds["decode (msgspec)"] += parsed - started
            seconds["validate"] += validated - parsed
            seconds["store_batch + commit (the ack waits for this)"] += done - validated
        started = time.perf_counter()
        project_all(conn, catalog, args.span)
        seconds[f"projection in spans of {args.span:,} (behind the ack)"] += (
            time.perf_counter() - started
        )

    per_event = {name: 1e6 * s / args.events for name, s in seconds.items()}
    statements = sum(v for k, v in per_event.items() if ":" in k)
    total = sum(v for k, v in per_event.items() if ":" not in k)
    projection = per_event[f"projection in spans of {args.span:,} (behind the ack)"]
    print(f"{args.events:,} events, batch {args.batch:,}, {args.learners:,} learners")
    print("| part | us per event |\n|---|---|")
    for name, value in per_event.items():
        if ":" not in name:
            print(f"| {name} | {value:.1f} |")
    print(f"| - of which the progress statements | {statements:.1f} |")
    for name, value in per_event.items():
        if ":" in name:
            print(f"| -- {name} | {value:.1f} |")
    print(
        f"| - of which the rest (span pairs, discovery, watermark, commit) | "
        f"{projection - statements:.1f} |"
    )
    print(f"| total | {total:.1f} (= {1e6 / total:,.0f} events/s on one core) |")
    decode_and_validate = per_event["decode (msgspec)"] + per_event["validate"]
    print(
        f"\nthe server's fast path for frames of plain events (jacmon/plain_events.py): "
        f"decode + validate {fast_path:.1f} us per event instead of {decode_and_validate:.1f}"
    )


if __name__ == "__main__":
    main()
