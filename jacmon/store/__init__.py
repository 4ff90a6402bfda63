"""The event store: SQLite (WAL) through aiosqlite, the source of truth.

:class:`Store` is what the server and the commands use: it owns the
connections, the catalog cache and the next sequence number.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jacmon.events import Event
from jacmon.store import queries
from jacmon.store.catalog import Catalog, CatalogPath, store_catalog
from jacmon.store.database import SET_META, Database, get_meta
from jacmon.store.ingest import (
    IngestOutcome,
    ProgressChanges,
    StorageUnavailable,
    StoredEvent,
    recompute_path_percents,
    storage_problem,
    store_batch,
)

__all__ = ["IngestOutcome", "ProgressChanges", "StorageUnavailable", "Store", "StoredEvent"]

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


class Store:
    """The event store of one jacmon server (or one command)."""

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

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> Store:
        """Open the database at ``path`` (created and migrated unless ``readonly``)."""
        db = await Database.open(path, readonly=readonly)
        conn = db.reader
        catalog = await Catalog.load(conn)
        async with conn.execute(
            "SELECT max(coalesce((SELECT max(seq) FROM events), 0),"
            " coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'last_seq'), 0))"
        ) as cursor:
            (last_seq,) = await cursor.fetchone()
        server_id = await get_meta(conn, "server_id")
        if server_id is None and not readonly:
            server_id = uuid.uuid4().hex[:12]
            async with db.transaction() as writer:
                await writer.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('server_id', ?)", (server_id,)
                )
        if server_id is None:
            server_id = "unknown"  # read-only, and no server ever wrote this database
        catalog_version = await get_meta(conn, "catalog_version")
        return cls(db, catalog, last_seq, server_id, catalog_version)

    async def close(self) -> None:
        await self.db.close()

    async def ingest(
        self, events: Sequence[Event], *, cursor: tuple[str, str] | None = None
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
                on_commit=self._committed,
            )
        except BaseException as exc:
            # The catalog cache may hold paths or modules the rollback undid.
            with contextlib.suppress(sqlite3.Error):
                self.catalog = await Catalog.load(self.db.reader)
            problem = self._file_lost or storage_problem(exc, self.path)
            if problem is None:
                raise
            self._note_write_problem(problem)
            raise StorageUnavailable(problem) from None

    def _store_batch(
        self,
        conn: sqlite3.Connection,
        events: Sequence[Event],
        cursor: tuple[str, str] | None,
        received: float,
    ) -> IngestOutcome:
        outcome = store_batch(
            conn,
            self.catalog,
            events,
            next_seq=self.last_seq + 1,
            received=received,
            cursor=cursor,
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
            catalog = Catalog.load_sync(conn)
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
        self.catalog = await self.db.run_transaction(Catalog.load_sync)
        self._catalog_version = version
        return True

    async def get_cursor(self, name: str) -> str | None:
        async with self.db.reader.execute(
            "SELECT value FROM cursors WHERE name = ?", (name,)
        ) as cursor:
            row = await cursor.fetchone()
        return row[0] if row else None

    # Queries (see jacmon.store.queries)

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
        return await queries.progress_snapshot(
            self.db.reader,
            self.catalog,
            learner=learner,
            now=time.time() if now is None else now,
            learner_limit=learner_limit,
        )

    async def path_summaries(self, paths: Sequence[str], *, now: float) -> list[dict[str, Any]]:
        return await queries.path_summaries(self.db.reader, self.catalog, paths, now=now)

    async def module_summaries(self, keys: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
        return await queries.module_summaries(self.db.reader, keys)
