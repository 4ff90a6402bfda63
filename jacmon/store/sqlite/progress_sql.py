"""Progress maintenance as three set-based SQL statements over a batch's stored events.

The rules are those of :mod:`jacmon.analytics.progress` (the reference the
tests hold these statements to). Each statement reads the batch's events by
``seq`` range, folds them per key, joins the old row, computes the new one
and upserts it, all inside SQLite: one statement per table instead of a
Python round per touched row. ``RETURNING`` hands the new rows back for the
dashboard stream's deltas.

Order matters: modules first (the path percent sums the learner's module rows
after the batch), then paths, then learners.
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


def _streak(old_streak: str, old_day: str, run: str) -> str:
    """SQL for advance_streak: the new streak from the old one and the batch's day run.

    ``run`` names the relation with ``last_day`` and ``trailing_start``.
    """
    return (
        f"CASE WHEN {run}.last_day <= {old_day} THEN {old_streak}"
        f" WHEN {run}.trailing_start <= {old_day} + 1"
        f" THEN {old_streak} + {run}.last_day - {old_day}"
        f" ELSE {run}.last_day - {run}.trailing_start + 1 END"
    )


def _per_day(keys: str, aggregates: str) -> str:
    """CTE ``per_day``: the batch folded per key and UTC day, plus where runs of days start.

    ``starts_run`` is true on a day whose previous day has no events; the
    latest such day starts the run that ends at the key's last day (DayRun's
    trailing start). The window runs after the GROUP BY, so this is one pass.
    """
    return f"""
    per_day AS (
        SELECT {keys}, day, {aggregates},
               coalesce(day - lag(day) OVER (PARTITION BY {keys} ORDER BY day) > 1, 1)
                   AS starts_run
        FROM batch GROUP BY {keys}, day)"""


#: Day-run columns of a key's delta, from ``per_day`` (DayRun: first, last, trailing start).
_RUN_COLUMNS = """min(day) AS first_day, max(day) AS last_day,
           max(CASE WHEN starts_run THEN day END) AS trailing_start"""


#: Per learner x path and day: what path progress needs from the batch.
_PATH_DAY_AGGREGATES = """
           min(CASE WHEN type = 'path.enrolled' THEN ts END) AS enrolled_at,
           max(CASE WHEN type = 'path.unenrolled' THEN ts END) AS unenrolled_at,
           min(CASE WHEN type = 'path.completed' THEN ts END) AS completed_at,
           max(CASE WHEN type NOT IN ('path.enrolled', 'path.unenrolled') THEN ts END)
               AS last_engaged,
           total(CASE WHEN type NOT LIKE 'session.%' THEN duration_s END) AS spent,
           sum(xp) AS xp, min(ts) AS first_ts, max(ts) AS last_ts"""

#: Per learner and day.
_LEARNER_DAY_AGGREGATES = """
           count(*) AS events,
           total(CASE WHEN type = 'session.ended' THEN duration_s END) AS spent,
           sum(xp) AS xp, min(ts) AS first_ts, max(ts) AS last_ts"""

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
    SELECT learner, path, type, ts, duration_s, {_DAY} AS day, {_XP} AS xp
    FROM events WHERE seq BETWEEN :first_seq AND :last_seq AND path IS NOT NULL),
{_per_day("learner, path", _PATH_DAY_AGGREGATES)},
delta AS MATERIALIZED (
    SELECT learner, path, min(enrolled_at) AS enrolled_at, max(unenrolled_at) AS unenrolled_at,
           min(completed_at) AS completed_at, max(last_engaged) AS last_engaged,
           total(spent) AS spent, sum(xp) AS xp, min(first_ts) AS first_ts,
           max(last_ts) AS last_ts, {_RUN_COLUMNS}
    FROM per_day GROUP BY learner, path),
catalog AS MATERIALIZED (
    SELECT p.path,
           (SELECT count(*) FROM catalog_modules c WHERE c.path = p.path) AS module_count,
           coalesce((SELECT source = 'file' FROM catalog_paths c WHERE c.path = p.path), 0)
               AS authoritative
    FROM (SELECT DISTINCT path FROM delta) AS p),
sums AS (
    SELECT m.learner, m.path, total(m.percent) AS total,
           sum(m.status = 'completed') AS completed
    FROM delta AS d
    CROSS JOIN module_progress AS m ON m.learner = d.learner AND m.path = d.path
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
           coalesce(min(o.enrolled_at, d.enrolled_at), o.enrolled_at, d.enrolled_at)
               AS new_enrolled_at,
           coalesce(min(o.completed_at, d.completed_at), o.completed_at, d.completed_at)
               AS completed_before_rule,
           coalesce(min(o.first_activity, d.first_ts), d.first_ts) AS new_first,
           coalesce(max(o.last_activity, d.last_ts), d.last_ts) AS new_last
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
            ELSE min(100.0, total / max(module_count, 1)) END,
       modules_completed,
       old_spent + spent,
       old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       {_streak("old_streak", "old_day", "completion")},
       max(old_day, last_day),
       new_enrolled_at, new_first, new_last, new_completed
FROM completion
WHERE true
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

_LEARNER_SQL = f"""
WITH batch AS (
    SELECT learner, type, ts, duration_s, {_DAY} AS day, {_XP} AS xp
    FROM events WHERE seq BETWEEN :first_seq AND :last_seq),
{_per_day("learner", _LEARNER_DAY_AGGREGATES)},
delta AS (
    SELECT learner, sum(events) AS events, total(spent) AS spent, sum(xp) AS xp,
           min(first_ts) AS first_ts, max(last_ts) AS last_ts, {_RUN_COLUMNS}
    FROM per_day GROUP BY learner),
merged AS (
    SELECT d.*,
           coalesce(o.events, 0) AS old_events,
           coalesce(o.time_spent_s, 0.0) AS old_spent,
           coalesce(o.xp, 0) AS old_xp,
           coalesce(o.streak_days, 0) AS old_streak,
           coalesce(o.longest_streak, 0) AS old_longest,
           coalesce(o.active_day, d.first_day - 1) AS old_day,
           coalesce(min(o.first_activity, d.first_ts), d.first_ts) AS new_first,
           coalesce(max(o.last_activity, d.last_ts), d.last_ts) AS new_last
    FROM delta AS d
    LEFT JOIN learners AS o ON o.learner = d.learner),
streaks AS (
    SELECT *, {_streak("old_streak", "old_day", "merged")} AS new_streak FROM merged)
INSERT INTO learners AS old
    (learner, events, time_spent_s, xp, level, streak_days, longest_streak, active_day,
     first_activity, last_activity)
SELECT learner, old_events + events, old_spent + spent, old_xp + xp,
       {_LEVEL.format(xp="old_xp + xp")},
       new_streak, max(old_longest, new_streak), max(old_day, last_day), new_first, new_last
FROM streaks
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


def update_path_progress(
    conn: sqlite3.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into path_progress; the new rows.

    Run after :func:`update_module_progress`: path percents sum the module rows.
    """
    return _rows(conn, _PATH_SQL, {"first_seq": first_seq, "last_seq": last_seq})


def update_learners(
    conn: sqlite3.Connection, first_seq: int, last_seq: int
) -> list[dict[str, Any]]:
    """Fold events ``first_seq``..``last_seq`` into learners; the new rows."""
    return _rows(conn, _LEARNER_SQL, {"first_seq": first_seq, "last_seq": last_seq})
