"""The monitoring tasks the scheduler runs, one module each, and their registry."""

from __future__ import annotations

from jacmon.errors import TaskError
from jacmon.server.tasks import alert_cleanup, daily_analytics, engagement, performance, velocity
from jacmon.server.tasks.base import TaskContext, TaskOutcome, TaskSpec

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
    """The task called ``name``, or an UnknownTaskError listing the valid names."""
    try:
        return TASKS[name]
    except KeyError:
        raise UnknownTaskError(f"unknown task {name!r}. Valid tasks: {', '.join(TASKS)}.") from None


__all__ = ["TASKS", "TaskContext", "TaskOutcome", "TaskSpec", "UnknownTaskError", "get_task"]
