"""The dashboard's panels, one widget per module."""

from jacmon.tui.widgets.activity import ActivityFeed
from jacmon.tui.widgets.alerts import AlertsPanel
from jacmon.tui.widgets.connection import ConnectionPanel
from jacmon.tui.widgets.header import StatusHeader
from jacmon.tui.widgets.metrics import MetricsPanel
from jacmon.tui.widgets.progress import ProgressPanel

__all__ = [
    "ActivityFeed",
    "AlertsPanel",
    "ConnectionPanel",
    "MetricsPanel",
    "ProgressPanel",
    "StatusHeader",
]
