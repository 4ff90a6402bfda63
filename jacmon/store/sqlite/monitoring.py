"""What the monitoring tasks read and write, in SQLite: set-based queries over the
events and progress tables, and the derived tables the tasks own.

The reads run on the reader connection; the writes inside the task's transaction
(:class:`jacmon.store.sqlite.store.SqliteTransaction`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from jacmon.analytics.daily import COMPLETION_TYPES

_COMPLETIONS_SQL = """
SELECT path, sum(completed_at > :mid), sum(completed_at <= :mid)
FROM module_progress
WHERE completed_at > :start AND completed_at <= :now
GROUP BY path
"""

_IN_PROGRESS_SQL = """
SELECT learner, path, percent, coalesce(enrolled_at, first_activity), last_activity
FROM path_progress WHERE status = 'in_progress'
"""

#: Learners enrolled on a path and not finished it, with their overall first/last activity
#: and the unfinished path they were last active on (the path their alerts name).
_MONITORED_SQL = """
SELECT l.learner, l.first_activity, l.last_activity,
       (SELECT p.path FROM path_progress p
        WHERE p.learner = l.learner AND p.status IN ('enrolled', 'in_progress')
        ORDER BY p.last_activity DESC, p.path LIMIT 1)
FROM learners l
WHERE l.learner IN (
    SELECT learner FROM path_progress WHERE status IN ('enrolled', 'in_progress')
)
"""

# Both score queries use the events_scores partial index (ts, learner, score).
_WINDOWS_SQL = """
SELECT learner,
       sum(ts > :mid), avg(CASE WHEN ts > :mid THEN score END),
       sum(ts <= :mid), avg(CASE WHEN ts <= :mid THEN score END)
FROM events
WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > :start AND ts <= :now
GROUP BY learner
"""

_LATEST_SQL = """
SELECT learner, path, score FROM (
    SELECT learner, path, score,
           row_number() OVER (PARTITION BY learner, path ORDER BY ts DESC) AS rn
    FROM events
    WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > :since AND ts <= :now
)
WHERE rn <= :keep
ORDER BY learner, path, rn
"""

_TYPES = ",".join(f"'{t}'" for t in COMPLETION_TYPES)

_DAY_SQL = f"""
SELECT learner,
       count(*),
       sum(type IN ({_TYPES})),
       sum(type = 'assessment.attempted'),
       count(score),
       avg(score),
       coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0)
FROM events
WHERE ts >= ? AND ts < ?
GROUP BY learner
"""


def _active_day_sql(starts: Sequence[float]) -> str:
    """A CASE that numbers each event's local day: boundaries differ on DST days."""
    branches = " ".join(
        f"WHEN ts >= {float(start)!r} THEN {index}"
        for index, start in sorted(enumerate(starts), reverse=True)
    )
    return f"CASE {branches} END"


async def catalog_path_ids(conn: aiosqlite.Connection) -> list[str]:
    async with conn.execute("SELECT path FROM catalog_paths ORDER BY path") as cursor:
        return [path for (path,) in await cursor.fetchall()]


async def path_completions(
    conn: aiosqlite.Connection, *, start: float, mid: float, now: float
) -> dict[str, tuple[int, int]]:
    params = {"mid": mid, "start": start, "now": now}
    async with conn.execute(_COMPLETIONS_SQL, params) as cursor:
        return {path: (this, last) for path, this, last in await cursor.fetchall()}


async def in_progress_paths(
    conn: aiosqlite.Connection,
) -> list[tuple[str, str, float, float, float]]:
    async with conn.execute(_IN_PROGRESS_SQL) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def activity_counts(
    conn: aiosqlite.Connection,
    *,
    recent: float,
    prior: float,
    day_starts: Sequence[float],
    start: float,
    now: float,
) -> dict[str, tuple[int, int, int]]:
    # One pass over the window's events (the learner/ts index covers it).
    sql = f"""
        SELECT learner,
               sum(ts > :recent),
               sum(ts > :prior AND ts <= :recent),
               count(DISTINCT CASE WHEN ts >= :first_day THEN {_active_day_sql(day_starts)} END)
        FROM events WHERE ts >= :start AND ts <= :now
        GROUP BY learner
    """
    params = {
        "recent": recent,
        "prior": prior,
        "first_day": day_starts[0],
        "start": start,
        "now": now,
    }
    stats: dict[str, tuple[int, int, int]] = {}
    async with conn.execute(sql, params) as cursor:
        async for learner, n_recent, n_prior, days in cursor:
            stats[learner] = (n_recent, n_prior, days)
    return stats


