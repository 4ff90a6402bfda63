"""The PostgreSQL store: one database shared by several ``jacmon serve`` nodes.

:class:`PgStore` implements :class:`jacmon.store.base.Store` over an asyncpg pool
(:class:`~jacmon.store.postgres.database.PgDatabase`) and hands each statement to
the module of its table family, as :mod:`jacmon.store.sqlite.store` does. What a
node keeps in memory (``last_seq``, the catalog) is a cache of the database:
ingest re-reads the sequence under its lock, and the projector the catalog under
the watermark lock, so another node's writes are never overwritten by a stale cache.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import asyncpg

from jacmon.errors import StoreError
from jacmon.events import Event
from jacmon.store.base import PROJECTION_SPAN, Fence, Lease, Store, Transaction
from jacmon.store.catalog import Catalog, CatalogPath
from jacmon.store.postgres import (
    alerts,
    monitoring,
    notify,
    queries,
    received,
    sequence,
    silences,
    task_runs,
    tokens,
)
from jacmon.store.postgres.catalog import (
    CatalogMark,
    catalog_mark,
    catalog_rows,
    load_catalog,
    modules_left_out,
    store_catalog,
)
from jacmon.store.postgres.database import PgDatabase
from jacmon.store.postgres.errors import storage_problem
from jacmon.store.postgres.ingest import store_batch
from jacmon.store.postgres.lease import PgLease, check_fence
from jacmon.store.postgres.meta import get_meta, set_meta
from jacmon.store.postgres.progress_sql import recompute_path_percents
from jacmon.store.postgres.projection import (
    WATERMARK_SQL,
    lock_watermark,
    project_span,
    watermark,
)
from jacmon.store.types import (
    ClaimedBatch,
    DueGroup,
    IngestOutcome,
    ProgressView,
    Projection,
    ReceivedRecord,
    StorageUnavailable,
)

if TYPE_CHECKING:
    from jacmon.analytics.alert_rules import PlannedChange
    from jacmon.notify.config import Route
    from jacmon.notify.model import Delivery, Notification

log = logging.getLogger("jacmon.store")

#: True when the projection watermark has reached the committed head (one statement,
#: so one snapshot: the head read is never older than the watermark).
_CAUGHT_UP_SQL = (
    f"SELECT (SELECT last_value FROM seq_counters WHERE name = 'events') <= ({WATERMARK_SQL})"
)


class PgStore(Store):
    """The event store of one node (or one command), in a shared PostgreSQL database."""

    def __init__(
        self,
        db: PgDatabase,
        catalog: Catalog,
        mark: CatalogMark,
        last_seq: int,
        server_id: str,
        *,
        readonly: bool = False,
    ) -> None:
        self.db = db
        self.catalog = catalog
        #: The catalog tables' state ``catalog`` was loaded at (see catalog.catalog_mark).
        self._catalog_mark = mark
        #: The newest seq this node knows committed (its own batches, or read at open).
        self.last_seq = last_seq
        #: The database's id (meta.server_id): the same on every node serving it, so a
        #: client resumes on any of them.
        self.server_id = server_id
        #: Why writes fail right now, as a sentence for /healthz; None while they work.
        self.write_problem: str | None = None
        self._readonly = readonly
        self._runs = task_runs.TaskRuns(db)

    @property
    def location(self) -> str:
        """``user@host:port/database`` (never the password)."""
        return str(self.db.where)

    @classmethod
    async def open(cls, location: Any, *, readonly: bool = False) -> PgStore:  # type: ignore[override]
        """Open the database at the ``postgresql://`` DSN ``location`` (migrated unless
        ``readonly``). Raises StoreError naming host, port and database when it cannot."""
        db = await PgDatabase.open(str(location), readonly=readonly)
        try:
            async with db.pool.acquire() as conn, conn.transaction():
                catalog, mark = await load_catalog(conn)
                last_seq = await sequence.last_value(conn)
                server_id = await get_meta(conn, "server_id")
                if server_id is None and not readonly:
                    # Nodes opening a new database at once: the first insert wins, and
                    # everyone reads the winner's id back.
                    await conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('server_id', $1)"
                        " ON CONFLICT (key) DO NOTHING",
                        uuid.uuid4().hex[:12],
                    )
                    server_id = await get_meta(conn, "server_id")
        except BaseException:
            await db.close()
            raise
        return cls(db, catalog, mark, last_seq, server_id or "unknown", readonly=readonly)

    async def close(self) -> None:
        await self._runs.release_all()
        await self.db.close()

    def _check_writable(self) -> None:
        if self._readonly:
            raise StoreError(f"database {self.location} was opened read-only")

    @contextlib.asynccontextmanager
    async def _write(self) -> AsyncIterator[asyncpg.Connection]:
        """A write transaction (refused on a read-only store)."""
        self._check_writable()
        async with self.db.transaction() as conn:
            yield conn

    # -- health and upkeep -----------------------------------------------------

    async def committed_seq(self) -> int:
        # The counter row as committed: a batch in flight on another node is not counted.
        return await sequence.last_value(self.db.pool)

    async def ping(self) -> None:
        await self.db.pool.fetchval("SELECT 1")

    async def begin_serving(self) -> None:
        """Nothing to take over: PostgreSQL checkpoints by itself, and several nodes
        serve one database (there is no serve lock)."""

    async def upkeep(self) -> None:
        """Nothing periodic: PostgreSQL's autovacuum and checkpointer do the housekeeping
        SQLite's WAL checkpoint does."""

    # -- ingest ----------------------------------------------------------------

    async def ingest(
        self,
        events: Sequence[Event],
        *,
        cursor: tuple[str, str] | None = None,
        records: Sequence[ReceivedRecord] = (),
    ) -> IngestOutcome:
        """Store one batch in one transaction; returns once it is committed.

        See :mod:`jacmon.store.postgres.ingest` for how duplicates and the global seq
        stay right with several nodes writing. Raises :class:`StorageUnavailable`
        (nothing acknowledged) when the server is down, the connection was lost,
        the disk is full or the database is read-only. Nothing is stored then, except
        when a connection breaks during COMMIT after the server applied it, which no
        client can tell: a resend is safe (the ids come back as duplicates).
        """
        self._check_writable()
        try:
            async with self.db.transaction() as conn:
                outcome = await store_batch(
                    conn, events, received=time.time(), cursor=cursor, records=records
                )
        except BaseException as exc:
            problem = self._storage_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(problem) from None
        self.last_seq = max(self.last_seq, outcome.last_seq)
        self._writes_work()
        return outcome

    # -- the progress projection -------------------------------------------------

    async def project(self, *, max_events: int = PROJECTION_SPAN) -> Projection | None:
        """Fold the next span into progress in one transaction (see :mod:`.projection`).

        Nodes calling this at once take turns on the watermark row lock; ingest never
        waits for it. Raises :class:`StorageUnavailable` when the storage fails (the
        span rolls back whole, watermark included).
        """
        self._check_writable()
        try:
            if await self.db.pool.fetchval(_CAUGHT_UP_SQL):
                # Nothing to fold: an idle projector polling on every node takes no row
                # lock (a write) and opens no transaction. A batch committing just after
                # is the next call's.
                return None
            async with self.db.transaction() as conn:
                projection, catalog, mark = await project_span(
                    conn, self.catalog, self._catalog_mark, max_events
                )
        except BaseException as exc:
            problem = self._storage_problem(exc)
            if problem is None:
                raise
            raise StorageUnavailable(problem) from None
        # Committed: only now does this node's catalog cache follow (a rollback would
        # have undone what the span discovered).
        self.catalog, self._catalog_mark = catalog, mark
        self._writes_work()
        return projection

    async def progress_seq(self) -> int:
        return await watermark(self.db.pool)

    @contextlib.asynccontextmanager
    async def _snapshot(self) -> AsyncIterator[tuple[asyncpg.Connection, int, Catalog]]:
        """One connection in a read-only REPEATABLE READ transaction: every statement
        sees the same committed state (other nodes keep writing meanwhile); with the
        watermark and the catalog of that state."""
        async with (
            self.db.pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            seq = await watermark(conn)  # the first statement fixes the snapshot
            catalog = self.catalog
            if await catalog_mark(conn) != self._catalog_mark:
                # Another node discovered modules (or a catalog was loaded) since the cache
                # was: module counts must be the snapshot's. The cache itself is left to
                # refresh_catalog, which reports catalog loads.
                catalog, _ = await load_catalog(conn)
            yield conn, seq, catalog

    async def progress_view(
        self, paths: Sequence[str], module_keys: Sequence[tuple[str, str]], *, now: float
    ) -> ProgressView:
        async with self._snapshot() as (conn, seq, catalog):
            path_rows = await queries.path_summaries(conn, catalog, paths, now=now)
            module_rows = await queries.module_summaries(conn, module_keys) if module_keys else []
            total = await queries.learner_count(conn)
        return ProgressView(seq, path_rows, module_rows, total)

    async def progress_rows_since(self, after_seq: int) -> Projection | None:
        async with self._snapshot() as (conn, seq, _catalog):
            if seq <= after_seq:
                return None
            changes = await queries.progress_rows_since(conn, after_seq, seq)
        return Projection(after_seq + 1, seq, changes)

    def _storage_problem(self, exc: BaseException) -> str | None:
        """The sentence for ``exc`` if it is the storage's failure (noted for /healthz),
        else None (the caller re-raises ``exc`` as it is)."""
        problem = storage_problem(exc, self.db.where)
        if problem is not None:
            self._note_write_problem(problem)
        return problem

    def _writes_work(self) -> None:
        if self.write_problem is not None:
            log.warning("writes work again (was: %s)", self.write_problem)
            self.write_problem = None

    def _note_write_problem(self, problem: str) -> None:
        """Record why writes fail; log only when the reason changes."""
        if problem != self.write_problem:
            log.error("writes failing: %s", problem)
        self.write_problem = problem

    async def get_cursor(self, name: str) -> str | None:
        return await self.db.pool.fetchval("SELECT value FROM cursors WHERE name = $1", name)

    # -- pushed records (see jacmon.store.postgres.received) --------------------

    async def received_log(
        self, *, limit: int = 50, source: str | None = None, unmapped_only: bool = True
    ) -> list[dict[str, Any]]:
        return await received.received_log(
            self.db.pool, limit=limit, source=source, unmapped_only=unmapped_only
        )

    async def received_totals(self) -> dict[str, dict[str, int]]:
        return await received.received_totals(self.db.pool)

    # -- catalog ---------------------------------------------------------------

    async def load_catalog(self, paths: list[CatalogPath]) -> None:
        """Make ``paths`` authoritative and re-derive their learners' percents.

        Under the projection watermark lock: no span on any node folds progress
        against half a catalog (ingest, which no longer touches the catalog, goes on).
        """
        async with self._write() as conn:
            await lock_watermark(conn)
            await store_catalog(conn, paths)
            # A running node sees the new version and reloads (see refresh_catalog).
            await set_meta(conn, "catalog_version", uuid.uuid4().hex)
            catalog, mark = await load_catalog(conn)
            await recompute_path_percents(
                conn,
                {p.id: catalog.module_counts.get(p.id, 0) for p in paths},
                catalog.authoritative,
            )
        self.catalog, self._catalog_mark = catalog, mark

    async def refresh_catalog(self) -> bool:
        """Reload the catalog if the tables changed since it was loaded; True if a catalog
        was loaded since (by ``jacmon catalog load``), False for nothing or only modules
        another node discovered (reloaded quietly)."""
        mark = await catalog_mark(self.db.pool)
        if mark == self._catalog_mark:
            return False
        async with self.db.pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            catalog, mark = await load_catalog(conn)
        loaded = mark[0] != self._catalog_mark[0]
        self.catalog, self._catalog_mark = catalog, mark
        return loaded

    async def modules_left_out(self, paths: list[CatalogPath]) -> dict[str, list[str]]:
        return await modules_left_out(self.db.pool, paths)

    async def catalog_rows(self) -> list[dict[str, Any]]:
        return await catalog_rows(self.db.pool)

    # -- events and progress ---------------------------------------------------

    async def recent_event_rows(
        self, limit: int, *, learner: str | None = None
    ) -> list[tuple[int, str]]:
        return await queries.recent_event_rows(self.db.pool, limit, learner=learner)

    async def event_rows_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[tuple[int, str]]:
        return await queries.event_rows_since(self.db.pool, seq, learner=learner, limit=limit)

    async def oldest_seq(self) -> int:
        return await queries.oldest_seq(self.db.pool)

    async def progress_snapshot(
        self, *, learner: str | None = None, now: float | None = None, learner_limit: int = 1000
    ) -> dict[str, Any]:
        async with self._snapshot() as (conn, seq, catalog):
            body = await queries.progress_snapshot(
                conn,
                catalog,
                learner=learner,
                now=time.time() if now is None else now,
                learner_limit=learner_limit,
            )
        body["progress_seq"] = seq
        return body

    async def path_summaries(self, paths: Sequence[str], *, now: float) -> list[dict[str, Any]]:
        return await queries.path_summaries(self.db.pool, self.catalog, paths, now=now)

    async def module_summaries(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return await queries.module_summaries(self.db.pool, keys)

    async def learner_count(self) -> int:
        return await queries.learner_count(self.db.pool)

    async def last_seen(
        self, *, since: float | None = None, learner: str | None = None
    ) -> dict[str, float]:
        return await queries.last_seen(self.db.pool, since=since, learner=learner)

    async def recent_events(
        self, *, since: float, learner: str | None = None, through_seq: int | None = None
    ) -> AsyncIterator[tuple[float, str, float | None, str]]:
        async for row in queries.recent_events(
            self.db.pool, since=since, learner=learner, through_seq=through_seq
        ):
            yield row

    # -- alerts ----------------------------------------------------------------

    async def get_alert(self, alert_id: int) -> dict[str, Any] | None:
        return await alerts.get_alert(self.db.pool, alert_id)

    async def open_alerts(self, *, learner: str | None = None) -> list[dict[str, Any]]:
        return await alerts.open_alerts(self.db.pool, learner=learner)

    async def list_alerts(
        self, *, state: str = "firing", learner: str | None = None
    ) -> list[dict[str, Any]]:
        return await alerts.list_alerts(self.db.pool, state=state, learner=learner)

    async def alert_changes_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return await alerts.alert_changes_since(self.db.pool, seq, learner=learner, limit=limit)

    async def last_alert_change_seq(self) -> int:
        return await alerts.last_alert_change_seq(self.db.pool)

    async def alert_totals(self) -> tuple[int, dict[str, int]]:
        return await alerts.alert_totals(self.db.pool)

    async def acknowledge_alert(
        self,
        alert_id: int,
        *,
        by: str,
        note: str | None = None,
        expires_at: float | None = None,
        now: float | None = None,
        learner: str | None = None,
    ) -> dict[str, Any]:
        self._check_writable()
        return await alerts.acknowledge_alert(
            self.db, alert_id, by=by, note=note, expires_at=expires_at, now=now, learner=learner
        )

    async def unacknowledge_alert(
        self,
        alert_id: int,
        *,
        by: str,
        note: str | None = None,
        now: float | None = None,
        learner: str | None = None,
    ) -> dict[str, Any]:
        self._check_writable()
        return await alerts.unacknowledge_alert(
            self.db, alert_id, by=by, note=note, now=now, learner=learner
        )

    # -- silences --------------------------------------------------------------

    async def add_silence(
        self,
        *,
        by: str,
        rule: str | None = None,
        learner: str | None = None,
        path: str | None = None,
        duration_s: float,
        note: str | None = None,
        now: float | None = None,
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self._check_writable()
        return await silences.add_silence(
            self.db,
            by=by,
            rule=rule,
            learner=learner,
            path=path,
            duration_s=duration_s,
            note=note,
            now=now,
        )

    async def expire_silence(
        self, silence_id: int, *, by: str, now: float | None = None
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        self._check_writable()
        return await silences.expire_silence(self.db, silence_id, by=by, now=now)

    async def lapse_silences(self, *, now: float, since: float = 0.0) -> list[dict[str, Any]]:
        async with self._write() as conn:
            return await silences.lapse_silences(conn, now=now, since=since)

    async def list_silences(self, *, include_expired: bool = False) -> list[dict[str, Any]]:
        return await silences.list_silences(self.db.pool, include_expired=include_expired)

    # -- notifications ---------------------------------------------------------

    async def route_new_changes(self, routes: Iterable[Route], *, now: float, limit: int) -> int:
        async with self._write() as conn:
            return await notify.route_new_changes(conn, routes, now=now, limit=limit)

    async def plan_repeats(self, routes: Mapping[str, Route], *, now: float) -> int:
        async with self._write() as conn:
            return await notify.plan_repeats(conn, routes, now=now)

    async def due_groups(
        self, receiver: str, routes: Mapping[str, Route], *, now: float
    ) -> tuple[list[DueGroup], float | None]:
        return await notify.due_groups(self.db.pool, receiver, routes, now=now)

    async def claim_batch(self, group: DueGroup) -> ClaimedBatch | None:
        async with self._write() as conn:
            return await notify.claim_batch(conn, group)

    async def finish_batch(
        self,
        notification: Notification,
        delivery: Delivery,
        *,
        now: float,
        max_age_s: float,
        backoff_base_s: float,
        backoff_cap_s: float,
    ) -> str:
        async with self._write() as conn:
            return await notify.finish_batch(
                conn,
                notification,
                delivery,
                now=now,
                max_age_s=max_age_s,
                backoff_base_s=backoff_base_s,
                backoff_cap_s=backoff_cap_s,
            )

    async def notification_log(
        self, *, receiver: str | None = None, state: str | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        return await notify.notification_log(
            self.db.pool, receiver=receiver, state=state, limit=limit
        )

    async def notification_counts(self) -> dict[str, int]:
        return await notify.open_counts(self.db.pool)

    # -- task runs -------------------------------------------------------------

    async def begin_run(
        self,
        task: str,
        *,
        trigger: str,
        scheduled: float | None,
        started: float,
        live_run_ids: set[int],
    ) -> tuple[int, bool]:
        """See :class:`task_runs.TaskRuns`: the task's advisory lock, not ``live_run_ids``,
        says whether a run is in the way (this process's runs hold it too)."""
        self._check_writable()
        return await self._runs.begin_run(
            task, trigger=trigger, scheduled=scheduled, started=started
        )

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
        self._check_writable()
        await self._runs.finish_run(
            run_id,
            outcome=outcome,
            finished=finished,
            duration_s=duration_s,
            summary=summary,
            error=error,
        )

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
        self._check_writable()
        return await self._runs.record_run(
            task, outcome=outcome, trigger=trigger, scheduled=scheduled, at=at, summary=summary
        )

    async def abandon_stale_runs(self, *, now: float, live_run_ids: set[int]) -> list[int]:
        """Runs whose task lock nobody holds are abandoned (``live_run_ids`` are this
        process's runs, which hold their locks: they are never among them)."""
        self._check_writable()
        return await self._runs.abandon_stale_runs(now=now)

    async def last_scheduled(self) -> dict[str, float]:
        return await task_runs.last_scheduled(self.db.pool)

    async def last_runs(self) -> dict[str, dict[str, Any]]:
        return await task_runs.last_runs(self.db.pool)

    async def recent_runs(
        self, *, task: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return await task_runs.recent_runs(self.db.pool, task=task, limit=limit)

    async def run_totals(self) -> dict[str, dict[str, int]]:
        return await task_runs.run_totals(self.db.pool)

    # -- tokens ----------------------------------------------------------------

    async def insert_token(self, record: dict[str, Any], secret_hash: str) -> None:
        self._check_writable()
        await tokens.insert_token(self.db, record, secret_hash)

    async def list_tokens(self) -> list[dict[str, Any]]:
        return await tokens.list_tokens(self.db.pool)

    async def revoke_token(self, token_id: str, *, now: float) -> bool:
        self._check_writable()
        return await tokens.revoke_token(self.db, token_id, now=now)

    async def active_token_count(self) -> int:
        return await tokens.active_token_count(self.db.pool)

    async def token_for_auth(self, token_id: str) -> dict[str, Any] | None:
        return await tokens.token_for_auth(self.db.pool, token_id)

    async def revoked_among(self, token_ids: Sequence[str]) -> set[str]:
        return await tokens.revoked_among(self.db.pool, token_ids)

    # -- what the monitoring tasks read ------------------------------------------

    @contextlib.asynccontextmanager
    async def transaction(
        self, *, write: bool = True, fence: Fence | None = None
    ) -> AsyncIterator[PgTransaction]:
        """A task's transaction (READ COMMITTED, as every write here); ``write=False``: a
        read-only one for dry runs, whose write methods raise. With ``fence`` it first
        checks the lease token, holding it shared until commit (see lease.py)."""
        if write:
            async with self._write() as conn:
                if fence is not None:
                    await check_fence(conn, fence)
                yield PgTransaction(conn, writable=True)
            return
        async with self.db.pool.acquire() as conn, conn.transaction(readonly=True):
            yield PgTransaction(conn, writable=False)

    def lease(self, name: str) -> Lease:
        return PgLease(self.db, name)

    async def path_velocity(self) -> dict[str, dict[str, Any]]:
        return await monitoring.path_velocity(self.db.pool)

    async def catalog_path_ids(self) -> list[str]:
        return await monitoring.catalog_path_ids(self.db.pool)

    async def path_completions(
        self, *, start: float, mid: float, now: float
    ) -> dict[str, tuple[int, int]]:
        return await monitoring.path_completions(self.db.pool, start=start, mid=mid, now=now)

    async def in_progress_paths(self) -> list[tuple[str, str, float, float, float]]:
        return await monitoring.in_progress_paths(self.db.pool)

    async def activity_counts(
        self, *, recent: float, prior: float, day_starts: Sequence[float], start: float, now: float
    ) -> dict[str, tuple[int, int, int]]:
        return await monitoring.activity_counts(
            self.db.pool, recent=recent, prior=prior, day_starts=day_starts, start=start, now=now
        )

    async def monitored_learners(self) -> list[tuple[str, float, float, str | None]]:
        return await monitoring.monitored_learners(self.db.pool)

    async def score_windows(
        self, *, start: float, mid: float, now: float
    ) -> list[tuple[str, int, float | None, int, float | None]]:
        return await monitoring.score_windows(self.db.pool, start=start, mid=mid, now=now)

    async def latest_scores(
        self, *, since: float, now: float, keep: int
    ) -> list[tuple[str, str | None, float]]:
        return await monitoring.latest_scores(self.db.pool, since=since, now=now, keep=keep)

    async def daily_snapshot_days(self, days: Sequence[str]) -> set[str]:
        return await monitoring.daily_snapshot_days(self.db.pool, days)

    async def learner_day_stats(self, start: float, end: float) -> list[tuple[Any, ...]]:
        return await monitoring.learner_day_stats(self.db.pool, start, end)


class PgTransaction(Transaction):
    """A task's transaction on one pooled connection (or, read-only, a dry run's view)."""

    def __init__(self, conn: asyncpg.Connection, *, writable: bool) -> None:
        self._conn = conn
        self._writable = writable

    def _writer(self) -> asyncpg.Connection:
        if not self._writable:
            raise RuntimeError("a read-only (dry-run) transaction cannot write")
        return self._conn

    async def open_alerts_of_rules(self, rules: frozenset[str]) -> list[dict[str, Any]]:
        return await alerts.open_alerts_of_rules(self._conn, rules)

    async def firing_rule_per_learner(self, rules: Sequence[str]) -> dict[str, str]:
        return await monitoring.firing_rule_per_learner(self._conn, rules)

    async def apply_alert_changes(
        self, changes: list[PlannedChange], *, now: float
    ) -> list[dict[str, Any]]:
        return await alerts.apply_alert_changes(self._writer(), changes, now=now)

    async def expire_acknowledgements(
        self, *, now: float, dry_run: bool = False
    ) -> list[dict[str, Any]]:
        conn = self._conn if dry_run else self._writer()
        return await alerts.expire_acknowledgements(conn, now=now, dry_run=dry_run)

    async def retire_resolved(self, *, before: float, dry_run: bool = False) -> int:
        conn = self._conn if dry_run else self._writer()
        return await alerts.retire_resolved(conn, before=before, dry_run=dry_run)

    async def prune_runs(self, *, before: float, dry_run: bool = False) -> int:
        conn = self._conn if dry_run else self._writer()
        return await task_runs.prune_runs(conn, before=before, dry_run=dry_run)

    async def delete_events_before(self, cutoff: float, *, dry_run: bool = False) -> int:
        conn = self._conn if dry_run else self._writer()
        return await monitoring.delete_events_before(conn, cutoff, dry_run=dry_run)

    async def replace_velocity(
        self,
        velocity: Iterable[tuple[str, int, int, float | None, float]],
        pace: Iterable[tuple[str, str, float, float | None, float | None, float]],
    ) -> None:
        await monitoring.replace_velocity(self._writer(), velocity, pace)

    async def replace_daily_stats(
        self, day: str, learners: Iterable[tuple[Any, ...]], platform: tuple[Any, ...]
    ) -> None:
        await monitoring.replace_daily_stats(self._writer(), day, learners, platform)
