"""The catalog of paths and their ordered modules: loaded from a file or discovered from events.

Progress % is measured against the catalog's module count. A path loaded from a
file (``jacmon catalog load``) is *authoritative*: its module list is the truth.
A path never loaded is built from the modules seen in events.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jacmon.errors import JacmonError


@dataclass(slots=True)
class CatalogPath:
    """One path of a catalog file."""

    id: str
    title: str | None
    modules: list[tuple[str, str | None]]  # (module id, title) in order


@dataclass
class Catalog:
    """In-memory module counts per path, kept in step with the catalog tables."""

    module_counts: dict[str, int] = field(default_factory=dict)
    authoritative: set[str] = field(default_factory=set)
    known_modules: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def from_rows(
        cls, paths: Iterable[tuple[str, str]], modules: Iterable[tuple[str, str]]
    ) -> Catalog:
        """Build from ``(path, source)`` and ``(path, module)`` rows of the catalog tables."""
        catalog = cls()
        for path, source in paths:
            catalog.module_counts.setdefault(path, 0)
            if source == "file":
                catalog.authoritative.add(path)
        for path, module in modules:
            catalog.known_modules.add((path, module))
            catalog.module_counts[path] = catalog.module_counts.get(path, 0) + 1
        return catalog

    def discover(self, pairs: Iterable[tuple[str | None, str | None]]) -> Discovered:
        """Note paths and modules first seen in events; return what the store must insert.

        Called inside the batch's transaction: the store writes the returned rows
        in it (and reloads the catalog if the transaction rolls back).
        """
        found = Discovered()
        for path, module in pairs:
            if path is None:
                continue
            if path not in self.module_counts:
                self.module_counts[path] = 0
                found.paths.append(path)
            if module is None or (path, module) in self.known_modules:
                continue
            if path in self.authoritative:
                # A module the catalog file does not list: progress still counts against the file.
                continue
            self.known_modules.add((path, module))
            self.module_counts[path] += 1
            found.modules.append((path, module, self.module_counts[path]))
            found.changed.add(path)
        return found


@dataclass(slots=True)
class Discovered:
    """What :meth:`Catalog.discover` found new in a batch."""

    #: Paths never seen before (stored with source 'seen').
    paths: list[str] = field(default_factory=list)
    #: (path, module, position) of modules never seen before.
    modules: list[tuple[str, str, int]] = field(default_factory=list)
    #: Paths whose module count changed (their learners' percents must be re-derived).
    changed: set[str] = field(default_factory=set)


def parse_catalog_file(path: Path) -> list[CatalogPath]:
    """Read a catalog from TOML or JSON: ``[[paths]]`` with ``id``, ``title``, ``modules``.

    Each module is ``{id = "m1", title = "Basics"}`` or just ``"m1"``.
    """
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise JacmonError(f"cannot read catalog file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".json":
            data: Any = json.loads(raw)
        else:
            data = tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise JacmonError(f"catalog file {path} cannot be parsed: {exc}") from None
    paths = data.get("paths") if isinstance(data, dict) else None
    if not isinstance(paths, list) or not paths:
        raise JacmonError(
            f"catalog file {path} has no 'paths' list; expected [[paths]] tables "
            "with 'id' and 'modules'"
        )
    result: list[CatalogPath] = []
    for index, entry in enumerate(paths):
        where = f"catalog file {path}, paths[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) or not entry["id"]:
            raise JacmonError(f"{where} has no 'id'; each path needs a non-empty string id")
        modules_raw = entry.get("modules")
        if not isinstance(modules_raw, list) or not modules_raw:
            raise JacmonError(f"{where} ('{entry['id']}') has no 'modules' list")
        modules: list[tuple[str, str | None]] = []
        for position, module in enumerate(modules_raw):
            if isinstance(module, str) and module:
                modules.append((module, None))
            elif isinstance(module, dict) and isinstance(module.get("id"), str) and module["id"]:
                modules.append((module["id"], module.get("title")))
            else:
                raise JacmonError(
                    f"{where}.modules[{position}] is {module!r}; expected a module id or "
                    "{id = ..., title = ...}"
                )
        ids = [m for m, _ in modules]
        repeated = sorted({m for m in ids if ids.count(m) > 1})
        if repeated:
            raise JacmonError(
                f"{where} ('{entry['id']}') lists module {', '.join(map(repr, repeated))} twice"
            )
        result.append(CatalogPath(entry["id"], entry.get("title"), modules))
    return result
