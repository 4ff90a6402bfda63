"""Opening the PostgreSQL store: a connection pool, migrations run once across nodes, clear errors.

Several ``jacmon serve`` nodes may start at the same moment against one empty
database. Each runs :func:`migrate`, which takes a transaction-level advisory lock
first: one node applies the pending migrations, in that same transaction, while
the others wait on the lock; when it commits they get the lock, read the version it
wrote and have nothing to do. A failed migration rolls back whole (PostgreSQL's DDL
is transactional), so no node ever sees a half-migrated schema, and the lock goes
with the transaction even if the node dies.
"""

from __future__ import annotations

import contextlib
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg

from jacmon.errors import StoreError
from jacmon.store.postgres.schema import MIGRATIONS, SCHEMA_TABLE, latest_version

log = logging.getLogger("jacmon.store.postgres")

#: The advisory lock key that serialises migrations of one database ("jacmon" in ASCII).
#: Advisory locks are per database, so nodes of different databases never wait on each other.
MIGRATION_LOCK = 0x6A61636D6F6E

#: Seconds to wait for a connection (TCP connect, TLS and authentication) before giving up.
CONNECT_TIMEOUT_S = 10.0

#: Seconds a session may sit idle inside an open transaction before PostgreSQL ends it.
#: An ingest batch holds the events counter row until it commits, so a node that stops
#: mid-batch (frozen, partitioned) would hold up every node's ingest until TCP gave up
#: on it (hours); this bounds that. No jacmon transaction waits on anything but the
#: database for long: a task's reads and planning take seconds, not a minute.
IDLE_IN_TRANSACTION_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Location:
    """Where a DSN points, for messages: never the password."""

    host: str
    port: int
    database: str
    user: str | None

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host}:{self.port}/{self.database}"


def location(dsn: str) -> Location:
    """Host, port, database and user of a ``postgresql://`` DSN (libpq's defaults filled in).

    Environment variables (``PGHOST``...) that the driver would also read are not
    consulted: the message names what the DSN says.
    """
    parts = urllib.parse.urlsplit(dsn)
    query = urllib.parse.parse_qs(parts.query)
    try:
        port = parts.port or int(query.get("port", ["5432"])[0])
    except ValueError:
        port = 5432
    host = parts.hostname or query.get("host", ["localhost"])[0]
    user = urllib.parse.unquote(parts.username) if parts.username else query.get("user", [None])[0]
    database = (
        urllib.parse.unquote(parts.path.lstrip("/")) or query.get("dbname", [user or "postgres"])[0]
    )
    return Location(host, port, database, user)


def _password(dsn: str) -> str | None:
    parts = urllib.parse.urlsplit(dsn)
    if parts.password:
        return urllib.parse.unquote(parts.password)
    return urllib.parse.parse_qs(parts.query).get("password", [None])[0]


def _scrub(text: str, dsn: str) -> str:
    """``text`` with the DSN's password (and the DSN itself) replaced, whatever the driver said."""
    text = text.replace(dsn, str(location(dsn)))
    password = _password(dsn)
    if password:
        text = text.replace(password, "***")
    return text


