"""The pure progress rules: days and streaks, XP and levels, module/path/learner rows."""

from __future__ import annotations

import math
from typing import Any

import pytest

from jacmon.analytics.progress import (
    BatchProgress,
    LearnerDelta,
    ModuleDelta,
    PathDelta,
    Streak,
    apply_learner,
    apply_module,
    apply_path,
    day_number,
    level_for_xp,
    xp_for_event,
)
from jacmon.events import Event, validate_event

#: 2026-01-05T00:00:00Z; UTC day number 20458.
DAY0 = 1767571200


def ev(kind: str, *, hour: int = 10, day: int = 0, **fields: Any) -> Event:
    text = f"2026-01-{5 + day:02d}T{hour:02d}:00:00Z"
    return validate_event({"id": "x", "type": kind, "ts": text, "learner": "u1", **fields})


def test_day_number_is_utc_days_since_epoch():
    assert day_number(0) == 0
    assert day_number(DAY0) == 20458
    assert day_number(DAY0 + 86399.9) == 20458
    assert day_number(DAY0 - 0.001) == 20457
    assert day_number(-1) == -1


@pytest.mark.parametrize(
    ("xp", "level"),
    [(0, 1), (99, 1), (100, 2), (399, 2), (400, 3), (899, 3), (900, 4), (10_000, 11), (-50, 1)],
)
def test_level_for_xp(xp, level):
    assert level_for_xp(xp) == level


@pytest.mark.parametrize(
    ("event", "xp"),
    [
        (ev("lesson.completed", path="p", module="m", item="l"), 10),
        (ev("module.completed", path="p", module="m"), 50),
        (ev("path.completed", path="p"), 200),
        (ev("assessment.passed", item="q"), 25),
        (ev("assessment.failed", item="q"), 1),
        (ev("assessment.attempted", item="q", score={"scaled": 0.85}), 8),
        (ev("assessment.attempted", item="q", score={"raw": 100, "max": 100}), 10),
        (ev("assessment.attempted", item="q", score={"raw": 9, "max": 100}), 0),
        (ev("assessment.attempted", item="q", score={"scaled": -1}), 0),
        (ev("module.progressed", path="p", module="m", progress=50), 1),
        (ev("session.started"), 1),
        (ev("activity"), 1),
    ],
)
def test_xp_per_event(event, xp):
    assert xp_for_event(event) == xp


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        # (active day, current run, longest run)
        ({5}, (5, 1, 1)),
        ({1, 2, 3}, (3, 3, 3)),
        ({3, 1, 2}, (3, 3, 3)),
        ({1, 2, 4, 5}, (5, 2, 2)),
        ({1, 3}, (3, 1, 1)),
        ({1, 5, 6, 7}, (7, 3, 3)),
        ({1, 2, 3, 4, 9, 10}, (10, 2, 4)),
        ({10, 12, 14, 15}, (15, 2, 2)),
    ],
)
def test_streak_of_a_set_of_days(days, expected):
    streak = Streak.of(days)
    assert (streak.active_day, streak.current, streak.longest) == expected


def test_a_late_day_that_fills_a_gap_joins_the_runs():
    # Days 8, 9 and 11, 12: a late event on day 10 makes one run of five, as if on time.
    assert Streak.of({8, 9, 11, 12}).current == 2
    assert Streak.of({8, 9, 10, 11, 12}).current == 5
    # A late event before the run only lengthens it if it touches it.
    assert Streak.of({5, 11, 12}).current == 2
    assert Streak.of({10, 11, 12}).current == 3


# Folding a batch


