"""Fan-out: N activity clients while a producer ingests R events/s; latency and completeness.

    /work/.venv/bin/python bench/bench_fanout.py [--clients 1000] [--rate 3000] [--seconds 20]

The server runs in its own process pinned to core 0. The clients (spread over
``--procs`` processes of bench/activity_clients.py) and the producer run on
core 1. Each event carries ``sent_at`` (time.time() when its batch is sent);
a client's latency for it is its receive time minus that. Reported: p50/p99/max
latency, deliveries/s, whether every client got every event in order, and the
server's CPU share.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOAD_CPU,
    cpu_seconds,
    machine_facts,
    make_event,
    median,
    percentile,
    pin_to_cpu,
    read_line,
    server_process,
    spawn_python,
    write_json,
)

from jacmon.client.ingest import IngestClient

RESULTS = Path(__file__).resolve().parent / "results-server"
BUCKET_S = 0.0001
#: Seconds past the run the producer may still wait for an ack before it gives up.
ACK_GRACE_S = 10.0


def hist_summary(hist: Counter) -> dict[str, float]:
    """p50, p99 and max, in ms, of a histogram of BUCKET_S buckets."""
    return {q: hist_percentile(hist, at) for q, at in (("p50", 0.5), ("p99", 0.99), ("max", 1.0))}


def hist_percentile(hist: Counter, q: float) -> float:
    """The ``q`` quantile, in ms, of a histogram of BUCKET_S buckets."""
    total = sum(hist.values())
    if not total:
        return float("nan")
    rank = q * total
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return (bucket + 1) * BUCKET_S * 1000
    return max(hist) * BUCKET_S * 1000


async def produce(
    url: str, rate: int, seconds: float, batch_every_s: float, run: str, *, max_batch: int
) -> dict:
    """Ingest ``rate`` events/s for ``seconds``: every ``batch_every_s``, one batch of what is due.

    Like a real producer, it batches what accumulated while it waited for the
    previous ack, so the offered rate holds even when an ack takes longer than
    the cadence (the batch grows instead). Each event's ``sent_at`` is the
    time its batch is sent, so latency is ingest-to-client.
    """
    total = int(rate * seconds)
    sent = batches = 0
    ack_s: list[float] = []
    timed_out = False
    async with IngestClient(url) as client:
        started = time.monotonic()
        started_wall = time.time()
        # Bounded even if the server crawls: stop offering, and stop waiting for an ack.
        deadline = started + seconds + ACK_GRACE_S
        while sent < total and time.monotonic() < deadline:
            due = min(total, int((time.monotonic() - started) * rate)) - sent
            if due <= 0:
                await asyncio.sleep(batch_every_s)
                continue
            count = min(due, max_batch)
            sent_at = time.time()
            events = [make_event(sent + i, run=run, sent_at=sent_at) for i in range(count)]
            sent += count
            batches += 1
            try:
                ack = await asyncio.wait_for(
                    client.send_batch(events), max(0.1, deadline - time.monotonic())
                )
            except TimeoutError:
                timed_out = True
                break
            ack_s.append(time.time() - sent_at)
            if ack.accepted != count:
                raise RuntimeError(f"batch {batches}: accepted {ack.accepted} of {count}")
            # Wait for the next cadence tick (the ack's own delay counts toward it).
            await asyncio.sleep(max(0.0, batch_every_s - (time.time() - sent_at)))
        elapsed = time.monotonic() - started
    return {
        "events": sent,
        "seconds": elapsed,
        "started_at": started_wall,
        "ack_timed_out": timed_out,
        "batches": batches,
        "mean_batch": sent / batches if batches else 0.0,
        # Send to ack (after commit): how long ingest takes while the server fans out.
        "ack_ms": {
            "p50": percentile(ack_s, 0.5) * 1000,
            "p99": percentile(ack_s, 0.99) * 1000,
            "max": max(ack_s, default=float("nan")) * 1000,
        },
        "offered_rate": sent / elapsed,
    }


def run_fanout(
    url_base: str,
    args: argparse.Namespace,
    run: str,
    cpu_probe=None,
    *,
    client_bases: list[str] | None = None,
) -> dict:
    """Start the client processes, produce, collect; ``cpu_probe()`` gives server CPU seconds.

    The producer ingests into ``url_base``; client process ``i`` connects to
    ``client_bases[i % len(client_bases)]`` (default: ``url_base``), so clients can be
    spread over the nodes of a cluster.
    """
    bases = client_bases or [url_base]
    per_proc = [args.clients // args.procs] * args.procs
    per_proc[0] += args.clients - sum(per_proc)
    procs = [
        spawn_python(
            "activity_clients.py",
            [
                "--url",
                f"{bases[i % len(bases)]}/ws/activity",
                "--count",
                str(n),
                "--full",
                str(args.full),
            ]
            + (["--raw"] if args.raw_clients else []),
        )
        for i, n in enumerate(per_proc)
    ]
    try:
        ready = [json.loads(read_line(p, 300)) for p in procs]
        opened = sum(r["ready"] for r in ready)
        if opened != args.clients:
            raise RuntimeError(f"only {opened} of {args.clients} clients connected")
        time.sleep(1.0)  # let the snapshots drain before the clock starts
        cpu0 = cpu_probe() if cpu_probe else 0.0
        client_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        produced = asyncio.run(
            produce(
                url_base,
                args.rate,
                args.seconds,
                args.batch_every_ms / 1000,
                run,
                max_batch=args.max_batch,
            )
        )
        # Both servers number events from the seq their clients saw in hello.
        produced["last_seq"] = max(r["seq"] for r in ready) + produced["events"]
        cpu = (cpu_probe() - cpu0) if cpu_probe else float("nan")
        client_cpu = sum(cpu_seconds(p.pid) for p in procs) - client_cpu0
        order = json.dumps({"last_seq": produced["last_seq"], "deadline_s": args.drain_s})
        for p in procs:
            p.stdin.write(order + "\n")
            p.stdin.flush()
        outs = [json.loads(read_line(p, args.drain_s + 120)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait()
    # Per-client latency histograms (ms buckets as text keys), summed over clients.
    hists: dict[str, Counter] = {name: Counter() for name in ("build", "frame", "event")}
    for out in outs:
        for name, hist in hists.items():
            hist.update({int(k): v for k, v in out[f"{name}_latency"].items()})
    expected = produced["events"] * args.clients
    delivered = sum(o["events"] for o in outs)
    closed: Counter = Counter()
    for o in outs:
        closed.update(o["closed"])
    return {
        "clients": args.clients,
        "rate": args.rate,
        "produced": produced,
        "delivered": delivered,
        "expected": expected,
        "all_delivered": delivered == expected and all(o["errors"] == 0 for o in outs),
        "complete_clients": sum(o["complete"] for o in outs),
        "errors": sum(o["errors"] for o in outs),
        "error_examples": [e for o in outs for e in o["error_examples"]][:5],
        "closed": dict(closed),
        # Until the last client had everything (or the drain deadline): a backlog counts.
        "deliveries_per_s": delivered
        / (max(o["finished_at"] for o in outs) - produced["started_at"]),
        "frames": sum(o["frames"] for o in outs),
        "event_latency_ms": hist_summary(hists["event"]) | {"samples": hists["event"].total()},
        "frame_oldest_latency_ms": hist_summary(hists["frame"])
        | {"samples": hists["frame"].total()},
        # Server-side part: frame built ("ts") minus the oldest event's sent_at.
        "frame_build_latency_ms": hist_summary(hists["build"]),
        "server_cpu_share": cpu / produced["seconds"],
        # Over 1.0 means the client processes used more than the load core: a client bottleneck.
        "client_cpu_share": client_cpu / produced["seconds"],
    }


def report(result: dict) -> str:
    e, f = result["event_latency_ms"], result["frame_oldest_latency_ms"]
    return (
        f"{result['clients']} clients x {result['produced']['offered_rate']:,.0f} ev/s "
        f"(mean batch {result['produced']['mean_batch']:.0f}): "
        f"delivered {result['delivered']:,}/{result['expected']:,} "
        f"({result['deliveries_per_s']:,.0f}/s), all={result['all_delivered']}, "
        f"latency p50 {e['p50']:.1f} p99 {e['p99']:.1f} max {e['max']:.1f} ms "
        f"(frame-oldest p99 {f['p99']:.1f} max {f['max']:.1f}; "
        f"built-on-server p99 {result['frame_build_latency_ms']['p99']:.1f}; "
        f"ingest ack p50 {result['produced']['ack_ms']['p50']:.1f} "
        f"p99 {result['produced']['ack_ms']['p99']:.1f}), "
        f"server cpu {result['server_cpu_share']:.0%}, "
        f"client cpu {result['client_cpu_share']:.0%}, closed {result['closed']}"
    )


def add_load_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--procs", type=int, default=2, help="client processes")
    parser.add_argument("--full", type=int, default=10, help="fully decoded clients per process")
    parser.add_argument("--rate", type=int, default=3000, help="events/s offered")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch-every-ms", type=float, default=10.0, help="producer cadence")
    parser.add_argument("--max-batch", type=int, default=1000, help="largest producer batch")
    parser.add_argument("--drain-s", type=float, default=30.0, help="wait for stragglers")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--raw-clients",
        action="store_true",
        help="clients other than the fully decoded ones use bench/raw_ws.py (~10x less CPU)",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser)
    parser.add_argument(
        "--server-set", action="append", default=[], help="ServerSettings key=value for the server"
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "fanout.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    results: dict = {"machine": machine_facts(), "args": vars(args) | {"out": str(args.out)}}
    runs = []
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-fanout-") as tmp:
        for run in range(args.runs):
            overrides = dict(item.split("=", 1) for item in args.server_set)
            overrides.setdefault("metrics_interval_s", 3600)
            with server_process(Path(tmp) / f"fanout-{run}.db", **overrides) as server:
                result = run_fanout(server.url, args, f"f{run}", server.cpu_seconds)
            runs.append(result)
            print(f"run {run}: {report(result)}", flush=True)
    results["runs"] = runs
    results["median"] = {
        "p99_ms": median([r["event_latency_ms"]["p99"] for r in runs]),
        "frame_oldest_p99_ms": median([r["frame_oldest_latency_ms"]["p99"] for r in runs]),
        "deliveries_per_s": median([r["deliveries_per_s"] for r in runs]),
        "server_cpu_share": median([r["server_cpu_share"] for r in runs]),
        "all_delivered": all(r["all_delivered"] for r in runs),
    }
    print("median:", json.dumps(results["median"]))
    write_json(args.out, results)
    print("results in", args.out)


if __name__ == "__main__":
    main()
