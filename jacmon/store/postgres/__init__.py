"""The PostgreSQL store shared by several ``jacmon serve`` nodes (issue 14).

:mod:`.store` is :class:`~jacmon.store.postgres.store.PgStore`, the
:class:`~jacmon.store.base.Store` that ``Store.open("postgresql://...")`` returns;
like the SQLite store it hands each statement to the module of its table family
(:mod:`.ingest`, :mod:`.projection` and its :mod:`.progress_sql`, :mod:`.catalog`,
:mod:`.queries`, :mod:`.alerts`, :mod:`.silences`, :mod:`.notify`, :mod:`.task_runs`,
:mod:`.tokens`, :mod:`.monitoring`). :mod:`.schema` is the SQLite schema in PostgreSQL types,
migration for migration; :mod:`.database` opens a pool and migrates once across
nodes; :mod:`.sequence` hands out the gap-free global sequences; :mod:`.errors`
says which failures are the storage's. The driver is asyncpg (docs/cluster-notes.md
says why); its calls stay in this package (import-linter checks it).
"""

from __future__ import annotations

from jacmon.store.postgres.database import PgDatabase, location, migrate, schema_version
from jacmon.store.postgres.schema import latest_version

__all__ = ["PgDatabase", "latest_version", "location", "migrate", "schema_version"]