def test_batch_progress_folds_events_per_key():
    batch = BatchProgress()
    batch.add(ev("path.enrolled", path="p", hour=8))
    batch.add(ev("module.progressed", path="p", module="m1", progress=30, duration_s=60, hour=9))
    batch.add(ev("module.progressed", path="p", module="m1", progress=20, duration_s=40, hour=10))
    batch.add(ev("module.completed", path="p", module="m2", hour=12))
    batch.add(ev("module.completed", path="p", module="m2", hour=11))
    batch.add(ev("session.ended", path="p", duration_s=900, hour=13))
    batch.add(ev("path.unenrolled", path="p", hour=14))
    batch.add(ev("activity", day=1))

    m1 = batch.modules[("u1", "p", "m1")]
    assert (m1.progress, m1.time_spent_s, m1.completed_at) == (30.0, 100.0, None)
    assert (m1.first, m1.last) == (DAY0 + 9 * 3600, DAY0 + 10 * 3600)
    m2 = batch.modules[("u1", "p", "m2")]
    assert (m2.progress, m2.completed_at) == (100.0, DAY0 + 11 * 3600)

    path = batch.paths[("u1", "p")]
    assert path.enrolled_at == DAY0 + 8 * 3600
    assert path.unenrolled_at == DAY0 + 14 * 3600
    assert path.last_engaged == DAY0 + 13 * 3600  # the latest event other than unenrolling
    assert path.time_spent_s == 100.0  # the session's 900 s is the learner's, not the path's
    assert path.xp == 1 + 1 + 1 + 50 + 50 + 1 + 1
    assert path.days == {20458}

    learner = batch.learners["u1"]
    assert learner.events == 8
    assert learner.time_spent_s == 900.0
    assert learner.xp == path.xp + 1
    assert learner.days == {20458, 20459}
    assert set(batch.modules) == {("u1", "p", "m1"), ("u1", "p", "m2")}


# Rows


def test_apply_module_first_activity_and_max_progress():
    row = apply_module(None, ModuleDelta(progress=40.0, time_spent_s=30.0, first=100.0, last=200.0))
    assert row == {
        "status": "in_progress",
        "percent": 40.0,
        "time_spent_s": 30.0,
        "first_activity": 100.0,
        "last_activity": 200.0,
        "completed_at": None,
    }
    lower = apply_module(row, ModuleDelta(progress=10.0, time_spent_s=5.0, first=50.0, last=60.0))
    assert (lower["percent"], lower["time_spent_s"]) == (40.0, 35.0)
    assert (lower["first_activity"], lower["last_activity"]) == (50.0, 200.0)
    assert row["percent"] == 40.0 and row["time_spent_s"] == 30.0  # the input row is not mutated


def test_apply_module_completion_keeps_the_earliest_time():
    row = apply_module(None, ModuleDelta(completed_at=300.0, first=300.0, last=300.0))
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, 300.0)
    again = apply_module(
        row, ModuleDelta(progress=5.0, completed_at=250.0, first=250.0, last=400.0)
    )
    assert (again["status"], again["percent"], again["completed_at"]) == ("completed", 100.0, 250.0)
    later = apply_module(again, ModuleDelta(completed_at=900.0, first=900.0, last=900.0))
    assert later["completed_at"] == 250.0


def path_delta(**fields: Any) -> PathDelta:
    delta = PathDelta(first=DAY0, last=DAY0 + 3600, days={20458})
    for key, value in fields.items():
        setattr(delta, key, value)
    return delta


def path(
    row, delta, *, total=0.0, done=0, done_at=None, count=0, authoritative=False, days=None
) -> dict:
    return apply_path(
        row,
        delta,
        module_percent_sum=total,
        modules_completed=done,
        modules_completed_at=done_at,
        module_count=count,
        catalog_is_authoritative=authoritative,
        days=delta.days if days is None else days,
    )


def test_apply_path_new_row_from_enrolment():
    row = path(None, path_delta(enrolled_at=DAY0, xp=1), count=4)
    assert row == {
        "status": "enrolled",
        "percent": 0.0,
        "modules_completed": 0,
        "time_spent_s": 0.0,
        "xp": 1,
        "level": 1,
        "streak_days": 1,
        "active_day": 20458,
        "enrolled_at": DAY0,
        "first_activity": DAY0,
        "last_activity": DAY0 + 3600,
        "completed_at": None,
        "unenrolled_at": None,
        "last_engaged": None,
    }


def test_apply_path_percent_is_sum_over_catalog_count_capped():
    row = path(None, path_delta(last_engaged=DAY0), total=150.0, done=1, count=4)
    assert (row["status"], row["percent"], row["modules_completed"]) == ("in_progress", 37.5, 1)
    # No catalog count yet: divide by 1, and never above 100.
    assert path(None, path_delta(last_engaged=DAY0), total=250.0, count=0)["percent"] == 100.0


