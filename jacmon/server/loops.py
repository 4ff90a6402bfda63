"""The server's background loops and the supervisor that keeps them running.

Each loop runs until cancelled; one that raises is logged at once, marked down
(``/healthz`` shows it) and restarted after a growing pause.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

from jacmon.bus import AlertsChanged, CatalogChanged, TokensRevoked
from jacmon.logs import redact
from jacmon.server.context import ServerContext

log = logging.getLogger("jacmon.server")

#: How often the alerts feed looks for changes written by other processes, in seconds.
ALERT_POLL_S = 1.0

#: Alert changes read (and published) per pass of the alert feed.
ALERT_FEED_CHUNK = 1000

#: How often the store gets its upkeep (SQLite: a WAL checkpoint), in seconds.
UPKEEP_S = 2.0

#: How often connected tokens are checked for revocation and the catalog for a reload, in s.
STORE_WATCH_S = 5.0

#: How often the leader confirms its lease and the other nodes try to take it, in seconds.
LEASE_CHECK_S = 1.0

#: First and longest wait before a background loop that died is restarted, in seconds.
LOOP_RESTART_FIRST_S = 1.0
LOOP_RESTART_MAX_S = 30.0

#: How long a restarted loop must run without failing to count as up again, in seconds
#: (longer than any loop's first pass: the store watch waits STORE_WATCH_S).
LOOP_HEALTHY_AFTER_S = 10.0

#: How long shutdown waits for each background loop to end once cancelled, in seconds.
LOOP_STOP_S = 5.0

LoopFactory = Callable[[], Coroutine[Any, Any, Any]]


class Supervisor:
    """Runs named loops, restarting each that fails; ``loops_down`` says which are down."""

    def __init__(self) -> None:
        #: Loops that died and are waiting to restart: name -> the cause.
        self.loops_down: dict[str, str] = {}
        self._tasks: dict[str, asyncio.Task] = {}

    def start(self, loops: dict[str, LoopFactory]) -> None:
        for name, make in loops.items():
            self._tasks[name] = asyncio.create_task(self._supervise(name, make), name=name)

    def running(self) -> list[str]:
        """The names of the loops started and not stopped."""
        return list(self._tasks)

    async def _supervise(self, name: str, make: LoopFactory) -> None:
        """Run the loop ``make()`` until cancelled; if it raises, log the cause at once, mark
        it down and restart it after a growing pause.

        A loop that returns on its own (the LRS tailer once stopped) is not restarted.
        """
        pause = LOOP_RESTART_FIRST_S
        while True:
            started = time.monotonic()
            try:
                await self._run_once(name, make)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started >= LOOP_HEALTHY_AFTER_S:
                    # It had recovered: a new failure starts the backoff over.
                    pause = LOOP_RESTART_FIRST_S
                cause = redact(f"{type(exc).__name__}: {exc}")
                self.loops_down[name] = cause
                log.error(
                    "%s loop died (%s); restarting in %.0f s", name, cause, pause, exc_info=exc
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, LOOP_RESTART_MAX_S)
            log.info("%s loop restarted", name)

    async def _run_once(self, name: str, make: LoopFactory) -> None:
        """Run ``make()`` to its end; a loop marked down is marked up again only once it has
        run LOOP_HEALTHY_AFTER_S without failing (one that fails on its first pass stays down
        instead of flickering to "ok" between restarts)."""
        run = asyncio.ensure_future(make())
        try:
            if name in self.loops_down:
                done, _ = await asyncio.wait({run}, timeout=LOOP_HEALTHY_AFTER_S)
                if not done:
                    self.loops_down.pop(name, None)
                    log.info("%s loop recovered", name)
            await run
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run

    async def stop(self, names: list[str] | None = None) -> None:
        """Cancel the loops ``names`` (default: every loop) and wait up to LOOP_STOP_S for
        them to end.

        Never raises: a loop that died or ignores cancellation is logged, not
        allowed to keep shutdown from closing the store (whose threads would
        keep the process alive).
        """
        chosen = list(self._tasks) if names is None else [n for n in names if n in self._tasks]
        tasks = [self._tasks.pop(name) for name in chosen]
        for name in chosen:
            self.loops_down.pop(name, None)
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=LOOP_STOP_S)
        for task in pending:
            log.warning(
                "%s loop did not stop within %.0f s; leaving it", task.get_name(), LOOP_STOP_S
            )
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("%s loop had failed: %s", task.get_name(), task.exception())


class AlertFeed:
    """Publishes alert changes to the bus, whoever wrote them (scheduler, run-task, an ack).

    Reads the change log after the last seq it published, every ALERT_POLL_S or at
    once when nudged.
    """

    def __init__(self, ctx: ServerContext, last_seq: int):
        self.ctx = ctx
        #: The seq of the newest change published.
        self.last_seq = last_seq
        self._nudge = asyncio.Event()

    def nudge(self) -> None:
        self._nudge.set()

    async def run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._nudge.wait(), ALERT_POLL_S)
            self._nudge.clear()
            try:
                changes = await self.ctx.store.alert_changes_since(
                    self.last_seq, limit=ALERT_FEED_CHUNK
                )
            except Exception:
                log.exception("reading alert changes failed")
                continue
            if changes:
                self.last_seq = changes[-1]["seq"]
                self.ctx.bus.publish(AlertsChanged(changes))
                if len(changes) == ALERT_FEED_CHUNK:
                    self._nudge.set()


async def store_upkeep(ctx: ServerContext) -> None:
    """The store's housekeeping every UPKEEP_S, off the ingest path (SQLite: fold the WAL)."""
    while True:
        await asyncio.sleep(UPKEEP_S)
        try:
            await ctx.store.upkeep()
        except Exception:
            log.exception("store upkeep failed")


async def store_watch(ctx: ServerContext, live_token_ids: Callable[[], Iterable[str]]) -> None:
    """Publish what other processes changed in the store: a catalog they loaded
    (``jacmon catalog load``) and the revocation of tokens that are connected here; and
    take the velocity task's last result (run by whichever node leads)."""
    while True:
        await asyncio.sleep(STORE_WATCH_S)
        try:
            if await ctx.store.refresh_catalog():
                log.info("catalog changed on disk; reloaded")
                ctx.bus.publish(CatalogChanged())
        except Exception:
            log.exception("reloading the catalog failed")
        try:
            # The velocity task runs on the leader; every node's samples carry its result.
            ctx.sampler.set_velocity(await ctx.store.path_velocity())
        except Exception:
            log.exception("reading the velocity task's result failed")
        live = sorted(set(live_token_ids()))
        if not live:
            continue
        revoked = await ctx.store.revoked_among(live)
        if revoked:
            ctx.bus.publish(TokensRevoked(frozenset(revoked)))
