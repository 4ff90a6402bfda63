"""``jacmon demo``: an embedded server, simulated learners and the scheduled tasks on one clock.

The server, the simulator feed and the scheduler share a :class:`SimClock`
running ``speed`` times faster than the wall clock, so a simulated day passes
in about a minute at the default speed and alerts, velocity and trends show up
at once. The dashboard (or, headless, a summary) watches it like any client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jacmon.config import Settings, check_server_settings
from jacmon.errors import JacmonError
from jacmon.server.app import JacmonServer
from jacmon.sim.simulator import DEMO_CATALOG, SimClock, Simulator
from jacmon.sim.stream import StreamSummary, stream_to_server
from jacmon.store.catalog import parse_catalog_file

log = logging.getLogger("jacmon.demo")

#: Longest the demo waits for the simulated backlog before running every task once, in seconds.
BACKLOG_WAIT_S = 15.0

#: Longest the demo waits for its server to listen, in seconds.
READY_WAIT_S = 60.0

#: Longest the demo waits for its server thread to finish after being stopped, in seconds.
STOP_WAIT_S = 30.0


@dataclass
class DemoOptions:
    """What ``jacmon demo`` was asked for."""

    learners: int = 200
    #: Simulated seconds per wall second.
    speed: float = 1800.0
    seed: int = 7
    #: Simulated days of history fed in before live activity starts.
    history_days: float = 3.0
    #: Most events sent per wall second.
    rate: float = 5000.0
    #: None: a fresh database in a temporary directory, removed afterwards.
    db: Path | None = None
    port: int = 0
    #: Wall seconds to run; None runs until stopped.
    duration_s: float | None = None


@dataclass
class DemoSummary:
    """What the demo did, for the headless report."""

    url: str = ""
    #: The browser dashboard's address (``http://127.0.0.1:PORT/``).
    web_url: str = ""
    db: str = ""
    wall_s: float = 0.0
    simulated_days: float = 0.0
    events_stored: int = 0
    alerts_raised: int = 0
    alerts_firing: int = 0
    alerts_by_rule: dict[str, int] = field(default_factory=dict)
    task_runs: dict[str, dict[str, int]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


class DemoRuntime:
    """The server side of the demo, run on its own event loop (a thread, beside the UI).

    ``ready`` is set once the server listens (``url`` is then valid) or it failed
    (``error`` is then set); ``stop()`` may be called from any thread.
    """

    def __init__(self, options: DemoOptions):
        self.options = options
        self.clock = SimClock(datetime.now(UTC), speed=options.speed)
        self.ready = threading.Event()
        self.url = ""
        #: The browser dashboard's address once ready.
        self.web_url = ""
        self.error: BaseException | None = None
        self.summary = DemoSummary()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        #: stop() was called, perhaps before the loop ran (a Ctrl+C during start).
        self._stop_requested = threading.Event()

    def stop(self) -> None:
        """End the run; from any thread, also before the server has started."""
        self._stop_requested.set()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has already closed
                loop.call_soon_threadsafe(stop.set)

    def run(self) -> DemoSummary:
        """Run until ``stop()`` or the duration ends; blocking."""
        try:
            return asyncio.run(self.main())
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise

    async def main(self) -> DemoSummary:
        self._stop = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if self._stop_requested.is_set():
            self._stop.set()
        options = self.options
        with contextlib.ExitStack() as stack:
            db = options.db
            if db is None:
                db = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="jacmon-demo-")))
                db = db / "demo.db"
            settings = Settings()
            settings.server.db = db
            settings.server.port = options.port
            settings.server.metrics_interval_s = 1.0
            # The same checks a config file or serve's flags get (a port out of range).
            check_server_settings(settings.server)
            started = time.monotonic()
            async with JacmonServer(
                settings,
                clock=self.clock.time,
                clock_rate=self.clock.speed,
                scheduler_clock=self.clock,
            ) as server:
                await server.store.load_catalog(parse_catalog_file(DEMO_CATALOG))
                self.url = server.url
                self.summary.url = server.url
                self.web_url = self.summary.web_url = server.web_url or ""
                self.summary.db = str(db)
                self.ready.set()
                log.info(
                    "demo server on %s, %d learners at %gx",
                    server.url,
                    options.learners,
                    options.speed,
                )
                sim = Simulator(
                    seed=options.seed,
                    learners=options.learners,
                    clock=self.clock,
                    history=timedelta(days=options.history_days),
                )
                feed = asyncio.create_task(self._feed(server, sim))
                kickoff = asyncio.create_task(self._run_every_task_once(server, sim))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), options.duration_s)
                kickoff.cancel()
                feed.cancel()
                results = await asyncio.gather(kickoff, feed, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException) and not isinstance(
                        result, asyncio.CancelledError
                    ):
                        raise result
                self.summary.wall_s = round(time.monotonic() - started, 1)
                await self._summarise(server)
        return self.summary

    async def _feed(self, server: JacmonServer, sim: Simulator) -> StreamSummary:
        options = self.options
        # Streams until cancelled; the bound only satisfies stream_to_server's rule.
        summary = await stream_to_server(
            sim, server.url, rate=options.rate, duration_s=10 * 365 * 86400, batch_size=500
        )
        return summary

    async def _run_every_task_once(self, server: JacmonServer, sim: Simulator) -> None:
        """Once the history is in, run every task so each panel has data at once.

        Afterwards the scheduler runs them on their cron schedules, on the
        simulated clock.
        """
        deadline = time.monotonic() + BACKLOG_WAIT_S
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            upcoming = sim.next_event_time()
            if upcoming is None or upcoming > self.clock.now():
                break
        if server.scheduler is None:
            return
        for name in server.scheduler.config.tasks:
            result = await server.scheduler.run_once(name, trigger="manual")
            log.info("demo kickoff: %s %s", name, result.outcome)

    async def _summarise(self, server: JacmonServer) -> None:
        summary = self.summary
        summary.events_stored = server.store.last_seq
        summary.simulated_days = round(summary.wall_s * self.options.speed / 86400, 2)
        summary.alerts_raised, summary.alerts_by_rule = await server.store.alert_totals()
        summary.alerts_firing = sum(summary.alerts_by_rule.values())
        summary.task_runs = await server.store.run_totals()


def run_headless(options: DemoOptions) -> DemoSummary:
    """Run the demo without a UI for ``options.duration_s`` seconds."""
    return DemoRuntime(options).run()


def _start_in_thread(runtime: DemoRuntime) -> tuple[threading.Thread, dict[str, DemoSummary]]:
    """Run ``runtime`` in a daemon thread and wait until it listens.

    Returns the thread and a dict that gets ``"summary"`` when the run ends; raises
    the runtime's error if it failed to start, JacmonError if it took too long.
    """
    outcome: dict[str, DemoSummary] = {}

    def server_thread() -> None:
        with contextlib.suppress(BaseException):
            outcome["summary"] = runtime.run()

    thread = threading.Thread(target=server_thread, name="jacmon-demo-server", daemon=True)
    thread.start()
    if not runtime.ready.wait(READY_WAIT_S):
        runtime.stop()
        raise JacmonError(f"the demo server did not start within {READY_WAIT_S:.0f} s")
    if runtime.error is not None:
        raise runtime.error
    return thread, outcome


def _finish(runtime: DemoRuntime, thread: threading.Thread, outcome: dict) -> DemoSummary:
    """Stop ``runtime``, wait for its thread (bounded) and return its summary."""
    runtime.stop()
    thread.join(STOP_WAIT_S)
    if runtime.error is not None:
        raise runtime.error
    return outcome.get("summary", runtime.summary)


def run_with_dashboard(
    options: DemoOptions, announce: Callable[[DemoRuntime], None] = lambda _: None
) -> DemoSummary:
    """Run the server side in a thread and the dashboard here; quitting it stops everything.

    ``announce(runtime)`` is called once the server listens, before the dashboard
    takes the screen (the CLI prints the browser address there).
    """
    from jacmon.tui.app import JacmonDashboard

    runtime = DemoRuntime(options)
    thread, outcome = _start_in_thread(runtime)
    announce(runtime)
    try:
        # The header says the clock is simulated, how fast, and the simulated date.
        JacmonDashboard(runtime.url, now=runtime.clock.time, sim_speed=options.speed).run()
    finally:
        summary = _finish(runtime, thread, outcome)
    return summary


#: Signals that end ``demo --web`` with its summary and exit status 0.
WEB_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def run_web(options: DemoOptions, announce: Callable[[DemoRuntime], None]) -> DemoSummary:
    """Run the server and the simulated learners with no terminal UI, for a browser.

    ``announce(runtime)`` is called once the server listens. Runs until SIGINT
    (Ctrl+C) or SIGTERM, or ``options.duration_s``; then returns the summary.
    Must run in the main thread (it sets signal handlers; the old ones come back).
    """
    runtime = DemoRuntime(options)
    previous = {sig: signal.signal(sig, lambda *_: runtime.stop()) for sig in WEB_STOP_SIGNALS}
    try:
        thread, outcome = _start_in_thread(runtime)
        try:
            announce(runtime)
            while thread.is_alive():
                # Short joins: the signal handlers run between them.
                thread.join(0.2)
        finally:
            summary = _finish(runtime, thread, outcome)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return summary
