"""What the monitoring tasks read and write, in PostgreSQL: the set-based queries of
:mod:`jacmon.store.sqlite.monitoring` and the derived tables the tasks own.

Boolean sums are ``count(*) FILTER (WHERE ...)``; NULL paths sort first, as in SQLite;
text sorts by code point (``COLLATE "C"``). Rows come in the order SQLite's plans give
them (its primary-key and GROUP BY order, by learner or path): the tasks plan alerts
in row order, so the same data gives the same alerts, ids and change log on both stores.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import asyncpg

from jacmon.analytics.daily import COMPLETION_TYPES

Conn = asyncpg.Connection | asyncpg.Pool

_COMPLETIONS_SQL = """
SELECT path, count(*) FILTER (WHERE completed_at > $1), count(*) FILTER (WHERE completed_at <= $1)
FROM module_progress
WHERE completed_at > $2 AND completed_at <= $3
GROUP BY path
ORDER BY path COLLATE "C"
"""

_IN_PROGRESS_SQL = """
SELECT learner, path, percent, coalesce(enrolled_at, first_activity), last_activity
FROM path_progress WHERE status = 'in_progress'
ORDER BY learner COLLATE "C", path COLLATE "C"
"""

_MONITORED_SQL = """
SELECT l.learner, l.first_activity, l.last_activity,
       (SELECT p.path FROM path_progress p
        WHERE p.learner = l.learner AND p.status IN ('enrolled', 'in_progress')
        ORDER BY p.last_activity DESC, p.path COLLATE "C" LIMIT 1)
FROM learners l
WHERE l.learner IN (
    SELECT learner FROM path_progress WHERE status IN ('enrolled', 'in_progress')
)
ORDER BY l.learner COLLATE "C"
"""

_WINDOWS_SQL = """
SELECT learner,
       count(*) FILTER (WHERE ts > $1), avg(CASE WHEN ts > $1 THEN score END),
       count(*) FILTER (WHERE ts <= $1), avg(CASE WHEN ts <= $1 THEN score END)
FROM events
WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > $2 AND ts <= $3
GROUP BY learner
ORDER BY learner COLLATE "C"
"""

_LATEST_SQL = """
SELECT learner, path, score FROM (
    SELECT learner, path, score,
           row_number() OVER (PARTITION BY learner, path ORDER BY ts DESC) AS rn
    FROM events
    WHERE type = 'assessment.attempted' AND score IS NOT NULL AND ts > $1 AND ts <= $2
) AS ranked
WHERE rn <= $3
ORDER BY learner COLLATE "C", path COLLATE "C" NULLS FIRST, rn
"""

_TYPES = ",".join(f"'{t}'" for t in COMPLETION_TYPES)

_DAY_SQL = f"""
SELECT learner,
       count(*),
       count(*) FILTER (WHERE type IN ({_TYPES})),
       count(*) FILTER (WHERE type = 'assessment.attempted'),
       count(score),
       avg(score),
       coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0)
FROM events
WHERE ts >= $1 AND ts < $2
GROUP BY learner
ORDER BY learner COLLATE "C"
"""


def _active_day_sql(starts: Sequence[float]) -> str:
    """A CASE that numbers each event's local day: boundaries differ on DST days."""
    branches = " ".join(
        f"WHEN ts >= {float(start)!r} THEN {index}"
        for index, start in sorted(enumerate(starts), reverse=True)
    )
    return f"CASE {branches} END"


async def catalog_path_ids(conn: Conn) -> list[str]:
    rows = await conn.fetch('SELECT path FROM catalog_paths ORDER BY path COLLATE "C"')
    return [row[0] for row in rows]


async def path_completions(
    conn: Conn, *, start: float, mid: float, now: float
) -> dict[str, tuple[int, int]]:
    rows = await conn.fetch(_COMPLETIONS_SQL, float(mid), float(start), float(now))
    return {path: (this, last) for path, this, last in rows}


async def in_progress_paths(conn: Conn) -> list[tuple[str, str, float, float, float]]:
    return [tuple(row) for row in await conn.fetch(_IN_PROGRESS_SQL)]


async def activity_counts(
    conn: Conn,
    *,
    recent: float,
    prior: float,
    day_starts: Sequence[float],
    start: float,
    now: float,
) -> dict[str, tuple[int, int, int]]:
    sql = f"""
        SELECT learner,
               count(*) FILTER (WHERE ts > $1),
               count(*) FILTER (WHERE ts > $2 AND ts <= $1),
               count(DISTINCT CASE WHEN ts >= $3 THEN {_active_day_sql(day_starts)} END)
        FROM events WHERE ts >= $4 AND ts <= $5
        GROUP BY learner
        ORDER BY learner COLLATE "C"
    """
    rows = await conn.fetch(
        sql, float(recent), float(prior), float(day_starts[0]), float(start), float(now)
    )
    return {learner: (n_recent, n_prior, days) for learner, n_recent, n_prior, days in rows}


