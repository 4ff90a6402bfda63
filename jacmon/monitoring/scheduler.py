"""The task scheduler: a croniter loop on an injected clock, with run records.

Schedules are 5-field cron expressions read in the configured IANA zone. Fire
times are computed on *local wall-clock* times (croniter on naive datetimes,
pure calendar arithmetic) and then placed in the zone: a wall time the clocks
skip (spring forward) runs at the same offset after the change (02:30 -> 03:30),
a wall time that happens twice (fall back) runs at its first occurrence only. So
a daily ``0 2 * * *`` runs exactly once per local date, DST days included.

The clock is injected: a callable returning an aware datetime, or an object
with ``now()``. If the clock (or the object a bound ``now`` belongs to) has
``async sleep_until(dt)``, the loop sleeps with it (a simulated clock that runs
fast wakes the loop at the right simulated time); otherwise it sleeps
``(dt - now) / speed`` wall seconds, ``speed`` being the clock's attribute if it
has one (else 1). Sleeps are capped at ``max_sleep_s`` so a clock that jumps is
noticed. Runs' "now" (the analytics windows) is the same clock.

Each fire time is handled once: it runs, or is recorded ``skipped`` (the task
was still running) or ``missed`` (later than its grace window; after downtime
the older misses are one coalesced ``missed`` record and the newest one runs
if it is within the grace window).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from croniter import croniter

from jacmon.errors import TaskError, UsageError
from jacmon.monitoring.tasks import TaskContext, TaskOutcome, TaskSpec, get_task
from jacmon.monitoring.tasks.config import TaskConfig, TasksConfig, load_tasks_config
from jacmon.store import Store
from jacmon.store.base import Lease

log = logging.getLogger("jacmon.scheduler")

#: Fire times looked at when catching up after downtime; older misses are counted as "more".
MAX_FIRE_TIMES = 20_000


def next_fire(cron: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first fire time of ``cron`` strictly after aware ``after``, as an aware UTC datetime."""
    local = after.astimezone(tz).replace(tzinfo=None)
    it = croniter(cron, local)
    # A few steps at most: only wall times repeated by a fall-back need skipping.
    for _ in range(1000):
        wall = it.get_next(datetime)
        # fold=0: the first of a repeated wall time; a skipped one keeps the old offset.
        instant = wall.replace(tzinfo=tz).astimezone(UTC)
        if instant > after:
            return instant
    raise TaskError(f"cron {cron!r} found no fire time after {after.isoformat()}")


def fire_times(
    cron: str, tz: ZoneInfo, after: datetime, until: datetime, *, limit: int = MAX_FIRE_TIMES
) -> tuple[list[datetime], bool]:
    """Fire times in (``after``, ``until``], oldest first, and whether ``limit`` cut them short.

    When cut short, the list holds the newest ``limit`` fire times.
    """
    if until <= after:
        return [], False
    found: list[datetime] = []
    cut = False
    current = after
    while True:
        current = next_fire(cron, tz, current)
        if current > until:
            break
        found.append(current)
        if len(found) > limit:
            cut = True
            # Too far behind: resume close to ``until`` (a day of cadence is plenty).
            found = found[-limit:]
            current = max(current, until - timedelta(days=1))
    return found, cut


@dataclass(slots=True)
class RunResult:
    """What one run (or dry run) did."""

    task: str
    trigger: str
    #: success | error | skipped | cancelled (missed ones never come back as a RunResult).
    outcome: str
    dry_run: bool
    run_id: int | None
    scheduled: datetime | None
    started: datetime
    #: Wall seconds the run took.
    duration_s: float
    outcome_detail: TaskOutcome = field(default_factory=TaskOutcome)
    error: str | None = None
    #: The projection watermark the run read progress at (events up to this seq).
    progress_seq: int | None = None
    #: Committed events after it when the run began (a dry run does not project).
    unprojected: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "trigger": self.trigger,
            "outcome": self.outcome,
            "dry_run": self.dry_run,
            "run_id": self.run_id,
            "scheduled": self.scheduled.isoformat() if self.scheduled else None,
            "started": self.started.isoformat(),
            "duration_s": round(self.duration_s, 4),
            "error": self.error,
            "progress_seq": self.progress_seq,
            "unprojected": self.unprojected,
            **self.outcome_detail.as_dict(),
        }


