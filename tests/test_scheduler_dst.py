"""Time zones: a daily 02:00 task runs exactly once per local date across the Berlin DST days.

2025-03-30: clocks jump from 02:00 to 03:00 CEST (02:00 never happens).
2025-10-26: clocks go back from 03:00 CEST to 02:00 CET (02:00-03:00 happens twice).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from test_scheduler import Probe, runs_of, settle

from jacmon.monitoring.scheduler import ManualClock, Scheduler, fire_times, next_fire
from jacmon.store import Store

BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def test_daily_fire_times_across_spring_forward():
    fires, _ = fire_times("0 2 * * *", BERLIN, local(2025, 3, 28, 12), local(2025, 4, 1, 12))
    # The 30th has no 02:00: it runs once, at 03:00 CEST (01:00 UTC), when the clocks jump.
    assert [f.astimezone(BERLIN).isoformat() for f in fires] == [
        "2025-03-29T02:00:00+01:00",
        "2025-03-30T03:00:00+02:00",
        "2025-03-31T02:00:00+02:00",
        "2025-04-01T02:00:00+02:00",
    ]
    assert fires[1] == datetime(2025, 3, 30, 1, 0, tzinfo=UTC)


def test_daily_fire_times_across_fall_back():
    fires, _ = fire_times("0 2 * * *", BERLIN, local(2025, 10, 24, 12), local(2025, 10, 28, 12))
    assert [f.isoformat() for f in fires] == [
        "2025-10-25T00:00:00+00:00",  # 02:00 CEST
        "2025-10-26T00:00:00+00:00",  # the first 02:00 (CEST); the second one does not fire
        "2025-10-27T01:00:00+00:00",  # 02:00 CET
        "2025-10-28T01:00:00+00:00",
    ]
    # Resuming inside the repeated hour (02:30 CET, after the run) does not fire again that day.
    second_pass = datetime(2025, 10, 26, 1, 30, tzinfo=UTC)
    assert next_fire("0 2 * * *", BERLIN, second_pass) == datetime(2025, 10, 27, 1, 0, tzinfo=UTC)


def test_quarter_hours_fire_once_per_wall_time_across_both_changes():
    for start in (local(2025, 3, 30, 0), local(2025, 10, 26, 0)):
        fires, _ = fire_times("*/15 * * * *", BERLIN, start, start + timedelta(hours=5))
        assert fires == sorted(set(fires))
        walls = [f.astimezone(BERLIN).replace(tzinfo=None) for f in fires]
        assert len(walls) == len(set(walls))
    # Spring: 02:00-02:45 do not exist; they run at 03:00-03:45 CEST, each once.
    spring, _ = fire_times("*/15 * * * *", BERLIN, local(2025, 3, 30, 1, 50), local(2025, 3, 30, 4))
    assert [f.astimezone(BERLIN).strftime("%H:%M") for f in spring] == [
        "03:00", "03:15", "03:30", "03:45", "04:00",
    ]  # fmt: skip
    # Autumn: the repeated 02:00-02:45 fire in the first pass only.
    autumn, _ = fire_times(
        "*/15 * * * *", BERLIN, datetime(2025, 10, 25, 23, 50, tzinfo=UTC),
        datetime(2025, 10, 26, 2, 0, tzinfo=UTC),
    )  # fmt: skip
    assert [f.astimezone(BERLIN).strftime("%H:%M%z") for f in autumn] == [
        "02:00+0200", "02:15+0200", "02:30+0200", "02:45+0200", "03:00+0100",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("first", "last"),
    [
        (local(2025, 3, 28, 12), local(2025, 4, 1, 12)),
        (local(2025, 10, 24, 12), local(2025, 10, 28, 12)),
    ],
)
async def test_the_scheduler_runs_a_daily_task_once_per_local_date(tmp_path, first, last):
    store = await Store.open(tmp_path / "jacmon.db")
    probe = Probe("0 2 * * *")
    clock = ManualClock(first.astimezone(UTC))
    tasks = {"timezone": "Europe/Berlin"}
    scheduler = Scheduler(store, tasks, clock, registry={"probe": probe.spec})
    await scheduler.start()
    try:
        # Walk the clock in 20-minute steps, letting the loop act on each.
        now = first.astimezone(UTC)
        while now < last:
            now += timedelta(minutes=20)
            clock.set(now)
            await settle(clock, scheduler)
        done = await runs_of(store)
    finally:
        await scheduler.stop(5)
        await store.close()
    assert {r["outcome"] for r in done} == {"success"}
    dates = Counter(datetime.fromtimestamp(r["scheduled"], BERLIN).date() for r in done)
    assert len(done) == 4
    assert set(dates.values()) == {1}
    assert sorted(dates) == [first.date() + timedelta(days=n) for n in range(1, 5)]
