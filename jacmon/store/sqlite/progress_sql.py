"""Progress maintenance as set-based SQL statements over a span of stored events.

The rules are those of :mod:`jacmon.analytics.progress` (the reference the
tests hold these statements to). Each statement reads the batch's events by
``seq`` range, folds them per key, joins the old row, computes the new one
and upserts it, all inside SQLite: one statement per table instead of a
Python round per touched row. ``RETURNING`` hands the new rows back for the
dashboard stream's deltas.

Order matters: modules first (the path percent sums the learner's module rows
after the span), the day sets, then paths, then learners.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any


def _floor(value: float | None) -> float | None:
    return None if value is None else float(math.floor(value))


def _sqrt(value: float | None) -> float | None:
    return None if value is None or value < 0 else math.sqrt(value)


#: SQL math functions the statements use, and Python stand-ins with SQLite's
#: results, registered on connections whose SQLite was built without
#: SQLITE_ENABLE_MATH_FUNCTIONS (see database._connect).
MATH_FALLBACKS = {"floor": _floor, "sqrt": _sqrt}

#: XP per event (analytics.progress.xp_for_event), from the events table's columns.
_XP = """CASE type
        WHEN 'assessment.attempted' THEN coalesce(CAST(score / 10 AS INTEGER), 0)
        WHEN 'lesson.completed' THEN 10
        WHEN 'module.completed' THEN 50
        WHEN 'path.completed' THEN 200
        WHEN 'assessment.passed' THEN 25
        ELSE 1 END"""

#: UTC day number (analytics.progress.day_number).
_DAY = "CAST(floor(ts / 86400.0) AS INTEGER)"

#: Level for an XP total (analytics.progress.level_for_xp); {xp} is the expression.
_LEVEL = "(1 + CAST(sqrt(max(0, {xp}) / 100) AS INTEGER))"


#: The span's active days into the day sets streaks are computed from.
_LEARNER_DAYS_SQL = f"""
INSERT OR IGNORE INTO learner_days (learner, day)
SELECT DISTINCT learner, {_DAY} FROM events WHERE seq BETWEEN :first_seq AND :last_seq
"""
_PATH_DAYS_SQL = f"""
INSERT OR IGNORE INTO path_days (learner, path, day)
SELECT DISTINCT learner, path, {_DAY} FROM events
WHERE seq BETWEEN :first_seq AND :last_seq AND path IS NOT NULL
"""


def _streak_ctes(days: str, keys: str) -> str:
    """CTEs ``runs`` (one row per run of days in a row: its length and last day) and
    ``streaks`` (per key: the latest active day, the run ending there, the longest run),
    over the whole day set of every key in ``delta``. ``days`` is the day table; a day
    minus its rank within its key is the same for every day of one run."""
    names = keys.split(", ")
    on = " AND ".join(f"t.{k} = d.{k}" for k in names)
    of_t = ", ".join(f"t.{k}" for k in names)
    return f"""
    runs AS (
        SELECT {keys}, count(*) AS length, max(day) AS last_day
        FROM (SELECT {of_t}, t.day,
                     t.day - row_number() OVER (PARTITION BY {of_t} ORDER BY t.day) AS run
              FROM delta AS d JOIN {days} AS t ON {on})
        GROUP BY {keys}, run),
    streaks AS MATERIALIZED (
        -- SQLite takes the bare column (length) from the row holding max(last_day).
        SELECT {keys}, max(last_day) AS active_day, length AS streak FROM runs GROUP BY {keys}),
    longest AS (SELECT {keys}, max(length) AS longest FROM runs GROUP BY {keys})"""


_MODULE_SQL = """
INSERT INTO module_progress AS old
    (learner, path, module, status, percent, time_spent_s,
     first_activity, last_activity, completed_at)
SELECT learner, path, module,
       CASE WHEN done IS NULL THEN 'in_progress' ELSE 'completed' END,
       CASE WHEN done IS NULL THEN max(progress, 0.0) ELSE 100.0 END,
       spent, first_ts, last_ts, done
