"""Task run records in PostgreSQL (table ``task_runs``), shared by several nodes.

The records mean what they mean in :mod:`jacmon.store.sqlite.task_runs`. What
differs is how "never two runs of a task at once" is kept. SQLite asks whether
the process that wrote a ``running`` row is alive (``kill(pid, 0)``), which only
works on one machine. Here a run holds a session advisory lock named after its
task, on a pooled connection it keeps until :meth:`TaskRuns.finish_run`:

* a second run of the task, on any node, fails to take the lock and is recorded
  ``skipped`` (with the running row's id as ``overlapped_run``);
* when a node dies its connections drop and PostgreSQL releases the lock at
  once, so nothing stale blocks the task, and :meth:`TaskRuns.abandon_stale_runs`
  can tell a dead run (its task's lock is free) from a live one.

The cost is one pooled connection per run in progress (five tasks at most).
"""

from __future__ import annotations

import contextlib
import json
import os
from typing import Any

import asyncpg

from jacmon.store.postgres.database import PgDatabase
from jacmon.store.records import run_from_row

_COLUMNS = (
    "id, task, trigger, outcome, scheduled, started, finished, duration_s, summary, error, pid"
)

#: The advisory lock of task $1: a 64-bit hash of a name only jacmon's runs use.
_TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('jacmon task run: ' || $1, 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('jacmon task run: ' || $1, 0))"


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


