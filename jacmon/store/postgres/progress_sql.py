"""Progress maintenance in PostgreSQL: set-based statements over a span of events.

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
* SQLite's ``max()`` hands the other bare columns of its row over; here the run
  ending at the latest active day is picked with ``DISTINCT ON``.

Each statement reads the batch's events by ``seq`` range ($1..$2), folds them per
key, joins the old row, computes the new one and upserts it; ``RETURNING`` hands
the new rows back for the dashboard stream's deltas. Order matters: modules,
the day sets (streaks are runs in them), then paths (a path's percent sums the
learner's module rows after the span), then learners.
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


#: The span's active days into the day sets streaks are computed from.
LEARNER_DAYS_SQL = f"""
INSERT INTO learner_days (learner, day)
SELECT DISTINCT learner, {_DAY} FROM events WHERE seq BETWEEN $1 AND $2
ON CONFLICT DO NOTHING
"""
PATH_DAYS_SQL = f"""
INSERT INTO path_days (learner, path, day)
SELECT DISTINCT learner, path, {_DAY} FROM events
WHERE seq BETWEEN $1 AND $2 AND path IS NOT NULL
ON CONFLICT DO NOTHING
"""


def _streak_ctes(days: str, keys: str) -> str:
    """CTEs ``runs`` (one row per run of days in a row: its length and last day),
    ``streaks`` (per key: the latest active day and the run ending there) and
    ``longest`` (per key: the longest run), over the whole day set of every key in
    ``delta``. A day minus its rank within its key is the same for every day of one run.
    SQLite takes the run ending at the latest day from ``max()``'s row; here DISTINCT ON."""
    names = keys.split(", ")
    on = " AND ".join(f"t.{k} = d.{k}" for k in names)
    of_t = ", ".join(f"t.{k}" for k in names)
    return f"""
    runs AS (
        SELECT {keys}, count(*)::integer AS length, max(day) AS last_day
        FROM (SELECT {of_t}, t.day,
                     t.day - row_number() OVER (PARTITION BY {of_t} ORDER BY t.day) AS run
              FROM delta AS d JOIN {days} AS t ON {on}) AS ranked
        GROUP BY {keys}, run),
    streaks AS MATERIALIZED (
        SELECT DISTINCT ON ({keys}) {keys}, last_day AS active_day, length AS streak
        FROM runs ORDER BY {keys}, last_day DESC),
    longest AS (SELECT {keys}, max(length) AS longest FROM runs GROUP BY {keys})"""


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
    SELECT learner, path, type, ts, duration_s, {_XP} AS xp
    FROM events WHERE seq BETWEEN $1 AND $2 AND path IS NOT NULL),
delta AS MATERIALIZED (
    SELECT learner, path,
           min(CASE WHEN type = 'path.enrolled' THEN ts END) AS enrolled_at,
           max(CASE WHEN type = 'path.unenrolled' THEN ts END) AS unenrolled_at,
           min(CASE WHEN type = 'path.completed' THEN ts END) AS completed_at,
           max(CASE WHEN type != 'path.unenrolled' THEN ts END) AS last_engaged,
           coalesce(sum(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END), 0.0) AS spent,
           sum(xp)::bigint AS xp, min(ts) AS first_ts, max(ts) AS last_ts
    FROM batch GROUP BY learner, path),
{_streak_ctes("path_days", "learner, path")},
catalog AS MATERIALIZED (
    SELECT p.path,
           (SELECT count(*) FROM catalog_modules c WHERE c.path = p.path) AS module_count,
           coalesce((SELECT source = 'file' FROM catalog_paths c WHERE c.path = p.path), false)
               AS authoritative
    FROM (SELECT DISTINCT path FROM delta) AS p),
sums AS (
    SELECT m.learner, m.path, coalesce(sum(m.percent), 0.0) AS total,
           count(*) FILTER (WHERE m.status = 'completed') AS completed,
           max(m.completed_at) AS done_at
    FROM delta AS d
    JOIN module_progress AS m ON m.learner = d.learner AND m.path = d.path
    JOIN catalog_modules AS c ON c.path = m.path AND c.module = m.module
    GROUP BY m.learner, m.path),
