"""Ingest into PostgreSQL end to end vs plain COPY / executemany of the same rows.

    /work/main/.venv/bin/python bench/bench_pg_ingest.py [--events 50000] [--runs 3]

Starts a throwaway PostgreSQL (Debian's, as the cluster tests do; fsync off, which
flatters both sides alike). For each batch size and run: a fresh database; a
jacmon server (``--store postgresql://...``, no bus) in its own process pinned to
core 0; one producer on core 1 sending pre-encoded frames and waiting for each ack
(after the commit). The baselines insert the same rows into the same ``events``
table of a fresh jacmon database in the same PostgreSQL, one transaction per
batch, with ``COPY`` and with ``executemany`` (asyncpg, from this process).
Reported: events/s and jacmon / baseline.

Ingest stores events only; progress is a projection folded afterwards (issue 15).
So each run also measures the projection on its own: the same events ingested
through a PgStore into a fresh database (not timed), then one ``catch_up()`` of
all of them (spans of ``PROJECTION_SPAN`` events) timed, from this process.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import asyncpg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "cluster"))

from bench_ingest import baseline_rows, run_jacmon  # noqa: E402
from cluster_services import running_postgres  # noqa: E402
from common import (  # noqa: E402
    LOAD_CPU,
    machine_facts,
    make_event,
    median,
    pin_to_cpu,
    write_json,
)

from jacmon.events import validate_event  # noqa: E402
from jacmon.store import Store  # noqa: E402

RESULTS = BENCH / "results-server"
COLUMNS = [
    "seq", "id", "type", "ts", "received", "learner", "path", "module", "item", "score",
    "success", "progress", "duration_s", "attempt", "session", "body",
]  # fmt: skip


async def fresh_database(server, name: str) -> str:
    """A new database with jacmon's schema (migrated by opening a store on it)."""
    dsn = server.create_database(name)
    store = await Store.open(dsn)
    await store.close()
    return dsn


def pg_rows(rows: list[tuple]) -> list[tuple]:
    """SQLite's rows as PostgreSQL takes them (success 0/1, not a bool)."""
    return [(*row[:10], None if row[10] is None else int(row[10]), *row[11:]) for row in rows]


async def run_baseline(dsn: str, rows: list[tuple], batch: int, way: str) -> float:
    """Seconds to insert ``rows`` one transaction per ``batch``, by COPY or executemany."""
    conn = await asyncpg.connect(dsn)
    marks = ",".join(f"${i}" for i in range(1, len(COLUMNS) + 1))
    insert = f"INSERT INTO events ({','.join(COLUMNS)}) VALUES ({marks})"
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            chunk = rows[start : start + batch]
            async with conn.transaction():
                if way == "copy":
                    await conn.copy_records_to_table("events", records=chunk, columns=COLUMNS)
                else:
                    await conn.executemany(insert, chunk)
        return time.perf_counter() - started
    finally:
        await conn.close()


async def run_projection(dsn: str, events: list[dict], batch: int) -> dict:
    """Ingest ``events`` (batches of ``batch``, not timed), then time one ``catch_up()``
    folding all of them; seconds, events/s and the number of spans."""
    parsed = [validate_event(event) for event in events]
    store = await Store.open(dsn)
    try:
        for start in range(0, len(parsed), batch):
            await store.ingest(parsed[start : start + batch])
        started = time.perf_counter()
        spans = await store.catch_up()
        seconds = time.perf_counter() - started
    finally:
        await store.close()
    folded = sum(span.last_seq - span.first_seq + 1 for span in spans)
    if folded != len(parsed):
        raise RuntimeError(f"projected {folded} of {len(parsed)} events")
    return {
        "projection_seconds": seconds,
        "projection_events_per_s": len(parsed) / seconds,
        "projection_spans": len(spans),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per run")
    parser.add_argument("--batches", default="100,1000", help="batch sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--out", type=Path, default=RESULTS / "pg-ingest.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    sizes = [int(s) for s in args.batches.split(",")]
    results: dict = {
        "machine": machine_facts(),
        "events": args.events,
        "runs": {},
        "projection": [],
    }
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-pg-") as tmp, running_postgres() as pg:
        workdir = Path(tmp)
        for run in range(args.runs):
            events = [
                make_event(n, run=f"run{run}", learners=args.learners) for n in range(args.events)
            ]
            rows = pg_rows(baseline_rows(events))
            dsn = asyncio.run(fresh_database(pg, f"p{run}"))
            projection = asyncio.run(run_projection(dsn, events, max(sizes)))
            results["projection"].append(projection)
            print(
                f"run {run} projection: {projection['projection_events_per_s']:8,.0f} ev/s"
                f" ({projection['projection_seconds']:.2f} s,"
                f" {projection['projection_spans']} spans)",
                flush=True,
            )
            for batch in sizes:
                tag = f"r{run}b{batch}"
                copy_s = asyncio.run(
                    run_baseline(asyncio.run(fresh_database(pg, f"c{tag}")), rows, batch, "copy")
                )
                many_s = asyncio.run(
                    run_baseline(asyncio.run(fresh_database(pg, f"m{tag}")), rows, batch, "many")
                )
                dsn = asyncio.run(fresh_database(pg, f"j{tag}"))
                jac = run_jacmon(workdir, events, batch, tag, store=dsn)
                entry = jac | {
                    "copy_events_per_s": len(rows) / copy_s,
                    "executemany_events_per_s": len(rows) / many_s,
                }
                entry["ratio_copy"] = entry["events_per_s"] / entry["copy_events_per_s"]
                entry["ratio_executemany"] = (
                    entry["events_per_s"] / entry["executemany_events_per_s"]
                )
                results["runs"].setdefault(str(batch), []).append(entry)
                print(
                    f"run {run} batch {batch:5}: jacmon {entry['events_per_s']:8,.0f} ev/s  "
                    f"COPY {entry['copy_events_per_s']:8,.0f}  executemany "
                    f"{entry['executemany_events_per_s']:8,.0f}  ratio vs COPY "
                    f"{entry['ratio_copy']:.2f}  server cpu {jac['server_cpu_share']:.0%}",
                    flush=True,
                )
    keys = ("events_per_s", "copy_events_per_s", "executemany_events_per_s", "ratio_copy",
            "ratio_executemany", "server_cpu_share")  # fmt: skip
    results["median"] = {
        batch: {key: median([e[key] for e in entries]) for key in keys}
        for batch, entries in results["runs"].items()
    }
    print(f"\nmedians of {args.runs} runs, {args.events:,} events each")
    print("| batch | jacmon events/s | COPY events/s | executemany events/s | jacmon/COPY "
          "| jacmon/executemany | server CPU |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for batch, s in results["median"].items():
        print(
            f"| {int(batch):,} | {s['events_per_s']:,.0f} | {s['copy_events_per_s']:,.0f} | "
            f"{s['executemany_events_per_s']:,.0f} | {s['ratio_copy']:.2f} | "
            f"{s['ratio_executemany']:.2f} | {s['server_cpu_share']:.0%} |"
        )
    rate = median([p["projection_events_per_s"] for p in results["projection"]])
    results["projection_median_events_per_s"] = rate
    print(f"\nprojection (catch_up of {args.events:,} ingested events): {rate:,.0f} events/s")
    write_json(args.out, results)


if __name__ == "__main__":
    main()
