"""Snapshot tests of the main screen with frozen data (pytest-textual-snapshot).

Review a changed snapshot with ``pytest tests/tui --snapshot-update`` and the
HTML report; the app runs with ``connect=False`` and a fixed clock, so the
picture depends on the frames below only.
"""

from __future__ import annotations

import pytest

from jacmon.client.streams import CONNECTED, RECONNECTING, ConnectionStatus
from jacmon.tui import JacmonDashboard
from jacmon.tui.messages import ConnectionChanged

NOW = 1767607200.0  # 2026-01-05 10:00:00 UTC


# The feed shows local times: pin the zone (conftest's utc) so the pictures match anywhere.
pytestmark = pytest.mark.usefixtures("utc")


def frozen_frames() -> list[dict]:
    paths = [
        {
            "path": "python-101",
            "title": "Python 101",
            "modules": 4,
            "enrolled": 12,
            "active": 7,
            "completed": 3,
            "mean_percent": 58.3,
        },
        {
            "path": "data-science",
            "title": "Data Science",
            "modules": 5,
            "enrolled": 8,
            "active": 5,
            "completed": 1,
            "mean_percent": 31.0,
        },
    ]
    learners = [
        {
            "learner": name,
            "events": 40 + i,
            "time_spent_s": 3600.0 * i,
            "xp": 120 * i,
            "level": 1 + i,
            "streak_days": i,
            "longest_streak": i + 2,
            "last_activity": NOW - 60 * (i + 1),
        }
        for i, name in enumerate(["ada", "bob", "cyd", "dee"])
    ]
    learner_paths = [
        {
            "learner": row["learner"],
            "path": "python-101",
            "status": "in_progress",
            "percent": 20.0 + 20 * i,
            "modules_completed": i,
            "time_spent_s": 600.0,
            "xp": 10,
            "level": 1,
            "streak_days": 1,
            "last_activity": NOW - 60,
            "completed_at": None,
        }
        for i, row in enumerate(learners)
    ]
    events = [
        {
            "seq": 1,
            "id": "e1",
            "type": "path.enrolled",
            "ts": "2026-01-05T09:58:00Z",
            "learner": "ada",
            "path": "python-101",
        },
        {
            "seq": 2,
            "id": "e2",
            "type": "assessment.passed",
            "ts": "2026-01-05T09:58:30Z",
            "learner": "bob",
            "path": "python-101",
            "item": "quiz-1",
            "score": {"scaled": 0.92},
        },
        {
            "seq": 3,
            "id": "e3",
            "type": "assessment.failed",
            "ts": "2026-01-05T09:59:00Z",
            "learner": "cyd",
            "path": "python-101",
            "item": "quiz-1",
            "score": {"scaled": 0.35},
        },
        {
            "seq": 4,
            "id": "e4",
            "type": "module.progressed",
            "ts": "2026-01-05T09:59:30Z",
            "learner": "dee",
            "path": "data-science",
            "module": "m2",
            "progress": 40,
        },
    ]
    samples = [
        {
            "ts": NOW - 2 * (30 - i),
            "events_per_min": 100 + 10 * i,
            "active_learners_5m": 5 + i % 3,
            "active_learners_24h": 20,
            "avg_score": 70 - i * 0.5,
            "completions_per_hour": i % 4,
            "ingest_rate": 2.0,
            "connected_clients": 3,
            "velocity": {
                "python-101": {"this_week": 4 + i // 10, "last_week": 3, "change_pct": 33.0}
            },
        }
        for i in range(30)
    ]
    alerts = [
        {
            "id": 7,
            "fingerprint": "f7",
            "rule": "performance-decline",
            "severity": "critical",
            "state": "firing",
            "learner": "cyd",
            "path": "python-101",
            "message": "scores fell 35%",
            "numbers": {"recent_avg": 41.5},
            "first_seen": NOW - 600,
            "last_seen": NOW - 60,
            "resolved_at": None,
            "acknowledged": None,
        },
        {
            "id": 8,
            "fingerprint": "f8",
            "rule": "inactivity",
            "severity": "warning",
            "state": "firing",
            "learner": "dee",
            "path": None,
            "message": "inactive 4 days",
            "numbers": {"days": 4},
            "first_seen": NOW - 3600,
            "last_seen": NOW - 60,
            "resolved_at": None,
            "acknowledged": None,
        },
    ]

    def frame(stream, kind, seq, data):
        return {"stream": stream, "type": kind, "seq": seq, "ts": NOW, "data": data}

    return [
        frame(
            "dashboard",
            "snapshot",
            10,
            {
                "paths": paths,
                "modules": [],
                "learners": learners,
                "learner_paths": learner_paths,
                "total_learners": 4,
                "truncated": False,
            },
        ),
        frame("activity", "snapshot", 4, {"events": events, "reset": False}),
        frame("metrics", "snapshot", 30, {"samples": samples, "interval_s": 2.0}),
        frame("alerts", "snapshot", 2, {"alerts": alerts}),
    ]


class FrozenDashboard(JacmonDashboard):
    """The dashboard fed ``frames`` once it runs (``connect=False``, fixed clocks)."""

    frames: list[dict] | None = None


def _frozen_app() -> JacmonDashboard:
    app = FrozenDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )

    async def feed() -> None:
        app.apply_frames(app.frames or frozen_frames())
        for name in ("dashboard", "alerts", "metrics"):
            app.post_message(
                ConnectionChanged(
                    ConnectionStatus(
                        stream=name,
                        state=CONNECTED,
                        last_message_at=NOW - 1,
                        rtt_s=0.004,
                        reconnects=1,
                        last_connect="resumed",
                        seq=1,
                    )
                )
            )
        app.post_message(
            ConnectionChanged(
                ConnectionStatus(
                    stream="activity",
                    state=RECONNECTING,
                    reason="server going away: restarting",
                    retry_at=NOW + 3,
                    last_message_at=NOW - 5,
                    reconnects=2,
                    last_connect="reset",
                )
            )
        )
        app.flush()

    app.call_later(feed)
    return app