FROM (
    SELECT learner, path, module,
           coalesce(max(progress), 0.0) AS progress,
           min(CASE WHEN type = 'module.completed' THEN ts END) AS done,
           total(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END) AS spent,
           min(ts) AS first_ts, max(ts) AS last_ts
    FROM events
    WHERE seq BETWEEN :first_seq AND :last_seq AND module IS NOT NULL AND path IS NOT NULL
    GROUP BY learner, path, module)
WHERE true
ON CONFLICT (learner, path, module) DO UPDATE SET
    completed_at = coalesce(min(old.completed_at, excluded.completed_at),
                            old.completed_at, excluded.completed_at),
    status = CASE WHEN coalesce(old.completed_at, excluded.completed_at) IS NULL
                  THEN 'in_progress' ELSE 'completed' END,
    percent = CASE WHEN coalesce(old.completed_at, excluded.completed_at) IS NULL
                   THEN max(old.percent, excluded.percent) ELSE 100.0 END,
    time_spent_s = old.time_spent_s + excluded.time_spent_s,
    first_activity = min(old.first_activity, excluded.first_activity),
    last_activity = max(old.last_activity, excluded.last_activity)
RETURNING learner, path, module, status, percent, time_spent_s,
          first_activity, last_activity, completed_at
"""

_PATH_SQL = f"""
WITH batch AS (
    SELECT learner, path, type, ts, duration_s, {_XP} AS xp
    FROM events WHERE seq BETWEEN :first_seq AND :last_seq AND path IS NOT NULL),
delta AS MATERIALIZED (
    SELECT learner, path,
           min(CASE WHEN type = 'path.enrolled' THEN ts END) AS enrolled_at,
           max(CASE WHEN type = 'path.unenrolled' THEN ts END) AS unenrolled_at,
           min(CASE WHEN type = 'path.completed' THEN ts END) AS completed_at,
           max(CASE WHEN type != 'path.unenrolled' THEN ts END) AS last_engaged,
           total(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END) AS spent,
           sum(xp) AS xp, min(ts) AS first_ts, max(ts) AS last_ts
    FROM batch GROUP BY learner, path),
{_streak_ctes("path_days", "learner, path")},
catalog AS MATERIALIZED (
    SELECT p.path,
           (SELECT count(*) FROM catalog_modules c WHERE c.path = p.path) AS module_count,
           coalesce((SELECT source = 'file' FROM catalog_paths c WHERE c.path = p.path), 0)
               AS authoritative
    FROM (SELECT DISTINCT path FROM delta) AS p),
sums AS (
    SELECT m.learner, m.path, total(m.percent) AS total,
           sum(m.status = 'completed') AS completed, max(m.completed_at) AS done_at
    FROM delta AS d
    CROSS JOIN module_progress AS m ON m.learner = d.learner AND m.path = d.path
    JOIN catalog_modules AS c ON c.path = m.path AND c.module = m.module
    GROUP BY m.learner, m.path),
-- The old row (or nothing, a first activity) merged with the span's delta.
merged AS (
    SELECT d.*, k.module_count, k.authoritative, st.active_day, st.streak,
           coalesce(s.total, 0.0) AS total, coalesce(s.completed, 0) AS modules_completed,
           s.done_at,
           coalesce(o.time_spent_s, 0.0) AS old_spent,
           coalesce(o.xp, 0) AS old_xp,
           coalesce(min(o.enrolled_at, d.enrolled_at), o.enrolled_at, d.enrolled_at)
               AS new_enrolled_at,
           coalesce(max(o.unenrolled_at, d.unenrolled_at), o.unenrolled_at, d.unenrolled_at)
               AS new_unenrolled_at,
           coalesce(max(o.last_engaged, d.last_engaged), o.last_engaged, d.last_engaged)
               AS new_engaged,
           coalesce(min(o.completed_at, d.completed_at), o.completed_at, d.completed_at)
               AS completed_by_event,
           coalesce(min(o.first_activity, d.first_ts), d.first_ts) AS new_first,
           coalesce(max(o.last_activity, d.last_ts), d.last_ts) AS new_last
    FROM delta AS d
    JOIN catalog AS k USING (path)
    JOIN streaks AS st USING (learner, path)
    LEFT JOIN sums AS s USING (learner, path)
    LEFT JOIN path_progress AS o ON o.learner = d.learner AND o.path = d.path),
