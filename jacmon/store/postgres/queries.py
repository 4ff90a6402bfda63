"""Read queries for the streams in PostgreSQL: recent events, replay, progress snapshots
and summaries. Rows go through :func:`jacmon.store.rows.build_row`, so they carry the
same types as the SQLite store's. Text is ordered ``COLLATE "C"`` (by code point, as
SQLite does), whatever the database's locale."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg

from jacmon.store.catalog import Catalog
from jacmon.store.rows import (
    LEARNER_FIELDS,
    MODULE_ROW_FIELDS,
    MODULE_SUMMARY_FIELDS,
    PATH_FIELDS,
    build_row,
    learner_path_row,
    learner_row,
    module_row,
)
from jacmon.store.types import ProgressChanges

#: A learner counts as active on a path with activity this recent, in seconds.
ACTIVE_WINDOW_S = 7 * 86400

#: Rows a server-side cursor fetches per round trip when streaming events.
STREAM_PREFETCH = 2000


async def recent_event_rows(
    pool: asyncpg.Pool, limit: int, *, learner: str | None = None
) -> list[tuple[int, str]]:
    """(seq, stored JSON body) of the newest ``limit`` events, oldest first."""
    if learner is None:
        rows = await pool.fetch("SELECT seq, body FROM events ORDER BY seq DESC LIMIT $1", limit)
    else:
        rows = await pool.fetch(
            "SELECT seq, body FROM events WHERE learner = $1 ORDER BY seq DESC LIMIT $2",
            learner,
            limit,
        )
    return [(seq, body) for seq, body in reversed(rows)]


def since_query(
    select: str, seq: int, *, learner: str | None, limit: int | None
) -> tuple[str, list[Any]]:
    """``select`` narrowed to rows after ``seq`` (of ``learner``), in seq order, at most
    ``limit``: (sql, params)."""
    sql = f"{select} WHERE seq > $1"
    params: list[Any] = [seq]
    if learner is not None:
        params.append(learner)
        sql += f" AND learner = ${len(params)}"
    sql += " ORDER BY seq"
    if limit is not None:
        params.append(limit)
        sql += f" LIMIT ${len(params)}"
    return sql, params


async def event_rows_since(
    pool: asyncpg.Pool, seq: int, *, learner: str | None = None, limit: int | None = None
) -> list[tuple[int, str]]:
    """(seq, stored JSON body) of the events after ``seq``, in order."""
    sql, params = since_query("SELECT seq, body FROM events", seq, learner=learner, limit=limit)
    return [(s, body) for s, body in await pool.fetch(sql, *params)]


async def oldest_seq(pool: asyncpg.Pool) -> int:
    """The lowest stored sequence number (0 when the store is empty)."""
    return await pool.fetchval("SELECT coalesce(min(seq), 0) FROM events")


async def path_summaries(
    conn: asyncpg.Pool | asyncpg.Connection,
    catalog: Catalog,
    paths: Sequence[str] | None,
    *,
    now: float,
) -> list[dict[str, Any]]:
    """Per path: enrolled, active (last 7 days, not done), completed, mean %."""
    sql = (
        "SELECT p.path, c.title,"
        " count(*) FILTER (WHERE p.status != 'unenrolled'),"
        " count(*) FILTER (WHERE p.status NOT IN ('unenrolled', 'completed')"
        " AND p.last_activity >= $1),"
        " count(*) FILTER (WHERE p.status = 'completed'),"
        " avg(CASE WHEN p.status != 'unenrolled' THEN p.percent END)"
        " FROM path_progress p LEFT JOIN catalog_paths c ON c.path = p.path"
    )
    params: list[Any] = [now - ACTIVE_WINDOW_S]
    if paths is not None:
        sql += " WHERE p.path = ANY($2::text[])"
        params.append(list(paths))
    sql += ' GROUP BY p.path, c.title ORDER BY p.path COLLATE "C"'
    return [
        build_row(
            PATH_FIELDS,
            {
                "path": path,
                "title": title,
                "modules": catalog.module_counts.get(path, 0),
                "enrolled": enrolled or 0,
                "active": active or 0,
                "completed": completed or 0,
                "mean_percent": mean or 0.0,
            },
        )
        for path, title, enrolled, active, completed, mean in await conn.fetch(sql, *params)
    ]


async def module_summaries(
    conn: asyncpg.Pool | asyncpg.Connection, keys: Sequence[tuple[str, str]] | None
) -> list[dict[str, Any]]:
    """Per path x module: position, title, learners started, completed, mean %."""
    sql = (
        "SELECT c.path, c.module, c.position, c.title,"
        " count(m.learner), count(*) FILTER (WHERE m.status = 'completed'), avg(m.percent)"
        " FROM catalog_modules c LEFT JOIN module_progress m"
        " ON m.path = c.path AND m.module = c.module"
    )
    params: list[Any] = []
    if keys is not None:
        sql += " WHERE (c.path, c.module) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
        params = [[path for path, _ in keys], [module for _, module in keys]]
    sql += ' GROUP BY c.path, c.module ORDER BY c.path COLLATE "C", c.position'
    return [
        build_row(
            MODULE_SUMMARY_FIELDS,
            {
                "path": path,
                "module": module,
                "position": position,
                "title": title,
                "learners": learners,
                "completed": completed,
                "mean_percent": mean or 0.0,
            },
        )
        for path, module, position, title, learners, completed, mean in await conn.fetch(
            sql, *params
        )
    ]


async def learner_count(conn: asyncpg.Pool | asyncpg.Connection) -> int:
    """How many learners the store has seen."""
    return await conn.fetchval("SELECT count(*) FROM learners")


async def progress_snapshot(
    conn: asyncpg.Connection, catalog: Catalog, *, learner: str | None, now: float,
    learner_limit: int,
) -> dict[str, Any]:  # fmt: skip
    """The dashboard stream's snapshot (see the SQLite store's for the shape).

    ``conn`` is in the caller's REPEATABLE READ transaction, so the summaries, the
    learners and their paths are of one moment while other nodes keep writing.
    """
    return await _snapshot(conn, catalog, learner=learner, now=now, learner_limit=learner_limit)


async def _snapshot(
    conn: asyncpg.Connection, catalog: Catalog, *, learner: str | None, now: float,
    learner_limit: int,
) -> dict[str, Any]:  # fmt: skip
    columns = ", ".join(LEARNER_FIELDS)
    if learner is None:
        paths = await path_summaries(conn, catalog, None, now=now)
        modules = await module_summaries(conn, None)
        total_learners = await learner_count(conn)
        rows = await conn.fetch(
            f"SELECT {columns} FROM learners ORDER BY last_activity DESC LIMIT $1", learner_limit
        )
        learners = [learner_row(r) for r in rows]
        names = [row["learner"] for row in learners]
    else:
        rows = await conn.fetch(f"SELECT {columns} FROM learners WHERE learner = $1", learner)
        learners = [learner_row(r) for r in rows]
        total_learners = len(learners)
        names = [learner]
        paths, modules = [], []
    learner_paths = [
        learner_path_row(r)
        for r in await conn.fetch(
            "SELECT * FROM path_progress WHERE learner = ANY($1::text[])"
            ' ORDER BY learner COLLATE "C", path COLLATE "C"',
            names,
        )
    ]
    if learner is not None:
        paths = [
            build_row(
                PATH_FIELDS,
                {
                    "path": row["path"],
                    "title": None,
                    "modules": catalog.module_counts.get(row["path"], 0),
                    "enrolled": row["status"] != "unenrolled",
                    "active": row["status"] not in ("unenrolled", "completed")
                    and row["last_activity"] >= now - ACTIVE_WINDOW_S,
                    "completed": row["status"] == "completed",
                    "mean_percent": row["percent"],
                },
            )
            for row in learner_paths
        ]
        modules = [
            module_row(r)
            for r in await conn.fetch(
                f"SELECT {', '.join(MODULE_ROW_FIELDS)} FROM module_progress WHERE learner = $1"
                ' ORDER BY path COLLATE "C", module COLLATE "C"',
                learner,
            )
        ]
    return {
        "paths": paths,
        "modules": modules,
        "learners": learners,
        "learner_paths": learner_paths,
        "total_learners": total_learners,
        "truncated": total_learners > len(learners),
    }


async def last_seen(
    pool: asyncpg.Pool, *, since: float | None = None, learner: str | None = None
) -> dict[str, float]:
    """See :meth:`jacmon.store.base.Store.last_seen`."""
    if learner is None:
        rows = await pool.fetch(
            "SELECT learner, last_activity FROM learners WHERE last_activity >= $1",
            float(since or 0.0),
        )
    else:
        rows = await pool.fetch(
            "SELECT learner, last_activity FROM learners WHERE learner = $1", learner
        )
    return {name: last for name, last in rows}


async def recent_events(
    pool: asyncpg.Pool,
    *,
    since: float,
    learner: str | None = None,
    through_seq: int | None = None,
) -> AsyncIterator[tuple[float, str, float | None, str]]:
    """See :meth:`jacmon.store.base.Store.recent_events`: streamed through a server-side
    cursor (:data:`STREAM_PREFETCH` rows per round trip), in one read-only transaction
    on a connection of its own, never the whole window in memory."""
    sql = "SELECT ts, learner, score, type FROM events WHERE ts >= $1"
    params: list[Any] = [float(since)]
    if learner is not None:
        params.append(learner)
        sql += f" AND learner = ${len(params)}"
    if through_seq is not None:
        params.append(through_seq)
        sql += f" AND seq <= ${len(params)}"
    # In time order, as SQLite's index scan gives them (the metrics windows are primed
    # oldest first); the ts and (learner, ts) indexes serve it.
    sql += " ORDER BY ts, seq"
    async with pool.acquire() as conn, conn.transaction(readonly=True):
        async for row in conn.cursor(sql, *params, prefetch=STREAM_PREFETCH):
            yield (row[0], row[1], row[2], row[3])


async def progress_rows_since(
    conn: asyncpg.Connection, after_seq: int, through_seq: int
) -> ProgressChanges:
    """Every progress row now of the learners with events ``after_seq+1..through_seq``:
    what a node that missed projection spans sends instead of their deltas. Rows are
    ordered by their keys by code point, as the SQLite store's primary keys give them."""
    names = [
        r[0]
        for r in await conn.fetch(
            "SELECT DISTINCT learner FROM events WHERE seq > $1 AND seq <= $2",
            after_seq,
            through_seq,
        )
    ]
    changes = ProgressChanges()
    for table, keys, rows in (
        ("learners", ("learner",), changes.learners),
        ("path_progress", ("learner", "path"), changes.paths),
        ("module_progress", ("learner", "path", "module"), changes.modules),
    ):
        order = ", ".join(f'{key} COLLATE "C"' for key in keys)
        found = await conn.fetch(
            f"SELECT * FROM {table} WHERE learner = ANY($1::text[]) ORDER BY {order}", names
        )
        rows.extend(dict(row) for row in found)
    return changes