def test_apply_path_authoritative_catalog_completes_when_the_last_module_did():
    delta = path_delta(last_engaged=DAY0 + 3600)
    row = path(None, delta, total=200.0, done=2, done_at=DAY0 + 1800, count=2, authoritative=True)
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, DAY0 + 1800)
    discovered = path(None, delta, total=200.0, done=2, count=2, authoritative=False)
    assert (discovered["status"], discovered["completed_at"]) == ("in_progress", None)
    assert discovered["percent"] == 100.0


def test_apply_path_completed_event_wins_and_keeps_earliest():
    row = path(None, path_delta(completed_at=DAY0 + 100), total=10.0, count=5)
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, DAY0 + 100)
    again = path(row, path_delta(completed_at=DAY0 + 50), total=10.0, count=5)
    assert again["completed_at"] == DAY0 + 50
    # An unenrolment after completing does not undo it.
    after = path(again, path_delta(unenrolled_at=DAY0 + 3000), total=10.0, count=5)
    assert after["status"] == "completed"


@pytest.mark.parametrize(
    ("before", "delta", "total", "expected"),
    [
        # before: (unenrolled_at, last_engaged) of the old row; all times by event time.
        ((None, 5.0), {"unenrolled_at": 10.0}, 50.0, "unenrolled"),
        ((None, None), {"unenrolled_at": 10.0, "last_engaged": 5.0}, 50.0, "unenrolled"),
        ((None, None), {"unenrolled_at": 10.0, "last_engaged": 10.0}, 50.0, "unenrolled"),
        ((None, None), {"unenrolled_at": 10.0, "last_engaged": 11.0}, 50.0, "in_progress"),
        ((10.0, 5.0), {"last_engaged": 20.0}, 50.0, "in_progress"),
        ((10.0, 5.0), {"last_engaged": 20.0}, 0.0, "enrolled"),
        ((10.0, 5.0), {}, 50.0, "unenrolled"),
        # A late event from before the unenrolment does not bring the learner back ...
        ((10.0, 5.0), {"last_engaged": 8.0}, 50.0, "unenrolled"),
        # ... nor does a late unenrolment from before the latest activity take them away.
        ((None, 20.0), {"unenrolled_at": 15.0}, 50.0, "in_progress"),
        ((None, 20.0), {}, 0.0, "enrolled"),
        ((None, 20.0), {}, 10.0, "in_progress"),
    ],
)
def test_apply_path_status(before, delta, total, expected):
    row = path(None, path_delta(), count=2)
    row["unenrolled_at"], row["last_engaged"] = before
    assert path(row, path_delta(**delta), total=total, count=2)["status"] == expected


def test_apply_path_accumulates_time_xp_and_levels():
    row = path(None, path_delta(xp=90, time_spent_s=60.0))
    row = path(row, path_delta(xp=15, time_spent_s=30.5))
    assert (row["xp"], row["level"], row["time_spent_s"]) == (105, 2, 90.5)


def test_apply_learner_new_row_then_streak_and_longest():
    day = 20458
    row = apply_learner(
        None,
        LearnerDelta(events=2, time_spent_s=600.0, xp=11, first=1.0, last=2.0, days={day}),
        days={day},
    )
    assert row == {
        "events": 2,
        "time_spent_s": 600.0,
        "xp": 11,
        "level": 1,
        "streak_days": 1,
        "longest_streak": 1,
        "active_day": day,
        "first_activity": 1.0,
        "last_activity": 2.0,
    }
    row = apply_learner(
        row, LearnerDelta(events=1, xp=100, first=3.0, last=3.0), days={day, day + 1}
    )
    assert (row["streak_days"], row["longest_streak"], row["level"], row["events"]) == (2, 2, 2, 3)
    row = apply_learner(
        row, LearnerDelta(events=1, first=0.5, last=9.0), days={day, day + 1, day + 5}
    )
    assert (row["streak_days"], row["longest_streak"], row["active_day"]) == (1, 2, day + 5)
    assert (row["first_activity"], row["last_activity"]) == (0.5, 9.0)


def test_deltas_start_empty():
    assert ModuleDelta().first == math.inf
    assert PathDelta().last_engaged is None
    assert LearnerDelta().days == set()
