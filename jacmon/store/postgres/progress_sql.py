"""Progress maintenance in PostgreSQL: three set-based statements over a batch's events.

The same statements as :mod:`jacmon.store.sqlite.progress_sql` (the rules of
:mod:`jacmon.analytics.progress`, which tests/store/test_progress_sql.py holds
both stores to), in PostgreSQL's dialect. What differs, and why it matters:

* SQLite's two-argument ``min``/``max`` are ``least``/``greatest`` here. Those skip
  NULLs where SQLite's return NULL; every use below either has no NULL argument
  or wrapped SQLite's in ``coalesce(min(a, b), a, b)``, which is ``least(a, b)``.
* ``total(x)`` (0.0 over no values) is ``coalesce(sum(x), 0.0)``; a boolean sum is
  ``count(*) FILTER (WHERE ...)``.
* ``CAST(x AS INTEGER)`` truncates in SQLite but rounds in PostgreSQL, so the XP of
  a score is ``trunc(score / 10)`` and the level ``floor(sqrt(...))``.
* ``sum`` of BIGINT is NUMERIC in PostgreSQL: sums of XP and counts are cast back
  to BIGINT so the level is computed on the integers SQLite uses (xp / 100 is an
  integer division in both).

Each statement reads the batch's events by ``seq`` range ($1..$2), folds them per
key, joins the old row, computes the new one and upserts it; ``RETURNING`` hands
the new rows back for the dashboard stream's deltas. Order matters: modules,
then paths (a path's percent sums the learner's module rows after the batch),
then learners.
"""

from __future__ import annotations

from typing import Any

import asyncpg

#: XP per event (analytics.progress.xp_for_event), from the events table's columns.
_XP = """CASE type
        WHEN 'assessment.attempted' THEN coalesce(trunc(score / 10)::integer, 0)
        WHEN 'lesson.completed' THEN 10
        WHEN 'module.completed' THEN 50
        WHEN 'path.completed' THEN 200
        WHEN 'assessment.passed' THEN 25
        ELSE 1 END"""

#: UTC day number (analytics.progress.day_number).
_DAY = "floor(ts / 86400)::integer"

#: Level for an XP total (analytics.progress.level_for_xp); {xp} is a BIGINT expression.
_LEVEL = "(1 + floor(sqrt(greatest(0, {xp}) / 100))::integer)"


def _streak(old_streak: str, old_day: str, run: str) -> str:
    """SQL for advance_streak: the new streak from the old one and the batch's day run."""
    return (
        f"CASE WHEN {run}.last_day <= {old_day} THEN {old_streak}"
        f" WHEN {run}.trailing_start <= {old_day} + 1"
        f" THEN {old_streak} + {run}.last_day - {old_day}"
        f" ELSE {run}.last_day - {run}.trailing_start + 1 END"
    )


def _per_day(keys: str, aggregates: str) -> str:
    """CTE ``per_day``: the batch folded per key and UTC day, plus where runs of days start
    (a day whose previous day has no events)."""
    return f"""
    per_day AS (
        SELECT {keys}, day, {aggregates},
               coalesce(day - lag(day) OVER (PARTITION BY {keys} ORDER BY day) > 1, true)
                   AS starts_run
        FROM batch GROUP BY {keys}, day)"""


_RUN_COLUMNS = """min(day) AS first_day, max(day) AS last_day,
           max(CASE WHEN starts_run THEN day END) AS trailing_start"""

_PATH_DAY_AGGREGATES = """
           min(CASE WHEN type = 'path.enrolled' THEN ts END) AS enrolled_at,
           max(CASE WHEN type = 'path.unenrolled' THEN ts END) AS unenrolled_at,
           min(CASE WHEN type = 'path.completed' THEN ts END) AS completed_at,
           max(CASE WHEN type NOT IN ('path.enrolled', 'path.unenrolled') THEN ts END)
               AS last_engaged,
           coalesce(sum(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END), 0.0) AS spent,
           sum(xp)::bigint AS xp, min(ts) AS first_ts, max(ts) AS last_ts"""

_LEARNER_DAY_AGGREGATES = """
           count(*) AS events,
           coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0) AS spent,
           sum(xp)::bigint AS xp, min(ts) AS first_ts, max(ts) AS last_ts"""

