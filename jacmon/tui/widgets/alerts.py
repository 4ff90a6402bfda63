"""The alerts panel: open alerts, most severe and longest firing first; Enter opens one."""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from jacmon.tui.format import SEVERITY_STYLES, age_since, middle_ellipsis, to_epoch
from jacmon.tui.messages import AlertAckRequested, AlertDetailRequested, AlertUnackRequested
from jacmon.tui.widgets.table import KeyedTable

SEVERITY_SHORT = {"critical": "CRIT", "warning": "WARN", "info": "info"}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}

#: Learner ids longer than this are cut in the middle in the list (whole in the detail view).
WHO_WIDTH = 20

#: Column keys in order. Age comes before the message, so a long message never
#: pushes it off screen; the message takes the width left and wraps onto more lines.
COLUMN_KEYS = ("id", "sev", "age", "learner", "message")

#: Widths of the fixed columns, in cells ("CRIT"; "59m", "23h", "364d").
SEV_WIDTH = 4
AGE_WIDTH = 4

#: A message wraps onto at most this many lines in the list; the detail view (Enter)
#: shows the rest. Four hold the longest rule messages (a path id, six scores) at 80x24.
MESSAGE_LINES = 4

#: The message column's width before the panel has a size, in cells.
DEFAULT_MESSAGE_WIDTH = 60

#: Narrowest message column: below it the message still gets this much (the table scrolls).
MIN_MESSAGE_WIDTH = 20


def _first_seen(alert: dict[str, Any]) -> float:
    # An unreadable time sorts as the newest: the alert still shows.
    return to_epoch(alert.get("first_seen")) or float("inf")


#: Sort name -> (column it marks, key over an alert). Ascending puts the most urgent
#: first: severity, then the longest firing (the oldest first_seen).
ALERT_SORTS: dict[str, tuple[str, Callable[[dict[str, Any]], Any]]] = {
    "severity": ("sev", lambda a: (SEVERITY_RANK.get(a.get("severity"), 3), _first_seen(a))),
    "age": ("age", lambda a: (_first_seen(a), a["id"])),
    "learner": ("learner", lambda a: (str(a.get("learner") or ""), _first_seen(a))),
    "rule": ("message", lambda a: (str(a.get("rule") or ""), _first_seen(a))),
}
ALERT_SORT_ORDER = list(ALERT_SORTS)


def wrap_lines(text: str, width: int, max_lines: int) -> Text:
    """``text`` wrapped at word boundaries to ``width`` cells, one Text with line breaks.

    More than ``max_lines`` lines: the last shown line ends with "…".
    """
    lines = textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]
    if len(lines) > max_lines:
        lines = lines[:max_lines]
        last = lines[-1]
        lines[-1] = (last[: width - 1] if len(last) >= width else last) + "…"
    return Text("\n".join(lines))


def alert_matches(alert: dict[str, Any], words: list[str]) -> bool:
    """Whether every word (lowercase) is in the alert's learner, path, rule or message."""
    text = " ".join(
        str(alert.get(k) or "") for k in ("learner", "path", "rule", "message", "severity")
    ).lower()
    return all(word in text for word in words)


def sort_labels(columns: list[tuple[str, int | None]], marked: str, reverse: bool) -> list[str]:
    """Column headers with the sort column marked ``▲`` (ascending) or ``▼`` (reversed)."""
    mark = "▼" if reverse else "▲"
    return [f"{key}{mark}" if key == marked else key for key, _ in columns]


