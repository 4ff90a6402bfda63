"""Alerts a person can act on: selection by id, the detail view, long ids whole on screen."""

from __future__ import annotations

import pytest
from test_dashboard_snapshots import NOW, frozen_frames
from tui_helpers import screen_text, wait_until

from jacmon.client.streams import REJECTED
from jacmon.tui import JacmonDashboard
from jacmon.tui.alert_detail import AlertDetailScreen
from jacmon.tui.widgets import AlertsPanel

LONG_LEARNER = "learner-0123456789-abcdefghij-0123456789"  # 40 characters
IRI_PATH = "http://adlnet.gov/expapi/activities/course/python-for-data-analysis"


# Times on screen are read in UTC, whatever the machine's zone.
pytestmark = pytest.mark.usefixtures("utc")


def alert(alert_id: int, severity: str, first_seen: float, **fields) -> dict:
    body = {
        "id": alert_id,
        "fingerprint": f"f{alert_id}",
        "rule": "performance_decline",
        "severity": severity,
        "state": "firing",
        "learner": f"l{alert_id}",
        "path": None,
        "message": f"alert number {alert_id}",
        "numbers": {},
        "first_seen": first_seen,
        "last_seen": first_seen,
        "resolved_at": None,
        "acknowledged": None,
    }
    body.update(fields)
    return body


def alert_frame(seq: int, change: str, body: dict) -> dict:
    return {
        "stream": "alerts",
        "type": "alert",
        "seq": seq,
        "ts": NOW,
        "data": {"change": change, "alert": body},
    }


def frozen(size_frames: list[dict] | None = None) -> JacmonDashboard:
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    app.call_later(app.apply_frames, size_frames or frozen_frames())
    return app


async def test_selection_stays_on_the_alert_while_alerts_update_and_resort():
    app = frozen()
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.table.row_count == 2, "the two alerts")
        await pilot.press("4")
        # 7 is critical (first), 8 warning: select 8.
        await pilot.press("down")
        assert panel.selected_alert_id == 8
        # New, more severe alerts arrive above it, and 7 is updated: 8 stays selected.
        for seq, body in enumerate(
            [
                alert(20, "critical", NOW - 9000),
                alert(21, "critical", NOW - 8000),
                alert(7, "info", NOW - 600, message="scores fell 35%, now info"),
            ],
            start=3,
        ):
            app.apply_frame(alert_frame(seq, "fired", body))
            app.flush()
            await pilot.pause()
            assert panel.selected_alert_id == 8
        assert panel.table.get_row_index("8") != 1  # it moved, the cursor went with it
        # An ack re-sorts nothing away from it either; a resolved neighbour leaves.
        app.apply_frame(
            alert_frame(9, "resolved", {**alert(20, "critical", 0), "state": "resolved"})
        )
        app.flush()
        await pilot.pause()
        assert panel.selected_alert_id == 8


async def test_default_order_is_severity_then_longest_firing_and_sort_is_marked():
    frames = frozen_frames()
    app = frozen(frames)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.table.row_count == 2, "the two alerts")
        app.apply_frame(alert_frame(3, "fired", alert(30, "critical", NOW - 99999)))
        app.apply_frame(alert_frame(4, "fired", alert(31, "critical", NOW - 10)))
        app.flush()
        await pilot.pause()
        keys = [str(panel.table.get_row_at(i)[0]) for i in range(4)]
        assert keys == ["30", "7", "31", "8"]
        assert "sev▲" in screen_text(app)
        await pilot.press("4", "i")
        await pilot.pause()
        assert str(panel.table.get_row_at(0)[0]) == "8"
        assert "sev▼" in screen_text(app)


