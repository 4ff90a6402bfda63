"""The progress projection under sustained ingest: lag, memory, catch-up after the load.

    /work/.venv/bin/python bench/bench_projector.py [--seconds 60] [--share 0.8] [--runs 1]
        [--learners 2000] [--rate EVENTS_PER_S]

Per run, on fresh databases, the server in its own process pinned to core 0 and
the producer on core 1:

1. the full rate: batches of 1,000 sent as fast as the acks come back (100,000
   events; the same measurement as ``bench_ingest.py`` at batch 1,000);
2. ``--share`` (80 %) of that rate (or ``--rate``) for ``--seconds`` (60 s), paced
   batch by batch, over ``--learners`` learners. Every 20 ms the bench reads the
   projection watermark (``meta.progress_seq``) from the database file; an acked
   batch's lag is the time from its ack until the watermark reached its last seq
   ("newest acked seq - watermark, in seconds"). Also sampled: the server's RSS
   (memory bounded) and its ``jacmon_projection_lag_events`` gauge;
3. after the last ack, the time until the watermark reaches the last seq.

Reported: the lag's p50/p99/max, RSS at start/middle/end, catch-up time, and the
projector's own spans/events from /metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOAD_CPU,
    machine_facts,
    make_event,
    median,
    pin_to_cpu,
    server_process,
    write_json,
)

from jacmon.client.ingest import IngestClient

RESULTS = Path(__file__).resolve().parent / "results-server"
BATCH = 1000
#: How often the watermark is read from the file, in seconds.
POLL_S = 0.02


def watermark(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE key = 'progress_seq'").fetchone()
    return int(row[0]) if row else 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def metric(port: int, name: str) -> float | None:
    """One sample of the server's /metrics (the first series of ``name``)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
        for line in answer.read().decode().splitlines():
            if line.startswith(name + "{") or line.startswith(name + " "):
                return float(line.rsplit(" ", 1)[1])
    return None


async def full_rate(url: str, frames: list[str]) -> float:
    """Events/s acked sending ``frames`` back to back (one ack at a time)."""
    async with IngestClient(url) as client:
        started = time.perf_counter()
        events = 0
        for frame in frames:
            events += (await client.send_raw(frame)).accepted
        return events / (time.perf_counter() - started)


async def sustained(server, db: Path, frames: list[str], rate: float, seconds: float) -> dict:
    """Send ``frames`` paced at ``rate`` events/s for ``seconds``; measure the lag."""
    acks: list[tuple[int, float]] = []  # (last seq, monotonic time of the ack)
    reached: dict[int, float] = {}  # index into acks -> when the watermark reached it
    rss: list[int] = []
    gauge: list[float] = []
    done = asyncio.Event()
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)

    async def watch() -> None:
        next_index = 0
        last_rss = 0.0
        while not (done.is_set() and next_index >= len(acks)):
            mark = watermark(conn)
            now = time.monotonic()
            while next_index < len(acks) and acks[next_index][0] <= mark:
                reached[next_index] = now
                next_index += 1
            if now - last_rss >= 1.0:
                last_rss = now
                rss.append(server.rss_bytes())
                lag = await asyncio.to_thread(metric, server.port, "jacmon_projection_lag_events")
                if lag is not None:
                    gauge.append(lag)
            await asyncio.sleep(POLL_S)

    watcher = asyncio.create_task(watch())
    sent = 0
    async with IngestClient(server.url) as client:
        started = time.monotonic()
        for index, frame in enumerate(frames):
            due = started + index * BATCH / rate
            if due - started >= seconds:
                break
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            ack = await client.send_raw(frame)
            acks.append((ack.last_seq, time.monotonic()))
            sent += ack.accepted
        load_s = time.monotonic() - started
    last_ack = acks[-1][1]
    done.set()
    await asyncio.wait_for(watcher, 60)
    conn.close()
    lags = [reached[i] - t for i, (_, t) in enumerate(acks)]
    return {
        "target_events_per_s": rate,
        "achieved_events_per_s": sent / load_s,
        "seconds": load_s,
        "batches": len(acks),
        "lag_p50_s": percentile(lags, 0.50),
        "lag_p99_s": percentile(lags, 0.99),
        "lag_max_s": max(lags),
        "catch_up_after_stop_s": max(0.0, reached[len(acks) - 1] - last_ack),
        "rss_mb": [round(b / 2**20, 1) for b in rss],
        "lag_events_gauge_max": max(gauge) if gauge else None,
        "spans": metric(server.port, "jacmon_projection_spans_total"),
        "events_projected": metric(server.port, "jacmon_projection_events_total"),
    }


def frames_for(count: int, learners: int, run: str) -> list[str]:
    events = [make_event(n, run=run, learners=learners) for n in range(count)]
    return [
        json.dumps(events[i : i + BATCH], separators=(",", ":")) for i in range(0, count, BATCH)
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--share", type=float, default=0.8, help="of the full rate")
    parser.add_argument("--rate", type=float, default=None, help="events/s (skips step 1)")
    parser.add_argument("--learners", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "projector.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    results: dict = {"machine": machine_facts(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-projector-") as tmp:
        workdir = Path(tmp)
        for run in range(args.runs):
            entry: dict = {}
            rate = args.rate
            if rate is None:
                frames = frames_for(100_000, args.learners, f"full{run}")
                with server_process(workdir / f"full-{run}.db") as server:
                    entry["full_events_per_s"] = asyncio.run(full_rate(server.url, frames))
                rate = args.share * entry["full_events_per_s"]
            count = int(rate * args.seconds * 1.1) // BATCH * BATCH + BATCH
            frames = frames_for(count, args.learners, f"load{run}")
            db = workdir / f"load-{run}.db"
            with server_process(db) as server:
                entry |= asyncio.run(sustained(server, db, frames, rate, args.seconds))
            results["runs"].append(entry)
            print(json.dumps(entry), flush=True)
    results["median"] = {
        key: median([r[key] for r in results["runs"]])
        for key in ("achieved_events_per_s", "lag_p50_s", "lag_p99_s", "lag_max_s",
                    "catch_up_after_stop_s")
    }  # fmt: skip
    print(json.dumps(results["median"], indent=1))
    write_json(args.out, results)
    print("results in", args.out)


if __name__ == "__main__":
    main()
