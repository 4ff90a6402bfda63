"""What a person needs is whole on screen at 80x24, 120x40 and 200x60, with long ids.

A real server on port 0 is fed real events with an xAPI IRI as a path id, a
40-character learner id and long alert messages; the tests read the rendered
screen (``screen_lines``), not the widgets' data.
"""

from __future__ import annotations

import re

import pytest
from test_dashboard_snapshots import NOW, frozen_frames
from tui_helpers import fire_alert, flowing, make_event, screen_lines, send, wait_until

from jacmon.client.streams import CONNECTED
from jacmon.tui import JacmonDashboard
from jacmon.tui.format import middle_ellipsis
from jacmon.tui.state import FEED_CAPACITY
from jacmon.tui.widgets.alerts import WHO_WIDTH
from jacmon.tui.widgets.progress import ID_WIDTH

IRI_PATH = "https://lms.example.com/xapi/activities/course/very-long-course-identifier-2026"
LONG_LEARNER = "learner-with-a-forty-character-id-000042"
assert len(LONG_LEARNER) == 40
#: As long as rule messages get (scores listed): three lines of the narrowest list.
LONG_MESSAGE = (
    "the latest 6 scores on very-long-course-identifier-2026 are below 60 (31, 28, 44, 39, 35, 30)"
)
STREAMS = ("dashboard", "alerts", "metrics", "activity")
CONNECTION_HEADERS = ("stream", "state", "last msg", "rtt", "↻", "connect")


# Times on screen are read in UTC, whatever the machine's zone.
pytestmark = pytest.mark.usefixtures("utc")


async def feed_long_ids(running_server) -> None:
    """Events on an IRI path by a 40-character learner (and ada), and two alerts."""
    events = [
        make_event(1, learner=LONG_LEARNER, kind="path.enrolled", path=IRI_PATH),
        make_event(2, learner=LONG_LEARNER, path=IRI_PATH, progress=40),
        make_event(3, learner=LONG_LEARNER, kind="assessment.failed", path=IRI_PATH),
        make_event(4, learner="ada", kind="path.enrolled"),
        make_event(5, learner="ada", progress=70),
    ]
    await send(running_server.url, events)
    await fire_alert(
        running_server, learner=LONG_LEARNER, message=LONG_MESSAGE, severity="critical"
    )
    await fire_alert(running_server, learner="ada", message="ada has not been seen for 3 days")


def connected(app: JacmonDashboard) -> bool:
    return all(s.state == CONNECTED for s in app.connection_panel.statuses.values())


async def loaded(pilot, app: JacmonDashboard) -> None:
    await wait_until(pilot, lambda: connected(app), "every stream connected")
    await wait_until(pilot, lambda: app.alerts_panel.table.row_count == 2, "both alerts")
    await wait_until(pilot, lambda: app.progress_panel.top.row_count == 2, "both paths")
    await wait_until(pilot, lambda: len(app.activity_feed.lines) == 5, "the five events")
    app.flush()
    await pilot.pause()


def assert_alerts_whole(app: JacmonDashboard, lines: list[str]) -> None:
    """Each alert's row shows its age and learner (or its ellipsis), and its whole message."""
    table = app.alerts_panel.table
    for index in range(table.row_count):
        _id, _sev, age, _who, _message = table.get_row_at(index)
        who = middle_ellipsis(LONG_LEARNER, WHO_WIDTH) if index == 0 else "ada"
        row = next((line for line in lines if who in line and re.search("CRIT|WARN", line)), None)
        assert row is not None, f"{who} not on screen:\n" + "\n".join(lines)
        assert re.search(rf"\b{re.escape(age)}\s+{re.escape(who)}", row), row
    text = flowing(lines)
    assert LONG_MESSAGE in text, "\n".join(lines)
    assert "ada has not been seen for 3 days" in text


def assert_progress_whole(lines: list[str]) -> None:
    """``mean`` and the numbers beside an IRI path and a 40-character learner stay on screen."""
    text = "\n".join(lines)
    assert re.search(r"path\s+enr\s+7d\s+done\s+mean", text), text
    iri = middle_ellipsis(IRI_PATH, ID_WIDTH)
    assert re.search(rf"{re.escape(iri)}\s+1\s+\d+\s+0\s+\S*\s+\d+%", text), text
    learner = middle_ellipsis(LONG_LEARNER, ID_WIDTH)
    assert re.search(rf"{re.escape(learner)}\s+\S*\s+\d+%\s+\d+\s+\d+\s+\d+[smhd]", text), text


