"""The catalog tables in SQLite: loading the in-memory :class:`Catalog`, storing a
catalog file's paths, inserting what events revealed, modules a file leaves out."""

from __future__ import annotations

import sqlite3

import aiosqlite

from jacmon.store.catalog import Catalog, CatalogPath, Discovered

_PATHS_SQL = "SELECT path, source FROM catalog_paths"
_MODULES_SQL = "SELECT path, module FROM catalog_modules"


async def load_catalog(conn: aiosqlite.Connection) -> Catalog:
    return Catalog.from_rows(
        await conn.execute_fetchall(_PATHS_SQL), await conn.execute_fetchall(_MODULES_SQL)
    )


def load_catalog_sync(conn: sqlite3.Connection) -> Catalog:
    """:func:`load_catalog` for code running on the database thread."""
    return Catalog.from_rows(conn.execute(_PATHS_SQL), conn.execute(_MODULES_SQL))


def insert_discovered(conn: sqlite3.Connection, found: Discovered) -> None:
    """Store what :meth:`Catalog.discover` found, inside the batch's transaction."""
    if found.paths:
        conn.executemany(
            "INSERT OR IGNORE INTO catalog_paths (path, title, source) VALUES (?, NULL, 'seen')",
            [(path,) for path in found.paths],
        )
    if found.modules:
        conn.executemany(
            "INSERT OR IGNORE INTO catalog_modules (path, module, position, title, source) "
            "VALUES (?, ?, ?, NULL, 'seen')",
            found.modules,
        )


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
