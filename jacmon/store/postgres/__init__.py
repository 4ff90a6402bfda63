"""The PostgreSQL store shared by several ``jacmon serve`` nodes (issue 14; groundwork).

:mod:`.schema` is the SQLite schema in PostgreSQL types, migration for migration;
:mod:`.database` opens a pool and migrates once across nodes; :mod:`.sequence`
hands out the gap-free global event sequence to writers on different nodes.
The driver is asyncpg (docs/cluster-notes.md says why); its calls stay in this
package.
"""

from __future__ import annotations

from jacmon.store.postgres.database import PgDatabase, location, migrate, schema_version
from jacmon.store.postgres.schema import latest_version

__all__ = ["PgDatabase", "latest_version", "location", "migrate", "schema_version"]
