"""The event store, the source of truth: one interface, one module per backend.

:class:`Store` (:mod:`jacmon.store.base`) is every statement jacmon runs against
its database; :mod:`jacmon.store.sqlite` is the embedded implementation and
:mod:`jacmon.store.postgres` the one several nodes share (a ``postgresql://``
location). Callers open a store with ``await Store.open(location)`` and import
only from this package, :mod:`jacmon.store.types`, :mod:`jacmon.store.catalog`
and :mod:`jacmon.store.rows` (checked by import-linter).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from jacmon.store.base import Store, Transaction, postgres_dsn
from jacmon.store.types import (
    IngestOutcome,
    ProgressChanges,
    ProgressView,
    Projection,
    ReceivedRecord,
    RecordConflict,
    StorageUnavailable,
    StoredEvent,
)

__all__ = [
    "IngestOutcome",
    "ProgressChanges",
    "ProgressView",
    "Projection",
    "ReceivedRecord",
    "RecordConflict",
    "ServeLock",
    "StorageUnavailable",
    "Store",
    "StoredEvent",
    "Transaction",
    "display_location",
    "latest_schema_version",
    "postgres_dsn",
    "schema_version",
    "serve_lock",
]


class ServeLock(Protocol):
    """Held while one server serves a store that only one server may serve at a time."""

    def acquire(self) -> None:
        """Take it, or raise StoreError naming the store and the holder."""

    def release(self) -> None: ...

    def problem(self) -> str | None:
        """For ``serve --check``: why the store cannot be served now, or None."""


def display_location(location: str | Path) -> str:
    """``location`` fit for messages and logs: a URL's password left out."""
    text = str(location)
    if "://" not in text:
        return text
    parts = urlsplit(text)
    if parts.password is None:
        return text
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=user + host))


class SharedStoreLock:
    """The serve lock of a PostgreSQL store: none. Several nodes serve one database by
    design (the ingest transaction and the task locks keep them consistent), so
    acquiring always succeeds and there is never a problem."""

    def acquire(self) -> None:
        """Nothing to take: any number of nodes may serve the database."""

    def release(self) -> None:
        """Nothing was taken."""

    def problem(self) -> str | None:
        return None


def serve_lock(location: Path | str) -> ServeLock:
    """The lock a server holds on ``location`` (SQLite: ``<db>.lock``, one server per file;
    PostgreSQL: no lock, see :class:`SharedStoreLock`)."""
    if postgres_dsn(location) is not None:
        return SharedStoreLock()
    from jacmon.store.sqlite.database import ServeLock as SqliteServeLock

    return SqliteServeLock(Path(location))


def schema_version(location: Path | str) -> int | str | None:
    """Schema version of the store at ``location`` without migrating it: None if there is
    none yet, the error text if it cannot be read.

    For PostgreSQL this connects (in a thread of its own, so it may be called from a
    running event loop) and reads ``schema_migrations``; a database without jacmon's
    tables is None, as a missing SQLite file is.
    """
    dsn = postgres_dsn(location)
    if dsn is not None:
        from jacmon.store.postgres.database import read_schema_version

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, read_schema_version(dsn)).result()
    from jacmon.store.sqlite.database import schema_version as sqlite_schema_version

    return sqlite_schema_version(Path(location))


def latest_schema_version(location: Path | str | None = None) -> int:
    """The schema version this jacmon writes (stores are migrated to it at open); the
    same number for both backends, by design (a test compares their schemas)."""
    if location is not None and postgres_dsn(location) is not None:
        from jacmon.store.postgres.schema import latest_version as pg_latest_version

        return pg_latest_version()
    from jacmon.store.sqlite.schema import latest_version

    return latest_version()
