"""The alerts panel: open alerts by severity, with their message and numbers; ack the selected."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from jacmon.tui.format import SEVERITY_STYLES, age_since, number
from jacmon.tui.widgets.table import KeyedTable

SEVERITY_SHORT = {"critical": "CRIT", "warning": "WARN", "info": "info"}

COLUMNS = [("id", None), ("sev", 4), ("who", None), ("message", None), ("age", 4)]


def numbers_text(numbers: dict[str, Any] | None) -> str:
    """``{"drop_pct": 42.5, "days": 3}`` -> ``drop_pct=42.5 days=3``."""
    if not numbers:
        return ""
    return " ".join(
        f"{key}={number(value) if isinstance(value, int | float) else value}"
        for key, value in numbers.items()
    )


class AlertsPanel(Vertical):
    """Firing alerts, most severe first. ``a`` (app binding) acknowledges the selected one."""

    def __init__(self, *, now: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Alerts"
        self.now = now
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self.table = KeyedTable(id="alerts-table")

    def compose(self) -> ComposeResult:
        yield self.table

    def on_mount(self) -> None:
        self.table.set_columns(COLUMNS)

    def show(self, alerts: list[dict[str, Any]]) -> None:
        """Redraw from the open alerts (already ordered)."""
        table = self.table
        table.set_columns(COLUMNS)  # no-op once set; a first redraw may come before on_mount
        now = self.now()
        rows = []
        for alert in alerts:
            severity = alert.get("severity", "info")
            acked = alert.get("acknowledged")
            message = Text(str(alert.get("message", "")))
            extra = numbers_text(alert.get("numbers"))
            if extra:
                message.append(f" ({extra})", "grey50")
            if acked:
                message = Text.assemble(("✓ ", "green"), message)
                message.stylize("dim")
            who = alert.get("learner") or alert.get("path") or "-"
            rows.append(
                (
                    str(alert["id"]),
                    (
                        str(alert["id"]),
                        Text(
                            SEVERITY_SHORT.get(severity, severity),
                            SEVERITY_STYLES.get(severity, ""),
                        ),
                        str(who),
                        message,
                        age_since(alert.get("first_seen"), now),
                    ),
                )
            )
        table.sync(rows)
        counts = {s: 0 for s in SEVERITY_SHORT}
        for alert in alerts:
            counts[alert.get("severity", "info")] = counts.get(alert.get("severity", "info"), 0) + 1
        self.border_title = f"Alerts ({len(alerts)})"
        self.border_subtitle = (
            f"{counts['critical']} crit · {counts['warning']} warn · a: ack"
            if alerts
            else "none open"
        )

    @property
    def selected_alert_id(self) -> int | None:
        key = self.table.selected_key
        return int(key) if key is not None else None
