"""Task run records: one row per run, missed or skipped fire time (table ``task_runs``).

Times (``scheduled``, ``started``, ``finished``) are epoch seconds on the
scheduler's clock; ``duration_s`` is the wall time a run took. A run is
inserted as ``running`` before it starts, so a crash leaves a trace that the
next scheduler start turns into ``abandoned``.
"""

from __future__ import annotations

import json
import os
from typing import Any

import aiosqlite

from jacmon.store.records import run_from_row
from jacmon.store.sqlite.database import Database


def _pid_alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # Exists, owned by someone else.
        return True
    return True


_COLUMNS = (
    "id, task, trigger, outcome, scheduled, started, finished, duration_s, summary, error, pid"
)


def _still_running(run_id: int, pid: int | None, live_run_ids: set[int]) -> bool:
    """Whether a ``running`` row's run is really going on.

    Another process's run: while that process is alive. This process's run:
    while its id is in ``live_run_ids`` (a row left by a previous process that
    had this pid is not).
    """
    if pid == os.getpid():
        return run_id in live_run_ids
    return _pid_alive(pid)


async def begin_run(
    db: Database,
    task: str,
    *,
    trigger: str,
    scheduled: float | None,
    started: float,
    live_run_ids: set[int],
) -> tuple[int, bool]:
    """Record a run as ``running``, unless one of ``task`` is already running.

    One transaction, so two processes cannot both start the same task. A
    ``running`` row counts as running if its process is alive (another process)
    or its id is in ``live_run_ids`` (this process). Returns (run id, started);
    when not started the row is recorded ``skipped`` instead.
    """
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT id, pid FROM task_runs WHERE task = ? AND outcome = 'running'", (task,)
        ) as cursor:
            rows = await cursor.fetchall()
        me = os.getpid()
        busy = [run_id for run_id, pid in rows if _still_running(run_id, pid, live_run_ids)]
        if busy:
            summary = json.dumps({"overlapped_run": busy[0]})
            cursor = await conn.execute(
                "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, finished,"
                " duration_s, summary, pid) VALUES (?, ?, 'skipped', ?, ?, ?, 0, ?, ?)",
                (task, trigger, scheduled, started, started, summary, me),
            )
            return cursor.lastrowid, False
        cursor = await conn.execute(
            "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, pid)"
            " VALUES (?, ?, 'running', ?, ?, ?)",
            (task, trigger, scheduled, started, me),
        )
        return cursor.lastrowid, True


async def finish_run(
    db: Database,
    run_id: int,
    *,
    outcome: str,
    finished: float,
    duration_s: float,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    """Record how a run ended."""
    async with db.transaction() as conn:
        await conn.execute(
            "UPDATE task_runs SET outcome = ?, finished = ?, duration_s = ?, summary = ?,"
            " error = ? WHERE id = ?",
            (
                outcome,
                finished,
                duration_s,
                json.dumps(summary, default=str) if summary is not None else None,
                error,
                run_id,
            ),
        )


async def record_run(
    db: Database,
    task: str,
    *,
    outcome: str,
    trigger: str,
    scheduled: float | None,
    at: float,
    summary: dict[str, Any] | None = None,
) -> int:
    """Record a run that did not run (``missed`` or ``skipped``); returns its id."""
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, finished,"
            " duration_s, summary, pid) VALUES (?, ?, ?, ?, NULL, ?, 0, ?, ?)",
            (task, trigger, outcome, scheduled, at, json.dumps(summary), os.getpid()),
        )
        return cursor.lastrowid


async def abandon_stale_runs(db: Database, *, now: float, live_run_ids: set[int]) -> list[int]:
    """Mark ``running`` rows whose process is gone (or is this one, unknowingly) ``abandoned``."""
    async with db.transaction() as conn:
        async with conn.execute(
            "SELECT id, pid FROM task_runs WHERE outcome = 'running'"
        ) as cursor:
            rows = await cursor.fetchall()
        stale = [run_id for run_id, pid in rows if not _still_running(run_id, pid, live_run_ids)]
        if stale:
            await conn.executemany(
                "UPDATE task_runs SET outcome = 'abandoned', finished = ?,"
                " error = 'the process running it stopped before it finished' WHERE id = ?",
                [(now, run_id) for run_id in stale],
            )
        return stale


async def last_scheduled(conn: aiosqlite.Connection) -> dict[str, float]:
    """Per task, the newest scheduled fire time handled (run, missed or skipped)."""
    async with conn.execute(
        "SELECT task, max(scheduled) FROM task_runs WHERE trigger = 'schedule'"
        " AND scheduled IS NOT NULL GROUP BY task"
    ) as cursor:
        return {task: value for task, value in await cursor.fetchall()}


async def last_runs(conn: aiosqlite.Connection) -> dict[str, dict[str, Any]]:
    """Per task, its newest run record that actually ran (not missed or skipped)."""
    async with conn.execute(
        f"SELECT {_COLUMNS} FROM task_runs WHERE id IN (SELECT max(id) FROM task_runs"
        " WHERE outcome NOT IN ('missed', 'skipped') GROUP BY task)"
    ) as cursor:
        return {row[1]: run_from_row(row) for row in await cursor.fetchall()}


async def recent_runs(
    conn: aiosqlite.Connection, *, task: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest ``limit`` run records (of ``task``, or all), newest first."""
    if task is None:
        sql, params = f"SELECT {_COLUMNS} FROM task_runs ORDER BY id DESC LIMIT ?", (limit,)
    else:
        sql = f"SELECT {_COLUMNS} FROM task_runs WHERE task = ? ORDER BY id DESC LIMIT ?"
        params = (task, limit)
    async with conn.execute(sql, params) as cursor:
        return [run_from_row(row) for row in await cursor.fetchall()]


async def run_totals(conn: aiosqlite.Connection) -> dict[str, dict[str, int]]:
    """Task -> outcome -> how many runs are recorded."""
    totals: dict[str, dict[str, int]] = {}
    async with conn.execute(
        "SELECT task, outcome, count(*) FROM task_runs GROUP BY task, outcome"
    ) as cursor:
        for task, outcome, count in await cursor.fetchall():
            totals.setdefault(task, {})[outcome] = count
    return totals


async def prune_runs(conn: aiosqlite.Connection, *, before: float, dry_run: bool = False) -> int:
    """Delete finished run records older than ``before`` (epoch seconds); returns the count."""
    # The newest record of each task stays: it is where catch-up resumes from.
    where = (
        "WHERE outcome != 'running' AND coalesce(finished, scheduled, 0) < ?"
        " AND id NOT IN (SELECT max(id) FROM task_runs GROUP BY task)"
    )
    async with conn.execute(f"SELECT count(*) FROM task_runs {where}", (before,)) as cursor:
        (count,) = await cursor.fetchone()
    if count and not dry_run:
        await conn.execute(f"DELETE FROM task_runs {where}", (before,))
    return count