async def monitored_learners(conn: Conn) -> list[tuple[str, float, float, str | None]]:
    return [tuple(row) for row in await conn.fetch(_MONITORED_SQL)]


async def score_windows(
    conn: Conn, *, start: float, mid: float, now: float
) -> list[tuple[str, int, float | None, int, float | None]]:
    rows = await conn.fetch(_WINDOWS_SQL, float(mid), float(start), float(now))
    return [tuple(row) for row in rows]


async def latest_scores(
    conn: Conn, *, since: float, now: float, keep: int
) -> list[tuple[str, str | None, float]]:
    return [tuple(row) for row in await conn.fetch(_LATEST_SQL, float(since), float(now), keep)]


async def daily_snapshot_days(conn: Conn, days: Sequence[str]) -> set[str]:
    if not days:
        return set()
    rows = await conn.fetch(
        "SELECT day FROM daily_platform_stats WHERE day = ANY($1::text[])", list(days)
    )
    return {row[0] for row in rows}


async def learner_day_stats(conn: Conn, start: float, end: float) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in await conn.fetch(_DAY_SQL, float(start), float(end))]


# Writes, inside the task's transaction


async def firing_rule_per_learner(conn: Conn, rules: Sequence[str]) -> dict[str, str]:
    if not rules:
        return {}
    rows = await conn.fetch(
        "SELECT learner, min(rule COLLATE \"C\") FROM alerts WHERE state = 'firing'"
        ' AND rule = ANY($1::text[]) GROUP BY learner ORDER BY learner COLLATE "C"',
        list(rules),
    )
    return {learner: rule for learner, rule in rows}


async def replace_velocity(
    conn: asyncpg.Connection,
    velocity: Iterable[tuple[str, int, int, float | None, float]],
    pace: Iterable[tuple[str, str, float, float | None, float | None, float]],
) -> None:
    await conn.execute("DELETE FROM path_velocity")
    await conn.executemany(
        "INSERT INTO path_velocity (path, this_week, last_week, change_pct, computed_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        list(velocity),
    )
    await conn.execute("DELETE FROM learner_pace")
    await conn.executemany(
        "INSERT INTO learner_pace (learner, path, percent, pct_per_day,"
        " projected_finish, computed_at) VALUES ($1, $2, $3, $4, $5, $6)",
        list(pace),
    )


async def replace_daily_stats(
    conn: asyncpg.Connection,
    day: str,
    learners: Iterable[tuple[Any, ...]],
    platform: tuple[Any, ...],
) -> None:
    await conn.execute("DELETE FROM daily_learner_stats WHERE day = $1", day)
    await conn.executemany(
        "INSERT INTO daily_learner_stats (day, learner, activities, completions,"
        " assessments, scored, avg_score, time_spent_s) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        [(day, *row) for row in learners],
    )
    await conn.execute(
        "INSERT INTO daily_platform_stats (day, active_learners, activities,"
        " completions, assessments, avg_score, time_spent_s, computed_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (day) DO UPDATE SET active_learners = excluded.active_learners,"
        " activities = excluded.activities, completions = excluded.completions,"
        " assessments = excluded.assessments, avg_score = excluded.avg_score,"
        " time_spent_s = excluded.time_spent_s, computed_at = excluded.computed_at",
        day,
        *platform,
    )


async def delete_events_before(
    conn: asyncpg.Connection, cutoff: float, *, dry_run: bool = False
) -> int:
    """Delete events with ``ts < cutoff`` (epoch seconds) that the projection has folded;
    the seq counter keeps the high-water mark."""
    # Never an event after the watermark: progress would lose it. The watermark only
    # grows, so a projector committing meanwhile makes this merely conservative.
    where = (
        "WHERE ts < $1 AND seq <= coalesce((SELECT value::bigint FROM meta"
        " WHERE key = 'progress_seq'), 0)"
    )
    count = await conn.fetchval(f"SELECT count(*) FROM events {where}", float(cutoff))
    if count and not dry_run:
        await conn.execute(f"DELETE FROM events {where}", float(cutoff))
    if not dry_run:
        # The records pushed before the cutoff (kept as sent) go too, mapped or not.
        await conn.execute("DELETE FROM received WHERE received < $1", float(cutoff))
    return count


async def path_velocity(conn: asyncpg.Pool | asyncpg.Connection) -> dict[str, dict[str, Any]]:
    """Path -> this_week, last_week, change_pct, as the velocity task last stored them."""
    rows = await conn.fetch(
        "SELECT path, this_week, last_week, change_pct FROM path_velocity ORDER BY path"
    )
    return {
        path: {"this_week": this, "last_week": last, "change_pct": change}
        for path, this, last, change in rows
    }
