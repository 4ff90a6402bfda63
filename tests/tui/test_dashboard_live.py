"""Pilot tests of the dashboard against a real server on port 0, fed real events."""

from __future__ import annotations

import re
import time

from tui_helpers import fire_alert, make_event, screen_text, send, wait_until

from jacmon.client.streams import CONNECTED, RECONNECTING
from jacmon.protocol import Stream
from jacmon.store.sqlite.alerts import get_alert
from jacmon.tui import JacmonDashboard
from jacmon.tui.ack import AckScreen
from jacmon.tui.widgets import ActivityFeed, AlertsPanel, ConnectionPanel, MetricsPanel
from jacmon.tui.widgets.table import KeyedTable

SIZE = (120, 36)


def feed_text(app: JacmonDashboard) -> str:
    return "\n".join(app.query_one(ActivityFeed).lines)


def all_connected(app: JacmonDashboard) -> bool:
    statuses = app.query_one(ConnectionPanel).statuses.values()
    return all(s.state == CONNECTED for s in statuses)


async def test_each_panel_shows_what_was_sent(running_server):
    await send(
        running_server.url,
        [make_event(1, learner="ada", kind="path.enrolled")]
        + [make_event(n, learner="ada") for n in range(2, 6)]
        + [make_event(9, learner="bob", kind="assessment.failed", score={"scaled": 0.31})],
    )
    await fire_alert(running_server, learner="bob", message="bob's scores dropped")
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all_connected(app), "all four streams connected")
        # Progress: the path row and both learners, with bars.
        paths = app.query_one("#progress-top", KeyedTable)
        await wait_until(pilot, lambda: paths.row_count == 1, "the path row")
        assert paths.get_row("python-101")[0] == "python-101"
        learners = app.query_one("#progress-bottom", KeyedTable)
        await wait_until(pilot, lambda: learners.row_count == 2, "two learner rows")
        assert {learners.get_row_at(i)[0] for i in range(2)} == {"ada", "bob"}
        # Activity: human lines with who, what, where and score.
        await wait_until(pilot, lambda: "failed" in feed_text(app), "the failed attempt")
        line = next(x for x in app.query_one(ActivityFeed).lines if "failed" in x)
        assert "bob" in line and "python-101/quiz-1" in line and "31%" in line
        # A new event arrives live.
        await send(running_server.url, [make_event(20, learner="cyd", kind="path.enrolled")])
        await wait_until(pilot, lambda: "cyd" in feed_text(app), "cyd's live event")
        # Alerts: the fired one with its message and numbers; the count in the header.
        alerts = app.query_one("#alerts-table", KeyedTable)
        await wait_until(pilot, lambda: alerts.row_count == 1, "the fired alert")
        row = alerts.get_row_at(0)
        # Columns: id, sev, age, learner, message (age before the message: always visible).
        # The rule's numbers are in its message; the detail view (Enter) lists them.
        assert str(row[4]) == "bob's scores dropped"
        await wait_until(
            pilot, lambda: "alerts 1" in app.sub_title, "the alert count in the header"
        )
        # Metrics: samples arrive (test server samples every 0.25 s).
        await wait_until(pilot, lambda: len(app.state.samples) >= 2, "metric samples")
        metrics = app.query_one(MetricsPanel)
        await wait_until(pilot, lambda: metrics.border_subtitle.startswith("last"), "trends")
        # Connection: round-trip time measured through ping/pong.
        await wait_until(
            pilot,
            lambda: all(
                s.rtt_s is not None for s in app.query_one(ConnectionPanel).statuses.values()
            ),
            "round-trip times",
        )
        await pilot.press("q")
    assert app.return_code == 0


async def test_filter_narrows_the_feed(running_server):
    await send(
        running_server.url,
        [make_event(n, learner="ada" if n % 2 else "bob") for n in range(1, 11)],
    )
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(ActivityFeed)
        await wait_until(pilot, lambda: len(feed.lines) == 10, "ten events in the feed")
        # / filters the focused panel: 2 focuses the feed.
        await pilot.press("2", "slash")
        await pilot.press(*"learner:bob")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(feed.lines) == 5, "the feed narrowed to bob")
        assert all(" bob " in line for line in feed.lines)
        assert "filter: learner:bob" in feed.border_title
        # New events obey the filter too.
        await send(
            running_server.url,
            [make_event(50, learner="ada"), make_event(51, learner="bob")],
        )
        await wait_until(pilot, lambda: len(feed.lines) == 6, "bob's new event")
        assert not any(" ada " in line for line in feed.lines)
        # An empty filter shows everything again.
        await pilot.press("2", "slash")
        for _ in range(len("learner:bob")):
            await pilot.press("backspace")
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(feed.lines) == 12, "the whole feed back")


