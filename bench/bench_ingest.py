"""Ingest end to end (WebSocket batch -> validate -> commit -> ack) vs plain sqlite3 executemany.

    /work/.venv/bin/python bench/bench_ingest.py [--events 100000] [--runs 3] [--profile]

For each batch size and run: a fresh database; the server in its own process
pinned to core 0; one producer connection on core 1 sending pre-encoded
frames and waiting for each ack (the ack comes after the commit). The
baseline inserts the same rows, same columns and indexes as jacmon's
``events`` table, with ``executemany`` and one commit per batch (WAL,
synchronous=NORMAL), on core 0 too, in the same run. Reported: events/s and
jacmon / baseline. ``--profile`` adds one cProfile'd server run (batch 1000)
and writes the top functions to ``bench/results/ingest-profile.txt``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ALL_CPUS,
    LOAD_CPU,
    SERVER_CPU,
    machine_facts,
    make_event,
    median,
    pin_to_cpu,
    server_process,
    write_json,
)

from jacmon.client.ingest import IngestClient
from jacmon.events import validate_event

RESULTS = Path(__file__).resolve().parent / "results-server"

#: The events table as jacmon creates it (jacmon/store/sqlite/schema.py, migration 1).
EVENTS_DDL = """
CREATE TABLE events (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL, ts REAL NOT NULL,
    received REAL NOT NULL, learner TEXT NOT NULL, path TEXT, module TEXT, item TEXT,
    score REAL, success INTEGER, progress REAL, duration_s REAL, attempt INTEGER,
    session TEXT, body TEXT NOT NULL
);
CREATE INDEX events_learner_ts ON events (learner, ts);
CREATE INDEX events_ts ON events (ts);
"""
INSERT = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"


def baseline_rows(events: list[dict]) -> list[tuple]:
    """The rows jacmon would insert for ``events`` (prepared outside the timing)."""
    rows = []
    received = time.time()
    for seq, body in enumerate(events, start=1):
        event = validate_event(body)
        score = event.score.percent if event.score is not None else None
        text = json.dumps(event.as_dict(), separators=(",", ":"))
        rows.append(
            (seq, event.id, event.type, event.ts, received, event.learner, event.path,
             event.module, event.item, score, event.success, event.progress, event.duration_s,
             event.attempt, event.session, text)
        )  # fmt: skip
    return rows


def run_baseline(db: Path, rows: list[tuple], batch: int) -> float:
    """Seconds to insert ``rows`` with executemany, one transaction per ``batch``."""
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.executescript(EVENTS_DDL)
    previous = os.sched_getaffinity(0)
    pin_to_cpu(SERVER_CPU)
    try:
        started = time.perf_counter()
        for start in range(0, len(rows), batch):
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(INSERT, rows[start : start + batch])
            conn.execute("COMMIT")
        elapsed = time.perf_counter() - started
    finally:
        os.sched_setaffinity(0, previous)
        conn.close()
    return elapsed


async def send_all(url: str, frames: list[str], warmup: str) -> tuple[float, int]:
    """(seconds, events accepted) to send ``frames`` one ack at a time, after one warm-up."""
    async with IngestClient(url) as client:
        await client.send_raw(warmup)
        accepted = 0
        started = time.perf_counter()
        for frame in frames:
            ack = await client.send_raw(frame)
            accepted += ack.accepted
            if ack.rejected:
                raise RuntimeError(f"server rejected events: {ack.rejected[:3]}")
        return time.perf_counter() - started, accepted


def run_jacmon(
    workdir: Path,
    events: list[dict],
    batch: int,
    tag: str,
    profile: Path | None = None,
    **settings: object,
) -> dict:
    """One server run (``settings`` go to its ServerSettings: ``store=`` a PostgreSQL DSN)."""
    frames = [
        json.dumps(events[i : i + batch], separators=(",", ":"))
        for i in range(0, len(events), batch)
    ]
    warmup = json.dumps([make_event(i, run=f"warm{tag}") for i in range(min(batch, 100))])
    cpu = settings.pop("cpu", SERVER_CPU)
    with server_process(
        workdir / f"jacmon-{tag}.db", cpu=cpu, profile=profile, **settings
    ) as server:
        cpu_before = server.cpu_seconds()
        elapsed, accepted = asyncio.run(send_all(server.url, frames, warmup))
        cpu = server.cpu_seconds() - cpu_before
        usage = json.loads(server.stop().strip().splitlines()[-1])
    if accepted != len(events):
        raise RuntimeError(f"accepted {accepted} of {len(events)} events")
    return {
        "seconds": elapsed,
        "events_per_s": len(events) / elapsed,
        "server_cpu_share": cpu / elapsed,
        "server_threads_cpu_s": [t["cpu_s"] for t in usage["threads"][:4]],
        "server_loop_cpu_s": sum(t["cpu_s"] for t in usage["threads"] if t.get("loop")),
    }


def profile_report(path: Path, limit: int = 30) -> str:
    out = io.StringIO()
    stats = pstats.Stats(str(path), stream=out)
    stats.strip_dirs().sort_stats("tottime").print_stats(limit)
    stats.sort_stats("cumulative").print_stats(limit)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per run")
    parser.add_argument("--batches", default="100,1000,5000", help="batch sizes, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--learners", type=int, default=2000, help="distinct learners the events spread over"
    )
    parser.add_argument("--profile", action="store_true", help="add a cProfile'd run")
    parser.add_argument(
        "--unpinned",
        action="store_true",
        help="let the server use both cores (its writer thread beside its event loop); "
        "the baseline stays on core 0",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "ingest.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    sizes = [int(s) for s in args.batches.split(",")]
    results: dict = {
        "machine": machine_facts(),
        "events": args.events,
        "learners": args.learners,
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-ingest-") as tmp:
        workdir = Path(tmp)
        for run in range(args.runs):
            events = [
                make_event(n, run=f"run{run}", learners=args.learners) for n in range(args.events)
            ]
            rows = baseline_rows(events)
            for batch in sizes:
                tag = f"{run}-{batch}"
                base_s = run_baseline(workdir / f"base-{tag}.db", rows, batch)
                jac = run_jacmon(
                    workdir, events, batch, tag, **({"cpu": ALL_CPUS} if args.unpinned else {})
                )
                entry = jac | {
                    "baseline_events_per_s": len(rows) / base_s,
                    "ratio": jac["events_per_s"] / (len(rows) / base_s),
                }
                results["runs"].setdefault(str(batch), []).append(entry)
                print(
                    f"run {run} batch {batch:5}: jacmon {entry['events_per_s']:9,.0f} ev/s  "
                    f"sqlite3 {entry['baseline_events_per_s']:9,.0f} ev/s  "
                    f"ratio {entry['ratio']:.3f}  server cpu {jac['server_cpu_share']:.0%}",
                    flush=True,
                )
        summary = {}
        for batch, entries in results["runs"].items():
            summary[batch] = {
                key: median([e[key] for e in entries])
                for key in ("events_per_s", "baseline_events_per_s", "ratio", "server_cpu_share")
            }
        results["median"] = summary
        print("\nmedians of", args.runs, "runs")
        print("| batch | jacmon events/s | sqlite3 executemany events/s | ratio | server CPU |")
        print("|---|---|---|---|---|")
        for batch, s in summary.items():
            print(
                f"| {int(batch):,} | {s['events_per_s']:,.0f} | {s['baseline_events_per_s']:,.0f}"
                f" | {s['ratio']:.2f} | {s['server_cpu_share']:.0%} |"
            )
        if args.profile:
            events = [make_event(n, run="prof", learners=args.learners) for n in range(args.events)]
            prof = workdir / "ingest.prof"
            jac = run_jacmon(workdir, events, 1000, "prof", profile=prof)
            report = profile_report(prof)
            RESULTS.mkdir(exist_ok=True)
            (RESULTS / "ingest-profile.txt").write_text(
                f"cProfile of the server's event-loop thread, batch 1000, {args.events} events, "
                f"{jac['events_per_s']:,.0f} events/s under the profiler; CPU s per thread "
                f"(loop first if largest): {jac['server_threads_cpu_s']}\n\n{report}"
            )
            results["profile"] = jac
            print("\nprofile written to", RESULTS / "ingest-profile.txt")
    write_json(args.out, results)
    print("results in", args.out)


if __name__ == "__main__":
    main()
