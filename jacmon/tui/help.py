"""The help screen (``?`` or F1): every key and what it does."""

from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

#: (key, what it does), as the help screen lists them.
KEYS: tuple[tuple[str, str], ...] = (
    ("? / F1", "this help"),
    ("r", "refresh: fresh snapshots of every stream (reconnect now if offline)"),
    ("p", "pause / resume drawing; events keep arriving and are counted"),
    ("/", "filter the feed: words match learner, path or type; or learner:ID path:ID type:T"),
    ("a", "acknowledge the selected alert"),
    ("s", "progress: change the learner order"),
    ("Enter", "progress: drill into the selected path or learner"),
    ("Esc", "progress: back from a drill-down"),
    ("Tab / Shift+Tab", "move between panels"),
    ("Ctrl+P", "command palette: every action by name"),
    ("q", "quit"),
)


class HelpScreen(ModalScreen[None]):
    """Lists the keys; any of Esc, q, ? or F1 closes it."""

    BINDINGS = [
        Binding("escape,q,question_mark,f1", "dismiss", "Close", tooltip="Close the help"),
    ]

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, action in KEYS:
            table.add_row(key, action)
        with Vertical(id="help-box"):
            yield Static("jacmon dashboard — keys", id="help-title")
            yield Static(table)
            yield Static("Esc to close", id="help-foot")
