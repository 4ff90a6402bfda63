"""The event store, the source of truth: one interface, one module per backend.

:class:`Store` (:mod:`jacmon.store.base`) is every statement jacmon runs against
its database; :mod:`jacmon.store.sqlite` is the embedded implementation. Callers
open a store with ``await Store.open(location)`` and import only from this
package, :mod:`jacmon.store.types`, :mod:`jacmon.store.catalog` and
:mod:`jacmon.store.rows` (checked by import-linter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from jacmon.store.base import Store, Transaction
from jacmon.store.types import (
    IngestOutcome,
    ProgressChanges,
    StorageUnavailable,
    StoredEvent,
)

__all__ = [
    "IngestOutcome",
    "ProgressChanges",
    "ServeLock",
    "StorageUnavailable",
    "Store",
    "StoredEvent",
    "Transaction",
    "display_location",
    "latest_schema_version",
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


def serve_lock(location: Path) -> ServeLock:
    """The lock a server holds on ``location`` (SQLite: ``<db>.lock``, one server per file)."""
    from jacmon.store.sqlite.database import ServeLock as SqliteServeLock

    return SqliteServeLock(location)


def schema_version(location: Path) -> int | str | None:
    """Schema version of the store at ``location`` without opening it for writing: None
    if there is none yet, the error text if it cannot be read."""
    from jacmon.store.sqlite.database import schema_version as sqlite_schema_version

    return sqlite_schema_version(location)


def latest_schema_version() -> int:
    """The schema version this jacmon writes (stores are migrated to it at open)."""
    from jacmon.store.sqlite.schema import latest_version

    return latest_version()