async def test_detail_view_explains_a_consecutive_low_and_an_inactivity_alert_with_dates():
    frames = frozen_frames()
    scores = [
        {
            "seq": 10 + n,
            "id": f"s{n}",
            "type": "assessment.failed",
            "ts": f"2026-01-0{n}T09:00:00Z",
            "learner": LONG_LEARNER,
            "path": "python-101",
            "item": f"quiz-{n}",
            "score": {"scaled": value / 100},
        }
        for n, value in ((2, 40), (3, 35), (4, 20))
    ]
    frames[1]["data"]["events"] += scores
    frames[3]["data"]["alerts"] = [
        alert(
            41,
            "critical",
            NOW - 7200,
            rule="consecutive_low_scores",
            learner=LONG_LEARNER,
            path="python-101",
            message="the latest 3 scores are below 50 (20, 35, 40) " + "and more words " * 8,
            numbers={"low_run": 3, "latest": [20.0, 35.0, 40.0]},
        ),
        alert(
            42,
            "warning",
            NOW - 3600,
            rule="inactivity",
            learner=LONG_LEARNER,
            message="no activity for 5.0 days (enrolled, not finished)",
            numbers={"idle_days": 5.0, "last_activity": NOW - 5 * 86400},
            acknowledged={"by": "tok-1", "at": NOW - 60, "note": "called", "expires_at": None},
        ),
    ]
    app = frozen(frames)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.table.row_count == 2, "the two alerts")
        await pilot.press("4", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        text = screen_text(app)
        assert "and more words and more words and more words" in text  # the whole message
        assert "newest scores, one after another" in text  # the rule in words
        assert "20 on 2026-01-04 09:00:00" in text and "40 on 2026-01-02 09:00:00" in text
        assert "first fired 2026-01-05 08:00:00" in text
        # The learner's other alert shows in the same view.
        assert "Other open alerts of" in text and "inactivity" in text
        await pilot.press("escape", "down", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the second")
        text = screen_text(app)
        assert "last activity: 2025-12-31 10:00:00" in text
        assert "last_activity=17" not in text
        assert "by tok-1" in text and "note: called" in text


async def test_a_silenced_alert_is_marked_in_the_list_and_the_detail():
    frames = frozen_frames()
    frames[3]["data"]["alerts"] = [
        alert(
            51,
            "warning",
            NOW - 600,
            learner="ann",
            silenced={"id": 3, "until": NOW + 86400, "by": "sam", "note": "on leave"},
        ),
        alert(52, "warning", NOW - 300, learner="bob"),
    ]
    app = frozen(frames)
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.table.row_count == 2, "the two alerts")
        text = screen_text(app)
        assert "(silenced) alert number 51" in text
        assert "(silenced) alert number 52" not in text
        await pilot.press("4")
        panel.select_alert(51)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AlertDetailScreen), "the detail")
        text = screen_text(app)
        assert "silenced until 2026-01-06" in text and "by sam: on leave" in text


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_long_ids_and_numbers_stay_whole(size):
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
    frames[2]["data"]["samples"][-1]["velocity"]["data-science-foundations"] = {
        "this_week": 9,
        "last_week": 3,
        "change_pct": 200.0,
    }
    app = frozen(frames)
    async with app.run_test(size=size) as pilot:
        await pilot.pause()
        app.flush()
        await pilot.pause()
        # z shows one panel at a time at any size (as btop does).
        await pilot.press("1", "z")
        await pilot.pause()
        text = screen_text(app)
        assert "77%" in text  # the IRI path's mean is not pushed off
        assert "http://adl…" in text and "analysis" in text  # cut in the middle
        await pilot.press("z", "5", "z")
        await pilot.pause()
        assert "learner-01…-0123456789" in screen_text(app)  # both ends of a 40-char id
        await pilot.press("z", "3", "z")
        await pilot.pause()
        text = screen_text(app)
        assert "received" in text and "ev/s" in text
        assert "↗data-s" in text and "/7d" in text and "200%" in text


async def test_a_rejected_token_is_fatal_and_says_what_to_do(running_server):
    # The test server wants tokens on every connection only with --require-tokens;
    # a malformed token is refused whatever the address.
    app = JacmonDashboard(running_server.url, token="bad")
    async with app.run_test(size=(120, 40)) as pilot:
        panel = app.connection_panel
        await wait_until(
            pilot,
            lambda: all(s.state == REJECTED for s in panel.statuses.values()),
            "every stream rejected",
        )
        assert "token rejected: check --token" in panel.statuses["alerts"].reason
        await wait_until(pilot, lambda: "token rejected" in screen_text(app), "the reason shown")
        assert not any(n.title == "server unreachable" for n in app._notifications)
        assert any(n.title == "token rejected" for n in app._notifications)