MODULE_SQL = """
INSERT INTO module_progress AS old
    (learner, path, module, status, percent, time_spent_s,
     first_activity, last_activity, completed_at)
SELECT learner, path, module,
       CASE WHEN done IS NULL THEN 'in_progress' ELSE 'completed' END,
       CASE WHEN done IS NULL THEN greatest(progress, 0.0) ELSE 100.0 END,
       spent, first_ts, last_ts, done
FROM (
    SELECT learner, path, module,
           coalesce(max(progress), 0.0) AS progress,
           min(CASE WHEN type = 'module.completed' THEN ts END) AS done,
           coalesce(sum(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END), 0.0) AS spent,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM events
    WHERE seq BETWEEN $1 AND $2 AND module IS NOT NULL AND path IS NOT NULL
    GROUP BY learner, path, module) AS batch
ON CONFLICT (learner, path, module) DO UPDATE SET
    completed_at = least(old.completed_at, excluded.completed_at),
    status = CASE WHEN coalesce(old.completed_at, excluded.completed_at) IS NULL
                  THEN 'in_progress' ELSE 'completed' END,
    percent = CASE WHEN coalesce(old.completed_at, excluded.completed_at) IS NULL
                   THEN greatest(old.percent, excluded.percent) ELSE 100.0 END,
    time_spent_s = old.time_spent_s + excluded.time_spent_s,
    first_activity = least(old.first_activity, excluded.first_activity),
    last_activity = greatest(old.last_activity, excluded.last_activity)
RETURNING learner, path, module, status, percent, time_spent_s,
          first_activity, last_activity, completed_at
"""

PATH_SQL = f"""
WITH batch AS (
    SELECT learner, path, type, ts, duration_s, {_DAY} AS day, {_XP} AS xp
    FROM events WHERE seq BETWEEN $1 AND $2 AND path IS NOT NULL),
{_per_day("learner, path", _PATH_DAY_AGGREGATES)},
delta AS MATERIALIZED (
    SELECT learner, path, min(enrolled_at) AS enrolled_at, max(unenrolled_at) AS unenrolled_at,
           min(completed_at) AS completed_at, max(last_engaged) AS last_engaged,
           coalesce(sum(spent), 0.0) AS spent, sum(xp)::bigint AS xp, min(first_ts) AS first_ts,
           max(last_ts) AS last_ts, {_RUN_COLUMNS}
    FROM per_day GROUP BY learner, path),
catalog AS MATERIALIZED (
    SELECT p.path,
           (SELECT count(*) FROM catalog_modules c WHERE c.path = p.path) AS module_count,
           coalesce((SELECT source = 'file' FROM catalog_paths c WHERE c.path = p.path), false)
               AS authoritative
    FROM (SELECT DISTINCT path FROM delta) AS p),
sums AS (
    SELECT m.learner, m.path, coalesce(sum(m.percent), 0.0) AS total,
           count(*) FILTER (WHERE m.status = 'completed') AS completed
    FROM delta AS d
    JOIN module_progress AS m ON m.learner = d.learner AND m.path = d.path
    JOIN catalog_modules AS c ON c.path = m.path AND c.module = m.module
    GROUP BY m.learner, m.path),
-- The old row, or the defaults of a first activity (apply_path with row None).
merged AS (
    SELECT d.*, k.module_count, k.authoritative,
           coalesce(s.total, 0.0) AS total, coalesce(s.completed, 0) AS modules_completed,
           coalesce(o.status, 'enrolled') AS old_status,
           coalesce(o.time_spent_s, 0.0) AS old_spent,
           coalesce(o.xp, 0) AS old_xp,
           coalesce(o.streak_days, 0) AS old_streak,
           coalesce(o.active_day, d.first_day - 1) AS old_day,
           least(o.enrolled_at, d.enrolled_at) AS new_enrolled_at,
           least(o.completed_at, d.completed_at) AS completed_before_rule,
           least(o.first_activity, d.first_ts) AS new_first,
           greatest(o.last_activity, d.last_ts) AS new_last
    FROM delta AS d
    JOIN catalog AS k USING (path)
    LEFT JOIN sums AS s USING (learner, path)
    LEFT JOIN path_progress AS o ON o.learner = d.learner AND o.path = d.path),
completion AS (
    SELECT *,
           CASE WHEN completed_before_rule IS NULL AND authoritative AND module_count > 0
                     AND modules_completed >= module_count
                THEN last_ts ELSE completed_before_rule END AS new_completed
    FROM merged)
INSERT INTO path_progress AS old
    (learner, path, status, percent, modules_completed, time_spent_s, xp, level,
     streak_days, active_day, enrolled_at, first_activity, last_activity, completed_at)
SELECT learner, path,
       CASE WHEN new_completed IS NOT NULL THEN 'completed'
            WHEN unenrolled_at IS NOT NULL
                 AND (last_engaged IS NULL OR unenrolled_at >= last_engaged) THEN 'unenrolled'
            WHEN last_engaged IS NOT NULL OR enrolled_at IS NOT NULL
                 OR old_status != 'unenrolled'
                THEN CASE WHEN total > 0 THEN 'in_progress' ELSE 'enrolled' END
            ELSE old_status END,
       CASE WHEN new_completed IS NOT NULL THEN 100.0
            ELSE least(100.0, total / greatest(module_count, 1)) END,
       modules_completed,
       old_spent + spent,
       old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       {_streak("old_streak", "old_day", "completion")},
       greatest(old_day, last_day),
       new_enrolled_at, new_first, new_last, new_completed
FROM completion
ON CONFLICT (learner, path) DO UPDATE SET
    status = excluded.status, percent = excluded.percent,
    modules_completed = excluded.modules_completed, time_spent_s = excluded.time_spent_s,
    xp = excluded.xp, level = excluded.level, streak_days = excluded.streak_days,
    active_day = excluded.active_day, enrolled_at = excluded.enrolled_at,
    first_activity = excluded.first_activity, last_activity = excluded.last_activity,
    completed_at = excluded.completed_at
RETURNING learner, path, status, percent, modules_completed, time_spent_s, xp, level,
          streak_days, active_day, enrolled_at, first_activity, last_activity, completed_at
"""