async def test_a_bad_filter_key_is_explained_and_the_prompt_stays(running_server):
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("2", "slash")
        await pilot.press(*"colour:red", "enter")
        await pilot.pause()
        error = app.screen.query_one("#filter-error")
        assert "'colour' is unknown" in str(error.render())
        await pilot.press("escape")
        assert app.query_one(ActivityFeed).filter_text == ""


async def test_ack_needs_the_alerts_panel_and_a_confirmation(running_server):
    fired = await fire_alert(running_server, learner="ada", message="ada is stuck")
    alert_id = fired["alert"]["id"]
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.selected_alert_id == alert_id, "the alert")
        await wait_until(pilot, lambda: all_connected(app), "streams connected")
        # From another panel, a only says where acknowledging is done.
        app.activity_feed.focus()
        await pilot.press("a")
        await pilot.pause()
        assert not isinstance(app.screen, AckScreen)
        assert any("Alerts panel" in n.message for n in app._notifications)
        # On the Alerts panel it asks first; n leaves the alert alone.
        await pilot.press("4", "a")
        await wait_until(pilot, lambda: isinstance(app.screen, AckScreen), "the y/n prompt")
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, AckScreen), "prompt closed")
        # y with a note and an expiry sends both.
        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AckScreen), "the prompt again")
        await pilot.press("tab", *"called her", "tab", *"2h", "enter")
        await wait_until(
            pilot,
            lambda: (app.state.alerts.get(alert_id) or {}).get("acknowledged"),
            "the acknowledgement to come back on the alerts stream",
        )
        # The table repaints on the app's own timer, a moment after the state changed.
        table = app.query_one("#alerts-table", KeyedTable)
        await wait_until(pilot, lambda: "✓" in str(table.get_row_at(0)[4]), "the ✓ in the row")
    stored = await get_alert(running_server.server.store.db.reader, alert_id)
    assert stored["acknowledged"]["note"] == "called her"
    assert stored["acknowledged"]["expires_at"] is not None


async def test_declined_ack_sends_nothing(running_server):
    fired = await fire_alert(running_server, learner="ada", message="ada is stuck")
    alert_id = fired["alert"]["id"]
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.selected_alert_id == alert_id, "the alert")
        await wait_until(pilot, lambda: all_connected(app), "streams connected")
        await pilot.press("4", "a")
        await wait_until(pilot, lambda: isinstance(app.screen, AckScreen), "the y/n prompt")
        await pilot.press("escape")
        await pilot.pause()
    stored = await get_alert(running_server.server.store.db.reader, alert_id)
    assert stored["acknowledged"] is None


async def test_restart_resumes_without_missing_events(running_server):
    await send(running_server.url, [make_event(n) for n in range(1, 6)])
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(ActivityFeed)
        panel = app.query_one(ConnectionPanel)
        await wait_until(pilot, lambda: len(feed.lines) == 5, "the first five events")
        await running_server.stop()
        await wait_until(
            pilot, lambda: panel.statuses["activity"].state == RECONNECTING, "the drop noticed"
        )
        # While offline the panels keep their data.
        assert len(feed.lines) == 5
        await running_server.start()
        # Events sent while the dashboard is still reconnecting must arrive all the same.
        await send(running_server.url, [make_event(n) for n in range(6, 16)])
        await wait_until(pilot, lambda: all_connected(app), "reconnected", timeout=60)
        await wait_until(pilot, lambda: len(feed.lines) == 15, "all fifteen events")
        seqs = [e["seq"] for e in app.state.activity]
        assert seqs == sorted(set(seqs)) and len(seqs) == 15, seqs
        status = panel.statuses["activity"]
        assert status.reconnects >= 1
        assert status.last_connect in ("resumed", "reset")


async def test_pause_buffers_and_counts(running_server):
    await send(running_server.url, [make_event(1)])
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(ActivityFeed)
        await wait_until(pilot, lambda: len(feed.lines) == 1, "the first event")
        await pilot.press("p")
        assert "PAUSED" in app.sub_title
        await send(running_server.url, [make_event(n) for n in range(2, 9)])
        await wait_until(pilot, lambda: "PAUSED (7 new)" in app.sub_title, "the paused count")
        assert len(feed.lines) == 1
        await pilot.press("p")
        await wait_until(pilot, lambda: len(feed.lines) == 8, "the buffered events drawn")
        assert "PAUSED" not in app.sub_title


