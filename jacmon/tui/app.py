"""The Textual dashboard: five panels fed by four resilient streams, drawn at a human rate."""

from __future__ import annotations

import getpass
import time
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer
from textual.worker import Worker

from jacmon.client.streams import CONNECTED, RECONNECTING, REJECTED, ConnectionStatus, StreamClient
from jacmon.protocol import LIVE_STREAMS, ServerType
from jacmon.tui.ack import AckAnswer, AckScreen, UnackScreen
from jacmon.tui.alert_detail import AlertDetailScreen
from jacmon.tui.filter import FilterScreen
from jacmon.tui.format import age, parse_filter
from jacmon.tui.help import HelpScreen
from jacmon.tui.messages import (
    AlertAckRequested,
    AlertDetailRequested,
    AlertUnackRequested,
    ConnectionChanged,
    ProgressViewChanged,
)
from jacmon.tui.state import DashboardState
from jacmon.tui.widgets import (
    ActivityFeed,
    AlertsPanel,
    ConnectionPanel,
    MetricsPanel,
    ProgressPanel,
    StatusHeader,
)

#: Screen updates per second at most, whatever the event rate.
FLUSH_HZ = 15.0

#: The progress tables redraw at most this often, in seconds.
PROGRESS_MIN_INTERVAL_S = 0.2

#: Below this many columns the dashboard shows one panel at a time (Tab and 1-6 switch),
#: as btop shows fewer boxes: the progress tables need 56 columns and Trends and
#: Connection 50 beside them, or ids and numbers are cut.
NARROW_WIDTH = 110

#: While paused, the header's count of waiting events is redrawn at most this often, in seconds.
PAUSED_COUNT_INTERVAL_S = 0.25


class SnapshotsShown(Message):
    """Every panel shows its stream's first snapshot (the benchmark's "first paint")."""