class AlertsPanel(Vertical):
    """Firing alerts. ``a`` asks to acknowledge the selected one, ``u`` to withdraw that,
    Enter opens its detail.

    The selection follows the alert (by id) while alerts update and re-sort.
    ``can_ack`` False (the server refused an ack) hides the ack hint.
    """

    BINDINGS = [
        Binding("a", "ack", "Ack", tooltip="Acknowledge the selected alert (asks first)"),
        Binding("u", "unack", "Unack", tooltip="Withdraw the selected alert's ack (asks first)"),
        Binding("s", "cycle_sort", "Sort", tooltip="Sort by the next column"),
        Binding("i", "invert_sort", "Invert", show=False, tooltip="Reverse the sort order"),
    ]

    def __init__(self, *, now: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        #: (message text, width) -> the wrapped text: re-wrapped only when either changes.
        self._wrapped: dict[tuple[str, int], Text] = {}
        self.border_title = "Alerts"
        self.now = now
        self.sort = "severity"
        self.reverse = False
        self.can_ack = True
        self.filter_text = ""
        self.stale = False
        self._alerts: list[dict[str, Any]] = []
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self.table = KeyedTable(id="alerts-table")

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self._set_columns(self._column_widths([]))

    def on_resize(self) -> None:
        # A new width re-wraps every message to it.
        if self._alerts:
            self.redraw()

    def _column_widths(self, shown: list[dict[str, Any]]) -> list[tuple[str, int | None]]:
        """Fixed widths: ids and learners as wide as the widest shown, the message the rest."""
        # A header holds a sort mark (``learner▲``): one cell more than its name.
        widths = {
            "id": max([len("id") + 1, *(len(str(a["id"])) for a in shown)]),
            "sev": SEV_WIDTH,
            "age": AGE_WIDTH,
            "learner": max(
                [len("learner") + 1, *(min(WHO_WIDTH, len(self._who(a))) for a in shown)]
            ),
        }
        # Every column has one cell of padding each side; the scrollbar takes one.
        room = self.table.size.width - 1 - 2 * len(COLUMN_KEYS) - sum(widths.values())
        message = max(MIN_MESSAGE_WIDTH, room) if self.table.size.width else DEFAULT_MESSAGE_WIDTH
        return [(key, widths.get(key, message)) for key in COLUMN_KEYS]

    def _set_columns(self, columns: list[tuple[str, int | None]]) -> None:
        marked = ALERT_SORTS[self.sort][0]
        self.table.set_columns(columns, sort_labels(columns, marked, self.reverse))

    @staticmethod
    def _who(alert: dict[str, Any]) -> str:
        return str(alert.get("learner") or alert.get("path") or "-")

    def ordered(self, alerts: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """``alerts`` filtered and in the panel's sort order."""
        words = self.filter_text.lower().split()
        shown = [a for a in alerts if alert_matches(a, words)]
        return sorted(shown, key=ALERT_SORTS[self.sort][1], reverse=self.reverse)

    def show(self, alerts: list[dict[str, Any]]) -> None:
        """Redraw from the open alerts (any order: the panel sorts them)."""
        self._alerts = alerts
        now = self.now()
        shown = self.ordered(alerts)
        columns = self._column_widths(shown)
        # No-op while the widths stay; a new width re-adds the rows at it.
        self._set_columns(columns)
        width = columns[-1][1] or DEFAULT_MESSAGE_WIDTH
        # A new width, or messages of alerts long gone: wrap afresh (bounded memory).
        if self._wrapped and (
            next(iter(self._wrapped))[1] != width or len(self._wrapped) > 2 * len(shown) + 100
        ):
            self._wrapped.clear()
        self.table.sync([(str(a["id"]), self._cells(a, now, width)) for a in shown])
        self._titles(alerts, shown)

    def _cells(self, alert: dict[str, Any], now: float, width: int) -> tuple[Any, ...]:
        severity = alert.get("severity", "info")
        acknowledged = bool(alert.get("acknowledged"))
        return (
            str(alert["id"]),
            Text(SEVERITY_SHORT.get(severity, severity), SEVERITY_STYLES.get(severity, "")),
            age_since(alert.get("first_seen"), now),
            middle_ellipsis(self._who(alert), WHO_WIDTH),
            self._message(
                str(alert.get("message", "")), acknowledged, bool(alert.get("silenced")), width
            ),
        )

    def _message(self, text: str, acknowledged: bool, silenced: bool, width: int) -> Text:
        """The message wrapped to ``width`` cells, at most MESSAGE_LINES lines (then "…"),
        after ``✓`` when acknowledged and ``(silenced)`` when its notifications are stopped.

        The rule's numbers are in the message already (the detail view lists them).
        """
        if silenced:
            text = f"(silenced) {text}"
        key = (f"✓ {text}" if acknowledged else text, width)
        wrapped = self._wrapped.get(key)
        if wrapped is None:
            wrapped = wrap_lines(key[0], width, MESSAGE_LINES)
            if acknowledged:
                wrapped.stylize("green", 0, 1)
                wrapped.stylize("dim")
            self._wrapped[key] = wrapped
        return wrapped

    def _titles(self, alerts: list[dict[str, Any]], shown: list[dict[str, Any]]) -> None:
        counts = {s: 0 for s in SEVERITY_SHORT}
        for alert in alerts:
            severity = alert.get("severity", "info")
            counts[severity] = counts.get(severity, 0) + 1
        filtered = f" [filter: {self.filter_text}] {len(shown)} of" if self.filter_text else ""
        stale = " · STALE" if self.stale else ""
        self.border_title = f"Alerts{filtered} ({len(alerts)}){stale}"
        hints = "Enter: detail · a: ack · u: unack" if self.can_ack else "Enter: detail"
        self.border_subtitle = (
            f"{counts['critical']} crit · {counts['warning']} warn · {hints}"
            if alerts
            else "none open"
        )

    def redraw(self) -> None:
        """Redraw from the alerts last shown (after a sort, filter or permission change)."""
        self.show(self._alerts)

    def set_filter(self, text: str) -> None:
        """Show only alerts whose learner, path, rule or message hold every word of ``text``."""
        self.filter_text = text.strip()
        self.redraw()

    def set_stale(self, stale: bool) -> None:
        if stale != self.stale:
            self.stale = stale
            self._titles(self._alerts, self.ordered(self._alerts))

    def forbid_ack(self) -> None:
        """The server refused an ack for this token: stop offering it."""
        self.can_ack = False
        self.redraw()

    @property
    def selected_alert_id(self) -> int | None:
        key = self.table.selected_key
        return int(key) if key is not None else None

    def select_alert(self, alert_id: int) -> bool:
        """Put the cursor on alert ``alert_id``; False when it is not shown."""
        return self.table.select_key(str(alert_id))

    # -- keys -------------------------------------------------------------------

    def action_ack(self) -> None:
        alert_id = self.selected_alert_id
        if alert_id is None:
            self.app.notify("no alert selected: there are no open alerts", severity="warning")
            return
        self.post_message(AlertAckRequested(alert_id))

    def action_unack(self) -> None:
        alert_id = self.selected_alert_id
        if alert_id is None:
            self.app.notify("no alert selected: there are no open alerts", severity="warning")
            return
        self.post_message(AlertUnackRequested(alert_id))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(AlertDetailRequested(int(event.row_key.value)))

    def action_cycle_sort(self) -> None:
        self.sort = ALERT_SORT_ORDER[(ALERT_SORT_ORDER.index(self.sort) + 1) % len(ALERT_SORTS)]
        self.redraw()

    def action_invert_sort(self) -> None:
        self.reverse = not self.reverse
        self.redraw()
