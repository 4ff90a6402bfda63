"""The catalog of paths and their ordered modules: loaded from a file or discovered from events.

Progress % is measured against the catalog's module count. A path loaded from a
file (``jacmon catalog load``) is *authoritative*: its module list is the truth.
A path never loaded is built from the modules seen in events.
"""

from __future__ import annotations

import json
import sqlite3
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from jacmon.errors import JacmonError


@dataclass(slots=True)
class CatalogPath:
    """One path of a catalog file."""

    id: str
    title: str | None
    modules: list[tuple[str, str | None]]  # (module id, title) in order


_PATHS_SQL = "SELECT path, source FROM catalog_paths"
_MODULES_SQL = "SELECT path, module FROM catalog_modules"


@dataclass
class Catalog:
    """In-memory module counts per path, kept in step with the catalog tables."""

    module_counts: dict[str, int] = field(default_factory=dict)
    authoritative: set[str] = field(default_factory=set)
    known_modules: set[tuple[str, str]] = field(default_factory=set)

    @classmethod
    def _from_rows(
        cls, paths: Iterable[tuple[str, str]], modules: Iterable[tuple[str, str]]
    ) -> Catalog:
        """Build from ``(path, source)`` and ``(path, module)`` rows."""
        catalog = cls()
        for path, source in paths:
            catalog.module_counts.setdefault(path, 0)
            if source == "file":
                catalog.authoritative.add(path)
        for path, module in modules:
            catalog.known_modules.add((path, module))
            catalog.module_counts[path] = catalog.module_counts.get(path, 0) + 1
        return catalog

    @classmethod
    async def load(cls, conn: aiosqlite.Connection) -> Catalog:
        return cls._from_rows(
            await conn.execute_fetchall(_PATHS_SQL), await conn.execute_fetchall(_MODULES_SQL)
        )

    @classmethod
    def load_sync(cls, conn: sqlite3.Connection) -> Catalog:
        """:meth:`load` for code running on the database thread."""
        return cls._from_rows(conn.execute(_PATHS_SQL), conn.execute(_MODULES_SQL))

    def discover(
        self, conn: sqlite3.Connection, pairs: Iterable[tuple[str | None, str | None]]
    ) -> set[str]:
        """Record paths and modules first seen in events; return the paths whose count changed.

        Runs inside the caller's transaction, on the database thread.
        """
        changed: set[str] = set()
        for path, module in pairs:
            if path is None:
                continue
            if path not in self.module_counts:
                self.module_counts[path] = 0
                conn.execute(
                    "INSERT OR IGNORE INTO catalog_paths (path, title, source)"
                    " VALUES (?, NULL, 'seen')",
                    (path,),
                )
            if module is None or (path, module) in self.known_modules:
                continue
            if path in self.authoritative:
                # A module the catalog file does not list: progress still counts against the file.
                continue
            self.known_modules.add((path, module))
            self.module_counts[path] += 1
            conn.execute(
                "INSERT OR IGNORE INTO catalog_modules (path, module, position, title, source) "
                "VALUES (?, ?, ?, NULL, 'seen')",
                (path, module, self.module_counts[path]),
            )
            changed.add(path)
        return changed


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


def store_catalog(conn: sqlite3.Connection, paths: list[CatalogPath]) -> None:
    """Replace those paths' module lists with the file's (inside the caller's transaction)."""
    for entry in paths:
        conn.execute(
            "INSERT INTO catalog_paths (path, title, source) VALUES (?, ?, 'file') "
            "ON CONFLICT (path) DO UPDATE SET title = excluded.title, source = 'file'",
            (entry.id, entry.title),
        )
        conn.execute("DELETE FROM catalog_modules WHERE path = ?", (entry.id,))
        conn.executemany(
            "INSERT INTO catalog_modules (path, module, position, title, source) "
            "VALUES (?, ?, ?, ?, 'file')",
            [(entry.id, m, i + 1, title) for i, (m, title) in enumerate(entry.modules)],
        )


async def modules_left_out(
    conn: aiosqlite.Connection, paths: list[CatalogPath]
) -> dict[str, list[str]]:
    """Per path of ``paths``: the modules learners have progress on that it does not list.

    Empty when every module seen in events is in the catalog. Their progress is
    kept but no longer counts towards the path's percent.
    """
    listed = {p.id: {module for module, _title in p.modules} for p in paths}
    if not listed:
        return {}
    marks = ",".join("?" * len(listed))
    left_out: dict[str, list[str]] = {}
    async with conn.execute(
        f"SELECT DISTINCT path, module FROM module_progress WHERE path IN ({marks})"
        " ORDER BY path, module",
        list(listed),
    ) as cursor:
        async for path, module in cursor:
            if module not in listed[path]:
                left_out.setdefault(path, []).append(module)
    return left_out
