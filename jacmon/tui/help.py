"""The help screen (``?`` or F1): every key and what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

#: (key, what it does), as the help screen lists them.
KEYS: tuple[tuple[str, str], ...] = (
    ("? / F1", "this help"),
    ("q / Ctrl+C", "quit"),
    (
        "Tab / Shift+Tab",
        "move between panels; when one panel is shown (z, or under 110 columns), show the next",
    ),
    (
        "1 2 3 4 5 6",
        "jump to Progress paths, Activity, Trends, Alerts, Progress learners, Connection",
    ),
    ("z", "maximize the focused panel (z again restores; under 110 columns, one panel shows)"),
    ("↑ ↓ PgUp PgDn", "move the selection / scroll the focused panel"),
    ("Enter", "progress: drill into a path or learner · alerts: open the alert's detail"),
    ("Esc", "back from a drill-down, a detail view or a prompt"),
    ("/", "filter the focused panel (feed: ada path:python type:assessment; others: words)"),
    ("s", "sort by the next column (progress learners, alerts); the column is marked ▲"),
    ("i", "invert the sort (the mark turns ▼)"),
    ("a", "alerts panel or detail view: acknowledge the selected alert (asks y/n, note, expiry)"),
    ("u", "alerts panel or detail view: withdraw the selected alert's acknowledgement (asks y/n)"),
    ("r", "refresh: fresh snapshots of every stream (reconnect now if offline or rejected)"),
    ("p", "pause / resume drawing; events keep arriving and are counted in the header"),
    ("Ctrl+P", "command palette: every action by name"),
)

#: (column or word, meaning): every abbreviation the panels show.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("enr", "paths: learners enrolled"),
    ("7d", "paths: enrolled learners with activity in the last 7 days, not finished"),
    ("done", "paths: learners who finished the path · modules: learners who finished it"),
    ("mean", "mean progress of the enrolled learners, in percent"),
    ("lrn", "path view: learners who started the module"),
    ("lvl", "learner level (from xp)"),
    ("xp", "experience points earned"),
    ("strk", "current streak: days in a row with activity"),
    ("mods", "learner view: modules completed on the path"),
    ("last", "time since the last activity (s, m, h, d)"),
    ("sev / age", "alerts: severity, and how long the alert has been firing"),
    ("received", "trends: events/s arriving at the server now (wall clock)"),
    ("event time", "trends: events per minute by the events' own time (backfills read 0)"),
    ("↗path", "trends: module and path completions on that path in the last 7 days"),
    ("last msg", "connection: time since the stream's last frame"),
    ("↻", "connection: reconnects since the dashboard started"),
    ("fresh", "connection: first connect, full snapshot"),
    ("resumed", "connection: reconnected and the missed frames were replayed"),
    ("reset", "connection: reconnected too late to replay; a new snapshot replaced the data"),
    ("STALE", "a panel whose stream is offline: it shows the last data it had"),
)


def _grid(rows: tuple[tuple[str, str], ...]) -> Table:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for key, action in rows:
        table.add_row(key, action)
    return table


class HelpScreen(ModalScreen[None]):
    """Lists the keys; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", tooltip="Close the help"),
    ]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static("jacmon dashboard — keys", id="help-title")
            yield Static(_grid(KEYS))
            yield Static("Columns and words", id="help-columns-title")
            yield Static(_grid(COLUMNS))
            yield Static("Esc to close · ↑↓ scroll", id="help-foot")
