"""Read queries for the streams: recent events, replay, progress snapshots and summaries."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiosqlite

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
from jacmon.store.sqlite.database import chunks
from jacmon.store.types import ProgressChanges

#: A learner counts as active on a path with activity this recent, in seconds.
ACTIVE_WINDOW_S = 7 * 86400


async def recent_event_rows(
    conn: aiosqlite.Connection, limit: int, *, learner: str | None = None
) -> list[tuple[int, str]]:
    """(seq, stored JSON body) of the newest ``limit`` events, oldest first."""
    if learner is None:
        sql = "SELECT seq, body FROM events ORDER BY seq DESC LIMIT ?"
        params: tuple = (limit,)
    else:
        sql = "SELECT seq, body FROM events WHERE learner = ? ORDER BY seq DESC LIMIT ?"
        params = (learner, limit)
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
    return [(seq, body) for seq, body in reversed(rows)]


def since_query(
    select: str, seq: int, *, learner: str | None, limit: int | None
) -> tuple[str, list[Any]]:
    """``select`` (a SELECT of a table with ``seq`` and ``learner``) narrowed to rows after
    ``seq``, optionally one learner's, in seq order, at most ``limit``: (sql, params)."""
    sql = f"{select} WHERE seq > ?"
    params: list[Any] = [seq]
    if learner is not None:
        sql += " AND learner = ?"
        params.append(learner)
    sql += " ORDER BY seq"
    if limit is not None:
        sql += " LIMIT ?"
        params.append(limit)
    return sql, params


async def event_rows_since(
    conn: aiosqlite.Connection, seq: int, *, learner: str | None = None, limit: int | None = None
) -> list[tuple[int, str]]:
    """(seq, stored JSON body) of the events after ``seq``, in order."""
    sql, params = since_query("SELECT seq, body FROM events", seq, learner=learner, limit=limit)
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
    return [(s, body) for s, body in rows]


async def oldest_seq(conn: aiosqlite.Connection) -> int:
    """The lowest stored sequence number (0 when the store is empty)."""
    async with conn.execute("SELECT coalesce(min(seq), 0) FROM events") as cursor:
        (value,) = await cursor.fetchone()
    return value


async def path_summaries(
    conn: aiosqlite.Connection, catalog: Catalog, paths: Sequence[str] | None, *, now: float
) -> list[dict[str, Any]]:
    """Per path: enrolled, active (last 7 days, not done), completed, mean %."""
    sql = (
        "SELECT p.path, c.title,"
        " sum(p.status != 'unenrolled'),"
        " sum(p.status NOT IN ('unenrolled', 'completed') AND p.last_activity >= ?),"
        " sum(p.status = 'completed'),"
        " avg(CASE WHEN p.status != 'unenrolled' THEN p.percent END)"
        " FROM path_progress p LEFT JOIN catalog_paths c ON c.path = p.path"
    )
    params: list[Any] = [now - ACTIVE_WINDOW_S]
    if paths is not None:
        sql += f" WHERE p.path IN ({','.join('?' * len(paths))})"
        params.extend(paths)
    sql += " GROUP BY p.path ORDER BY p.path"
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
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
        for path, title, enrolled, active, completed, mean in rows
    ]


async def module_summaries(
    conn: aiosqlite.Connection, keys: Sequence[tuple[str, str]] | None
) -> list[dict[str, Any]]:
    """Per path x module: position, title, learners started, completed, mean %."""
    sql = (
        "SELECT c.path, c.module, c.position, c.title,"
        " count(m.learner), coalesce(sum(m.status = 'completed'), 0), avg(m.percent)"
        " FROM catalog_modules c LEFT JOIN module_progress m"
        " ON m.path = c.path AND m.module = c.module"
    )
    params: list[Any] = []
    if keys is not None:
        sql += f" WHERE (c.path, c.module) IN (VALUES {','.join(['(?,?)'] * len(keys))})"
        params = [part for key in keys for part in key]
    sql += " GROUP BY c.path, c.module ORDER BY c.path, c.position"
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
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
        for path, module, position, title, learners, completed, mean in rows
    ]


async def learner_count(conn: aiosqlite.Connection) -> int:
    """How many learners the store has seen."""
    async with conn.execute("SELECT count(*) FROM learners") as cursor:
        (count,) = await cursor.fetchone()
    return count


