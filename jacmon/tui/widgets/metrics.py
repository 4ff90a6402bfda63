"""The metric trends: a sparkline per metric with its current value and change."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Label, Sparkline

from jacmon.tui.format import change, number

#: (sample field, label) for the fixed rows, in display order.
METRICS: tuple[tuple[str, str], ...] = (
    ("events_per_min", "events/min"),
    ("active_learners_5m", "active 5m"),
    ("avg_score", "avg score"),
    ("completions_per_hour", "compl/hour"),
)

#: The change is measured against the sample this many seconds back (or the oldest).
CHANGE_WINDOW_S = 300.0


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


class MetricRow(Horizontal):
    """One metric: its name, a sparkline of its history, the value now and its change."""

    DEFAULT_CSS = """
    MetricRow { height: 1; }
    MetricRow > .metric-name { width: 11; color: $text-muted; }
    MetricRow > Sparkline { width: 1fr; min-width: 6; }
    MetricRow > .metric-value { width: 14; text-align: right; }
    """

    def __init__(self, label: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.label = label
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self.sparkline = Sparkline([], summary_function=_mean)
        self.value = Label("-", classes="metric-value")

    def compose(self) -> ComposeResult:
        yield Label(self.label[:10], classes="metric-name")
        yield self.sparkline
        yield self.value

    def show(self, history: list[float], current: float | None, delta: tuple[str, str]) -> None:
        # One sample draws as a full bar (Textual's Sparkline): show it flat until there are two.
        self.sparkline.data = history * 2 if len(history) == 1 else history
        arrow, style = delta
        # Fixed width (CSS): a new value never changes the layout.
        self.value.update(
            Text.assemble(f"{number(current):>6} ", (f"{arrow:>6}", style)), layout=False
        )


class MetricsPanel(VerticalScroll):
    """Events/min, active learners, average score, completions/hour and velocity per path."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.border_title = "Trends"
        self._velocity_rows: dict[str, MetricRow] = {}
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self._rows = {
            name: MetricRow(label, id=f"metric-{name.replace('_', '-')}") for name, label in METRICS
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
        for name, _label in METRICS:
            history = [float(s.get(name) or 0.0) for s in samples]
            current = latest.get(name)
            previous = earlier.get(name) if earlier else None
            self._rows[name].show(history, current, change(current, previous))
        for path, numbers in sorted((latest.get("velocity") or {}).items()):
            row = self._velocity_rows.get(path)
            if row is None:
                row = MetricRow(f"↗{path}")
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
        self.border_subtitle = f"last {span}, change vs {CHANGE_WINDOW_S / 60:.0f} min"
