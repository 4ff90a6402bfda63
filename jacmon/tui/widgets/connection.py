"""The connection panel: per stream, state, age of the last message, RTT, reconnects."""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from jacmon.client.streams import CONNECTED, CONNECTING, RECONNECTING, REJECTED, ConnectionStatus
from jacmon.protocol import LIVE_STREAMS
from jacmon.tui.format import age

STATE_STYLES = {
    CONNECTED: "green",
    CONNECTING: "yellow",
    RECONNECTING: "red",
    REJECTED: "bold red",
    "offline": "grey50",
}


def state_text(status: ConnectionStatus, now: float) -> Text:
    """``connected``, ``connecting``, ``retry in 3s`` or ``offline``, coloured."""
    style = STATE_STYLES.get(status.state, "")
    if status.state == RECONNECTING and status.retry_at is not None:
        return Text(f"retry {max(0.0, status.retry_at - now):.0f}s", style)
    return Text(status.state, style)


class ConnectionPanel(Static, can_focus=True):
    """One row per stream; the last failure's reason underneath, so "why" is always visible."""

    def __init__(self, *, now: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Connection"
        self.now = now
        self.statuses: dict[str, ConnectionStatus] = {
            str(s): ConnectionStatus(stream=str(s)) for s in LIVE_STREAMS
        }
        #: What the panel shows now (rows, reasons): a redraw that would show the same is skipped.
        self._shown: tuple[tuple[tuple[str, ...], ...], tuple[str, ...]] | None = None

    def update_status(self, status: ConnectionStatus) -> None:
        self.statuses[status.stream] = status

    def redraw(self) -> None:
        """Show the statuses as of now; skipped when nothing visible changed (ages tick per s)."""
        now = self.now()
        rows: list[tuple[str, ...]] = []
        reasons: list[str] = []
        for name, status in self.statuses.items():
            since = None if status.last_message_at is None else now - status.last_message_at
            rtt = "-" if status.rtt_s is None else f"{status.rtt_s * 1000:.0f}ms"
            rows.append(
                (
                    name,
                    status.state,
                    state_text(status, now).plain,
                    age(since),
                    rtt,
                    str(status.reconnects),
                    status.last_connect or "-",
                )
            )
            if status.reason and status.state != CONNECTED and status.reason not in reasons:
                reasons.append(status.reason)
        shown = (tuple(rows), tuple(reasons[:2]))
        if shown == self._shown:
            return
        # Same number of lines: the panel keeps its size, so no layout pass is needed.
        same_height = self._shown is not None and len(self._shown[1]) == len(shown[1])
        self._shown = shown
        # Headers the help explains: "last msg" is the age of the last frame, "↻" the
        # reconnects, "connect" how the last one went (fresh, resumed or reset).
        # One cell between columns (left padding only): every header whole in 48 columns.
        table = Table(
            box=None, padding=(0, 0, 0, 1), expand=True, show_edge=False, header_style="bold"
        )
        # Names and states keep their width; a narrow panel squeezes the numbers instead.
        table.add_column("stream", no_wrap=True, min_width=len("dashboard"))
        table.add_column("state", no_wrap=True, min_width=len("connected"))
        table.add_column("last msg", justify="right", no_wrap=True)
        table.add_column("rtt", justify="right", no_wrap=True)
        table.add_column("↻", justify="right", no_wrap=True)
        table.add_column("connect", no_wrap=True)
        for name, state, label, since, rtt, reconnects, last in rows:
            table.add_row(
                name, Text(label, STATE_STYLES.get(state, "")), since, rtt, reconnects, last
            )
        if shown[1]:
            grid = Table.grid(expand=True)
            grid.add_row(table)
            for reason in shown[1]:
                grid.add_row(Text(reason, "red", overflow="ellipsis", no_wrap=True))
            self.update(grid, layout=not same_height)
        else:
            self.update(table, layout=not same_height)
