"""The SQLite store: jacmon's embedded default, one WAL file through aiosqlite.

Only :mod:`jacmon.store` imports this package (import-linter checks it); everything
else reaches it through :class:`jacmon.store.Store`.
"""

from jacmon.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]
