"""The same fan-out on the earlier design's stack: Django Channels + daphne + InMemoryChannelLayer.

    bench/setup-django-env.sh        # once: bench/.venv-django with django, channels, daphne
    /work/.venv/bin/python bench/bench_django_fanout.py [--clients 1000] [--rates 3000,1000,300,100]

daphne runs the app in bench/django_fanout/ (one group, ``group_send`` per
event, each member forwards each message) pinned to core 0, in the Django
virtualenv; the same load clients and producer as bench_fanout.py run on
core 1. For each offered rate: deliveries/s until the last client had
everything (or the drain deadline), events lost, latency. A rate is
sustainable when every client got every event and p99 latency stayed under
``--sustainable-p99-ms``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_fanout import add_load_args, report, run_fanout
from common import (
    BENCH_DIR,
    LOAD_CPU,
    SERVER_CPU,
    cpu_seconds,
    machine_facts,
    median,
    pin_to_cpu,
    write_json,
)

RESULTS = BENCH_DIR / "results-server"
VENV = BENCH_DIR / ".venv-django"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def daphne(cpu: int = SERVER_CPU) -> Iterator[tuple[str, int]]:
    """Run daphne on a free loopback port; yields (base URL, pid)."""
    if not (VENV / "bin" / "daphne").exists():
        raise SystemExit(f"{VENV} is missing: run bench/setup-django-env.sh first")
    port = free_port()
    env = os.environ | {"DJANGO_SETTINGS_MODULE": "django_fanout.settings", "PYTHONPATH": ""}
    daphne_bin = str(VENV / "bin" / "daphne")
    cmd = ["taskset", "-c", str(cpu), daphne_bin, "-b", "127.0.0.1", "-p", str(port),
           "--websocket_connect_timeout", "60", "django_fanout.asgi:application"]  # fmt: skip
    log = open(RESULTS / "daphne.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=BENCH_DIR, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"daphne did not start; see {RESULTS / 'daphne.log'}")
            time.sleep(0.2)
        yield f"ws://127.0.0.1:{port}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def versions() -> str:
    out = subprocess.run(
        [str(VENV / "bin" / "python"), "-c",
         "import django, channels, daphne; print(f'django {django.__version__}, "
         "channels {channels.__version__}, daphne {daphne.__version__}')"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser)
    parser.set_defaults(seconds=10.0, runs=1)
    parser.add_argument("--rates", default="3000,1000,300,100", help="offered events/s to try")
    parser.add_argument("--sustainable-p99-ms", type=float, default=1000.0)
    parser.add_argument("--out", type=Path, default=RESULTS / "django-fanout.json")
    args = parser.parse_args()

    pin_to_cpu(LOAD_CPU)
    RESULTS.mkdir(exist_ok=True)
    results: dict = {
        "machine": machine_facts() | {"django_stack": versions()},
        "args": vars(args) | {"out": str(args.out)},
        "rates": {},
    }
    for rate in (int(r) for r in args.rates.split(",")):
        args.rate = rate
        runs = []
        for run in range(args.runs):
            # A fresh daphne per run: a backlog from one rate must not leak into the next.
            with daphne() as (url, pid):
                result = run_fanout(url, args, f"d{rate}-{run}", lambda pid=pid: cpu_seconds(pid))
            result["sustainable"] = (
                result["all_delivered"]
                and result["event_latency_ms"]["p99"] <= args.sustainable_p99_ms
            )
            runs.append(result)
            print(f"rate {rate} run {run}: {report(result)}", flush=True)
        results["rates"][str(rate)] = {
            "runs": runs,
            "deliveries_per_s": median([r["deliveries_per_s"] for r in runs]),
            "sustainable": all(r["sustainable"] for r in runs),
        }
        write_json(args.out, results)
    print("results in", args.out)


if __name__ == "__main__":
    main()