def _open_error(exc: BaseException, dsn: str, timeout: float) -> StoreError:
    """The StoreError for a failure to connect: what went wrong, where, and what to check."""
    where = location(dsn)
    at = f"{where.host}:{where.port}"
    if isinstance(exc, TimeoutError):
        return StoreError(
            f"PostgreSQL at {at} (database {where.database}) did not answer within "
            f"{timeout:g}s; check the host and port, and that no firewall drops the connection"
        )
    if isinstance(
        exc, asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    ):
        return StoreError(
            f"PostgreSQL at {at} refused user {where.user or '(default)'} for database "
            f"{where.database}: {_scrub(str(exc), dsn)}; check the user and password in the DSN "
            "(and pg_hba.conf)"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return StoreError(
            f"database {where.database} does not exist on PostgreSQL at {at}; "
            f"create it first (createdb -h {where.host} -p {where.port} {where.database})"
        )
    if isinstance(exc, OSError):
        reason = exc.strerror or _scrub(str(exc), dsn) or type(exc).__name__
        return StoreError(
            f"cannot reach PostgreSQL at {at} (database {where.database}): {reason}; "
            "is the server running, and are the host and port right?"
        )
    if isinstance(exc, ValueError | asyncpg.ClientConfigurationError):
        return StoreError(f"invalid PostgreSQL DSN {where}: {_scrub(str(exc), dsn)}")
    return StoreError(
        f"cannot open PostgreSQL database {where.database} at {at}: {_scrub(str(exc), dsn)}"
    )


async def schema_version(conn: asyncpg.Connection) -> int:
    """The last migration applied to the connection's database (0: none, or not jacmon's)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return 0
    return await conn.fetchval("SELECT coalesce(max(version), 0) FROM schema_migrations")


def _newer_error(version: int, where: str) -> StoreError:
    return StoreError(
        f"database {where} has schema version {version}, newer than this jacmon "
        f"(knows up to {latest_version()}); upgrade jacmon on this node"
    )


async def migrate(conn: asyncpg.Connection, *, where: str = "") -> int:
    """Apply the migrations the database lacks, once across nodes; return the resulting version.

    Everything happens in one transaction that first takes the advisory lock
    :data:`MIGRATION_LOCK`: a node that finds it taken waits (logging that it
    does), then sees the version the first node committed. Raises StoreError if
    the database's schema is newer than this code, or a migration fails (nothing
    of it is kept).
    """
    where = where or "(this database)"
    async with conn.transaction():
        if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", MIGRATION_LOCK):
            log.info("waiting for another jacmon node to finish migrating %s", where)
            await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(SCHEMA_TABLE)
        version = await schema_version(conn)
        if version > latest_version():
            raise _newer_error(version, where)
        for number, description, script in MIGRATIONS:
            if number <= version:
                continue
            log.info("applying migration %d: %s", number, description)
            try:
                await conn.execute(script)
            except asyncpg.PostgresError as exc:
                raise StoreError(
                    f"migration {number} ({description}) of {where} failed: {exc}"
                ) from None
            await conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at)"
                " VALUES ($1, $2, $3)",
                number,
                description,
                time.time(),
            )
            version = number
    return version


class PgDatabase:
    """A pool of connections to one PostgreSQL database holding jacmon's schema.

    Use :meth:`transaction` for writes (one connection, one transaction) and
    :attr:`pool` for reads. Open with :meth:`open`; close with :meth:`close`.
    """

    def __init__(self, pool: asyncpg.Pool, where: Location, version: int, dsn: str = "") -> None:
        self.pool = pool
        self.where = where
        self.version = version
        #: For connections of their own (the lease's); never shown (it may hold a password).
        self._dsn = dsn

    async def connect_alone(self, application: str) -> asyncpg.Connection:
        """A connection outside the pool, for a session that must live exactly as long
        as its holder wants (a lease). TCP keepalives make the server notice a holder
        whose machine or network died within about 10 s."""
        return await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={
                "application_name": application,
                "tcp_keepalives_idle": "5",
                "tcp_keepalives_interval": "2",
                "tcp_keepalives_count": "3",
            },
        )

    @classmethod
    async def open(
        cls,
        dsn: str,
        *,
        readonly: bool = False,
        # Limits
        min_size: int = 1,
        max_size: int = 10,
        # Timeouts
        connect_timeout: float = CONNECT_TIMEOUT_S,
    ) -> PgDatabase:
        """Connect a pool to ``dsn`` and bring the schema to :func:`latest_version`.

        ``readonly`` applies nothing and refuses a database that is not exactly
        at the latest version (for commands that only read). Raises
        StoreError, naming host, port and database but never the password, when
        the server is unreachable, does not answer in ``connect_timeout`` seconds,
        refuses the login, lacks the database, or holds a newer schema.
        """
        where = location(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                timeout=connect_timeout,
                server_settings={
                    "application_name": "jacmon",
                    "idle_in_transaction_session_timeout": str(
                        int(IDLE_IN_TRANSACTION_TIMEOUT_S * 1000)
                    ),
                },
            )
        except (OSError, TimeoutError, ValueError, asyncpg.PostgresError,
                asyncpg.InterfaceError) as exc:  # fmt: skip
            raise _open_error(exc, dsn, connect_timeout) from None
        try:
            async with pool.acquire() as conn:
                if not readonly:
                    version = await migrate(conn, where=str(where))
                else:
                    version = await schema_version(conn)
                    if version > latest_version():
                        raise _newer_error(version, str(where))
                    if version != latest_version():
                        raise StoreError(
                            f"database {where} has schema version {version}, expected "
                            f"{latest_version()}; start jacmon serve on it once to migrate it"
                        )
        except BaseException:
            pool.terminate()
            raise
        return cls(pool, where, version, dsn)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One connection in one READ COMMITTED transaction: commits on success, else rolls back."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def close(self) -> None:
        """Close the pool, waiting for the connections in use to be released."""
        await self.pool.close()


async def read_schema_version(dsn: str, *, timeout: float = CONNECT_TIMEOUT_S) -> int | str | None:
    """The schema version of the database at ``dsn``, creating nothing: None if it has no
    jacmon schema yet, the error text (host, port and database, never the password) if
    it cannot be read."""
    try:
        conn = await asyncpg.connect(dsn, timeout=timeout)
    except (OSError, TimeoutError, ValueError, asyncpg.PostgresError,
            asyncpg.InterfaceError) as exc:  # fmt: skip
        return str(_open_error(exc, dsn, timeout))
    try:
        version = await schema_version(conn)
    except asyncpg.PostgresError as exc:
        return f"cannot read the schema version of {location(dsn)}: {_scrub(str(exc), dsn)}"
    finally:
        await conn.close()
    return version or None
