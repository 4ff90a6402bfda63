"""The catalog tables in PostgreSQL: loading the in-memory :class:`Catalog`, storing a
catalog file's paths, inserting what events revealed, modules a file leaves out.

Several nodes share the tables, so each node's in-memory catalog is a cache:
:func:`catalog_mark` says cheaply whether the tables changed since it was loaded
(another node discovered a module, or ``jacmon catalog load`` ran).
"""

from __future__ import annotations

import asyncpg

from jacmon.store.catalog import Catalog, CatalogPath, Discovered

#: What identifies the tables' state: the loaded catalog's version and the row counts
#: (discovery only ever adds rows; a catalog load changes the version).
CatalogMark = tuple[str | None, int, int]

_MARK_SQL = (
    "SELECT (SELECT value FROM meta WHERE key = 'catalog_version'),"
    " (SELECT count(*) FROM catalog_paths), (SELECT count(*) FROM catalog_modules)"
)


async def catalog_mark(conn: asyncpg.Connection | asyncpg.Pool) -> CatalogMark:
    """The tables' :data:`CatalogMark` now."""
    row = await conn.fetchrow(_MARK_SQL)
    return row[0], row[1], row[2]


async def load_catalog(conn: asyncpg.Connection | asyncpg.Pool) -> tuple[Catalog, CatalogMark]:
    """The catalog as the tables hold it, and their mark (read in one transaction when
    ``conn`` is in one, so the two agree)."""
    paths = await conn.fetch("SELECT path, source FROM catalog_paths")
    modules = await conn.fetch("SELECT path, module FROM catalog_modules")
    mark = await catalog_mark(conn)
    catalog = Catalog.from_rows(((r[0], r[1]) for r in paths), ((r[0], r[1]) for r in modules))
    return catalog, mark


async def insert_discovered(conn: asyncpg.Connection, found: Discovered) -> None:
    """Store what :meth:`Catalog.discover` found, inside the batch's transaction."""
    if found.paths:
        await conn.executemany(
            "INSERT INTO catalog_paths (path, title, source) VALUES ($1, NULL, 'seen')"
            " ON CONFLICT DO NOTHING",
            [(path,) for path in found.paths],
        )
    if found.modules:
        await conn.executemany(
            "INSERT INTO catalog_modules (path, module, position, title, source)"
            " VALUES ($1, $2, $3, NULL, 'seen') ON CONFLICT DO NOTHING",
            found.modules,
        )


async def store_catalog(conn: asyncpg.Connection, paths: list[CatalogPath]) -> None:
    """Replace those paths' module lists with the file's (inside the caller's transaction)."""
    for entry in paths:
        await conn.execute(
            "INSERT INTO catalog_paths (path, title, source) VALUES ($1, $2, 'file') "
            "ON CONFLICT (path) DO UPDATE SET title = excluded.title, source = 'file'",
            entry.id,
            entry.title,
        )
        await conn.execute("DELETE FROM catalog_modules WHERE path = $1", entry.id)
        await conn.executemany(
            "INSERT INTO catalog_modules (path, module, position, title, source) "
            "VALUES ($1, $2, $3, $4, 'file')",
            [(entry.id, m, i + 1, title) for i, (m, title) in enumerate(entry.modules)],
        )


async def modules_left_out(conn: asyncpg.Pool, paths: list[CatalogPath]) -> dict[str, list[str]]:
    """Per path of ``paths``: the modules learners have progress on that it does not list."""
    listed = {p.id: {module for module, _title in p.modules} for p in paths}
    if not listed:
        return {}
    left_out: dict[str, list[str]] = {}
    rows = await conn.fetch(
        "SELECT path, module FROM module_progress WHERE path = ANY($1::text[])"
        " GROUP BY path, module"
        ' ORDER BY path COLLATE "C", module COLLATE "C"',
        list(listed),
    )
    for path, module in rows:
        if module not in listed[path]:
            left_out.setdefault(path, []).append(module)
    return left_out


async def catalog_rows(conn: asyncpg.Pool) -> list[dict]:
    """Every catalog module with its path, by path and position."""
    rows = await conn.fetch(
        "SELECT c.path, p.title AS path_title, p.source, c.position, c.module, c.title"
        " FROM catalog_modules c JOIN catalog_paths p ON p.path = c.path"
        ' ORDER BY c.path COLLATE "C", c.position'
    )
    return [dict(r) for r in rows]
