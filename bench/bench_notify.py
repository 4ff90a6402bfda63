"""Ingest with notifications off vs on, while a task fires 5,000 alerts.

    .venv/bin/python bench/bench_notify.py [--alerts 5000] [--events 60000] [--runs 2]

Each run: a fresh database seeded with ``--alerts`` learners who each have two
recent low scores; the server (bench/serve.py, core 0) with no ``[notify]``
("off") or with three webhook receivers, one of them slow (2 s per request)
("on"); one producer (core 1) sending ``--events`` events in batches of 1,000
and timing each ack; 0.5 s in, ``jacmon run-task performance`` fires one
consecutive-low-scores alert per seeded learner. Off and on alternate, so
both see the same machine. Reported per mode: events/s and ack p99 (ms), and
the on/off ratios; for "on", what each receiver got.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOAD_CPU,
    machine_facts,
    make_event,
    median,
    percentile,
    pin_to_cpu,
    server_process,
)

from jacmon.client.ingest import IngestClient

BATCH = 1000


class Receiver:
    """A webhook receiver on loopback that counts messages and alerts; ``delay_s`` per request."""

    def __init__(self, delay_s: float = 0.0) -> None:
        #: Bodies as received; parsed only when counted (after the timed window), so
        #: the receivers take as little as possible from the producer in this process.
        self.bodies: list[bytes] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(delay_s)
                owner.bodies.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.counted_bodies = 0
        self.alerts = 0
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def _count(receiver: Receiver) -> None:
    for body in receiver.bodies[receiver.counted_bodies :]:
        receiver.alerts += len(json.loads(body).get("alerts", []))
    receiver.counted_bodies = len(receiver.bodies)


def notify_config(path: Path, receivers: list[Receiver]) -> Path:
    lines = ["[notify]"]
    for index, receiver in enumerate(receivers):
        lines += [
            "[[notify.receivers]]",
            f'name = "r{index}"',
            'type = "webhook"',
            f'url = "{receiver.url}"',
            'secret = "bench"',
        ]
    names = ", ".join(f'"r{i}"' for i in range(len(receivers)))
    lines += ["[[notify.routes]]", f"receivers = [{names}]", 'group_wait = "1s"']
    path.write_text("\n".join(lines) + "\n")
    return path


def low_scores(learners: int) -> list[dict]:
    """Two recent scores below 60 for each of ``learners`` learners."""
    now = datetime.now(UTC)
    events = []
    for n in range(learners):
        for k, hours in enumerate((30, 6)):
            events.append(
                {
                    "id": f"seed-{n}-{k}",
                    "type": "assessment.attempted",
                    "ts": (now - timedelta(hours=hours)).isoformat(),
                    "learner": f"low-{n}",
                    "path": "python-101",
                    "module": "m1",
                    "item": f"quiz-{k}",
                    "score": {"scaled": 0.3 + 0.1 * k},
                }
            )
    return events


async def seed(url: str, events: list[dict]) -> None:
    async with IngestClient(url) as client:
        for start in range(0, len(events), BATCH):
            ack = await client.send_batch(events[start : start + BATCH])
            assert not ack.rejected, ack.rejected


async def load(url: str, frames: list[list[dict]], db: Path) -> dict:
    """Send the batches one after another, timing each ack; fire the task 0.5 s in."""
    latencies = []
    task: asyncio.subprocess.Process | None = None
    async with IngestClient(url) as client:
        started = time.perf_counter()
        for batch in frames:
            if task is None and time.perf_counter() - started > 0.5:
                task = await asyncio.create_subprocess_exec(
                    *[sys.executable, "-m", "jacmon", "run-task", "performance", "--db", str(db)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            sent = time.perf_counter()
            await client.send_batch(batch)
            latencies.append(time.perf_counter() - sent)
        elapsed = time.perf_counter() - started
    task_rc = await asyncio.wait_for(task.wait(), 120) if task is not None else None
    events = sum(len(b) for b in frames)
    return {
        "events_per_s": events / elapsed,
        "ack_p99_ms": percentile(latencies, 0.99) * 1000,
        "task_exit": task_rc,
    }


def run_once(mode: str, args: argparse.Namespace, run: int, receivers: list[Receiver]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        config = notify_config(Path(tmp) / "notify.toml", receivers) if mode == "on" else None
        with server_process(db, config=config) as server:
            asyncio.run(seed(server.url, low_scores(args.alerts)))
            frames = [
                [
                    make_event(n, run=f"{mode}{run}")
                    for n in range(start, min(start + BATCH, args.events))
                ]
                for start in range(0, args.events, BATCH)
            ]
            result = asyncio.run(load(server.url, frames, db))
            if mode == "on":
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    for receiver in receivers:
                        _count(receiver)
                    if min(r.alerts for r in receivers) >= args.alerts:
                        break
                    time.sleep(0.2)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--events", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    results: dict[str, list[dict]] = {"off": [], "on": []}
    delivered = []
    for run in range(args.runs):
        for mode in ("off", "on"):
            receivers = [Receiver(), Receiver(), Receiver(delay_s=2.0)]
            results[mode].append(run_once(mode, args, run, receivers))
            if mode == "on":
                for receiver in receivers:
                    _count(receiver)
                delivered.append(
                    [{"messages": len(r.bodies), "alerts": r.alerts} for r in receivers]
                )
            print(mode, run, json.dumps(results[mode][-1]), file=sys.stderr, flush=True)
    summary = {
        mode: {
            "events_per_s": round(median([r["events_per_s"] for r in rows])),
            "ack_p99_ms": round(median([r["ack_p99_ms"] for r in rows]), 1),
        }
        for mode, rows in results.items()
    }
    summary["ratio_events_per_s"] = round(
        summary["on"]["events_per_s"] / summary["off"]["events_per_s"], 3
    )
    summary["ratio_ack_p99"] = round(summary["on"]["ack_p99_ms"] / summary["off"]["ack_p99_ms"], 3)
    print(
        json.dumps(
            {
                "summary": summary,
                "runs": results,
                "receivers_on": delivered,
                "machine": machine_facts(),
                "command": " ".join(["bench/bench_notify.py", *sys.argv[1:]]),
                "pid": os.getpid(),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
