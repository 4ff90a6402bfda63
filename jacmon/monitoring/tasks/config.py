"""Reading ``Settings.tasks``: the time zone and, per task, schedule, limits and parameters.

The ``[tasks]`` table looks like::

    [tasks]
    timezone = "Europe/Berlin"      # IANA name; schedules are read in it (default UTC)
    [tasks.performance]
    cron = "*/15 * * * *"
    enabled = true
    grace_s = 600                   # a missed run this recent still runs once
    timeout_s = 300                 # wall seconds a run may take
    decline_threshold = 60          # any field of the task's parameters

The environment can set one key as ``JACMON_TASKS__<TASK>__<KEY>`` (it arrives
here as ``"<task>__<key>"``). Every bad value is a ConfigError naming the key,
the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from jacmon.config import coerce_setting
from jacmon.errors import ConfigError
from jacmon.monitoring.tasks import TASKS, TaskSpec

_SCHEDULE_KEYS = ("cron", "enabled", "grace_s", "timeout_s")


@dataclass(slots=True)
class TaskConfig:
    """One task as configured."""

    spec: TaskSpec
    cron: str
    enabled: bool
    #: Seconds after a fire time during which a missed run still runs once.
    grace_s: float
    #: Wall seconds a run may take before it is stopped.
    timeout_s: float
    #: An instance of ``spec.params``.
    params: Any

    @property
    def name(self) -> str:
        return self.spec.name


@dataclass(slots=True)
class TasksConfig:
    timezone: ZoneInfo
    tasks: dict[str, TaskConfig]


def _coerce(where: str, value: Any, annotation: Any) -> Any:
    """A task setting as ``annotation`` (see config.coerce_setting); numbers must be 0 or more."""
    value = coerce_setting(where, value, annotation)
    if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
        raise ConfigError(f"Config '{where}' has value {value!r}. Expected 0 or more.")
    return value


def parse_timezone(value: Any, where: str = "tasks.timezone") -> ZoneInfo:
    """An IANA zone name as a ZoneInfo, or a ConfigError."""
    if not isinstance(value, str) or not value:
        raise ConfigError(
            f"Config '{where}' has value {value!r}. Expected an IANA time zone name "
            "such as 'UTC' or 'Europe/Berlin'."
        )
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"Config '{where}' has value {value!r}. Expected an IANA time zone name "
            "such as 'UTC' or 'Europe/Berlin'."
        ) from None


def validate_cron(value: Any, where: str) -> str:
    if not isinstance(value, str) or len(value.split()) != 5 or not croniter.is_valid(value):
        raise ConfigError(
            f"Config '{where}' has value {value!r}. Expected a 5-field cron expression "
            "such as '*/15 * * * *' (minute hour day-of-month month day-of-week)."
        )
    return value


def _nest(raw: dict[str, Any]) -> dict[str, Any]:
    """Fold environment keys ``"<task>__<key>"`` into the task's table."""
    nested: dict[str, Any] = {}
    for key, value in raw.items():
        task, sep, sub = key.partition("__")
        if sep:
            table = nested.setdefault(task, {})
            if not isinstance(table, dict):
                raise ConfigError(f"Config 'tasks.{task}' must be a table ([tasks.{task}]).")
            table[sub] = value
        elif isinstance(value, dict) and isinstance(nested.get(key), dict):
            nested[key] = value | nested[key]
        else:
            nested[key] = value
    return nested


def load_tasks_config(
    raw: dict[str, Any] | None, *, registry: dict[str, TaskSpec] | None = None
) -> TasksConfig:
    """Validate ``Settings.tasks`` and fill in every default (``registry``: the task list)."""
    registry = TASKS if registry is None else registry
    raw = _nest(dict(raw or {}))
    timezone = parse_timezone(raw.pop("timezone", "UTC"))
    tasks: dict[str, TaskConfig] = {}
    for name, spec in registry.items():
        table = raw.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(
                f"Config 'tasks.{name}' has value {table!r}. Expected a table ([tasks.{name}])."
            )
        table = dict(table)
        where = f"tasks.{name}"
        cron = validate_cron(table.pop("cron", spec.cron), f"{where}.cron")
        enabled = _coerce(f"{where}.enabled", table.pop("enabled", True), bool)
        grace_s = _coerce(f"{where}.grace_s", table.pop("grace_s", spec.grace_s), float)
        timeout_s = _coerce(f"{where}.timeout_s", table.pop("timeout_s", spec.timeout_s), float)
        if timeout_s <= 0:
            raise ConfigError(f"Config '{where}.timeout_s' has value {timeout_s!r}. Expected > 0.")
        fields = {f.name: f for f in dataclasses.fields(spec.params)}
        hints = typing.get_type_hints(spec.params)
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in fields:
                known = ", ".join([*_SCHEDULE_KEYS, *sorted(fields)])
                raise ConfigError(
                    f"Config '{where}.{key}' is not a setting of task {name!r}. "
                    f"Known keys: {known}."
                )
            values[key] = _coerce(f"{where}.{key}", value, hints[key])
        tasks[name] = TaskConfig(spec, cron, enabled, grace_s, timeout_s, spec.params(**values))
    if raw:
        unknown = ", ".join(sorted(raw))
        raise ConfigError(
            f"Config [tasks] has unknown key(s): {unknown}. Known: timezone, {', '.join(registry)}."
        )
    return TasksConfig(timezone, tasks)
