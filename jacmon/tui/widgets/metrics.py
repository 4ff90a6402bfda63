"""The metric trends: a sparkline per metric with its current value and change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Sparkline

from jacmon.tui.format import change, middle_ellipsis, number

#: (sample field, label, unit) for the fixed rows, in display order. ``received``
#: is the arrival rate (wall clock); ``events/min`` counts events by their own
#: time, so a backfill or a simulated clock can make it read 0 while events arrive.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("ingest_rate", "received", "ev/s"),
    ("events_per_min", "event time", "ev/min"),
    ("active_learners_5m", "active 5m", "lrn"),
    ("active_learners_24h", "active 24h", "lrn"),
    ("avg_score", "avg score", "/100"),
    ("completions_per_hour", "completed", "/hour"),
)

#: Unit of a velocity row: module and path completions on that path in the last 7 days.
VELOCITY_UNIT = "/7d"

#: Widths of the row's parts, in cells: a new value never changes the layout.
NAME_WIDTH = 11
UNIT_WIDTH = 6
#: Longest name shown; longer ones (xAPI IRIs as path ids) are cut in the middle.
LABEL_MAX = 40

#: The change is measured against the sample this many seconds back (or the oldest).
CHANGE_WINDOW_S = 300.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class MetricRow(Horizontal):
    """One metric: its name, a sparkline of its history, the value now and its change."""

    DEFAULT_CSS = """
    MetricRow { height: 1; }
    MetricRow > .metric-name { width: 11; color: $text-muted; }
    MetricRow > Sparkline { width: 1fr; min-width: 4; }
    MetricRow > .metric-value { width: 19; text-align: right; }
    MetricRow.velocity > .metric-name { width: 1fr; min-width: 10; }
    MetricRow.velocity > Sparkline { width: 8; min-width: 8; }
    """

    def __init__(
        self, label: str, unit: str, *, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(id=id, classes=classes)
        self.label = label
        self.unit = unit
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self.sparkline = Sparkline([], summary_function=_mean)
        self.value = Label("-", classes="metric-value")
        self.name_label = Label(middle_ellipsis(self.label, LABEL_MAX), classes="metric-name")

    def compose(self) -> ComposeResult:
        # A velocity row's path takes the free width (the sparkline shrinks to 8 cells).
        yield self.name_label
        yield self.sparkline
        yield self.value

    def on_resize(self) -> None:
        # Too narrow for the whole path: cut it in the middle, where ids differ least.
        # One cell short of the width: a gap before the sparkline.
        width = self.name_label.size.width - 1
        if width > 0:
            self.name_label.update(middle_ellipsis(self.label, min(width, LABEL_MAX)), layout=False)

    def show(self, history: list[float], current: float | None, delta: tuple[str, str]) -> None:
        # One sample draws as a full bar (Textual's Sparkline): show it flat until there are two.
        self.sparkline.data = history * 2 if len(history) == 1 else history
        arrow, style = delta
        # Fixed width (CSS): a new value never changes the layout.
        self.value.update(
            Text.assemble(
                f"{number(current):>6} ",
                (f"{self.unit:<{UNIT_WIDTH}}", "grey50"),
                (f"{arrow:>6}", style),
            ),
            layout=False,
        )


class MetricsPanel(VerticalScroll, can_focus=True):
    """Arrival rate, events/min, active learners, score, completions and velocity per path.

    Scrolls when the velocity rows do not fit: every path has its row.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Trends"
        self.stale = False
        self._velocity_rows: dict[str, MetricRow] = {}
        self._velocity_heading: Label | None = None
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self._rows = {
            name: MetricRow(label, unit, id=f"metric-{name.replace('_', '-')}")
            for name, label, unit in METRICS
        }

    def compose(self) -> ComposeResult:
        yield from self._rows.values()

    def show(self, samples: Sequence[dict[str, Any]], interval_s: float) -> None:
        """Redraw from the sample history (oldest first)."""
        if not samples:
            self.border_subtitle = "no samples yet"
            return
        back = max(1, min(len(samples) - 1, round(CHANGE_WINDOW_S / max(interval_s, 0.001))))
        latest, earlier = samples[-1], samples[-1 - back] if len(samples) > 1 else None
        for name, _label, _unit in METRICS:
            history = [float(s.get(name) or 0.0) for s in samples]
            current = latest.get(name)
            previous = earlier.get(name) if earlier else None
            self._rows[name].show(history, current, change(current, previous))
        for path, numbers in sorted((latest.get("velocity") or {}).items()):
            row = self._velocity_rows.get(path)
            if row is None:
                if self._velocity_heading is None:
                    # Says what the rows below count, once.
                    self._velocity_heading = Label(
                        "↗ completions per path, last 7 days", classes="metric-heading"
                    )
                    self.mount(self._velocity_heading)
                row = MetricRow(f"↗{path}", VELOCITY_UNIT, classes="velocity")
                self._velocity_rows[path] = row
                self.mount(row)
            history = [
                float(((s.get("velocity") or {}).get(path) or {}).get("this_week") or 0.0)
                for s in samples
            ]
            pct = numbers.get("change_pct")
            if pct is None:
                delta = change(numbers.get("this_week"), numbers.get("last_week"))
            else:
                arrow = "→" if abs(pct) < 0.5 else "↑" if pct > 0 else "↓"
                style = "grey50" if arrow == "→" else "green" if pct > 0 else "red"
                delta = (f"{arrow}{abs(pct):.0f}%", style)
            row.show(history, numbers.get("this_week"), delta)
        span_s = (len(samples) - 1) * interval_s
        span = f"{span_s / 60:.0f} min" if span_s >= 60 else f"{span_s:.0f} s"
        stale = "STALE · " if self.stale else ""
        self.border_subtitle = f"{stale}last {span}, change vs {CHANGE_WINDOW_S / 60:.0f} min"
        self.border_title = "Trends (STALE)" if self.stale else "Trends"