async def monitored_learners(
    conn: aiosqlite.Connection,
) -> list[tuple[str, float, float, str | None]]:
    async with conn.execute(_MONITORED_SQL) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def score_windows(
    conn: aiosqlite.Connection, *, start: float, mid: float, now: float
) -> list[tuple[str, int, float | None, int, float | None]]:
    params = {"mid": mid, "start": start, "now": now}
    async with conn.execute(_WINDOWS_SQL, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def latest_scores(
    conn: aiosqlite.Connection, *, since: float, now: float, keep: int
) -> list[tuple[str, str | None, float]]:
    params = {"since": since, "now": now, "keep": keep}
    async with conn.execute(_LATEST_SQL, params) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


async def daily_snapshot_days(conn: aiosqlite.Connection, days: Sequence[str]) -> set[str]:
    if not days:
        return set()
    marks = ",".join("?" * len(days))
    async with conn.execute(
        f"SELECT day FROM daily_platform_stats WHERE day IN ({marks})", list(days)
    ) as cursor:
        return {row[0] for row in await cursor.fetchall()}


async def learner_day_stats(
    conn: aiosqlite.Connection, start: float, end: float
) -> list[tuple[Any, ...]]:
    async with conn.execute(_DAY_SQL, (start, end)) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]


# Writes, inside the task's transaction


async def firing_rule_per_learner(
    conn: aiosqlite.Connection, rules: Sequence[str]
) -> dict[str, str]:
    if not rules:
        return {}
    marks = ",".join("?" * len(rules))
    async with conn.execute(
        f"SELECT learner, min(rule) FROM alerts WHERE state = 'firing'"
        f" AND rule IN ({marks}) GROUP BY learner",
        list(rules),
    ) as cursor:
        return {learner: rule for learner, rule in await cursor.fetchall()}


async def replace_velocity(
    conn: aiosqlite.Connection,
    velocity: Iterable[tuple[str, int, int, float | None, float]],
    pace: Iterable[tuple[str, str, float, float | None, float | None, float]],
) -> None:
    await conn.execute("DELETE FROM path_velocity")
    await conn.executemany(
        "INSERT INTO path_velocity (path, this_week, last_week, change_pct, computed_at)"
        " VALUES (?,?,?,?,?)",
        velocity,
    )
    await conn.execute("DELETE FROM learner_pace")
    await conn.executemany(
        "INSERT INTO learner_pace (learner, path, percent, pct_per_day,"
        " projected_finish, computed_at) VALUES (?,?,?,?,?,?)",
        pace,
    )


async def replace_daily_stats(
    conn: aiosqlite.Connection,
    day: str,
    learners: Iterable[tuple[Any, ...]],
    platform: tuple[Any, ...],
) -> None:
    await conn.execute("DELETE FROM daily_learner_stats WHERE day = ?", (day,))
    await conn.executemany(
        "INSERT INTO daily_learner_stats (day, learner, activities, completions,"
        " assessments, scored, avg_score, time_spent_s) VALUES (?,?,?,?,?,?,?,?)",
        [(day, *row) for row in learners],
    )
    await conn.execute(
        "INSERT OR REPLACE INTO daily_platform_stats (day, active_learners, activities,"
        " completions, assessments, avg_score, time_spent_s, computed_at)"
        " VALUES (?,?,?,?,?,?,?,?)",
        (day, *platform),
    )


async def delete_events_before(
    conn: aiosqlite.Connection, cutoff: float, *, dry_run: bool = False
) -> int:
    # Never an event the projection has not folded yet (progress would lose it).
    where = (
        "WHERE ts < ? AND seq <= coalesce((SELECT CAST(value AS INTEGER) FROM meta"
        " WHERE key = 'progress_seq'), 0)"
    )
    async with conn.execute(f"SELECT count(*) FROM events {where}", (cutoff,)) as cursor:
        (count,) = await cursor.fetchone()
    if count and not dry_run:
        await conn.execute(f"DELETE FROM events {where}", (cutoff,))
    if not dry_run:
        # The records pushed before the cutoff (kept as sent) go too, mapped or not.
        await conn.execute("DELETE FROM received WHERE received < ?", (cutoff,))
    return count


async def path_velocity(conn: aiosqlite.Connection) -> dict[str, dict[str, Any]]:
    """Path -> this_week, last_week, change_pct, as the velocity task last stored them."""
    async with conn.execute(
        "SELECT path, this_week, last_week, change_pct FROM path_velocity ORDER BY path"
    ) as cursor:
        rows = await cursor.fetchall()
    return {
        path: {"this_week": this, "last_week": last, "change_pct": change}
        for path, this, last, change in rows
    }
