"""The SQLite store: one WAL database file through aiosqlite, the embedded default.

:class:`SqliteStore` implements :class:`jacmon.store.base.Store`: it owns the
connections (one reader, one writer thread), the catalog cache and the next
sequence number, and hands each statement to the module that holds its SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiosqlite

from jacmon.events import Event
from jacmon.store.base import PROJECTION_SPAN, Fence, Lease, Store, Transaction
from jacmon.store.catalog import Catalog, CatalogPath
from jacmon.store.sqlite import (
    alerts,
    monitoring,
    notify,
    queries,
    received,
    silences,
    task_runs,
    tokens,
)
from jacmon.store.sqlite.catalog import (
    load_catalog,
    load_catalog_sync,
    modules_left_out,
    store_catalog,
)
from jacmon.store.sqlite.database import SET_META, Database, get_meta
from jacmon.store.sqlite.ingest import storage_problem, store_batch
from jacmon.store.sqlite.projection import (
    HEAD_SQL,
    WATERMARK_SQL,
    project_span,
    recompute_path_percents,
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


def _file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or None if there is none."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    """Inside the caller's transaction, on the database thread."""
    conn.execute(SET_META, (key, value))


class SqliteStore(Store):
    """The event store of one jacmon server (or one command), in one SQLite file."""

    def __init__(
        self,
        db: Database,
        catalog: Catalog,
        last_seq: int,
        server_id: str,
        catalog_version: str | None = None,
    ):
        self.db = db
        self.catalog = catalog
        #: Sequence number of the newest stored event (0 if none ever).
        self.last_seq = last_seq
        #: Stable id of this database, sent in ``hello`` so clients can tell stores apart.
        self.server_id = server_id
        #: meta.catalog_version as last loaded; refresh_catalog compares against it.
        self._catalog_version = catalog_version
        #: Why writes fail right now (disk full, read-only, the file removed), as a sentence
        #: for /healthz and ingest errors; None while writes work. Set by the write path and
        #: the server's file watch, cleared by the next write that commits.
        self.write_problem: str | None = None
        #: (device, inode) of the database file as opened: a batch is acknowledged only
        #: while the file at the path is still this one.
        self._file_id = _file_identity(db.path)
        #: Set once the file at the path is gone or another: writes would go to an
        #: unlinked file, so every later batch is refused (until a restart reopens it).
        self._file_lost: str | None = None

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def location(self) -> str:
        return str(self.db.path)

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> SqliteStore:  # type: ignore[override]
        """Open the database at ``path`` (created and migrated unless ``readonly``)."""
        db = await Database.open(path, readonly=readonly)
        try:
            conn = db.reader
            catalog = await load_catalog(conn)
            async with conn.execute(HEAD_SQL) as cursor:
                (last_seq,) = await cursor.fetchone()
            server_id = await get_meta(conn, "server_id")
            if server_id is None and not readonly:
                server_id = uuid.uuid4().hex[:12]
                async with db.transaction() as writer:
                    await writer.execute(
                        "INSERT OR IGNORE INTO meta (key, value) VALUES ('server_id', ?)",
                        (server_id,),
                    )
            if server_id is None:
                server_id = "unknown"  # read-only, and no server ever wrote this database
            catalog_version = await get_meta(conn, "catalog_version")
        except BaseException:
            # Interrupted (a stop signal while starting) or failed: an aiosqlite thread left
            # running would keep the process alive.
            await asyncio.shield(db.close())
            raise
        return cls(db, catalog, last_seq, server_id, catalog_version)

    async def close(self) -> None:
        await self.db.close()

    async def ping(self) -> None:
        async with self.db.reader.execute("SELECT 1") as cursor:
            await cursor.fetchone()

    async def begin_serving(self) -> None:
        await self.db.take_over_checkpoints()

    async def upkeep(self) -> None:
        await self.db.checkpoint()

    async def ingest(
        self,
        events: Sequence[Event],
        *,
        cursor: tuple[str, str] | None = None,
        records: Sequence[ReceivedRecord] = (),
    ) -> IngestOutcome:
        """Store one batch in one transaction; returns once it is committed.

        The whole batch runs on the database thread in one go (see
        :meth:`Database.run_transaction`). Raises :class:`StorageUnavailable`
        (nothing stored) when the storage fails: disk full, read-only, I/O
        errors, or the database file removed or replaced while open.
        """
        if self._file_lost is not None:
            raise StorageUnavailable(self._file_lost)
        try:
            return await self.db.run_transaction(
                self._store_batch,
                events,
                cursor,
                time.time(),
                records,
                on_commit=self._committed,
            )
        except BaseException as exc:
            problem = self._file_lost or storage_problem(exc, self.path)
            if problem is None:
                raise
            self._note_write_problem(problem)
            raise StorageUnavailable(problem) from None

    async def project(self, *, max_events: int = PROJECTION_SPAN) -> Projection | None:
        """Fold the next span into progress in one transaction (see :mod:`.projection`)."""
        if self._file_lost is not None:
            raise StorageUnavailable(self._file_lost)
        try:
            return await self.db.run_transaction(self._project_span, max_events)
        except BaseException as exc:
            # The catalog cache may hold paths or modules the rollback undid.
            with contextlib.suppress(sqlite3.Error):
                self.catalog = await load_catalog(self.db.reader)
            problem = self._file_lost or storage_problem(exc, self.path)
            if problem is None:
                raise
            self._note_write_problem(problem)
            raise StorageUnavailable(problem) from None

    def _project_span(self, conn: sqlite3.Connection, max_events: int) -> Projection | None:
        projection = project_span(conn, self.catalog, max_events)
        if projection is not None:
            self._check_file()
        return projection

    async def progress_seq(self) -> int:
        async with self.db.reader.execute(WATERMARK_SQL) as cursor:
            (value,) = await cursor.fetchone()
        return value

    async def progress_view(
        self, paths: Sequence[str], module_keys: Sequence[tuple[str, str]], *, now: float
    ) -> ProgressView:
        async with self.db.snapshot() as conn:
            async with conn.execute(WATERMARK_SQL) as cursor:
                (seq,) = await cursor.fetchone()
            path_rows = await queries.path_summaries(conn, self.catalog, paths, now=now)
            module_rows = await queries.module_summaries(conn, module_keys) if module_keys else []
            total = await queries.learner_count(conn)
        return ProgressView(seq, path_rows, module_rows, total)

    async def progress_rows_since(self, after_seq: int) -> Projection | None:
        async with self.db.snapshot() as conn:
            async with conn.execute(WATERMARK_SQL) as cursor:
                (seq,) = await cursor.fetchone()
            if seq <= after_seq:
                return None
            changes = await queries.progress_rows_since(conn, after_seq, seq)
        return Projection(after_seq + 1, seq, changes)

    def _store_batch(
        self,
        conn: sqlite3.Connection,
        events: Sequence[Event],
        cursor: tuple[str, str] | None,
        received: float,
        records: Sequence[ReceivedRecord],
    ) -> IngestOutcome:
        outcome = store_batch(
            conn,
            events,
            next_seq=self.last_seq + 1,
            received=received,
            cursor=cursor,
            records=records,
        )
        if outcome.stored:
            # The high-water mark survives retention deleting every event.
            _set_meta(conn, "last_seq", str(outcome.last_seq))
        # Last, just before COMMIT: a batch is acknowledged only if it lands in the file
        # at the path (after the directory was removed, SQLite would commit into
        # unlinked files and everything acknowledged would be lost at exit).
        self._check_file()
        return outcome

    def _check_file(self) -> None:
        """Raise StorageUnavailable if the file at the path is no longer the one open.

        One ``os.stat`` per batch (about 2 us, see docs/ingest.md).
        """
        if self._file_id is None or _file_identity(self.path) == self._file_id:
            return
        self._file_lost = (
            f"database file {self.path} was removed or replaced while the server had it "
            "open; writes stopped so that nothing unstored is acknowledged: restore it "
            "and restart the server"
        )
        raise StorageUnavailable(self._file_lost)

    def _note_write_problem(self, problem: str) -> None:
        """Record why writes fail; log only when the reason changes."""
        if problem != self.write_problem:
            log.error("writes failing: %s", problem)
        self.write_problem = problem

    def _committed(self, outcome: IngestOutcome) -> None:
        """Bring the in-memory state in line with a committed batch."""
        if self.write_problem is not None:
            log.warning("writes work again (was: %s)", self.write_problem)
            self.write_problem = None
        if not outcome.stored:
            return
        self.last_seq = outcome.last_seq

    async def load_catalog(self, paths: list[CatalogPath]) -> None:
        """Make ``paths`` authoritative and re-derive their learners' percents."""

        def load(conn: sqlite3.Connection) -> tuple[Catalog, str]:
            store_catalog(conn, paths)
            catalog = load_catalog_sync(conn)
            recompute_path_percents(conn, catalog, {p.id for p in paths})
            # A running server sees the new version and reloads (see refresh_catalog).
            version = uuid.uuid4().hex
            _set_meta(conn, "catalog_version", version)
            return catalog, version

        self.catalog, self._catalog_version = await self.db.run_transaction(load)

    async def refresh_catalog(self) -> bool:
        """Reload the catalog if another process loaded one since; True if it did.

        ``jacmon catalog load`` may run beside a live server: its module counts
        and the path percents it re-derived must replace what this process holds.
        """
        version = await get_meta(self.db.reader, "catalog_version")
        if version == self._catalog_version:
            return False

        # On the writer's thread, between batches, so no batch sees half of it.
        self.catalog = await self.db.run_transaction(load_catalog_sync)
        self._catalog_version = version
        return True

    async def get_cursor(self, name: str) -> str | None:
        async with self.db.reader.execute(
            "SELECT value FROM cursors WHERE name = ?", (name,)
        ) as cursor:
            row = await cursor.fetchone()
        return row[0] if row else None

    # Pushed records (see jacmon.store.sqlite.received)

    async def received_log(
        self, *, limit: int = 50, source: str | None = None, unmapped_only: bool = True
    ) -> list[dict[str, Any]]:
        return await received.received_log(
            self.db.reader, limit=limit, source=source, unmapped_only=unmapped_only
        )

    async def received_totals(self) -> dict[str, dict[str, int]]:
        return await received.received_totals(self.db.reader)

    # Queries (see jacmon.store.sqlite.queries)

    async def recent_event_rows(
        self, limit: int, *, learner: str | None = None
    ) -> list[tuple[int, str]]:
        return await queries.recent_event_rows(self.db.reader, limit, learner=learner)

    async def event_rows_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[tuple[int, str]]:
        return await queries.event_rows_since(self.db.reader, seq, learner=learner, limit=limit)

    async def oldest_seq(self) -> int:
        return await queries.oldest_seq(self.db.reader)

    async def progress_snapshot(
        self, *, learner: str | None = None, now: float | None = None, learner_limit: int = 1000
    ) -> dict[str, Any]:
        async with self.db.snapshot() as conn:
            async with conn.execute(WATERMARK_SQL) as cursor:
                (seq,) = await cursor.fetchone()
            body = await queries.progress_snapshot(
                conn,
                self.catalog,
                learner=learner,
                now=time.time() if now is None else now,
                learner_limit=learner_limit,
            )
        body["progress_seq"] = seq
        return body

    async def path_summaries(self, paths: Sequence[str], *, now: float) -> list[dict[str, Any]]:
        return await queries.path_summaries(self.db.reader, self.catalog, paths, now=now)

    async def module_summaries(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return await queries.module_summaries(self.db.reader, keys)

    async def committed_seq(self) -> int:
        # Read from the file: a command (or a test's second store) may have written to it.
        async with self.db.reader.execute(HEAD_SQL) as cursor:
            (head,) = await cursor.fetchone()
        return max(head, self.last_seq)

    async def learner_count(self) -> int:
        return await queries.learner_count(self.db.reader)

    async def last_seen(
        self, *, since: float | None = None, learner: str | None = None
    ) -> dict[str, float]:
        return await queries.last_seen(self.db.reader, since=since, learner=learner)

    async def recent_events(
        self, *, since: float, learner: str | None = None, through_seq: int | None = None
    ) -> AsyncIterator[tuple[float, str, float | None, str]]:
        async for row in queries.recent_events(
            self.db.reader, since=since, learner=learner, through_seq=through_seq
        ):
            yield row

    # Catalog

    async def modules_left_out(self, paths: list[CatalogPath]) -> dict[str, list[str]]:
        return await modules_left_out(self.db.reader, paths)

    async def catalog_rows(self) -> list[dict[str, Any]]:
        async with self.db.reader.execute(
            "SELECT c.path, p.title AS path_title, p.source, c.position, c.module, c.title"
            " FROM catalog_modules c JOIN catalog_paths p ON p.path = c.path"
            " ORDER BY c.path, c.position"
        ) as cursor:
            return [dict(r) for r in await cursor.fetchall()]

    # Alerts

    async def get_alert(self, alert_id: int) -> dict[str, Any] | None:
        return await alerts.get_alert(self.db.reader, alert_id)

    async def open_alerts(self, *, learner: str | None = None) -> list[dict[str, Any]]:
        return await alerts.open_alerts(self.db.reader, learner=learner)

    async def list_alerts(
        self, *, state: str = "firing", learner: str | None = None
    ) -> list[dict[str, Any]]:
        return await alerts.list_alerts(self.db.reader, state=state, learner=learner)

    async def alert_changes_since(
        self, seq: int, *, learner: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        return await alerts.alert_changes_since(self.db.reader, seq, learner=learner, limit=limit)

    async def last_alert_change_seq(self) -> int:
        return await alerts.last_alert_change_seq(self.db.reader)

    async def alert_totals(self) -> tuple[int, dict[str, int]]:
        return await alerts.alert_totals(self.db.reader)

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
        return await alerts.unacknowledge_alert(
            self.db, alert_id, by=by, note=note, now=now, learner=learner
        )

    # Silences

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
        return await silences.expire_silence(self.db, silence_id, by=by, now=now)

    async def lapse_silences(self, *, now: float, since: float = 0.0) -> list[dict[str, Any]]:
        async with self.db.transaction() as conn:
            return await silences.lapse_silences(conn, now=now, since=since)

    async def list_silences(self, *, include_expired: bool = False) -> list[dict[str, Any]]:
        return await silences.list_silences(self.db.reader, include_expired=include_expired)

    # Notifications

    async def route_new_changes(self, routes: Iterable[Route], *, now: float, limit: int) -> int:
        async with self.db.transaction() as conn:
            return await notify.route_new_changes(conn, routes, now=now, limit=limit)

    async def plan_repeats(self, routes: Mapping[str, Route], *, now: float) -> int:
        async with self.db.transaction() as conn:
            return await notify.plan_repeats(conn, routes, now=now)

    async def due_groups(
        self, receiver: str, routes: Mapping[str, Route], *, now: float
    ) -> tuple[list[DueGroup], float | None]:
        return await notify.due_groups(self.db.reader, receiver, routes, now=now)

    async def claim_batch(self, group: DueGroup) -> ClaimedBatch | None:
        async with self.db.transaction() as conn:
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
        async with self.db.transaction() as conn:
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
            self.db.reader, receiver=receiver, state=state, limit=limit
        )

    async def notification_counts(self) -> dict[str, int]:
        return await notify.open_counts(self.db.reader)

    # Task runs

    async def begin_run(
        self,
        task: str,
        *,
        trigger: str,
        scheduled: float | None,
        started: float,
        live_run_ids: set[int],
    ) -> tuple[int, bool]:
        return await task_runs.begin_run(
            self.db,
            task,
            trigger=trigger,
            scheduled=scheduled,
            started=started,
            live_run_ids=live_run_ids,
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
        await task_runs.finish_run(
            self.db,
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
        return await task_runs.record_run(
            self.db,
            task,
            outcome=outcome,
            trigger=trigger,
            scheduled=scheduled,
            at=at,
            summary=summary,
        )

    async def abandon_stale_runs(self, *, now: float, live_run_ids: set[int]) -> list[int]:
        return await task_runs.abandon_stale_runs(self.db, now=now, live_run_ids=live_run_ids)

    async def last_scheduled(self) -> dict[str, float]:
        return await task_runs.last_scheduled(self.db.reader)

    async def last_runs(self) -> dict[str, dict[str, Any]]:
        return await task_runs.last_runs(self.db.reader)

    async def recent_runs(
        self, *, task: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        return await task_runs.recent_runs(self.db.reader, task=task, limit=limit)

    async def run_totals(self) -> dict[str, dict[str, int]]:
        return await task_runs.run_totals(self.db.reader)

    # Tokens

    async def insert_token(self, record: dict[str, Any], secret_hash: str) -> None:
        await tokens.insert_token(self.db, record, secret_hash)

    async def list_tokens(self) -> list[dict[str, Any]]:
        return await tokens.list_tokens(self.db.reader)

    async def revoke_token(self, token_id: str, *, now: float) -> bool:
        return await tokens.revoke_token(self.db, token_id, now=now)

    async def active_token_count(self) -> int:
        return await tokens.active_token_count(self.db.reader)

    async def token_for_auth(self, token_id: str) -> dict[str, Any] | None:
        return await tokens.token_for_auth(self.db.reader, token_id)

    async def revoked_among(self, token_ids: Sequence[str]) -> set[str]:
        return await tokens.revoked_among(self.db.reader, token_ids)

    # What the monitoring tasks read

    def lease(self, name: str) -> Lease:
        return SingleServerLease(name)

    @contextlib.asynccontextmanager
    async def transaction(
        self, *, write: bool = True, fence: Fence | None = None
    ) -> AsyncIterator[SqliteTransaction]:
        # One server per SQLite file (the serve lock): its lease is never contested.
        if not write:
            yield SqliteTransaction(self.db.reader, writable=False)
            return
        async with self.db.transaction() as conn:
            yield SqliteTransaction(conn, writable=True)

    async def path_velocity(self) -> dict[str, dict[str, Any]]:
        return await monitoring.path_velocity(self.db.reader)

    async def catalog_path_ids(self) -> list[str]:
        return await monitoring.catalog_path_ids(self.db.reader)

    async def path_completions(
        self, *, start: float, mid: float, now: float
    ) -> dict[str, tuple[int, int]]:
        return await monitoring.path_completions(self.db.reader, start=start, mid=mid, now=now)

    async def in_progress_paths(self) -> list[tuple[str, str, float, float, float]]:
        return await monitoring.in_progress_paths(self.db.reader)

    async def activity_counts(
        self, *, recent: float, prior: float, day_starts: Sequence[float], start: float, now: float
    ) -> dict[str, tuple[int, int, int]]:
        return await monitoring.activity_counts(
            self.db.reader, recent=recent, prior=prior, day_starts=day_starts, start=start, now=now
        )

    async def monitored_learners(self) -> list[tuple[str, float, float, str | None]]:
        return await monitoring.monitored_learners(self.db.reader)

    async def score_windows(
        self, *, start: float, mid: float, now: float
    ) -> list[tuple[str, int, float | None, int, float | None]]:
        return await monitoring.score_windows(self.db.reader, start=start, mid=mid, now=now)

    async def latest_scores(
        self, *, since: float, now: float, keep: int
    ) -> list[tuple[str, str | None, float]]:
        return await monitoring.latest_scores(self.db.reader, since=since, now=now, keep=keep)

    async def daily_snapshot_days(self, days: Sequence[str]) -> set[str]:
        return await monitoring.daily_snapshot_days(self.db.reader, days)

    async def learner_day_stats(self, start: float, end: float) -> list[tuple[Any, ...]]:
        return await monitoring.learner_day_stats(self.db.reader, start, end)


class SingleServerLease(Lease):
    """A SQLite file is served by one server (its serve lock), so it always leads."""

    async def acquire(self) -> bool:
        self.fence = Fence(self.name, 1)
        return True

    async def confirm(self) -> bool:
        return self.fence is not None

    async def release(self) -> None:
        self.fence = None


class SqliteTransaction(Transaction):
    """A task's transaction on the writer connection (or, read-only, on the reader)."""

    def __init__(self, conn: aiosqlite.Connection, *, writable: bool):
        self._conn = conn
        self._writable = writable

    def _writer(self) -> aiosqlite.Connection:
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
