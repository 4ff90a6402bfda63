"""Which backend serves a store location: the one module that names them all.

Everything else opens a store with ``Store.open(location)``; only this module
imports a backend package (import-linter checks it).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jacmon.store.base import Store


async def open_store(location: str | Path, *, readonly: bool = False) -> Store:
    """Open the store at ``location``, created and migrated unless ``readonly``: a
    ``postgresql://`` DSN opens the shared PostgreSQL store, anything else is a SQLite
    file path."""
    from jacmon.store.base import postgres_dsn

    dsn = postgres_dsn(location)
    if dsn is not None:
        from jacmon.store.postgres.store import PgStore

        return await PgStore.open(dsn, readonly=readonly)
    from jacmon.store.sqlite.store import SqliteStore

    return await SqliteStore.open(Path(location), readonly=readonly)
