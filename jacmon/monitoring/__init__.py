"""Monitoring: the croniter scheduler and the tasks that raise alerts. No server: `jacmon
serve` runs them on its loop, `jacmon run-task` runs one offline (docs/architecture.md)."""
