"""Take the README's dashboard screenshot (SVG) from a real `jacmon demo` run.

    /work/.venv/bin/python bench/screenshot_demo.py [--out docs/dashboard.svg]
        [--seconds 18] [--size 120x36] [--seed 7]

Runs the demo's server side (embedded server, simulated learners, scheduled
tasks on the simulated clock) exactly as ``jacmon demo`` does, and the
dashboard headless at ``--size`` against it; after ``--seconds`` of wall time,
when every panel has data, Textual saves the screen as SVG and everything
stops. Bounded: the run ends after ``--seconds`` (plus start-up and shutdown).
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path

from textual.pilot import Pilot

from jacmon.demo import DemoOptions, DemoRuntime
from jacmon.tui.app import JacmonDashboard

ROOT = Path(__file__).resolve().parent.parent


def parse_size(text: str) -> tuple[int, int]:
    """``120x36`` -> (120, 36); raises argparse's error naming the bad value."""
    try:
        columns, rows = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"size {text!r} is not COLUMNSxROWS; expected e.g. 120x36"
        ) from None
    if columns < 80 or rows < 24:
        raise argparse.ArgumentTypeError(f"size {text!r} is below 80x24, the smallest supported")
    return columns, rows


def take(out: Path, seconds: float, size: tuple[int, int], seed: int) -> Path:
    """Run the demo for ``seconds`` of wall time, then save the dashboard as SVG to ``out``."""
    runtime = DemoRuntime(DemoOptions(seed=seed))
    thread = threading.Thread(target=runtime.run, name="demo-server", daemon=True)
    thread.start()
    if not runtime.ready.wait(60):
        raise SystemExit("the demo server did not start within 60 s")
    if runtime.error is not None:
        raise SystemExit(f"the demo server failed: {runtime.error}")
    app = JacmonDashboard(runtime.url, now=runtime.clock.time)
    started = time.monotonic()

    async def shoot(pilot: Pilot) -> None:
        await asyncio.sleep(seconds)
        app.flush()  # draw the latest frames before the picture
        await pilot.pause()
        out.parent.mkdir(parents=True, exist_ok=True)
        app.save_screenshot(filename=out.name, path=str(out.parent))
        app.exit()

    try:
        app.run(headless=True, size=size, auto_pilot=shoot)
    finally:
        runtime.stop()
        thread.join(30)
    print(f"saved {out} ({size[0]}x{size[1]}) after {time.monotonic() - started:.1f} s")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "dashboard.svg")
    parser.add_argument("--seconds", type=float, default=18.0, help="demo wall time before")
    parser.add_argument("--size", type=parse_size, default=(120, 36), help="COLUMNSxROWS")
    parser.add_argument("--seed", type=int, default=7, help="simulator seed")
    args = parser.parse_args()
    if not 1.0 <= args.seconds <= 300.0:
        parser.error(f"--seconds has value {args.seconds}; expected 1 to 300")
    take(args.out, args.seconds, args.size, args.seed)


if __name__ == "__main__":
    main()
