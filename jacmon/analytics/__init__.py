"""Pure analytics: the rules behind progress, alerts and the monitoring tasks (no I/O)."""

SECONDS_PER_DAY = 86400.0
"""One UTC day, in seconds."""
