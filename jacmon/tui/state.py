"""What the dashboard knows: the four streams' data, applied frame by frame, with dirty flags.

Applying a frame is cheap (dict and deque updates) and happens as frames
arrive; drawing is what costs, so the app redraws only the panels whose flag
is set, on its own timer (at most ~15 times a second). Latest-value data
(progress rows, metric samples) replaces what was there; alert changes are
applied in order; activity events queue up, bounded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from jacmon.protocol import ServerType
from jacmon.tui.format import to_epoch

#: Events the feed keeps (memory bound); older ones scroll away.
FEED_CAPACITY = 1000

#: Metric samples kept for the trends: 15 minutes at one sample per 2 s, plus slack.
METRICS_CAPACITY = 600

SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}


def _learner_path_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["learner"], row["path"])


def _module_key(row: dict[str, Any]) -> tuple[str, str]:
    return (row["path"], row["module"])


@dataclass(slots=True)
class ProgressData:
    """The dashboard stream: rows keyed the way deltas replace them."""

    paths: dict[str, dict[str, Any]] = field(default_factory=dict)
    modules: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    learners: dict[str, dict[str, Any]] = field(default_factory=dict)
    learner_paths: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    total_learners: int = 0
    truncated: bool = False

    def replace_all(self, data: dict[str, Any]) -> None:
        self.paths = {row["path"]: row for row in data.get("paths", [])}
        self.modules = {_module_key(row): row for row in data.get("modules", [])}
        self.learners = {row["learner"]: row for row in data.get("learners", [])}
        self.learner_paths = {_learner_path_key(r): r for r in data.get("learner_paths", [])}
        self.total_learners = int(data.get("total_learners", len(self.learners)))
        self.truncated = bool(data.get("truncated", False))

    def merge(self, data: dict[str, Any]) -> None:
        for row in data.get("paths", []):
            self.paths[row["path"]] = row
        for row in data.get("modules", []):
            self.modules[_module_key(row)] = row
        for row in data.get("learners", []):
            # A truncated snapshot does not hold every learner: an unknown one may not be new.
            if row["learner"] not in self.learners and not self.truncated:
                self.total_learners += 1
            self.learners[row["learner"]] = row
        for row in data.get("learner_paths", []):
            self.learner_paths[_learner_path_key(row)] = row
        if "total_learners" in data:
            self.total_learners = int(data["total_learners"])

    def apply(self, kind: str, data: Any) -> bool:
        """Apply one dashboard-stream frame; False for a type that carries no rows."""
        if kind == ServerType.SNAPSHOT:
            self.replace_all(data)
        elif kind == ServerType.PROGRESS:
            self.merge(data)
        else:
            return False
        return True


@dataclass(slots=True)
class LearnerDetail:
    """One learner's own rows, from a learner-scoped dashboard stream opened for a drill-down.

    The unscoped stream carries module *summaries* only; a learner's module
    rows come on a stream scoped to that learner, so the dashboard opens one
    while the learner is shown and closes it when the user leaves.
    """

    learner: str
    data: ProgressData = field(default_factory=ProgressData)
    #: The scoped stream's snapshot arrived (before: the module rows are not known yet).
    loaded: bool = False
    #: The scoped stream's connection state (see jacmon.client.streams), for the panel's subtitle.
    connection: str = "connecting"

    def apply(self, envelope: dict[str, Any]) -> bool:
        """Apply one frame of the scoped stream; True when it changed the rows."""
        kind = envelope["type"]
        if not self.data.apply(kind, envelope.get("data")):
            return False
        if kind == ServerType.SNAPSHOT:
            self.loaded = True
        return True


@dataclass(slots=True)
class DashboardState:
    """Everything the panels draw from, plus which panels need a redraw."""

    progress: ProgressData = field(default_factory=ProgressData)
    activity: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=FEED_CAPACITY))
    #: How many events arrived since the feed last drew: the newest that many of
    #: ``activity`` (all of it, and more were dropped, when it exceeds its length).
    new_event_count: int = 0
    #: The activity snapshot replaced the feed: redraw it whole.
    activity_reset: bool = False
    samples: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=METRICS_CAPACITY))
    metrics_interval_s: float = 2.0
    alerts: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: Panels to redraw: ``progress``, ``activity``, ``metrics``, ``alerts``.
    dirty: set[str] = field(default_factory=set)
    #: Total events received, for the header and the benchmark.
    events_received: int = 0
    #: The drilled-into learner's own rows (None: no learner open, or a scoped dashboard).
    detail: LearnerDetail | None = None
    #: The time of the newest event or metric sample seen, on the data's clock (epoch s;
    #: None: none yet): the header shows how old it is.
    newest_data_at: float | None = None

    def _saw(self, ts: Any) -> None:
        when = to_epoch(ts)
        if when is not None and (self.newest_data_at is None or when > self.newest_data_at):
            self.newest_data_at = when

    def open_detail(self, learner: str) -> LearnerDetail:
        """Start collecting ``learner``'s own rows (forgetting any other learner's)."""
        self.detail = LearnerDetail(learner)
        self.dirty.add("progress")
        return self.detail

    def close_detail(self) -> None:
        self.detail = None
        self.dirty.add("progress")

    def apply_detail(self, learner: str, envelope: dict[str, Any]) -> None:
        """Apply a frame of ``learner``'s scoped stream (dropped if that learner is closed)."""
        if (
            self.detail is not None
            and self.detail.learner == learner
            and self.detail.apply(envelope)
        ):
            self.dirty.add("progress")

    def apply(self, envelope: dict[str, Any]) -> None:
        """Apply one data frame (any stream); unknown types are ignored by design."""
        stream, kind, data = envelope["stream"], envelope["type"], envelope["data"]
        if stream == "dashboard":
            if self.progress.apply(kind, data):
                self.dirty.add("progress")
        elif stream == "activity":
            if kind == ServerType.SNAPSHOT:
                self.activity.clear()
                self.activity.extend(data.get("events", []))
                if self.activity:
                    self._saw(self.activity[-1].get("ts"))
                self.new_event_count = 0
                self.activity_reset = True
            elif kind == ServerType.EVENTS:
                events = data.get("events", [])
                if events:
                    self._saw(events[-1].get("ts"))
                self.activity.extend(events)
                self.new_event_count += len(events)
                self.events_received += len(events)
            else:
                return
            self.dirty.add("activity")
        elif stream == "metrics":
            if kind == ServerType.SNAPSHOT:
                self.samples.clear()
                self.samples.extend(data.get("samples", []))
                if self.samples:
                    self._saw(self.samples[-1].get("ts"))
                self.metrics_interval_s = float(data.get("interval_s", self.metrics_interval_s))
            elif kind == ServerType.SAMPLE:
                self.samples.append(data)
                self._saw(data.get("ts"))
            else:
                return
            self.dirty.add("metrics")
        elif stream == "alerts":
            if kind == ServerType.SNAPSHOT:
                self.alerts = {a["id"]: a for a in data.get("alerts", [])}
            elif kind == ServerType.ALERT:
                self.apply_alert_change(data)
            else:
                return
            self.dirty.add("alerts")

    def apply_alert_change(self, data: dict[str, Any]) -> None:
        alert = data["alert"]
        if data.get("change") == "resolved" or alert.get("state") == "resolved":
            # Resolved alerts leave the panel.
            self.alerts.pop(alert["id"], None)
        else:
            self.alerts[alert["id"]] = alert

    def take_new_events(self) -> list[dict[str, Any]] | None:
        """The events to add to the feed since last time.

        None when the feed must be redrawn whole from ``activity``: after a
        snapshot, or when more arrived than it holds.
        """
        count, reset = self.new_event_count, self.activity_reset
        self.new_event_count = 0
        self.activity_reset = False
        if reset or count > len(self.activity):
            return None
        return list(islice(self.activity, len(self.activity) - count, None))

    def open_alerts(self) -> list[dict[str, Any]]:
        """Firing alerts, most severe first, newest first within a severity."""
        return sorted(
            self.alerts.values(),
            # An unreadable time sorts last; the alert still shows.
            key=lambda a: (
                SEVERITY_RANK.get(a.get("severity"), 3),
                -(to_epoch(a.get("last_seen")) or 0.0),
            ),
        )