async def progress_snapshot(
    conn: aiosqlite.Connection,
    catalog: Catalog,
    *,
    learner: str | None,
    now: float,
    learner_limit: int,
) -> dict[str, Any]:
    """The dashboard stream's snapshot.

    Unscoped: every path and module summary, and the ``learner_limit`` most
    recently active learners (``truncated`` says whether there were more).
    Scoped to a learner: only that learner's rows, and path summaries of the
    paths they are on.
    """
    if learner is None:
        paths = await path_summaries(conn, catalog, None, now=now)
        modules = await module_summaries(conn, None)
        total_learners = await learner_count(conn)
        async with conn.execute(
            f"SELECT {', '.join(LEARNER_FIELDS)} FROM learners ORDER BY last_activity DESC LIMIT ?",
            (learner_limit,),
        ) as cursor:
            learners = [learner_row(dict(r)) for r in await cursor.fetchall()]
        names = [row["learner"] for row in learners]
    else:
        async with conn.execute(
            f"SELECT {', '.join(LEARNER_FIELDS)} FROM learners WHERE learner = ?", (learner,)
        ) as cursor:
            learners = [learner_row(dict(r)) for r in await cursor.fetchall()]
        total_learners = len(learners)
        names = [learner]
        paths, modules = [], []
    learner_paths: list[dict[str, Any]] = []
    for chunk in chunks(names):
        async with conn.execute(
            f"SELECT * FROM path_progress WHERE learner IN ({','.join('?' * len(chunk))})"
            " ORDER BY learner, path",
            chunk,
        ) as cursor:
            learner_paths.extend(learner_path_row(dict(r)) for r in await cursor.fetchall())
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
        async with conn.execute(
            f"SELECT {', '.join(MODULE_ROW_FIELDS)}"
            " FROM module_progress WHERE learner = ? ORDER BY path, module",
            (learner,),
        ) as cursor:
            modules = [module_row(r) for r in await cursor.fetchall()]
    return {
        "paths": paths,
        "modules": modules,
        "learners": learners,
        "learner_paths": learner_paths,
        "total_learners": total_learners,
        "truncated": total_learners > len(learners),
    }


async def last_seen(
    conn: aiosqlite.Connection, *, since: float | None = None, learner: str | None = None
) -> dict[str, float]:
    """See :meth:`jacmon.store.base.Store.last_seen`."""
    if learner is None:
        sql = "SELECT learner, last_activity FROM learners WHERE last_activity >= ?"
        params: list[Any] = [since or 0.0]
    else:
        sql = "SELECT learner, last_activity FROM learners WHERE learner = ?"
        params = [learner]
    async with conn.execute(sql, params) as cursor:
        return {name: last for name, last in await cursor.fetchall()}


async def recent_events(
    conn: aiosqlite.Connection,
    *,
    since: float,
    learner: str | None = None,
    through_seq: int | None = None,
) -> AsyncIterator[tuple[float, str, float | None, str]]:
    """See :meth:`jacmon.store.base.Store.recent_events`."""
    sql = "SELECT ts, learner, score, type FROM events WHERE ts >= ?"
    params: list[Any] = [since]
    if learner is not None:
        sql += " AND learner = ?"
        params.append(learner)
    if through_seq is not None:
        sql += " AND seq <= ?"
        params.append(through_seq)
    async with conn.execute(sql, params) as cursor:
        async for row in cursor:
            yield tuple(row)


async def progress_rows_since(
    conn: aiosqlite.Connection, after_seq: int, through_seq: int
) -> ProgressChanges:
    """Every progress row now of the learners with events ``after_seq+1..through_seq``:
    what a node that missed projection spans sends instead of their deltas."""
    async with conn.execute(
        "SELECT DISTINCT learner FROM events WHERE seq > ? AND seq <= ?", (after_seq, through_seq)
    ) as cursor:
        learners = sorted(row[0] for row in await cursor.fetchall())
    changes = ProgressChanges()
    for chunk in chunks(learners):
        marks = ",".join("?" * len(chunk))
        for table, rows in (
            ("learners", changes.learners),
            ("path_progress", changes.paths),
            ("module_progress", changes.modules),
        ):
            async with conn.execute(
                f"SELECT * FROM {table} WHERE learner IN ({marks})", list(chunk)
            ) as cursor:
                rows.extend(dict(row) for row in await cursor.fetchall())
    return changes
