"""Dashboard rows: the fields each row kind carries and the one JSON type of each field.

Every store builds the rows it hands to the dashboard stream with :func:`build_row`,
so a snapshot and a delta of the same row look the same whatever the backend.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _whole(value: Any) -> int | None:
    return None if value is None else int(value)


def _real(value: Any) -> float | None:
    return None if value is None else float(value)


def _percent(value: Any) -> float | None:
    return None if value is None else round(float(value), 2)


#: The one JSON type of each dashboard field, whichever row kind carries it: SQLite hands
#: back a whole REAL as an int from some queries and a float from others, so every row
#: sent (snapshot or progress) goes through build_row. None stays None.
FIELD_TYPES: dict[str, Callable[[Any], Any]] = {
    "learner": _text,
    "path": _text,
    "module": _text,
    "title": _text,
    "status": _text,
    "position": _whole,
    "modules": _whole,
    "enrolled": _whole,
    "active": _whole,
    "completed": _whole,
    "learners": _whole,
    "events": _whole,
    "modules_completed": _whole,
    "xp": _whole,
    "level": _whole,
    "streak_days": _whole,
    "longest_streak": _whole,
    "percent": _percent,
    "mean_percent": _percent,
    "time_spent_s": _real,
    "last_activity": _real,
    "completed_at": _real,
}


def build_row(fields: Sequence[str], row: Mapping[str, Any]) -> dict[str, Any]:
    """A dashboard row: ``fields`` of ``row``, each as its one type (FIELD_TYPES)."""
    return {name: FIELD_TYPES[name](row[name]) for name in fields}


#: A path summary (unscoped), or a learner's own path row (scoped snapshots).
PATH_FIELDS = ("path", "title", "modules", "enrolled", "active", "completed", "mean_percent")
MODULE_SUMMARY_FIELDS = (
    "path",
    "module",
    "position",
    "title",
    "learners",
    "completed",
    "mean_percent",
)
LEARNER_PATH_FIELDS = (
    "learner",
    "path",
    "status",
    "percent",
    "modules_completed",
    "time_spent_s",
    "xp",
    "level",
    "streak_days",
    "last_activity",
    "completed_at",
)
LEARNER_FIELDS = (
    "learner",
    "events",
    "time_spent_s",
    "xp",
    "level",
    "streak_days",
    "longest_streak",
    "last_activity",
)


#: A learner's module row as the dashboard sends it (learner-scoped clients only).
MODULE_ROW_FIELDS = (
    "learner",
    "path",
    "module",
    "status",
    "percent",
    "time_spent_s",
    "last_activity",
)


def learner_path_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A learner x path progress row as the dashboard stream sends it."""
    return build_row(LEARNER_PATH_FIELDS, row)


def learner_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A learner row as the dashboard stream sends it."""
    return build_row(LEARNER_FIELDS, row)


def module_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A learner's module row as the dashboard stream sends it (learner-scoped clients)."""
    return build_row(MODULE_ROW_FIELDS, row)