completion AS (
    SELECT *,
           CASE WHEN authoritative AND module_count > 0 AND modules_completed >= module_count
                THEN coalesce(min(completed_by_event, done_at), completed_by_event, done_at)
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
            ELSE min(100.0, total / max(module_count, 1)) END,
       modules_completed,
       old_spent + spent,
       old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       streak, active_day,
       new_enrolled_at, new_first, new_last, new_completed, new_unenrolled_at, new_engaged
FROM completion
WHERE true
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

_LEARNER_SQL = f"""
WITH delta AS MATERIALIZED (
    SELECT learner, count(*) AS events,
           total(CASE WHEN type = 'session.ended' THEN duration_s END) AS spent,
           sum({_XP}) AS xp, min(ts) AS first_ts, max(ts) AS last_ts
    FROM events WHERE seq BETWEEN :first_seq AND :last_seq GROUP BY learner),
{_streak_ctes("learner_days", "learner")}
INSERT INTO learners AS old
    (learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
     first_activity, last_activity)
SELECT d.learner, coalesce(o.events, 0) + d.events,
       coalesce(o.time_spent_s, 0.0) + d.spent,
       coalesce(o.xp, 0) + d.xp,
       {_LEVEL.format(xp="coalesce(o.xp, 0) + d.xp")},
       st.streak, lg.longest, st.active_day,
       coalesce(min(o.first_activity, d.first_ts), d.first_ts),
       coalesce(max(o.last_activity, d.last_ts), d.last_ts)
FROM delta AS d
JOIN streaks AS st USING (learner)
JOIN longest AS lg USING (learner)
LEFT JOIN learners AS o ON o.learner = d.learner
WHERE true
ON CONFLICT (learner) DO UPDATE SET
    events = excluded.events, time_spent_s = excluded.time_spent_s, xp = excluded.xp,
    level = excluded.level, streak_days = excluded.streak_days,
    longest_streak = excluded.longest_streak, active_day = excluded.active_day,
    first_activity = excluded.first_activity, last_activity = excluded.last_activity
RETURNING learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
          first_activity, last_activity
"""


def _rows(conn: sqlite3.Connection, sql: str, span: dict[str, int]) -> list[dict[str, Any]]:
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples: dict(zip()) is cheaper than sqlite3.Row
    cursor.execute(sql, span)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def update_module_progress(
    conn: sqlite3.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into module_progress; the new rows."""
    return _rows(conn, _MODULE_SQL, {"first_seq": first_seq, "last_seq": last_seq})


def update_active_days(conn: sqlite3.Connection, first_seq: int, last_seq: int) -> None:
    """Add the active days of events ``first_seq``..``last_seq`` to the day sets; run
    before the path and learner statements (their streaks read the sets)."""
    span = {"first_seq": first_seq, "last_seq": last_seq}
    conn.execute(_LEARNER_DAYS_SQL, span)
    conn.execute(_PATH_DAYS_SQL, span)


def update_path_progress(
    conn: sqlite3.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into path_progress; the new rows.

    Run after :func:`update_module_progress` (path percents sum the module rows) and
    :func:`update_active_days`.
    """
    return _rows(conn, _PATH_SQL, {"first_seq": first_seq, "last_seq": last_seq})


def update_learners(
    conn: sqlite3.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into learners; the new rows."""
    return _rows(conn, _LEARNER_SQL, {"first_seq": first_seq, "last_seq": last_seq})
