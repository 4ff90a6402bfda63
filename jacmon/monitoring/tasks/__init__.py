"""The monitoring tasks the scheduler runs, one module each, and their registry."""

from __future__ import annotations

import difflib

from jacmon.errors import TaskError
from jacmon.monitoring.tasks import (
    alert_cleanup,
    daily_analytics,
    engagement,
    performance,
    velocity,
)
from jacmon.monitoring.tasks.base import TaskContext, TaskOutcome, TaskSpec

#: Every task by name, in the order ``jacmon tasks`` lists them.
TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        performance.SPEC,
        engagement.SPEC,
        daily_analytics.SPEC,
        alert_cleanup.SPEC,
        velocity.SPEC,
    )
}


class UnknownTaskError(TaskError):
    """A task name that is not one of :data:`TASKS` (bad usage: exit code 2)."""

    exit_code = 2


def get_task(name: str) -> TaskSpec:
    """The task called ``name``, or an UnknownTaskError naming the closest and the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        pass
    close = difflib.get_close_matches(name, TASKS, n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise UnknownTaskError(f"unknown task {name!r}.{hint} Valid tasks: {', '.join(TASKS)}.")


__all__ = ["TASKS", "TaskContext", "TaskOutcome", "TaskSpec", "UnknownTaskError", "get_task"]