LEARNER_SQL = f"""
WITH batch AS (
    SELECT learner, type, ts, duration_s, {_DAY} AS day, {_XP} AS xp
    FROM events WHERE seq BETWEEN $1 AND $2),
{_per_day("learner", _LEARNER_DAY_AGGREGATES)},
delta AS (
    SELECT learner, sum(events)::bigint AS events, coalesce(sum(spent), 0.0) AS spent,
           sum(xp)::bigint AS xp, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
           {_RUN_COLUMNS}
    FROM per_day GROUP BY learner),
merged AS (
    SELECT d.*,
           coalesce(o.events, 0) AS old_events,
           coalesce(o.time_spent_s, 0.0) AS old_spent,
           coalesce(o.xp, 0) AS old_xp,
           coalesce(o.streak_days, 0) AS old_streak,
           coalesce(o.longest_streak, 0) AS old_longest,
           coalesce(o.active_day, d.first_day - 1) AS old_day,
           least(o.first_activity, d.first_ts) AS new_first,
           greatest(o.last_activity, d.last_ts) AS new_last
    FROM delta AS d
    LEFT JOIN learners AS o ON o.learner = d.learner),
streaks AS (
    SELECT *, {_streak("old_streak", "old_day", "merged")} AS new_streak FROM merged)
INSERT INTO learners AS old
    (learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
     first_activity, last_activity)
SELECT learner, old_events + events, old_spent + spent, old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       new_streak, greatest(old_longest, new_streak), greatest(old_day, last_day),
       new_first, new_last
FROM streaks
ON CONFLICT (learner) DO UPDATE SET
    events = excluded.events, time_spent_s = excluded.time_spent_s, xp = excluded.xp,
    level = excluded.level, streak_days = excluded.streak_days,
    longest_streak = excluded.longest_streak, active_day = excluded.active_day,
    first_activity = excluded.first_activity, last_activity = excluded.last_activity
RETURNING learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
          first_activity, last_activity
"""


async def _rows(conn: asyncpg.Connection, sql: str, first: int, last: int) -> list[dict[str, Any]]:
    return [dict(row) for row in await conn.fetch(sql, first, last)]


async def update_module_progress(
    conn: asyncpg.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into module_progress; the new rows."""
    return await _rows(conn, MODULE_SQL, first_seq, last_seq)


async def update_path_progress(
    conn: asyncpg.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into path_progress (after the modules)."""
    return await _rows(conn, PATH_SQL, first_seq, last_seq)


async def update_learners(
    conn: asyncpg.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into learners; the new rows."""
    return await _rows(conn, LEARNER_SQL, first_seq, last_seq)


async def recompute_path_percents(
    conn: asyncpg.Connection, counts: dict[str, int], authoritative: set[str]
) -> None:
    """Re-derive every learner's percent on the paths of ``counts`` (path -> module count)
    after their module count changed; on an ``authoritative`` path, learners who have
    completed every listed module complete the path (as the next event would make them)."""
    mine = (
        " FROM module_progress m"
        " JOIN catalog_modules c ON c.path = m.path AND c.module = m.module"
        " WHERE m.learner = path_progress.learner AND m.path = path_progress.path"
    )
    for path, module_count in counts.items():
        count = max(module_count, 1)
        await conn.execute(
            "UPDATE path_progress SET percent = least(100.0,"
            f" coalesce((SELECT sum(m.percent){mine}), 0) / $1::float8),"
            f" modules_completed = (SELECT count(*){mine} AND m.status = 'completed')"
            " WHERE path = $2 AND status != 'completed'",
            count,
            path,
        )
        if path in authoritative:
            await conn.execute(
                "UPDATE path_progress SET status = 'completed', percent = 100.0,"
                f" completed_at = (SELECT max(m.completed_at){mine})"
                " WHERE path = $1 AND status != 'completed' AND modules_completed >= $2",
                path,
                count,
            )