class TaskRuns:
    """The run records of one store, and the task locks this process holds."""

    def __init__(self, db: PgDatabase) -> None:
        self.db = db
        #: run id -> (task, the connection holding its task's advisory lock).
        self._held: dict[int, tuple[str, asyncpg.Connection]] = {}

    async def begin_run(
        self, task: str, *, trigger: str, scheduled: float | None, started: float
    ) -> tuple[int, bool]:
        """Record a run of ``task`` as ``running`` holding its lock; (run id, True). If
        another run holds the lock, record this one ``skipped``; (its id, False)."""
        pool = self.db.pool
        conn = await pool.acquire()
        try:
            if await conn.fetchval(_TRY_LOCK, task):
                run_id = await conn.fetchval(
                    "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, pid)"
                    " VALUES ($1, $2, 'running', $3, $4, $5) RETURNING id",
                    task,
                    trigger,
                    _float(scheduled),
                    float(started),
                    os.getpid(),
                )
                self._held[run_id] = (task, conn)
                return run_id, True
        except BaseException:
            await self._let_go(task, conn)
            raise
        await pool.release(conn)
        busy = await pool.fetchval(
            "SELECT max(id) FROM task_runs WHERE task = $1 AND outcome = 'running'", task
        )
        run_id = await pool.fetchval(
            "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, finished,"
            " duration_s, summary, pid) VALUES ($1, $2, 'skipped', $3, $4, $4, 0, $5, $6)"
            " RETURNING id",
            task,
            trigger,
            _float(scheduled),
            float(started),
            json.dumps({"overlapped_run": busy}),
            os.getpid(),
        )
        return run_id, False

    async def _let_go(self, task: str, conn: asyncpg.Connection) -> None:
        """Unlock ``task`` and hand the connection back (a dead one is just dropped: its
        lock died with it)."""
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await conn.fetchval(_UNLOCK, task)
        with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            await self.db.pool.release(conn)

    async def finish_run(
        self,
        run_id: int,
        *,
        outcome: str,
        finished: float,
        duration_s: float,
        summary: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Record how a run ended, then let go of its task's lock."""
        try:
            await self.db.pool.execute(
                "UPDATE task_runs SET outcome = $1, finished = $2, duration_s = $3,"
                " summary = $4, error = $5 WHERE id = $6",
                outcome,
                float(finished),
                float(duration_s),
                json.dumps(summary, default=str) if summary is not None else None,
                error,
                run_id,
            )
        finally:
            held = self._held.pop(run_id, None)
            if held is not None:
                await self._let_go(*held)

    async def record_run(
        self,
        task: str,
        *,
        outcome: str,
        trigger: str,
        scheduled: float | None,
        at: float,
        summary: dict[str, Any] | None = None,
    ) -> int:
        """Record a run that did not run (``missed`` or ``skipped``); its id."""
        return await self.db.pool.fetchval(
            "INSERT INTO task_runs (task, trigger, outcome, scheduled, started, finished,"
            " duration_s, summary, pid) VALUES ($1, $2, $3, $4, NULL, $5, 0, $6, $7) RETURNING id",
            task,
            trigger,
            outcome,
            _float(scheduled),
            float(at),
            json.dumps(summary),
            os.getpid(),
        )

    async def abandon_stale_runs(self, *, now: float) -> list[int]:
        """Mark ``running`` rows no run holds anymore ``abandoned``; their ids.

        A row of a run this process holds is live. Otherwise, when the task's lock
        is free nobody runs the task, so all its ``running`` rows are stale; when
        another node holds it, its newest ``running`` row is that run and older ones
        are stale.
        """
        rows = await self.db.pool.fetch(
            "SELECT id, task FROM task_runs WHERE outcome = 'running' ORDER BY id"
        )
        by_task: dict[str, list[int]] = {}
        for run_id, task in rows:
            if run_id not in self._held:
                by_task.setdefault(task, []).append(run_id)
        mine = {task for task, _ in self._held.values()}
        stale: list[int] = []
        async with self.db.pool.acquire() as conn:
            for task, ids in by_task.items():
                if task in mine:
                    stale.extend(ids)  # this process runs the task: those rows are not it
                elif await conn.fetchval(_TRY_LOCK, task):
                    await conn.fetchval(_UNLOCK, task)
                    stale.extend(ids)
                else:
                    stale.extend(ids[:-1])
            if stale:
                await conn.execute(
                    "UPDATE task_runs SET outcome = 'abandoned', finished = $1,"
                    " error = 'the process running it stopped before it finished'"
                    " WHERE id = ANY($2::bigint[])",
                    float(now),
                    stale,
                )
        return sorted(stale)

    async def release_all(self) -> None:
        """Let go of every task lock this process holds (the store is closing)."""
        for task, conn in list(self._held.values()):
            await self._let_go(task, conn)
        self._held.clear()


async def last_scheduled(pool: asyncpg.Pool) -> dict[str, float]:
    """Per task, the newest scheduled fire time handled (run, missed or skipped)."""
    rows = await pool.fetch(
        "SELECT task, max(scheduled) FROM task_runs WHERE trigger = 'schedule'"
        " AND scheduled IS NOT NULL GROUP BY task"
    )
    return {task: value for task, value in rows}


async def last_runs(pool: asyncpg.Pool) -> dict[str, dict[str, Any]]:
    """Per task, its newest run record that actually ran (not missed or skipped)."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM task_runs WHERE id IN (SELECT max(id) FROM task_runs"
        " WHERE outcome NOT IN ('missed', 'skipped') GROUP BY task)"
    )
    return {row[1]: run_from_row(row) for row in rows}


async def recent_runs(
    pool: asyncpg.Pool, *, task: str | None = None, limit: int = 50
) -> list[dict[str, Any]]:
    """The newest ``limit`` run records (of ``task``, or all), newest first."""
    if task is None:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM task_runs ORDER BY id DESC LIMIT $1", limit
        )
    else:
        rows = await pool.fetch(
            f"SELECT {_COLUMNS} FROM task_runs WHERE task = $1 ORDER BY id DESC LIMIT $2",
            task,
            limit,
        )
    return [run_from_row(row) for row in rows]


async def run_totals(pool: asyncpg.Pool) -> dict[str, dict[str, int]]:
    """Task -> outcome -> how many runs are recorded."""
    totals: dict[str, dict[str, int]] = {}
    for task, outcome, count in await pool.fetch(
        "SELECT task, outcome, count(*) FROM task_runs GROUP BY task, outcome"
    ):
        totals.setdefault(task, {})[outcome] = count
    return totals


async def prune_runs(conn: asyncpg.Connection, *, before: float, dry_run: bool = False) -> int:
    """Delete finished run records older than ``before`` (epoch seconds); the count. The
    newest record of each task stays: it is where catch-up resumes from."""
    where = (
        "WHERE outcome != 'running' AND coalesce(finished, scheduled, 0) < $1"
        " AND id NOT IN (SELECT max(id) FROM task_runs GROUP BY task)"
    )
    count = await conn.fetchval(f"SELECT count(*) FROM task_runs {where}", float(before))
    if count and not dry_run:
        await conn.execute(f"DELETE FROM task_runs {where}", float(before))
    return count