async def _settle(pilot) -> None:
    await pilot.pause()
    pilot.app.flush()
    await pilot.pause()


LONG_LEARNER = "learner-0123456789-abcdefghij-0123456789"  # 40 characters
IRI_PATH = "http://adlnet.gov/expapi/activities/course/python-for-data-analysis"


def long_id_frames() -> list[dict]:
    """The frozen frames plus an xAPI IRI path, a 40-character learner and a long message."""
    frames = frozen_frames()
    dashboard = frames[0]["data"]
    dashboard["paths"].append(
        {
            "path": IRI_PATH,
            "title": "Python for data analysis",
            "enrolled": 3,
            "active": 2,
            "completed": 1,
            "mean_percent": 77.0,
        }
    )
    dashboard["learners"].append({**dashboard["learners"][0], "learner": LONG_LEARNER})
    frames[1]["data"]["events"].append(
        {
            "seq": 5,
            "id": "e5",
            "type": "assessment.failed",
            "ts": "2026-01-03T08:00:00Z",
            "learner": LONG_LEARNER,
            "path": IRI_PATH,
            "score": {"scaled": 0.2},
        }
    )
    frames[3]["data"]["alerts"].append(
        {
            **frames[3]["data"]["alerts"][0],
            "id": 9,
            "rule": "consecutive_low_scores",
            "learner": LONG_LEARNER,
            "message": "the latest 5 scores are below 50 (20, 25, 30, 35, 40) " * 2,
            "numbers": {"low_run": 5, "latest": [20, 25, 30, 35, 40]},
        }
    )
    return frames


def frozen_app(frames: list[dict] | None = None) -> JacmonDashboard:
    app = _frozen_app()
    if frames is not None:
        app.frames = frames
    return app


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_main_screen(snap_compare, size):
    assert snap_compare(frozen_app(long_id_frames()), terminal_size=size, run_before=_settle)


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_alert_detail(snap_compare, size):
    async def open_detail(pilot) -> None:
        await _settle(pilot)
        await pilot.press("4", "down", "enter")  # alert 9: consecutive low scores
        await pilot.pause()

    assert snap_compare(frozen_app(long_id_frames()), terminal_size=size, run_before=open_detail)