async def test_learner_scoped_view_shows_only_that_learner(running_server):
    await send(
        running_server.url,
        [
            make_event(1, learner="ada", kind="path.enrolled"),
            make_event(2, learner="ada"),
            make_event(3, learner="bob", kind="path.enrolled"),
            make_event(4, learner="bob"),
        ],
    )
    app = JacmonDashboard(running_server.url, learner="ada")
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(ActivityFeed)
        await wait_until(pilot, lambda: len(feed.lines) == 2, "ada's two events")
        await send(running_server.url, [make_event(5, learner="bob"), make_event(6, learner="ada")])
        await wait_until(pilot, lambda: len(feed.lines) == 3, "ada's new event")
        assert all(" ada " in line for line in feed.lines)
        # Progress follows the events within the projector's lag.
        await wait_until(pilot, lambda: set(app.state.progress.learners) == {"ada"}, "ada's row")
        top = app.query_one("#progress-top", KeyedTable)
        await wait_until(pilot, lambda: top.row_count == 1, "ada's path")
        assert "ada" in app.query_one("#progress").border_title
        assert "learner ada" in app.sub_title


async def test_unreachable_server_is_explained_and_retried(unused_tcp_port):
    url = f"ws://127.0.0.1:{unused_tcp_port}"
    app = JacmonDashboard(url)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(ConnectionPanel)
        await wait_until(
            pilot,
            lambda: all(s.state == RECONNECTING for s in panel.statuses.values()),
            "every stream retrying",
        )
        reason = panel.statuses["dashboard"].reason
        assert f"cannot reach {url}" in reason and "refused" in reason
        await wait_until(pilot, lambda: "cannot reach" in screen_text(app), "the reason on screen")
        # Textual keeps the notifications it raised in App._notifications (no public reader).
        messages = [n.message for n in app._notifications]
        assert any(m.startswith(f"cannot reach {url}") for m in messages), messages


def learner_streams(running_server) -> list[str | None]:
    """The learner scope of every dashboard-stream client the server has now."""
    return [sub.learner for sub in running_server.server.hub.subscribers[Stream.DASHBOARD]]


async def test_drilling_into_a_learner_opens_their_own_stream(running_server):
    await send(
        running_server.url,
        [
            make_event(1, learner="ada", kind="path.enrolled"),
            make_event(2, learner="ada", module="m1", progress=40),
            make_event(3, learner="ada", module="m2", progress=10),
            make_event(4, learner="bob", kind="path.enrolled"),
            make_event(5, learner="bob", module="m1", progress=90),
        ],
    )
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        learners = app.query_one("#progress-bottom", KeyedTable)
        await wait_until(pilot, lambda: learners.row_count == 2, "two learner rows")
        # The overview holds module summaries only: no learner's module rows.
        assert not any("status" in row for row in app.state.progress.modules.values())
        learners.focus()
        ada = next(i for i in range(2) if learners.get_row_at(i)[0] == "ada")
        learners.move_cursor(row=ada)
        await pilot.press("enter")
        await wait_until(
            pilot, lambda: "ada" in learner_streams(running_server), "ada's own stream"
        )
        modules = app.query_one("#progress-bottom", KeyedTable)
        await wait_until(pilot, lambda: modules.row_count == 2, "ada's two module rows")
        keys = {str(modules.get_row_at(i)[0]) for i in range(2)}
        assert keys == {"python-101/m1", "python-101/m2"}
        assert "40%" in str(modules.get_row("python-101/m1")[1])
        assert "Progress > ada" in app.query_one("#progress").border_title
        # A new module of ada's arrives live on her stream; bob's never shows.
        await send(
            running_server.url,
            [
                make_event(6, learner="ada", module="m3", progress=70),
                make_event(7, learner="bob", module="m4", progress=20),
            ],
        )
        await wait_until(pilot, lambda: modules.row_count == 3, "ada's new module live")
        assert "70%" in str(modules.get_row("python-101/m3")[1])
        assert "python-101/m4" not in {str(modules.get_row_at(i)[0]) for i in range(3)}
        # Leaving the learner closes her stream; the overview comes back.
        await pilot.press("escape")
        await wait_until(
            pilot,
            lambda: learner_streams(running_server) == [None],
            "ada's stream closed, the main one left",
        )
        assert app.detail_client is None and app.state.detail is None
        await wait_until(
            pilot,
            lambda: (
                {str(learners.get_row_at(i)[0]) for i in range(learners.row_count)}
                == {"ada", "bob"}
            ),
            "the learner rows back",
        )


async def test_connection_ages_use_the_wall_clock_when_data_runs_on_another(running_server):
    # jacmon demo's data runs on a simulated clock hours ahead; the connection's own
    # ages (last message, retry) are on the client's clock and stay a few seconds.
    app = JacmonDashboard(running_server.url, now=lambda: time.time() + 3 * 3600)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: all_connected(app), "all four streams connected")
        await wait_until(
            pilot,
            lambda: re.search(r"activity\s+connected\s+\d+s\b", screen_text(app)),
            "the activity stream's age in seconds",
        )
        assert not re.search(r"connected\s+\d+h\b", screen_text(app))
