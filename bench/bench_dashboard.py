"""Dashboard benchmark: first paint, CPU at 3,000 events/s, key-press latency.

    /work/.venv/bin/python bench/bench_dashboard.py [--rate 3000] [--seconds 10]

Three processes: a jacmon server (with a producer feeding ``--rate`` events/s
in batches), and the dashboard in a real pseudo-terminal (120x40). Measured:

- first paint: dashboard process start -> every panel showing its snapshot (s);
- CPU: the dashboard process's CPU time over the load window / wall time (% of one core);
- key latency, two ways, 8 presses of ``p`` (pause / resume):
  in the app, the key's action -> the screen refreshed with the change (ms, all 8);
  end to end, the byte written to the terminal -> the header changed in the
  terminal's output ("PAUSED" shown, or the alert count redrawn without it),
  which includes input parsing and whatever frame the app was drawing when the
  key came.

Bounded: the load runs ``--seconds`` (default 10), everything stops after.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import multiprocessing
import os
import pty
import re
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import cpu_seconds


def serve_and_feed(port: int, db: str, rate: int, seconds: float, ready, go) -> None:
    """Child: a real server, then ``rate`` events/s for ``seconds`` once ``go`` is set."""
    from jacmon.client.ingest import IngestClient
    from jacmon.config import Settings
    from jacmon.server.app import JacmonServer

    async def main() -> None:
        settings = Settings()
        settings.server.db = Path(db)
        settings.server.port = port
        async with JacmonServer(settings, run_scheduler=False):
            ready.set()
            while not go.is_set():  # noqa: ASYNC110 - a multiprocessing Event, not asyncio
                await asyncio.sleep(0.05)
            batch_size = max(1, rate // 20)
            n = 0
            start = time.monotonic()
            async with IngestClient(f"ws://127.0.0.1:{port}") as client:
                while time.monotonic() - start < seconds:
                    due = (time.monotonic() - start) * rate
                    if n >= due:
                        await asyncio.sleep(0.01)
                        continue
                    events = [
                        {
                            "id": f"b-{n + i}",
                            "type": "module.progressed",
                            "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "learner": f"learner-{(n + i) % 500:03d}",
                            "path": f"path-{(n + i) % 4}",
                            "module": f"m{(n + i) % 6}",
                            "progress": (n + i) % 101,
                        }
                        for i in range(batch_size)
                    ]
                    await client.send_batch(events)
                    n += batch_size
            print(json.dumps({"sent": n, "send_s": time.monotonic() - start}), flush=True)

    asyncio.run(main())


def dashboard_child(url: str, report: str) -> None:
    """Child: the dashboard in this terminal, reporting timings to ``report`` (JSON lines)."""
    import psutil

    from jacmon.tui.app import JacmonDashboard, SnapshotsShown

    started = psutil.Process().create_time()
    out = open(report, "a", buffering=1)  # noqa: SIM115 - lives as long as the process

    class Measured(JacmonDashboard):
        def on_snapshots_shown(self, _: SnapshotsShown) -> None:
            out.write(json.dumps({"first_paint_s": time.time() - started}) + "\n")

        def action_pause(self) -> None:
            pressed = time.perf_counter()
            super().action_pause()
            action_ms = (time.perf_counter() - pressed) * 1000
            resumed = not self.paused

            def shown() -> None:
                ms = (time.perf_counter() - pressed) * 1000
                row = {"key_ms": ms, "action_ms": action_ms, "resumed": resumed}
                out.write(json.dumps(row) + "\n")

            self.call_after_refresh(shown)

    Measured(url).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=3000, help="events per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="load duration")
    parser.add_argument("--child", nargs=2, metavar=("URL", "REPORT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        dashboard_child(*args.child)
        return

    tmp = Path(tempfile.mkdtemp(prefix="jacmon-bench-"))
    report = tmp / "report.jsonl"
    port = 18000 + os.getpid() % 1000
    ready, go = multiprocessing.Event(), multiprocessing.Event()
    server = multiprocessing.Process(
        target=serve_and_feed, args=(port, str(tmp / "b.db"), args.rate, args.seconds, ready, go)
    )
    server.start()
    ready.wait(30)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    dash = subprocess.Popen(
        [sys.executable, __file__, "--child", f"ws://127.0.0.1:{port}", str(report)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    # Drain the terminal like an emulator would, so the app never blocks on output,
    # and time when "PAUSED" first shows after a pause key was written.
    stop = threading.Event()
    armed: dict[str, float] = {}
    # Pause: "PAUSED" appears in the header. Resume: the header's alert count is redrawn
    # without "PAUSED" after it.
    paused_shown = re.compile(rb"PAUSED")
    resumed_shown = re.compile(rb"alerts \d+(?: \(\d+ critical\))?(?! \xc2\xb7 PAUSED)")
    armed_for = {"what": paused_shown}
    end_to_end_ms: list[float] = []

    def drain() -> None:
        tail = b""
        while not stop.is_set():
            try:
                chunk = os.read(master, 65536)
            except OSError:
                return
            seen = tail + chunk
            tail = chunk[-16:]
            pressed = armed.get("at")
            if pressed is not None and armed_for["what"].search(seen):
                end_to_end_ms.append((time.perf_counter() - pressed) * 1000)
                armed.clear()

    threading.Thread(target=drain, daemon=True).start()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (
        report.exists() and "first_paint_s" in report.read_text("utf-8")
    ):
        time.sleep(0.05)
    go.set()
    time.sleep(1.0)  # let the load reach its rate before measuring
    cpu0, t0 = cpu_seconds(dash.pid), time.monotonic()
    window = max(1.0, args.seconds - 2.0)
    presses = 8
    for n in range(presses):
        time.sleep(window / (presses + 1))
        armed_for["what"] = paused_shown if n % 2 == 0 else resumed_shown
        armed["at"] = time.perf_counter()
        os.write(master, b"p")
    time.sleep(window / (presses + 1))
    cpu1, t1 = cpu_seconds(dash.pid), time.monotonic()
    cpu_pct = (cpu1 - cpu0) * 100 / (t1 - t0)
    os.write(master, b"q")
    try:
        dash.wait(10)
    except subprocess.TimeoutExpired:
        dash.kill()
    stop.set()
    server.join(args.seconds + 30)
    if server.is_alive():
        server.terminate()
    rows = [json.loads(line) for line in report.read_text("utf-8").splitlines()]
    first = next((r["first_paint_s"] for r in rows if "first_paint_s" in r), None)
    keys = sorted(r["key_ms"] for r in rows if "key_ms" in r)
    result = {
        "rate_events_per_s": args.rate,
        "first_paint_s": round(first, 3) if first is not None else None,
        "cpu_pct_of_one_core": round(cpu_pct, 1),
        "key_ms_max": round(keys[-1], 1) if keys else None,
        "key_ms_median": round(keys[len(keys) // 2], 1) if keys else None,
        "key_presses": len(keys),
        "key_ms_by_press": [
            {
                "key": "resume" if r["resumed"] else "pause",
                "ms": round(r["key_ms"], 1),
                "action_ms": round(r["action_ms"], 1),
            }
            for r in rows
            if "key_ms" in r
        ],
        "key_end_to_end_ms": [round(ms, 1) for ms in end_to_end_ms],
        "dashboard_exit_code": dash.returncode,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