class JacmonDashboard(App[None]):
    """``jacmon dashboard``: progress, activity, trends, alerts and connection status.

    ``server_url`` is the server's base URL (``ws://127.0.0.1:8765``); ``token``
    None sends none; ``learner`` scopes every stream to that learner (None: all).
    ``connect=False`` starts no stream (frames come from :meth:`apply_frame`:
    frozen data for tests); ``now`` is the clock the data's times are on (the
    server's: ``jacmon demo`` runs a faster, simulated one), ``wall_clock`` the
    one connection ages and retry times are on (the client's own).
    ``sim_speed`` says the data's clock is simulated, that many times faster
    than real time (the header then shows it and the simulated date); None:
    the server's clock is real time, and the header shows the wall clock.
    """

    # Absolute, so subclasses defined elsewhere (demo, bench) find it too.
    CSS_PATH = Path(__file__).parent / "jacmon.tcss"
    TITLE = "jacmon"
    ENABLE_COMMAND_PALETTE = True

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark,f1", "help", "Help", id="help", tooltip="Show every key"),
        Binding("r", "refresh", "Refresh", id="refresh", tooltip="Fresh snapshots of all streams"),
        # One key, two footer entries: the footer says what p does now (check_action).
        Binding("p", "pause", "Pause", id="pause", tooltip="Pause drawing"),
        Binding("p", "resume", "Resume", id="resume", tooltip="Resume drawing"),
        Binding("slash", "filter", "Filter", id="filter", tooltip="Filter the focused panel"),
        Binding("z", "maximize", "Max", id="maximize", tooltip="Maximize the focused panel"),
        # Narrow terminals show one panel at a time: the footer says how to switch.
        # Priority, so the footer shows it over the screen's hidden Tab; check_action lets
        # Tab fall through to plain focus moves when every panel is on screen.
        Binding(
            "tab",
            "step_panel(1)",
            "Next panel",
            id="next-panel",
            priority=True,
            tooltip="Show the next panel",
        ),
        Binding("shift+tab", "step_panel(-1)", "Previous panel", show=False, priority=True),
        # Acknowledging lives on the Alerts panel and the detail view; elsewhere, a hint.
        Binding("a", "ack_hint", "Ack", show=False, tooltip="Where acknowledging is done"),
        Binding("1", "jump('progress-top')", "Progress", show=False),
        Binding("2", "jump('activity')", "Activity", show=False),
        Binding("3", "jump('metrics')", "Trends", show=False),
        Binding("4", "jump('alerts-table')", "Alerts", show=False),
        Binding("5", "jump('progress-bottom')", "Learners", show=False),
        Binding("6", "jump('connection')", "Connection", show=False),
        Binding("q", "quit", "Quit", id="quit", tooltip="Leave the dashboard"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        server_url: str,
        token: str | None = None,
        learner: str | None = None,
        *,
        connect: bool = True,
        now: Callable[[], float] = time.time,
        wall_clock: Callable[[], float] = time.time,
        flush_hz: float = FLUSH_HZ,
        sim_speed: float | None = None,
    ) -> None:
        super().__init__()
        self.server_url = server_url
        self.token = token
        self.learner = learner
        self.connect = connect
        self.now = now
        self.wall_clock = wall_clock
        self.flush_hz = flush_hz
        self.sim_speed = sim_speed
        #: One panel at a time (fewer than NARROW_WIDTH columns).
        self.narrow = False
        self._sized = False
        self.state = DashboardState()
        self.paused = False
        self._paused_at_events = 0
        self._snapshots: set[str] = set()
        self._first_paint_sent = False
        self._told_down = False
        #: The panel shown alone (``z``); None: all panels.
        self.solo_panel: Widget | None = None
        #: When every stream went offline (wall clock, epoch s); None while any is connected.
        self._offline_since: float | None = None
        self._progress_drawn_at = 0.0
        self._header_drawn_at = 0.0
        self.clients: dict[str, StreamClient] = {}
        #: The learner-scoped dashboard stream of the drilled-into learner (None: none open).
        self.detail_client: StreamClient | None = None
        self._detail_worker: Worker[None] | None = None
        if connect:
            # Built here so a bad URL fails before the screen opens.
            for stream in LIVE_STREAMS:
                self.clients[str(stream)] = StreamClient(
                    server_url,
                    str(stream),
                    token=token,
                    learner=learner,
                    on_frame=self.apply_frame,
                    on_status=self._status_changed,
                )

    # -- layout -----------------------------------------------------------------

    def compose(self) -> ComposeResult:
        # Kept as attributes: the panels live on the main screen, and a query from a
        # handler would search whatever screen is on top (help, filter).
        self.progress_panel = ProgressPanel(
            scoped_learner=self.learner, now=self.now, id="progress"
        )
        self.activity_feed = ActivityFeed(now=self.now, id="activity")
        self.metrics_panel = MetricsPanel(id="metrics")
        self.alerts_panel = AlertsPanel(now=self.now, id="alerts")
        self.connection_panel = ConnectionPanel(now=self.wall_clock, id="connection")
        self.status_header = StatusHeader("jacmon", id="header")
        yield self.status_header
        with Horizontal(id="top"):
            with Vertical(id="left"):
                yield self.progress_panel
                yield self.activity_feed
            with Vertical(id="right"):
                yield self.metrics_panel
                yield self.connection_panel
        # Full width: the alerts' messages are what an instructor reads and acts on.
        yield self.alerts_panel
        # Ctrl+P is in the help: the footer's room goes to the keys.
        yield Footer(show_command_palette=False, compact=True)

    def on_mount(self) -> None:
        scope = f" · learner {self.learner}" if self.learner else ""
        self.title = "jacmon"
        self.sub_title = f"{self.server_url}{scope}"
        self.set_interval(1.0 / self.flush_hz, self.flush)
        # Ages and "retry in N s" tick even when no data arrives.
        self.set_interval(1.0, self._tick)
        self.connection_panel.redraw()
        self._update_header()
        for name in self.clients:
            self._stream_worker(name)

    @work(group="streams", exit_on_error=False)
    async def _stream_worker(self, stream: str) -> None:
        await self.clients[stream].run()

    # -- data in ----------------------------------------------------------------

    def apply_frame(self, envelope: dict[str, Any]) -> None:
        """Take one server frame: data goes to the state (drawn on the next flush)."""
        kind = envelope["type"]
        if kind == ServerType.ERROR:
            self._server_refused(envelope["stream"], envelope.get("data") or {})
            return
        if kind == ServerType.SNAPSHOT:
            self._snapshots.add(envelope["stream"])
        change = (envelope.get("data") or {}).get("change") if kind == ServerType.ALERT else None
        if change in ("acknowledged", "unacknowledged"):
            alert = envelope["data"]["alert"]
            self.notify(f"alert {alert['id']} {change}", title="alerts")
        self.state.apply(envelope)

    def _server_refused(self, stream: str, data: dict[str, Any]) -> None:
        """Say what the server refused, in its words; a refused ack hides the ack hint."""
        code, message = data.get("code"), data.get("message", data)
        if code == "forbidden":
            # This token may not acknowledge: stop offering it (the role is not known up front).
            self.alerts_panel.forbid_ack()
            self.notify(f"{stream}: {message}", title="not allowed", severity="error")
        elif code == "ack_failed":
            self.notify(f"{stream}: {message}", title="acknowledge failed", severity="error")
        elif code == "unack_failed":
            self.notify(f"{stream}: {message}", title="un-acknowledge failed", severity="error")
        else:
            self.notify(f"{stream}: {message}", title="server error", severity="error")

    def apply_detail_frame(self, learner: str, envelope: dict[str, Any]) -> None:
        """Take one frame of ``learner``'s own dashboard stream (the drill-down's module rows)."""
        if envelope["type"] == ServerType.ERROR:
            data = envelope.get("data") or {}
            self.notify(
                f"learner {learner}: {data.get('message', data)}",
                title="server error",
                severity="error",
            )
            return
        self.state.apply_detail(learner, envelope)

    def apply_frames(self, envelopes: Iterable[dict[str, Any]]) -> None:
        for envelope in envelopes:
            self.apply_frame(envelope)

    def _status_changed(self, status: ConnectionStatus) -> None:
        previous = self.connection_panel.statuses.get(status.stream)
        if (
            previous is not None
            and replace(previous, last_message_at=status.last_message_at, seq=status.seq) == status
        ):
            # Only the age of the last message moved (every frame does that): the 1 s tick
            # redraws ages, so no message and no redraw per frame.
            self.connection_panel.update_status(status)
            return
        self.post_message(ConnectionChanged(status))

    def on_connection_changed(self, message: ConnectionChanged) -> None:
        status = message.status
        self.connection_panel.update_status(status)
        self.state.dirty.add("connection")
        self._mark_stale()
        if status.state == REJECTED and not self._told_down:
            # Retrying cannot fix a refused token: say what to do instead.
            self._told_down = True
            self.notify(
                f"{status.reason}. Restart with a valid --token; r retries.",
                title="token rejected",
                severity="error",
                timeout=30,
            )
        elif status.state == RECONNECTING and status.last_connect is None and not self._told_down:
            # Never connected yet: say so once, plainly; the status panel keeps the detail.
            self._told_down = True
            self.notify(
                f"{status.reason}. Retrying with backoff; the Connection panel shows progress.",
                title="server unreachable",
                severity="error",
                timeout=15,
            )
        elif status.state == CONNECTED:
            self._told_down = False

    def _mark_stale(self) -> None:
        """Panels whose stream is not connected say STALE; the header says since when."""
        statuses = self.connection_panel.statuses
        offline = {name for name, s in statuses.items() if s.state != CONNECTED}
        if self.connect:
            self.metrics_panel.stale = "metrics" in offline
            self.alerts_panel.set_stale("alerts" in offline)
            self.activity_feed.set_stale("activity" in offline)
            self.progress_panel.set_stale("dashboard" in offline)
        if offline and self.connect and len(offline) == len(statuses):
            if self._offline_since is None:
                self._offline_since = self.wall_clock()
        else:
            self._offline_since = None
        self._update_header()

    # -- the drill-down's own stream ----------------------------------------------

    def on_progress_view_changed(self, message: ProgressViewChanged) -> None:
        if message.kind == "learner" and message.key is not None:
            self.open_learner_stream(message.key)
        else:
            self.close_learner_stream()

    def open_learner_stream(self, learner: str) -> None:
        """Follow ``learner``'s own rows on a ``?learner=ID`` dashboard stream (same token).

        Nothing to open for a learner-scoped dashboard (its stream already is
        that learner's) or without a server (frozen data).
        """
        detail = self.state.detail
        if self.learner is not None or not self.connect:
            return
        if detail is not None and detail.learner == learner and self.detail_client is not None:
            return
        self.close_learner_stream()
        self.state.open_detail(learner)

        # A cancelled client may still report while it winds down: only the open one counts.
        def on_status(status: ConnectionStatus) -> None:
            current = self.state.detail
            stale = self.detail_client is not client or current is None
            if not stale and current.connection != status.state:
                current.connection = status.state
                self.state.dirty.add("progress")

        def on_frame(envelope: dict[str, Any]) -> None:
            if self.detail_client is client:
                self.apply_detail_frame(learner, envelope)

        client = StreamClient(
            self.server_url,
            "dashboard",
            token=self.token,
            learner=learner,
            on_frame=on_frame,
            on_status=on_status,
        )
        self.detail_client = client
        self._detail_worker = self.run_worker(
            client.run(),
            name=f"learner-stream-{learner}",
            group="learner-stream",
            exclusive=True,
            exit_on_error=False,
        )

    def close_learner_stream(self) -> None:
        """Close the drill-down's stream, if one is open, and forget its rows."""
        if self._detail_worker is not None:
            self._detail_worker.cancel()
        self._detail_worker = None
        self.detail_client = None
        if self.state.detail is not None:
            self.state.close_detail()

    # -- drawing ----------------------------------------------------------------

    def flush(self) -> None:
        """Draw what changed since the last flush (called ~15 times a second)."""
        state = self.state
        if "connection" in state.dirty:
            state.dirty.discard("connection")
            self.connection_panel.redraw()
        if self.paused:
            # The "N new" count moves with every event: 4 header redraws a second are plenty.
            if time.monotonic() - self._header_drawn_at >= PAUSED_COUNT_INTERVAL_S:
                self._update_header()
            return
        dirty, state.dirty = state.dirty, set()
        if "progress" in dirty:
            # Tables cost the most to redraw; latest-value rows lose nothing at 5 per second.
            if time.monotonic() - self._progress_drawn_at >= PROGRESS_MIN_INTERVAL_S:
                self._progress_drawn_at = time.monotonic()
                self.progress_panel.show(state.progress, state.detail)
            else:
                state.dirty.add("progress")
        if "activity" in dirty:
            feed = self.activity_feed
            events = state.take_new_events()
            # Past midnight, earlier lines must show their date: draw every line anew.
            if events is None or feed.day_changed():
                feed.replace_events(state.activity)
            else:
                feed.add_events(events)
        if "metrics" in dirty:
            self.metrics_panel.show(state.samples, state.metrics_interval_s)
        if "alerts" in dirty:
            self.alerts_panel.show(state.open_alerts())
            self._refresh_alert_detail()
            # Outside a pause the header changes only with the alert count and freshness.
            self._update_header()
        if not self._first_paint_sent and self._snapshots >= {str(s) for s in LIVE_STREAMS}:
            self._first_paint_sent = True
            self.call_after_refresh(self.post_message, SnapshotsShown())

    def _tick(self) -> None:
        # "last frame 3s ago" and "data 5s old" age even when nothing arrives.
        self.connection_panel.redraw()
        self._update_header()
        if self.activity_feed.day_changed():
            # Midnight with no new event: the next flush dates yesterday's lines.
            self.state.dirty.add("activity")

    def _update_header(self) -> None:
        """The header's parts by importance: offline, clock, pause, alerts, freshness, URL."""
        self._header_drawn_at = time.monotonic()
        parts: list[tuple[int, str, str]] = []
        if self._offline_since is not None:
            since = time.strftime("%H:%M:%S", time.localtime(self._offline_since))
            parts.append((0, f"OFFLINE since {since}", "bold white on red"))
        parts.append(self._clock_part())
        if self.paused:
            waiting = self.state.events_received - self._paused_at_events
            parts.append((1, f"PAUSED ({waiting} new) · p resumes", "bold black on yellow"))
        alerts = self.state.alerts
        critical = sum(1 for a in alerts.values() if a.get("severity") == "critical")
        count = f"alerts {len(alerts)}" + (f" ({critical} critical)" if critical else "")
        parts.append((2, count, "bold red" if critical else ""))
        newest = self.state.newest_data_at
        if self._offline_since is None and newest is not None:
            parts.append((4, f"newest data {age(self.now() - newest)} old", "grey70"))
        if self.learner:
            parts.append((3, f"learner {self.learner}", "bold"))
        parts.append((5, self.server_url, "grey50"))
        self.status_header.show(parts)
        self.sub_title = " · ".join(text for _, text, _ in parts)

    def _clock_part(self) -> tuple[int, str, str]:
        """The data's clock: ``SIMULATED 1800x · 2026-12-07 14:03`` in the demo, else wall time."""
        if self.sim_speed is not None:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.now()))
            return (0, f"SIMULATED {self.sim_speed:g}x · {when}", "bold magenta")
        return (4, time.strftime("%H:%M:%S", time.localtime(self.wall_clock())), "")

    # -- actions ----------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    async def action_refresh(self) -> None:
        if not self.clients:
            self.notify("not connected to a server", severity="warning")
            return
        sent = [name for name, client in self.clients.items() if await client.refresh()]
        if len(sent) == len(self.clients):
            self.notify("asked every stream for a fresh snapshot", title="refresh")
        else:
            self.notify("reconnecting the streams that are offline now", title="refresh")

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer pause while drawing and resume while paused, never both."""
        if action == "pause":
            return not self.paused
        if action == "resume":
            return self.paused
        if action == "step_panel":
            # Only on the dashboard itself, not in the help or a prompt (their Tab is theirs).
            return (
                self.narrow or self.solo_panel is not None
            ) and self.screen is self.screen_stack[0]
        if action == "maximize":
            # Narrow terminals already show one panel at a time.
            return not self.narrow
        return True

    def action_resume(self) -> None:
        if self.paused:
            self.action_pause()

    def action_pause(self) -> None:
        self.paused = not self.paused
        self.refresh_bindings()
        if self.paused:
            self._paused_at_events = self.state.events_received
        # Only the header changes now, so the key shows at once; what was buffered is drawn
        # by the next flush (within 1/flush_hz s), not in this frame.
        self._update_header()

    def _focused_panel(self) -> str:
        """``alerts``, ``progress`` or ``activity``: which panel ``/`` filters (default: feed)."""
        focused = self.focused
        if focused is not None:
            if focused is self.alerts_panel.table:
                return "alerts"
            if focused in (self.progress_panel.top, self.progress_panel.bottom):
                return "progress"
        return "activity"

    def action_filter(self) -> None:
        panel = self._focused_panel()
        current = {
            "alerts": self.alerts_panel.filter_text,
            "progress": self.progress_panel.filter_text,
            "activity": self.activity_feed.filter_text,
        }[panel]

        def done(text: str | None) -> None:
            if text is not None:
                self.set_filter(text, panel)

        self.push_screen(FilterScreen(current, panel), done)

    def set_filter(self, text: str, panel: str = "activity") -> None:
        """Narrow ``panel`` (activity, alerts or progress) to rows matching ``text``.

        The feed takes format.parse_filter's syntax; alerts and learners match
        every word against their ids, rule and message.
        """
        if panel == "alerts":
            self.alerts_panel.set_filter(text)
            return
        if panel == "progress":
            self.progress_panel.set_filter(text)
            return
        feed = self.activity_feed
        feed.set_filter(text, parse_filter(text))
        feed.replace_events(self.state.activity)

    def action_jump(self, widget_id: str) -> None:
        """Focus a panel by number (1 progress, 2 activity, 3 trends, 4 alerts, 5 learners,
        6 connection); a narrow terminal shows that panel alone."""
        targets = {
            "progress-top": self.progress_panel.top,
            "progress-bottom": self.progress_panel.bottom,
            "activity": self.activity_feed,
            "metrics": self.metrics_panel,
            "alerts-table": self.alerts_panel.table,
            "connection": self.connection_panel,
        }
        self._focus_panel_of(targets[widget_id])

    def _focus_panel_of(self, widget: Widget) -> None:
        """Focus ``widget``; alone on screen when narrow (or when another panel is maximized)."""
        panel = self._panel_of(widget)
        if panel is not None and (self.narrow or self.solo_panel not in (None, panel)):
            self._show_panels(panel)
        self.screen.set_focus(widget)

    def _panel_of(self, widget: Widget | None) -> Widget | None:
        if widget is None:
            return None
        return next((p for p in self._panels() if p in widget.ancestors_with_self), None)

    def action_step_panel(self, step: int) -> None:
        """Tab while one panel is shown (narrow, or z): show and focus the next one.

        Hidden panels take no focus, so plain Tab would stay inside the shown one.
        """
        # Screen order: the progress panel's two tables, then the feed, trends, connection,
        # alerts (Tab visits every panel).
        stops = [
            self.progress_panel.top,
            self.progress_panel.bottom,
            self.activity_feed,
            self.metrics_panel,
            self.connection_panel,
            self.alerts_panel.table,
        ]
        focused = self.focused
        index = stops.index(focused) if focused in stops else -1
        self._focus_panel_of(stops[(index + step) % len(stops)])

    def _panels(self) -> list[Widget]:
        return [
            self.progress_panel,
            self.activity_feed,
            self.metrics_panel,
            self.alerts_panel,
            self.connection_panel,
        ]

    def on_resize(self, event: events.Resize) -> None:
        first, self._sized = not self._sized, True
        self._set_narrow(event.size.width < NARROW_WIDTH, first=first)

    def _set_narrow(self, narrow: bool, *, first: bool = False) -> None:
        """Narrow: one panel at a time (Alerts at start, then the focused one). Wide: all."""
        if narrow == self.narrow:
            return
        self.narrow = narrow
        self.refresh_bindings()
        # The stylesheet moves toasts over the shown panel's last rows (jacmon.tcss).
        self.screen_stack[0].set_class(narrow, "-narrow")
        if narrow:
            # What an instructor acts on comes first; later, the panel being looked at stays.
            panel = (None if first else self._panel_of(self.focused)) or self.alerts_panel
            self._show_panels(panel)
            if self.focused is None or self._panel_of(self.focused) is not panel:
                self.screen.set_focus(self.alerts_panel.table)
        else:
            self._show_panels(None)

    def action_maximize(self) -> None:
        """Show only the focused panel, full screen (z again restores), as btop shows one box.

        Small terminals (80x24) show every panel cramped; this shows one whole.
        """
        if self.narrow:
            return
        if self.solo_panel is not None:
            self._show_panels(None)
            return
        panel = self._panel_of(self.focused)
        if panel is None:
            self.notify("focus a panel first (Tab or 1-6), then z", title="maximize")
            return
        self._show_panels(panel)

    def _show_panels(self, solo: Widget | None) -> None:
        """Show ``solo`` alone, filling the screen (None: every panel, as laid out)."""
        self.solo_panel = solo
        for panel in self._panels():
            panel.display = solo is None or panel is solo
            panel.set_class(panel is solo, "solo")
        top = self.query_one("#top")
        for column in (self.query_one("#left"), self.query_one("#right")):
            column.display = solo is None or solo in column.children
            column.set_class(solo is not None, "solo")
        top.display = solo is None or solo in top.query("*")
        top.set_class(solo is not None, "solo")
        # The footer's Tab entry: the page to come.
        self.refresh_bindings()

    def action_ack_hint(self) -> None:
        self.notify(
            "select an alert in the Alerts panel (key 4), then a; or Enter for its detail",
            title="acknowledge",
        )

    def on_alert_detail_requested(self, message: AlertDetailRequested) -> None:
        alert = self.state.alerts.get(message.alert_id)
        if alert is not None:
            self.push_screen(AlertDetailScreen(alert, *self._detail_context(alert)))

    def _detail_context(self, alert: dict[str, Any]) -> tuple[list, list, float]:
        """The learner's other open alerts, the feed's events and the data clock's now."""
        learner = alert.get("learner")
        others = [
            a
            for a in self.state.open_alerts()
            if learner and a.get("learner") == learner and a["id"] != alert["id"]
        ]
        return others, list(self.state.activity), self.now()

    def _refresh_alert_detail(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, AlertDetailScreen):
                alert = self.state.alerts.get(int(screen.alert["id"]))
                if alert is not None:
                    screen.update_alert(alert, *self._detail_context(alert))

    def on_alert_ack_requested(self, message: AlertAckRequested) -> None:
        alert = self.state.alerts.get(message.alert_id)
        if alert is None:
            self.notify(f"alert {message.alert_id} is no longer open", severity="warning")
            return

        async def answered(answer: AckAnswer | None) -> None:
            if answer is not None:
                await self.send_ack(message.alert_id, answer)

        self.push_screen(AckScreen(alert), answered)

    def on_alert_unack_requested(self, message: AlertUnackRequested) -> None:
        alert = self.state.alerts.get(message.alert_id)
        if alert is None:
            self.notify(f"alert {message.alert_id} is no longer open", severity="warning")
            return
        if not alert.get("acknowledged"):
            self.notify(f"alert {message.alert_id} is not acknowledged", severity="warning")
            return

        async def answered(note: str | None) -> None:
            if note is not None:
                await self.send_unack(message.alert_id, note)

        self.push_screen(UnackScreen(alert), answered)

    async def send_unack(self, alert_id: int, note: str) -> None:
        """Send the ``unack`` message, with the note (or where it came from)."""
        message = {
            "type": "unack",
            "alert_id": alert_id,
            "note": note or f"withdrawn from the dashboard by {_user()}",
        }
        client = self.clients.get("alerts")
        if client is None or not await client.send(message):
            self.notify(
                f"cannot withdraw the ack of alert {alert_id}: the alerts stream is not connected",
                severity="error",
            )
            return
        self.notify(f"withdrawing the ack of alert {alert_id}…", title="alerts")

    async def send_ack(self, alert_id: int, answer: AckAnswer) -> None:
        """Send the ``ack`` message: the note (or where it came from) and the expiry time."""
        client = self.clients.get("alerts")
        note = answer.note or f"acknowledged from the dashboard by {_user()}"
        message: dict[str, Any] = {"type": "ack", "alert_id": alert_id, "note": note}
        if answer.expires_in_s is not None:
            # On the server's clock, as the alert's own times are.
            message["expires_at"] = self.now() + answer.expires_in_s
        if client is None or not await client.send(message):
            self.notify(
                f"cannot acknowledge alert {alert_id}: the alerts stream is not connected",
                severity="error",
            )
            return
        self.notify(f"acknowledging alert {alert_id}…", title="alerts")

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Help", "Show every key", self.action_help)
        yield SystemCommand("Refresh", "Fresh snapshots of all streams", self.action_refresh)
        yield SystemCommand("Pause / resume", "Pause or resume drawing", self.action_pause)
        yield SystemCommand("Filter feed", "Filter by learner, path or type", self.action_filter)
        yield SystemCommand(
            "Acknowledge alert", "Ack the selected alert", self.alerts_panel.action_ack
        )
        yield SystemCommand("Clear filter", "Show every event again", lambda: self.set_filter(""))


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"  # no passwd entry (containers): the note still says where from