-- The old row (or nothing, a first activity) merged with the span's delta.
merged AS (
    SELECT d.*, k.module_count, k.authoritative, st.active_day, st.streak,
           coalesce(s.total, 0.0) AS total, coalesce(s.completed, 0) AS modules_completed,
           s.done_at,
           coalesce(o.time_spent_s, 0.0) AS old_spent,
           coalesce(o.xp, 0) AS old_xp,
           least(o.enrolled_at, d.enrolled_at) AS new_enrolled_at,
           greatest(o.unenrolled_at, d.unenrolled_at) AS new_unenrolled_at,
           greatest(o.last_engaged, d.last_engaged) AS new_engaged,
           least(o.completed_at, d.completed_at) AS completed_by_event,
           least(o.first_activity, d.first_ts) AS new_first,
           greatest(o.last_activity, d.last_ts) AS new_last
    FROM delta AS d
    JOIN catalog AS k USING (path)
    JOIN streaks AS st USING (learner, path)
    LEFT JOIN sums AS s USING (learner, path)
    LEFT JOIN path_progress AS o ON o.learner = d.learner AND o.path = d.path),
completion AS (
    SELECT *,
           CASE WHEN authoritative AND module_count > 0 AND modules_completed >= module_count
                THEN least(completed_by_event, done_at)
                ELSE completed_by_event END AS new_completed
    FROM merged)
INSERT INTO path_progress AS old
    (learner, path, status, percent, modules_completed, time_spent_s, xp, level,
     streak_days, active_day, enrolled_at, first_activity, last_activity, completed_at,
     unenrolled_at, last_engaged)
SELECT learner, path,
       CASE WHEN new_completed IS NOT NULL THEN 'completed'
            WHEN new_unenrolled_at IS NOT NULL
                 AND (new_engaged IS NULL OR new_unenrolled_at >= new_engaged) THEN 'unenrolled'
            WHEN total > 0 THEN 'in_progress'
            ELSE 'enrolled' END,
       CASE WHEN new_completed IS NOT NULL THEN 100.0
            ELSE least(100.0, total / greatest(module_count, 1)) END,
       modules_completed,
       old_spent + spent,
       old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       streak, active_day,
       new_enrolled_at, new_first, new_last, new_completed, new_unenrolled_at, new_engaged
FROM completion
ON CONFLICT (learner, path) DO UPDATE SET
    status = excluded.status, percent = excluded.percent,
    modules_completed = excluded.modules_completed, time_spent_s = excluded.time_spent_s,
    xp = excluded.xp, level = excluded.level, streak_days = excluded.streak_days,
    active_day = excluded.active_day, enrolled_at = excluded.enrolled_at,
    first_activity = excluded.first_activity, last_activity = excluded.last_activity,
    completed_at = excluded.completed_at, unenrolled_at = excluded.unenrolled_at,
    last_engaged = excluded.last_engaged
RETURNING learner, path, status, percent, modules_completed, time_spent_s, xp, level,
          streak_days, active_day, enrolled_at, first_activity, last_activity, completed_at,
          unenrolled_at, last_engaged
"""

LEARNER_SQL = f"""
WITH delta AS MATERIALIZED (
    SELECT learner, count(*) AS events,
           coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0) AS spent,
           sum({_XP})::bigint AS xp, min(ts) AS first_ts, max(ts) AS last_ts
    FROM events WHERE seq BETWEEN $1 AND $2 GROUP BY learner),
{_streak_ctes("learner_days", "learner")}
INSERT INTO learners AS old
    (learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
     first_activity, last_activity)
SELECT d.learner, coalesce(o.events, 0) + d.events,
       coalesce(o.time_spent_s, 0.0) + d.spent,
       coalesce(o.xp, 0) + d.xp,
       {_LEVEL.format(xp="coalesce(o.xp, 0) + d.xp")},
       st.streak, lg.longest, st.active_day,
       least(o.first_activity, d.first_ts),
       greatest(o.last_activity, d.last_ts)
FROM delta AS d
JOIN streaks AS st USING (learner)
JOIN longest AS lg USING (learner)
LEFT JOIN learners AS o ON o.learner = d.learner
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


async def update_active_days(conn: asyncpg.Connection, first_seq: int, last_seq: int) -> None:
    """Add the active days of events ``first_seq``..``last_seq`` to the day sets; run
    before the path and learner statements (their streaks read the sets)."""
    await conn.execute(LEARNER_DAYS_SQL, first_seq, last_seq)
    await conn.execute(PATH_DAYS_SQL, first_seq, last_seq)


async def update_path_progress(
    conn: asyncpg.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into path_progress (after the modules and
    :func:`update_active_days`)."""
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
