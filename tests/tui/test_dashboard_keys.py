"""Keys as htop/k9s users expect, refusals in words, freshness, and dated feed lines."""

from __future__ import annotations

import pytest
from test_dashboard_snapshots import NOW, frozen_frames
from tui_helpers import make_event, screen_text, send, wait_until

from jacmon.tui import JacmonDashboard
from jacmon.tui.format import event_line, local_day
from jacmon.tui.help import COLUMNS, KEYS
from jacmon.tui.widgets import ActivityFeed, AlertsPanel, ConnectionPanel

SIZE = (120, 40)


# Times on screen are read in UTC, whatever the machine's zone.
pytestmark = pytest.mark.usefixtures("utc")


def frozen() -> JacmonDashboard:
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    app.call_later(app.apply_frames, frozen_frames())
    return app


def test_feed_lines_of_another_day_carry_their_date_and_the_score_comes_first():
    event = {
        "type": "assessment.failed",
        "ts": NOW,
        "learner": "l" * 40,
        "path": "http://adlnet.gov/expapi/activities/course/python",
        "score": {"scaled": 0.2},
    }
    today = local_day(NOW)
    assert event_line(event, today).startswith("10:00:00 failed     20% llll")
    yesterday = {**event, "ts": NOW - 86400}
    assert event_line(yesterday, today).startswith("2026-01-04 10:00:00 failed     20% ")
    assert event_line({**event, "ts": 0}, today).startswith("1970-01-01 00:00:00 ")


def test_help_lists_every_key_and_column():
    keys = " ".join(key for key, _ in KEYS)
    for key in ("Ctrl+C", "Enter", "Tab", "1 2 3 4 5 6", "z", "/", "s", "i", "a", "p", "r"):
        assert key in keys, key
    assert any("maximize" in what for _, what in KEYS)
    # Tab's other meaning: one panel at a time (narrow terminals, z) shows the next.
    assert any(key.startswith("Tab") and "show the next" in what for key, what in KEYS)
    words = {word for word, _ in COLUMNS}
    for column in ("7d", "lvl", "strk", "xp", "mods", "↻", "fresh", "resumed", "reset"):
        assert column in words, column


async def test_number_keys_jump_and_the_footer_says_pause_or_resume():
    app = frozen()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("4")
        assert app.focused is app.alerts_panel.table
        await pilot.press("2")
        assert app.focused is app.query_one(ActivityFeed)
        await pilot.pause()
        assert "Pause" in screen_text(app) and "Resume" not in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert app.paused
        assert "Resume" in screen_text(app)
        await pilot.press("p")
        await pilot.pause()
        assert not app.paused


async def test_ctrl_c_quits():
    app = frozen()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await pilot.press("ctrl+c")
        await pilot.pause()
    assert app.return_code == 0


async def test_a_refused_ack_says_not_allowed_and_hides_the_hint():
    app = frozen()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.table.row_count == 2, "the alerts")
        app.flush()
        assert "a: ack" in panel.border_subtitle
        app.apply_frame(
            {
                "stream": "alerts",
                "type": "error",
                "seq": 0,
                "ts": NOW,
                "data": {"code": "forbidden", "message": "this token may not acknowledge alerts"},
            }
        )
        await pilot.pause()
        titles = [n.title for n in app._notifications]
        assert "not allowed" in titles and "server error" not in titles
        assert "a: ack" not in panel.border_subtitle


async def test_offline_header_and_stale_panels(running_server):
    await send(running_server.url, [make_event(1)])
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        statuses = app.query_one(ConnectionPanel).statuses
        await wait_until(
            pilot, lambda: all(s.state == "connected" for s in statuses.values()), "connected"
        )
        await wait_until(pilot, lambda: "newest data" in app.sub_title, "the data's age")
        assert "STALE" not in app.alerts_panel.border_title
        await running_server.stop()
        await wait_until(pilot, lambda: "OFFLINE since" in app.sub_title, "the offline header")
        assert "newest data" not in app.sub_title
        assert "STALE" in app.alerts_panel.border_title
        assert "STALE" in app.query_one(ActivityFeed).border_title
        await running_server.start()
        await wait_until(pilot, lambda: "OFFLINE" not in app.sub_title, "back online", timeout=60)