def assert_connection_whole(lines: list[str]) -> None:
    text = "\n".join(lines)
    assert re.search(r"\s+".join(re.escape(h) for h in CONNECTION_HEADERS), text), text
    for stream in STREAMS:
        assert re.search(rf"│ ?{stream}\s+connected\s+\d+s\s+(\d+ms|-)\s+\d+\s+fresh", text), stream


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
async def test_every_panel_whole_with_long_ids(running_server, size):
    await feed_long_ids(running_server)
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=size) as pilot:
        await loaded(pilot, app)
        lines = screen_lines(app)
        assert_alerts_whole(app, lines)
        assert_progress_whole(lines)
        assert_connection_whole(lines)
        feed = middle_ellipsis(LONG_LEARNER, 20)
        assert any(re.search(rf"failed\s+80% {re.escape(feed)}", line) for line in lines)
        for title in ("Progress", "Activity", "Trends", "Connection", "Alerts (2)"):
            assert title in lines[1] + "\n".join(lines), title


async def test_80x24_shows_one_panel_at_a_time_each_whole(running_server):
    await feed_long_ids(running_server)
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await loaded(pilot, app)
        # Alerts first: what an instructor acts on; the footer says how to switch.
        lines = screen_lines(app)
        assert "Alerts (2)" in lines[1] and "Progress" not in "\n".join(lines)
        assert "tab Next panel" in lines[-1]
        assert_alerts_whole(app, lines)
        # Tab brings the next panel on screen (hidden panels cannot take focus).
        await pilot.press("tab")
        await pilot.pause()
        lines = screen_lines(app)
        assert "Progress" in lines[1] and "Alerts" not in "\n".join(lines)
        assert_progress_whole(lines)
        await pilot.press("6")
        await pilot.pause()
        lines = screen_lines(app)
        assert "Connection" in lines[1]
        assert_connection_whole(lines)
        # Wider again: every panel.
        await pilot.resize_terminal(120, 40)
        await pilot.pause(0.1)
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        for title in ("Progress", "Activity", "Trends", "Connection", "Alerts (2)"):
            assert title in text, title
        assert "Next panel" not in text


async def test_the_header_keeps_offline_and_the_clock_at_80_columns(running_server):
    await send(running_server.url, [make_event(1)])
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: connected(app), "every stream connected")
        await running_server.stop()
        await wait_until(pilot, lambda: "OFFLINE since" in app.sub_title, "the offline header")
        await pilot.pause()
        header = screen_lines(app)[0]
        assert re.search(r"OFFLINE since \d\d:\d\d:\d\d", header), header
        assert re.search(r"\d\d:\d\d:\d\d · alerts 0", header), header
        assert "…" not in header


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_the_demo_header_says_the_clock_is_simulated(size):
    app = JacmonDashboard(
        "ws://127.0.0.1:8765",
        connect=False,
        now=lambda: NOW,
        wall_clock=lambda: NOW + 99999,
        sim_speed=1800,
    )
    async with app.run_test(size=size) as pilot:
        app.apply_frames(frozen_frames())
        app.flush()
        await pilot.pause()
        header = screen_lines(app)[0]
    assert "SIMULATED 1800x · 2026-01-05 10:00 · alerts 2 (1 critical)" in header, header


async def test_the_real_server_header_shows_the_wall_clock():
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW + 3661
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        header = screen_lines(app)[0]
    assert "SIMULATED" not in header
    assert "jacmon · 11:01:01 · alerts 0" in header, header


async def test_trends_reaches_every_velocity_row():
    frames = frozen_frames()
    paths = [f"path-{n:02d}" for n in range(12)]
    for sample in frames[2]["data"]["samples"]:
        sample["velocity"] = {
            p: {"this_week": 5, "last_week": 4, "change_pct": 25.0} for p in paths
        }
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_frames(frames)
        app.flush()
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert "↗path-00" in text and "↗path-11" not in text  # more rows than room
        await pilot.press("3", "end")
        await pilot.pause()
        text = "\n".join(screen_lines(app))
        assert re.search(r"↗path-11\s+\S+\s+5 /7d\s+↑25%", text), text


