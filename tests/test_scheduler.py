"""The scheduler on an injected clock: cadence, catch-up and missed, overlap, timeout,
cancellation at shutdown, abandoned runs, config errors, a fast simulated clock."""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from jacmon.errors import ConfigError
from jacmon.monitoring.scheduler import ManualClock, Scheduler
from jacmon.monitoring.tasks import TaskOutcome, TaskSpec
from jacmon.monitoring.tasks.config import load_tasks_config
from jacmon.sim.clock import SimClock
from jacmon.store import Store
from jacmon.store.sqlite.task_runs import recent_runs, record_run

T0 = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)
WAIT_S = 60.0


async def wait_until(condition, what: str, timeout: float = WAIT_S):
    """Poll ``condition`` (sync or async) until it is truthy; fail naming ``what``."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class _NoParams:
    """A task without tunable parameters."""


class Probe:
    """A task that records the "now" of each run and can be held running."""

    def __init__(self, cron: str = "*/15 * * * *", *, block: bool = False) -> None:
        self.seen: list[datetime] = []
        self.release = asyncio.Event()
        if not block:
            self.release.set()
        self.spec = TaskSpec("probe", "test probe", cron, 600.0, 300.0, _NoParams, self.run)

    async def run(self, ctx) -> TaskOutcome:
        self.seen.append(ctx.now_dt)
        await self.release.wait()
        return TaskOutcome(summary={"n": len(self.seen)})


async def runs_of(store: Store, outcome: str | None = None) -> list[dict]:
    found = list(reversed(await recent_runs(store.db.reader, task="probe", limit=1000)))
    return [r for r in found if outcome is None or r["outcome"] == outcome]


def at(hour: int, minute: int, second: int = 0) -> datetime:
    return T0.replace(hour=hour, minute=minute, second=second)


async def settle(clock: ManualClock, scheduler: Scheduler) -> None:
    """Wait until the loop sleeps again past the clock's time and no run is in progress."""
    await wait_until(
        lambda: any(due > clock.now() for due in clock.sleepers()) and not scheduler.running(),
        "the scheduler to go back to sleep",
    )


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "jacmon.db")
    yield store
    await store.close()


async def test_runs_on_cadence_with_the_clocks_now(store):
    probe = Probe()
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        await settle(clock, scheduler)
        assert await runs_of(store) == []  # a new database has nothing to catch up on
        for minute in (15, 30, 45):
            clock.set(at(10, minute, 1))
            await settle(clock, scheduler)
        done = await runs_of(store)
        assert [r["outcome"] for r in done] == ["success"] * 3
        assert [r["trigger"] for r in done] == ["schedule"] * 3
        assert [r["scheduled"] for r in done] == [at(10, m).timestamp() for m in (15, 30, 45)]
        assert [r["started"] for r in done] == [at(10, m, 1).timestamp() for m in (15, 30, 45)]
        assert probe.seen == [at(10, m, 1) for m in (15, 30, 45)]
        assert done[-1]["summary"] == {"n": 3} and done[-1]["duration_s"] >= 0
    finally:
        await scheduler.stop(5)


async def test_catch_up_runs_the_newest_missed_time_in_grace_and_records_the_rest(store):
    probe = Probe()
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    clock.set(at(10, 15, 1))
    await settle(clock, scheduler)
    await scheduler.stop(5)
    # Down from 10:15 to 12:05: 10:30 ... 12:00 were missed; 12:00 is 5 min ago (grace 10).
    clock = ManualClock(at(12, 5))
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        await settle(clock, scheduler)
        done = await runs_of(store)
        assert [r["outcome"] for r in done] == ["success", "missed", "success"]
        missed = done[1]
        assert missed["summary"]["count"] == 6
        assert missed["summary"]["first"] == at(10, 30).isoformat()
        assert missed["summary"]["last"] == at(11, 45).isoformat()
        assert done[2]["scheduled"] == at(12, 0).timestamp()
    finally:
        await scheduler.stop(5)
    # Down from 12:05 to 12:29: 12:15 is 14 min ago, past the 10 min grace: missed, not run.
    clock = ManualClock(at(12, 29))
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        await settle(clock, scheduler)
        done = await runs_of(store)
        assert [r["outcome"] for r in done][3:] == ["missed"]
        assert done[3]["summary"]["count"] == 1 and done[3]["scheduled"] == at(12, 15).timestamp()
        assert len(probe.seen) == 2
    finally:
        await scheduler.stop(5)


