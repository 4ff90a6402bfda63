"""Live metrics windows and the rate meter, on hand-built inputs with hand-computed samples."""

from __future__ import annotations

import pytest

from jacmon.analytics.live import LiveWindows, RateMeter

NOW = 10_000.0


def add(windows: LiveWindows, ts: float, learner: str = "a", score=None, kind="activity", now=NOW):
    windows.add(ts=ts, learner=learner, score=score, event_type=kind, now=now)


def test_empty_sample():
    assert LiveWindows().sample(NOW) == {
        "events_per_min": 0,
        "completions_per_hour": 0,
        "avg_score": None,
        "active_learners_5m": 0,
        "active_learners_24h": 0,
    }


def test_sample_numbers():
    windows = LiveWindows()
    add(windows, 9990.2, "a")
    add(windows, 9990.9, "b", score=80.0)  # same second as the one before
    add(windows, 9950.0, "a", kind="module.completed")  # older than a's last: a stays at 9990.2
    add(windows, 9000.0, "c", score=60.0, kind="path.completed")  # in the hour, not the minute
    add(windows, 5000.0, "d", score=0.0, kind="module.completed")  # past the hour: no window
    add(windows, 10_100.0, "e", score=0.0)  # stamped in the future: counts as now
    add(windows, 9000.0, "f", kind="lesson.completed")  # not a completion type
    assert windows.sample(NOW) == {
        # 10000 (e) + 9990 (2) + 9950 (1): buckets at or after 9940
        "events_per_min": 4,
        # 9950 module.completed + 9000 path.completed
        "completions_per_hour": 2,
        # (80 + 60 + 0) / 3; d's score is past the hour and does not count
        "avg_score": 46.67,
        # a 9990.2, b 9990.9 and e (now) are within 300 s
        "active_learners_5m": 3,
        # everyone, d included: 5000 is within the day
        "active_learners_24h": 6,
    }
    assert windows.last_seen == {
        "a": 9990.2,
        "b": 9990.9,
        "c": 9000.0,
        "d": 5000.0,
        "e": NOW,
        "f": 9000.0,
    }


def test_events_stamped_ahead_of_now_count_as_now():
    windows = LiveWindows()
    add(windows, NOW + 60, learner="a")
    add(windows, NOW + 3600, learner="b", kind="module.completed")
    sample = windows.sample(NOW)
    assert (sample["events_per_min"], sample["completions_per_hour"]) == (2, 1)
    assert windows.last_seen == {"a": NOW, "b": NOW}
    # They age from now, not from their stamp: 60.5 s later they left the minute.
    assert windows.sample(NOW + 60.5)["events_per_min"] == 0


def test_avg_score_rounds_to_two_places():
    windows = LiveWindows()
    for score in (70.0, 80.0, 80.5):
        add(windows, 9999.0, score=score)
    assert windows.sample(NOW)["avg_score"] == 76.83  # 230.5 / 3


def test_windows_slide_with_now():
    windows = LiveWindows()
    add(windows, 9950.0, kind="module.completed", score=50.0)
    assert windows.sample(NOW)["events_per_min"] == 1
    later = windows.sample(NOW + 20)  # minute starts at 9960
    assert later["events_per_min"] == 0
    assert later["completions_per_hour"] == 1
    assert later["avg_score"] == 50.0
    assert later["active_learners_5m"] == 1
    gone = windows.sample(9950.0 + 3600.5)  # the bucket's second is past the hour
    assert gone["completions_per_hour"] == 0
    assert gone["avg_score"] is None
    assert gone["active_learners_5m"] == 0
    assert gone["active_learners_24h"] == 1


def test_out_of_order_buckets_are_kept_in_time_order():
    windows = LiveWindows()
    add(windows, 9995.0, score=10.0)
    add(windows, 9993.0, score=20.0)  # inserted before the newest
    add(windows, 9994.5, score=30.0)  # between the two
    add(windows, 9993.7, score=40.0)  # into the existing 9993 bucket
    add(windows, 6500.0, kind="path.completed")  # before every bucket
    sample = windows.sample(NOW)
    assert sample["events_per_min"] == 4
    assert sample["completions_per_hour"] == 1
    assert sample["avg_score"] == 25.0
    # Pruning walks from the oldest bucket: it must find 6500 first.
    assert windows.sample(10_100.0)["completions_per_hour"] == 1  # cutoff 6500: kept
    after = windows.sample(10_101.0)  # cutoff 6501: gone
    assert after["completions_per_hour"] == 0
    assert after["avg_score"] == 25.0  # the other four are still in the hour


def test_buckets_are_one_per_second():
    windows = LiveWindows(horizon_s=10)
    for ts in (100.0, 100.99, 101.0, 99.5, 105.2):
        add(windows, ts, now=105.0)
    # With a 10 s horizon, 99 is pruned at now 109.5 (cutoff 99.5) and 100 at 110.5.
    assert windows.sample(105.0)["events_per_min"] == 5
    assert windows.sample(109.5)["events_per_min"] == 4
    assert windows.sample(110.5)["events_per_min"] == 2
    assert windows.sample(116.0)["events_per_min"] == 0


def test_idle_learners_are_forgotten_only_past_a_thousand():
    windows = LiveWindows()
    for n in range(1000):
        add(windows, NOW - 90_000, learner=f"old{n}")
    windows.prune(NOW)
    assert len(windows.last_seen) == 1000  # at the limit: kept
    add(windows, NOW - 10, learner="fresh")
    add(windows, NOW - 86_000, learner="yesterday")
    windows.prune(NOW)
    assert set(windows.last_seen) == {"fresh", "yesterday"}
    sample = windows.sample(NOW)
    assert (sample["active_learners_5m"], sample["active_learners_24h"]) == (1, 2)


def test_rate_meter():
    meter = RateMeter(window_s=10.0)
    assert meter.rate(0.0) == 0.0
    meter.add(5, 100.0)
    meter.add(15, 105.0)
    assert meter.rate(105.0) == 2.0  # 20 events / 10 s
    assert meter.rate(110.0) == 2.0  # cutoff 100: the first mark is still in
    assert meter.rate(110.5) == 1.5  # cutoff 100.5: 15 / 10
    assert meter.rate(116.0) == 0.0


@pytest.mark.parametrize(("count", "window", "rate"), [(1, 3.0, 0.3), (2, 3.0, 0.7), (7, 1.0, 7.0)])
def test_rate_meter_rounds_to_a_tenth(count, window, rate):
    meter = RateMeter(window_s=window)
    meter.add(count, 0.0)
    assert meter.rate(0.0) == rate
