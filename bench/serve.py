"""Run one jacmon server for a benchmark: pinned, port 0, prints its port as a JSON line.

    python bench/serve.py --db /tmp/b.db --cpu 0 [--profile out.prof] [--set key=value ...]
                          [--default-gc]   # CPython's GC thresholds, not jacmon serve's
                          [--config jacmon.toml]   # its [notify] table, for bench_notify.py

Prints ``{"port": P, "pid": PID}`` once listening, serves until SIGTERM/SIGINT,
shuts down gracefully, then prints ``{"threads": [...], "cpu_s": ...}`` (CPU
seconds per thread: the event loop vs aiosqlite's worker threads). With
``--profile`` the event-loop thread runs under cProfile and the stats are
written to that file (aiosqlite's threads are not in it: see the thread split).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import pin_to_cpu, raise_fd_limit


async def _serve(
    db: Path, overrides: dict[str, str], config: Path | None = None, tune_gc: bool = True
) -> dict[str, object]:
    from jacmon.config import Settings, apply_section
    from jacmon.errors import ConfigError
    from jacmon.server.app import JacmonServer

    settings = Settings()
    if config is not None:
        import tomllib

        settings.notify = tomllib.loads(config.read_text()).get("notify", {})
    settings.server.db = db
    settings.server.port = 0
    try:
        # Each value as its field's type, as the config file would give it.
        apply_section(settings.server, "server", overrides)
    except ConfigError as exc:
        raise SystemExit(f"--set: {exc}") from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    server = JacmonServer(settings, run_scheduler=False)
    await server.start()
    if tune_gc:  # as jacmon serve does
        from jacmon.server.gc_tuning import tune_for_serving

        tune_for_serving()
    print(json.dumps({"port": server.port, "pid": os.getpid()}), flush=True)
    await stop.wait()
    # Before shutdown: aiosqlite's threads end when their connections close.
    usage = _thread_cpu()
    await server.shutdown()
    return usage


def _thread_cpu() -> dict[str, object]:
    import threading

    import psutil

    proc = psutil.Process()
    loop_id = threading.get_native_id()  # called on the event loop's thread
    threads = sorted(
        (
            {"id": t.id, "cpu_s": round(t.user_time + t.system_time, 3), "loop": t.id == loop_id}
            for t in proc.threads()
        ),
        key=lambda t: -t["cpu_s"],
    )
    times = proc.cpu_times()
    return {"threads": threads, "cpu_s": round(times.user + times.system, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="core to pin to")
    parser.add_argument("--profile", type=Path, default=None, help="cProfile stats file")
    parser.add_argument("--set", action="append", default=[], help="ServerSettings key=value")
    parser.add_argument("--config", type=Path, default=None, help="a TOML file's [notify]")
    parser.add_argument(
        "--default-gc", action="store_true", help="CPython's GC thresholds, not jacmon serve's"
    )
    args = parser.parse_args()
    pin_to_cpu(args.cpu)
    raise_fd_limit()
    overrides = {}
    for item in args.set:
        key, _, text = item.partition("=")
        overrides[key] = text
    profiler = cProfile.Profile() if args.profile else None
    if profiler:
        profiler.enable()
    usage = asyncio.run(_serve(args.db, overrides, args.config, not args.default_gc))
    if profiler:
        profiler.disable()
        profiler.dump_stats(args.profile)
    print(json.dumps(usage), flush=True)


if __name__ == "__main__":
    main()
