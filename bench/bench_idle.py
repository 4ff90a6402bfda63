"""Idle stream connections on one server process: memory per connection and idle CPU.

    /work/.venv/bin/python bench/bench_idle.py [--connections 19000] [--procs 4] [--stream metrics]

The server runs in its own process pinned to core 0 with its open-file soft
limit raised to the hard one (20,000 here); the metrics sample interval is
set to an hour so the connections are really idle (keepalive pings aside).
Client processes (``--procs``, each under its own fd limit) on core 1 open
the connections, from 127.0.0.1 and more loopback addresses (``--sources``)
so the ephemeral port range is no limit. Reported: connections held, server
RSS before and after, (RSS delta) / N, and the server's CPU share while idle
for ``--hold-s`` seconds (covering at least one 20 s keepalive ping round).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    LOAD_CPU,
    machine_facts,
    median,
    pin_to_cpu,
    raise_fd_limit,
    read_line,
    server_process,
    spawn_python,
    write_json,
)

RESULTS = Path(__file__).resolve().parent / "results-server"


def run_idle(args: argparse.Namespace, db: Path) -> dict:
    import psutil

    per_proc = [args.connections // args.procs] * args.procs
    per_proc[0] += args.connections - sum(per_proc)
    sources = [f"127.0.0.{i}" for i in range(1, args.sources + 1)]
    with server_process(db, metrics_interval_s=3600) as server:
        proc = psutil.Process(server.pid)
        time.sleep(1.0)
        rss0 = proc.memory_info().rss
        uss0 = proc.memory_full_info().uss
        started = time.monotonic()
        clients = []
        for n in per_proc:
            cmd = ["--url", f"{server.url}/ws/{args.stream}", "--count", str(n)]
            for source in sources:
                cmd += ["--source", source]
            clients.append(spawn_python("idle_clients.py", cmd))
        try:
            opened = [json.loads(read_line(c, 600)) for c in clients]
            connect_s = time.monotonic() - started
            total = sum(o["open"] for o in opened)
            time.sleep(args.settle_s)
            rss1 = proc.memory_info().rss
            uss1 = proc.memory_full_info().uss
            cpu0 = server.cpu_seconds()
            time.sleep(args.hold_s)
            idle_cpu = (server.cpu_seconds() - cpu0) / args.hold_s
            rss2 = proc.memory_info().rss
            for c in clients:
                c.stdin.write("close\n")
                c.stdin.flush()
            still = sum(json.loads(read_line(c, 120))["still_open"] for c in clients)
            server_fds = proc.num_fds()
        finally:
            for c in clients:
                try:
                    c.wait(60)
                except Exception:
                    c.kill()
                    c.wait()
    return {
        "requested": args.connections,
        "opened": total,
        "failed": sum(o["failed"] for o in opened),
        "errors": [e for o in opened for e in o["errors"]][:5],
        "still_open_after_hold": still,
        "connect_seconds": connect_s,
        "rss_before_mib": rss0 / 2**20,
        "rss_after_mib": rss1 / 2**20,
        "rss_after_hold_mib": rss2 / 2**20,
        "kib_per_connection_rss": (rss1 - rss0) / total / 1024 if total else float("nan"),
        "kib_per_connection_uss": (uss1 - uss0) / total / 1024 if total else float("nan"),
        "idle_server_cpu_share": idle_cpu,
        "server_fds_at_end": server_fds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=19_000)
    parser.add_argument("--procs", type=int, default=4, help="client processes (fd limit each)")
    parser.add_argument("--sources", type=int, default=4, help="loopback source addresses")
    parser.add_argument("--stream", default="metrics", choices=["metrics", "alerts", "dashboard"])
    parser.add_argument("--settle-s", type=float, default=5.0)
    parser.add_argument("--hold-s", type=float, default=45.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / "idle.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    raise_fd_limit()
    results: dict = {"machine": machine_facts(), "args": vars(args) | {"out": str(args.out)}}
    runs = []
    with tempfile.TemporaryDirectory(prefix="jacmon-bench-idle-") as tmp:
        for run in range(args.runs):
            result = run_idle(args, Path(tmp) / f"idle-{run}.db")
            runs.append(result)
            print(
                f"run {run}: {result['opened']:,}/{args.connections:,} open "
                f"(failed {result['failed']}, still open after hold "
                f"{result['still_open_after_hold']:,}) in {result['connect_seconds']:.1f} s; "
                f"RSS {result['rss_before_mib']:.1f} -> {result['rss_after_mib']:.1f} MiB = "
                f"{result['kib_per_connection_rss']:.1f} KiB/conn "
                f"(USS {result['kib_per_connection_uss']:.1f}); "
                f"idle server CPU {result['idle_server_cpu_share']:.1%}",
                flush=True,
            )
    results["runs"] = runs
    results["median_kib_per_connection"] = median([r["kib_per_connection_rss"] for r in runs])
    write_json(args.out, results)
    print("results in", args.out)


if __name__ == "__main__":
    main()