async def test_no_overlap_the_overlapping_run_is_skipped(store):
    probe = Probe(block=True)
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        clock.set(at(10, 15))
        await wait_until(lambda: scheduler.running() == ["probe"], "the probe to start")
        clock.set(at(10, 30))
        await wait_until(lambda: runs_of(store, "skipped"), "a skipped record")
        manual = await scheduler.run_once("probe")
        assert manual.outcome == "skipped" and manual.trigger == "manual"
        probe.release.set()
        await settle(clock, scheduler)
        clock.set(at(10, 45))
        await settle(clock, scheduler)
        done = await runs_of(store)
        assert [(r["outcome"], r["trigger"]) for r in done] == [
            ("success", "schedule"),
            ("skipped", "schedule"),
            ("skipped", "manual"),
            ("success", "schedule"),
        ]
        assert done[1]["scheduled"] == at(10, 30).timestamp()
    finally:
        await scheduler.stop(5)


async def test_a_run_past_its_timeout_is_stopped_and_recorded_error(store):
    probe = Probe(block=True)
    clock = ManualClock(T0)
    tasks = {"probe": {"timeout_s": 0.2}}
    scheduler = Scheduler(store, tasks, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        clock.set(at(10, 15))
        (run,) = await wait_until(lambda: runs_of(store, "error"), "the timed-out run")
        assert "timed out after 0.2 s" in run["error"]
        # The next fire time runs normally.
        probe.release.set()
        clock.set(at(10, 30))
        await wait_until(lambda: runs_of(store, "success"), "the next run")
    finally:
        await scheduler.stop(5)


async def test_shutdown_gives_grace_then_cancels_and_the_next_start_abandons_leftovers(store):
    probe = Probe(block=True)
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    clock.set(at(10, 15))
    await wait_until(lambda: scheduler.running() == ["probe"], "the probe to start")
    await scheduler.stop(grace_s=0.2)
    (run,) = await runs_of(store)
    assert run["outcome"] == "cancelled" and run["error"] == "cancelled at shutdown"

    # Runs a crash left "running": one by a process that is gone, one by this process
    # that no live scheduler owns.
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import os; print(os.getpid())", stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    async with store.db.transaction() as conn:
        for pid in (int(out), os.getpid()):
            await conn.execute(
                "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, pid)"
                " VALUES ('probe', 'schedule', 'running', ?, ?, ?)",
                (at(10, 30).timestamp(), at(10, 30).timestamp(), pid),
            )
    scheduler = Scheduler(store, {}, ManualClock(at(10, 31)), registry={"probe": probe.spec})
    await scheduler.start()
    try:
        done = await runs_of(store)
        assert [r["outcome"] for r in done] == ["cancelled", "abandoned", "abandoned"]
        assert "stopped before it finished" in done[1]["error"]
    finally:
        await scheduler.stop(5)


async def test_a_failing_task_is_recorded_error_and_the_loop_goes_on(store):
    calls = []

    async def explode(ctx):
        calls.append(ctx.now_dt)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return TaskOutcome()

    spec = TaskSpec("probe", "fails once", "*/15 * * * *", 600.0, 300.0, _NoParams, explode)
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": spec})
    await scheduler.start()
    try:
        clock.set(at(10, 15))
        await settle(clock, scheduler)
        clock.set(at(10, 30))
        await settle(clock, scheduler)
        done = await runs_of(store)
        assert [r["outcome"] for r in done] == ["error", "success"]
        assert done[0]["error"] == "RuntimeError: boom"
    finally:
        await scheduler.stop(5)


async def test_a_fast_simulated_clock_drives_the_loop(store):
    # 1800 simulated seconds per wall second: a 15-minute cadence every half wall second.
    probe = Probe()
    clock = SimClock(T0, speed=1800.0)
    scheduler = Scheduler(store, {}, clock.now, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        await wait_until(lambda: len(probe.seen) >= 3, "three runs on the simulated clock")
    finally:
        await scheduler.stop(5)
    done = await runs_of(store, "success")
    scheduled = [r["scheduled"] for r in done]
    # Quarter hours of simulated time, in order (a stalled box may miss some: recorded, not run).
    assert scheduled == sorted(set(scheduled))
    assert all(ts % 900 == 0 for ts in scheduled)
    # Each run's "now" is simulated time, at or just after its fire time.
    for run in done:
        assert run["started"] >= run["scheduled"]


@pytest.mark.parametrize(
    ("tasks", "message"),
    [
        ({"timezone": "Mars/Olympus"}, "'tasks.timezone' has value 'Mars/Olympus'"),
        ({"performance": {"cron": "*/61 * * *"}}, "'tasks.performance.cron' has value"),
        ({"performance": {"cron": "0 25 * * *"}}, "Expected a 5-field cron expression"),
        ({"performance": {"decline_threshold": "high"}}, "Expected a number"),
        ({"engagement": {"enabled": "maybe"}}, "'tasks.engagement.enabled'"),
        ({"velocity": {"speed": 3}}, "'tasks.velocity.speed' is not a setting"),
        ({"reports": {}}, "unknown key(s): reports"),
        ({"daily_analytics": {"timeout_s": 0}}, "Expected > 0"),
        ({"performance": {"grace_s": -5}}, "Expected 0 or more"),
        ({"performance": {"min_scores": 3.5}}, "'tasks.performance.min_scores' has value 3.5"),
        ({"velocity": {"inhibited_by": [1, 2]}}, "Expected a list of strings"),
    ],
)
def test_bad_task_config_is_a_clear_error(tasks, message):
    with pytest.raises(ConfigError) as info:
        load_tasks_config(tasks)
    assert message in str(info.value)


def test_config_defaults_and_overrides():
    config = load_tasks_config(
        {
            "timezone": "Europe/Berlin",
            "performance": {"cron": "*/5 * * * *", "decline_threshold": 55},
            # As the environment gives it: JACMON_TASKS__VELOCITY__ENABLED=false.
            "velocity__enabled": "false",
        }
    )
    assert config.timezone.key == "Europe/Berlin"
    perf = config.tasks["performance"]
    assert (perf.cron, perf.params.decline_threshold, perf.params.decline_clear) == (
        "*/5 * * * *",
        55.0,
        65.0,
    )
    assert config.tasks["velocity"].enabled is False
    assert config.tasks["engagement"].cron == "0 * * * *"
    assert load_tasks_config({}).timezone.key == "UTC"
    assert timedelta(seconds=config.tasks["daily_analytics"].grace_s) == timedelta(hours=6)


async def test_records_ahead_of_the_clock_do_not_stall_the_schedule(store):
    # A simulated clock that starts earlier than runs already recorded on this database.
    await record_run(
        store.db,
        "probe",
        outcome="success",
        trigger="schedule",
        scheduled=at(23, 0).timestamp(),
        at=at(23, 0).timestamp(),
    )
    probe = Probe()
    clock = ManualClock(T0)
    scheduler = Scheduler(store, {}, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        clock.set(at(10, 15, 1))
        await settle(clock, scheduler)
        assert probe.seen == [at(10, 15, 1)]
    finally:
        await scheduler.stop(5)


async def test_a_run_reads_progress_as_of_every_event_committed_before_it(store):
    """Progress is a projection that may trail ingest: a run folds what is left first and
    says which watermark it read; a dry run writes nothing and says how far it trails."""
    from jacmon.events import validate_event

    seen: list[int] = []

    async def run(ctx) -> TaskOutcome:
        seen.append(await ctx.store.progress_seq())
        return TaskOutcome(summary={})

    spec = TaskSpec("probe", "test probe", "*/15 * * * *", 600.0, 300.0, _NoParams, run)
    scheduler = Scheduler(store, {}, ManualClock(T0), registry={"probe": spec})
    events = [
        validate_event(
            {"id": f"e{n}", "type": "activity", "ts": "2026-03-02T09:00:00Z", "learner": "u1"}
        )
        for n in range(5)
    ]
    await store.ingest(events)
    dry = await scheduler.run_once("probe", dry_run=True)
    assert (dry.progress_seq, dry.unprojected, seen) == (0, 5, [0])
    real = await scheduler.run_once("probe")
    assert (real.progress_seq, real.unprojected, seen) == (5, 0, [0, 5])
    assert real.as_dict()["progress_seq"] == 5
