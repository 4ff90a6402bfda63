"""The Textual terminal client: ``JacmonDashboard`` and its resilient stream client."""

from jacmon.tui.app import JacmonDashboard

__all__ = ["JacmonDashboard"]