def shown_toasts(app: JacmonDashboard, count: int) -> bool:
    """Whether ``count`` toasts are laid out (a toast has no size until then)."""
    toasts = list(app.screen.query("Toast"))
    return len(toasts) == count and all(t.region.area for t in toasts)


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
async def test_a_toast_covers_neither_alerts_nor_connection(size):
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=size, notifications=True) as pilot:
        app.apply_frames(frozen_frames())
        app.flush()
        app.notify("alert 7 acknowledged", title="alerts")
        app.notify("server going away. Retrying with backoff", title="server unreachable")
        await wait_until(pilot, lambda: shown_toasts(app, 2), "two toasts on screen")
        toasts = list(app.screen.query("Toast"))
        for toast in toasts:
            for panel in (app.alerts_panel, app.connection_panel, app.status_header):
                assert not toast.region.overlaps(panel.region), (toast.region, panel.id)


async def test_drill_down_columns_line_up_when_a_longer_id_arrives():
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_frames(frozen_frames())
        app.flush()
        await pilot.press("1", "down", "down", "enter")  # python-101's learners
        await pilot.pause(0.3)
        learners = app.progress_panel.bottom
        await wait_until(pilot, lambda: learners.row_count == 4, "python-101's learners")
        await pilot.press("5", "down")
        selected = learners.selected_key
        # A learner with a longer id than any shown arrives on the path.
        row = {
            "learner": "ada.jensen-0085",
            "path": "python-101",
            "status": "in_progress",
            "percent": 55.0,
            "last_activity": NOW - 30,
        }
        app.apply_frame(
            {
                "stream": "dashboard",
                "type": "progress",
                "seq": 11,
                "ts": NOW,
                "data": {"learner_paths": [row]},
            }
        )
        app.flush()
        await pilot.pause(0.3)
        app.flush()
        await pilot.pause()
        lines = [line for line in screen_lines(app) if "in_progress" in line]
        assert any("ada.jensen-0085" in line for line in lines), "\n".join(lines)
        # Every row's percent sits in the same column: none cut to the header's width.
        assert len({line.index("%") for line in lines}) == 1, "\n".join(lines)
        assert learners.selected_key == selected


async def test_feed_lines_gain_their_date_when_the_clock_passes_midnight():
    clock = {"now": NOW}  # 2026-01-05 10:00 UTC; the frozen events are of that morning
    app = JacmonDashboard(
        "ws://127.0.0.1:8765",
        connect=False,
        now=lambda: clock["now"],
        wall_clock=lambda: NOW,
        sim_speed=1800,
    )
    async with app.run_test(size=(120, 40)) as pilot:
        app.apply_frames(frozen_frames())
        app.flush()
        await pilot.pause()
        assert app.activity_feed.lines[-1].startswith("09:59:30 progress")
        # A simulated day later, with no new event: yesterday's lines show their date.
        clock["now"] = NOW + 86400
        await wait_until(
            pilot,
            lambda: app.activity_feed.lines[-1].startswith("2026-01-05 09:59:30 progress"),
            "the dated line",
        )
        assert "2026-01-06" in screen_lines(app)[0]


@pytest.mark.parametrize("size", [(120, 40), (200, 60)])
async def test_the_feed_keeps_following_after_a_burst_larger_than_it_holds(size):
    frames = frozen_frames()
    template = frames[1]["data"]["events"][1]

    def events(first: int, count: int, learner: str = "l") -> list[dict]:
        return [
            {**template, "seq": n, "id": f"e{n}", "learner": f"{learner}{n}"}
            for n in range(first, first + count)
        ]

    frames[1]["data"]["events"] = events(10, 300)
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=size) as pilot:
        app.apply_frames(frames)
        app.flush()
        await pilot.pause()
        # More events in one flush than the feed holds (a backlog): it is redrawn whole.
        burst = events(1000, FEED_CAPACITY + 10)
        for frame_events in (burst, events(5000, 1, learner="the-live-one-")):
            app.apply_frame(
                {
                    "stream": "activity",
                    "type": "events",
                    "seq": frame_events[-1]["seq"],
                    "ts": NOW,
                    "data": {"events": frame_events},
                }
            )
            app.flush()
            await pilot.pause()
        feed = app.activity_feed
        assert feed.unseen == 0 and "new ↓" not in str(feed.border_subtitle)
        assert any("the-live-one-5000" in line for line in screen_lines(app))


