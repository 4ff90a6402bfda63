"""The simulator's catalog: learning paths and their ordered modules, read from TOML.

The demo catalog ships as ``jacmon/data/catalog.toml``; ``jacmon catalog load``
reads the same file, so the simulated events and the server's progress % agree.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jacmon.errors import ConfigError

DEMO_CATALOG = Path(__file__).parents[1] / "data" / "catalog.toml"
"""The catalog ``jacmon sim`` and ``jacmon demo`` use unless told otherwise."""

DEFAULT_LESSONS = 4
"""Lessons in a module whose catalog entry does not say ``lessons``."""


@dataclass(frozen=True, slots=True)
class SimModule:
    """One module of a path: ``lessons`` lessons, then a quiz."""

    id: str
    title: str
    lessons: int


@dataclass(frozen=True, slots=True)
class SimPath:
    """One learning path: modules in the order a learner takes them."""

    id: str
    title: str
    modules: tuple[SimModule, ...]


def _text(where: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"Catalog '{where}' has value {value!r}. Expected a non-empty string.")
    return value


def parse_catalog(data: dict[str, Any], source: str = "catalog") -> tuple[SimPath, ...]:
    """Build the paths from a decoded catalog (``{"paths": [...]}``).

    Raises :class:`~jacmon.errors.ConfigError` naming the bad entry.
    """
    entries = data.get("paths")
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"{source} has no paths. Expected one or more [[paths]] tables "
            "with id, title and modules."
        )
    paths: list[SimPath] = []
    seen: set[str] = set()
    for p_index, entry in enumerate(entries):
        where = f"paths[{p_index}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"Catalog '{where}' has value {entry!r}. Expected a table.")
        path_id = _text(f"{where}.id", entry.get("id"))
        if path_id in seen:
            raise ConfigError(
                f"Catalog '{where}.id' repeats path {path_id!r}. Expected unique ids."
            )
        seen.add(path_id)
        title = _text(f"{where}.title", entry.get("title", path_id))
        raw_modules = entry.get("modules")
        if not isinstance(raw_modules, list) or not raw_modules:
            raise ConfigError(
                f"Catalog '{where}.modules' has value {raw_modules!r}. "
                "Expected a non-empty list of {{ id, title }} tables."
            )
        modules: list[SimModule] = []
        module_ids: set[str] = set()
        for m_index, raw in enumerate(raw_modules):
            m_where = f"{where}.modules[{m_index}]"
            if isinstance(raw, str):
                # The short form jacmon catalog load accepts too: just the module id.
                raw = {"id": raw}
            if not isinstance(raw, dict):
                raise ConfigError(f"Catalog '{m_where}' has value {raw!r}. Expected a table.")
            module_id = _text(f"{m_where}.id", raw.get("id"))
            if module_id in module_ids:
                raise ConfigError(
                    f"Catalog '{m_where}.id' repeats module {module_id!r} in path {path_id!r}. "
                    "Expected unique ids within a path."
                )
            module_ids.add(module_id)
            lessons = raw.get("lessons", DEFAULT_LESSONS)
            if isinstance(lessons, bool) or not isinstance(lessons, int) or not 1 <= lessons <= 50:
                raise ConfigError(
                    f"Catalog '{m_where}.lessons' has value {lessons!r}. "
                    "Expected a whole number from 1 to 50."
                )
            modules.append(
                SimModule(
                    module_id, _text(f"{m_where}.title", raw.get("title", module_id)), lessons
                )
            )
        paths.append(SimPath(path_id, title, tuple(modules)))
    return tuple(paths)


def load_catalog(path: Path | None = None) -> tuple[SimPath, ...]:
    """Read the paths from ``path`` (TOML); ``None`` reads the demo catalog."""
    source = path if path is not None else DEMO_CATALOG
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(
            f"Cannot read catalog {str(source)!r} ({exc.strerror or exc}). "
            "Expected a readable TOML file."
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Catalog {str(source)!r} is not valid TOML: {exc}.") from None
    return parse_catalog(data, source=f"catalog {str(source)!r}")