class ManualClock:
    """A clock that moves only when told to (tests, scripted replays).

    ``sleep_until`` returns once :meth:`set` or :meth:`advance` reaches the time.
    """

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise UsageError(f"clock start {start.isoformat()!r} has no time zone")
        self._now = start
        self._waiters: list[tuple[datetime, asyncio.Future[None]]] = []

    def now(self) -> datetime:
        return self._now

    def __call__(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        """Move the clock to ``when`` (never backwards) and wake the sleepers it reaches."""
        if when < self._now:
            raise UsageError(f"clock cannot go back from {self._now} to {when}")
        self._now = when
        for due, future in list(self._waiters):
            if due <= when and not future.done():
                future.set_result(None)

    def advance(self, seconds: float) -> None:
        self.set(self._now + timedelta(seconds=seconds))

    def sleepers(self) -> list[datetime]:
        """The times callers of :meth:`sleep_until` are waiting for."""
        return [due for due, future in self._waiters if not future.done()]

    async def sleep_until(self, when: datetime) -> None:
        if when <= self._now:
            return
        entry = (when, asyncio.get_running_loop().create_future())
        self._waiters.append(entry)
        try:
            await entry[1]
        finally:
            self._waiters.remove(entry)


Clock = Callable[[], datetime]


def _clock_parts(clock: Any) -> tuple[Clock, Any, float]:
    """(now function, sleep_until or None, speed) of an injected clock."""
    if clock is None:
        return (lambda: datetime.now(UTC)), None, 1.0
    if callable(clock):
        now = clock
        owner = getattr(clock, "__self__", clock)
    elif callable(getattr(clock, "now", None)):
        now, owner = clock.now, clock
    else:
        raise UsageError(
            f"clock {clock!r} is neither a callable nor an object with now(). "
            "Expected e.g. SimClock(...).now or a function returning an aware datetime."
        )
    return now, getattr(owner, "sleep_until", None), float(getattr(owner, "speed", 1.0) or 1.0)


@dataclass(slots=True)
class _TaskState:
    config: TaskConfig
    #: The newest fire time handled (ran, skipped or missed).
    last_handled: datetime
    running: asyncio.Task | None = None


class Scheduler:
    """Runs the monitoring tasks on their schedules against one store.

    ``tasks`` is ``Settings.tasks`` (validated here: a ConfigError names a bad
    key). ``on_alerts_changed()`` is called after a run changed alerts (the
    server's alerts tailer reads ``alert_changes``); ``on_velocity(velocity)``
    gets ``{path: {"this_week", "last_week", "change_pct"}}`` after each velocity
    run. ``registry`` replaces the built-in task list (tests).
    """

    def __init__(
        self,
        store: Store,
        tasks: dict[str, Any] | None = None,
        clock: Any = None,
        *,
        on_alerts_changed: Callable[[], Any] | None = None,
        on_velocity: Callable[[dict[str, dict[str, Any]]], Any] | None = None,
        registry: dict[str, TaskSpec] | None = None,
        lease: Lease | None = None,
        # Timing
        max_sleep_s: float = 30.0,
    ) -> None:
        self.store = store
        self.config: TasksConfig = load_tasks_config(tasks, registry=registry)
        self._now, self._sleep_until_fn, self._speed = _clock_parts(clock)
        self.on_alerts_changed = on_alerts_changed
        self.on_velocity = on_velocity
        #: Held while this node leads (several nodes on one store); every run checks it and
        #: writes under its fence. None: the only scheduler of its store.
        self.lease = lease
        self.max_sleep_s = max_sleep_s
        self._states: dict[str, _TaskState] = {}
        self._loop_task: asyncio.Task | None = None
        self._manual: set[asyncio.Task] = set()
        self._live_run_ids: set[int] = set()
        self._wake = asyncio.Event()
        self._stopping = False

    # Clock

    def now(self) -> datetime:
        value = self._now()
        if value.tzinfo is None:
            raise UsageError(f"the scheduler's clock returned {value!r} without a time zone")
        return value

    async def _sleep_until(self, when: datetime) -> None:
        """Sleep until the clock reaches ``when`` (at most ``max_sleep_s``); stop() wakes it."""
        if self._sleep_until_fn is not None:
            sleeper = asyncio.ensure_future(self._sleep_until_fn(when))
        else:
            delay = (when - self.now()).total_seconds() / self._speed
            sleeper = asyncio.ensure_future(asyncio.sleep(max(0.0, delay)))
        stopper = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait(
                {sleeper, stopper}, timeout=self.max_sleep_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in (sleeper, stopper):
                waiter.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)

    # Lifecycle

    async def start(self) -> None:
        """Mark runs a crash left ``running`` as abandoned, catch up, then run the loop."""
        if self._loop_task is not None:
            raise UsageError("the scheduler is already started")
        now = self.now()
        stale = await self.store.abandon_stale_runs(
            now=now.timestamp(), live_run_ids=self._live_run_ids
        )
        if stale:
            log.warning("marked %d run(s) left running by a stopped process abandoned", len(stale))
        handled = await self.store.last_scheduled()
        for name, config in self.config.tasks.items():
            if not config.enabled:
                continue
            last = handled.get(name)
            # A task never scheduled before starts from now: there is nothing to catch up on.
            # Neither is there when the records are ahead of the clock (a simulated clock
            # started earlier than a previous run on this database).
            start_from = now if last is None else min(datetime.fromtimestamp(last, UTC), now)
            self._states[name] = _TaskState(config, start_from)
        self._stopping = False
        self._wake.clear()
        self._loop_task = asyncio.create_task(self._loop(), name="jacmon-scheduler")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop the loop; give running tasks ``grace_s`` wall seconds, then cancel them."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        active = [s.running for s in self._states.values() if s.running and not s.running.done()]
        active += [t for t in self._manual if not t.done()]
        if not active:
            return
        _, pending = await asyncio.wait(active, timeout=grace_s)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d task run(s) still running after %gs", len(pending), grace_s)
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            now = self.now()
            for state in self._states.values():
                try:
                    await self._dispatch(state, now)
                except Exception:
                    # One task's bookkeeping failing must not stop the others' schedules.
                    log.exception("scheduling %s failed", state.config.name)
            if not self._states:
                await self._sleep_until(now + timedelta(days=1))
                continue
            wake = min(
                next_fire(s.config.cron, self.config.timezone, s.last_handled)
                for s in self._states.values()
            )
            await self._sleep_until(wake)

    async def _dispatch(self, state: _TaskState, now: datetime) -> None:
        """Handle ``state``'s fire times up to ``now``: run the newest, record the rest."""
        config = state.config
        fires, cut = fire_times(config.cron, self.config.timezone, state.last_handled, now)
        if not fires:
            return
        state.last_handled = fires[-1]
        latest = fires[-1]
        in_grace = (now - latest).total_seconds() <= config.grace_s
        missed = fires[:-1] if in_grace else fires
        if missed:
            summary = {
                "count": len(missed),
                "more_before": cut,
                "first": missed[0].isoformat(),
                "last": missed[-1].isoformat(),
                "grace_s": config.grace_s,
            }
            log.warning("%s missed %d fire time(s) up to %s", config.name, len(missed), missed[-1])
            await self.store.record_run(
                config.name,
                outcome="missed",
                trigger="schedule",
                scheduled=missed[-1].timestamp(),
                at=now.timestamp(),
                summary=summary,
            )
        if not in_grace:
            return
        if state.running is not None and not state.running.done():
            log.warning("%s is still running; skipping the run due at %s", config.name, latest)
            await self.store.record_run(
                config.name,
                outcome="skipped",
                trigger="schedule",
                scheduled=latest.timestamp(),
                at=now.timestamp(),
                summary={"reason": "the previous run is still running"},
            )
            return
        state.running = asyncio.create_task(
            self._execute(config, trigger="schedule", scheduled=latest, dry_run=False),
            name=f"jacmon-task-{config.name}",
        )

    # Running

    async def run_once(
        self, name: str, *, trigger: str = "manual", dry_run: bool = False
    ) -> RunResult:
        """Run task ``name`` once now, the same way the loop does (``jacmon run-task``).

        ``dry_run`` reads and plans but writes nothing (no run record either).
        Raises UnknownTaskError for a name that is not a task.
        """
        if name not in self.config.tasks:
            get_task(name)
        config = self.config.tasks[name]
        task = asyncio.current_task()
        if task is not None:
            self._manual.add(task)
        try:
            return await self._execute(config, trigger=trigger, scheduled=None, dry_run=dry_run)
        finally:
            if task is not None:
                self._manual.discard(task)

    async def _execute(
        self,
        config: TaskConfig,
        *,
        trigger: str,
        scheduled: datetime | None,
        dry_run: bool,
    ) -> RunResult:
        started = self.now()
        result = RunResult(config.name, trigger, "running", dry_run, None, scheduled, started, 0.0)
        fence = None
        if not dry_run and self.lease is not None:
            if not await self.lease.confirm():
                # Another node leads now: it runs (and records) this fire time.
                log.warning("%s not run: this node no longer leads the scheduler", config.name)
                result.outcome = "skipped"
                result.error = "this node no longer leads; another node runs the tasks"
                return result
            fence = self.lease.fence
        if not dry_run:
            run_id, began = await self.store.begin_run(
                config.name,
                trigger=trigger,
                scheduled=scheduled.timestamp() if scheduled else None,
                started=started.timestamp(),
                live_run_ids=self._live_run_ids,
            )
            result.run_id = run_id
            if not began:
                log.warning("%s is already running elsewhere; run %d skipped", config.name, run_id)
                result.outcome = "skipped"
                result.error = "another run of this task is still running"
                return result
            self._live_run_ids.add(run_id)
        ctx = TaskContext(
            self.store, started, self.config.timezone, config.params, dry_run, fence=fence
        )
        t0 = time.monotonic()
        try:
            result.outcome_detail = await asyncio.wait_for(
                self._run_projected(config, ctx, result), timeout=config.timeout_s
            )
            result.outcome = "success"
        except TimeoutError:
            result.outcome = "error"
            result.error = f"timed out after {config.timeout_s:g} s (tasks.{config.name}.timeout_s)"
        except asyncio.CancelledError:
            result.outcome = "cancelled"
            result.error = "cancelled at shutdown"
            result.duration_s = time.monotonic() - t0
            await self._finish(result)
            raise
        except Exception as exc:
            log.exception("task %s failed", config.name)
            result.outcome = "error"
            result.error = f"{type(exc).__name__}: {exc}"
        result.duration_s = time.monotonic() - t0
        await self._finish(result)
        if result.outcome == "success" and not dry_run:
            self._notify(result)
        log.info(
            "task %s %s in %.3fs%s",
            config.name,
            result.outcome,
            result.duration_s,
            " (dry run)" if dry_run else "",
        )
        return result

    async def _run_projected(self, config: TaskConfig, ctx: TaskContext, result: RunResult):
        """Run the task on progress as of every event committed before it began.

        Progress is a projection that may trail ingest by a span: the run first folds
        what is left (a dry run writes nothing, so it reports how far progress trails).
        """
        head = await self.store.committed_seq()
        if not ctx.dry_run:
            await self.store.catch_up(through_seq=head)
        result.progress_seq = await self.store.progress_seq()
        result.unprojected = max(0, head - result.progress_seq)
        return await config.spec.run(ctx)

    async def _finish(self, result: RunResult) -> None:
        if result.run_id is None:
            return
        try:
            await self.store.finish_run(
                result.run_id,
                outcome=result.outcome,
                finished=self.now().timestamp(),
                duration_s=result.duration_s,
                summary=result.outcome_detail.summary,
                error=result.error,
            )
        finally:
            self._live_run_ids.discard(result.run_id)

    def _notify(self, result: RunResult) -> None:
        detail = result.outcome_detail
        try:
            if detail.alerts and self.on_alerts_changed is not None:
                self.on_alerts_changed()
            if detail.velocity is not None and self.on_velocity is not None:
                self.on_velocity(detail.velocity)
        except Exception:
            # A listener's bug must not turn a finished run into a failed one.
            log.exception("a scheduler callback failed after %s", result.task)

    # Reporting

    def running(self) -> list[str]:
        """Names of the tasks with a scheduled run in progress."""
        return [n for n, s in self._states.items() if s.running and not s.running.done()]


def next_runs(config: TasksConfig, now: datetime) -> dict[str, datetime | None]:
    """Per task, its next fire time after ``now`` (None when disabled)."""
    return {
        name: next_fire(task.cron, config.timezone, now) if task.enabled else None
        for name, task in config.tasks.items()
    }