async def test_the_feed_follows_events_that_came_while_it_was_hidden():
    """At 80x24 the feed is off screen (size 0) while Alerts shows; shown, it still follows."""
    frames = frozen_frames()
    template = frames[1]["data"]["events"][1]
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=(80, 24)) as pilot:
        app.apply_frames(frames)
        app.flush()
        await pilot.pause()
        assert not app.activity_feed.display
        for n in range(10, 110):
            event = {**template, "seq": n, "id": f"e{n}", "learner": f"l{n}"}
            app.apply_frame(
                {
                    "stream": "activity",
                    "type": "events",
                    "seq": n,
                    "ts": NOW,
                    "data": {"events": [event]},
                }
            )
            app.flush()
        await pilot.pause()
        await pilot.press("2")
        await pilot.pause()
        live = {**template, "seq": 500, "id": "live", "learner": "the-live-one"}
        app.apply_frame(
            {
                "stream": "activity",
                "type": "events",
                "seq": 500,
                "ts": NOW,
                "data": {"events": [live]},
            }
        )
        app.flush()
        await pilot.pause()
        lines = screen_lines(app)
        assert any("the-live-one" in line for line in lines), "\n".join(lines)
        assert "new ↓" not in "\n".join(lines)


async def test_an_unwatched_alerts_list_stays_at_its_top_as_alerts_arrive():
    """Unfocused, the list shows the most urgent alerts first, whatever was first before."""
    frames = frozen_frames()
    template = frames[3]["data"]["alerts"][1]  # warning
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=(120, 30)) as pilot:
        frames[3]["data"]["alerts"] = [
            {**template, "id": n, "learner": f"w{n}", "first_seen": NOW - 100 + n}
            for n in range(10, 40)
        ]
        app.apply_frames(frames)
        app.flush()
        await pilot.pause()
        assert app.focused is not app.alerts_panel.table
        # Critical alerts arrive: they sort above every warning, and must be seen.
        for n in range(100, 108):
            body = {**template, "id": n, "learner": f"c{n}", "severity": "critical"}
            app.apply_frame(
                {
                    "stream": "alerts",
                    "type": "alert",
                    "seq": n,
                    "ts": NOW,
                    "data": {"change": "fired", "alert": body},
                }
            )
            app.flush()
            await pilot.pause()
        table = app.alerts_panel.table
        assert table.scroll_y == 0 and table.cursor_row == 0
        lines = screen_lines(app)
        first = next(i for i, line in enumerate(lines) if re.search(r"│ \d+\s+(CRIT|WARN)", line))
        assert "CRIT" in lines[first] and "c100" in lines[first], "\n".join(lines)


async def test_at_80x24_a_toast_leaves_the_first_alerts_and_the_footer_visible():
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        app.apply_frames(frozen_frames())
        app.flush()
        app.notify("alert 7 acknowledged", title="alerts")
        await wait_until(pilot, lambda: shown_toasts(app, 1), "the toast on screen")
        (toast,) = app.screen.query("Toast")
        table = app.alerts_panel.table
        # The header row and the two alerts' rows (the first three lines of the table).
        first_rows = table.region._replace(height=3)
        assert not toast.region.overlaps(first_rows), (toast.region, first_rows)
        assert toast.region.bottom <= app.size.height - 1  # the footer's line stays clear


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
async def test_a_velocity_row_names_an_iri_path_by_both_ends(size):
    frames = frozen_frames()
    for sample in frames[2]["data"]["samples"]:
        sample["velocity"] = {IRI_PATH: {"this_week": 7, "last_week": 4, "change_pct": 75.0}}
    app = JacmonDashboard(
        "ws://127.0.0.1:8765", connect=False, now=lambda: NOW, wall_clock=lambda: NOW
    )
    async with app.run_test(size=size) as pilot:
        app.apply_frames(frames)
        app.flush()
        await pilot.press("3")
        await pilot.pause(0.1)
        lines = screen_lines(app)
    row = next(line for line in lines if "↗https://" in line)
    # The start and the end of the id, and the numbers after it.
    assert re.search(r"↗https://\S*2026\s+\S+\s+7 /7d\s+↑75%", row), row
