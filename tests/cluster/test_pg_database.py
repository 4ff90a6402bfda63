"""The PostgreSQL store's schema and opening: migrations once across nodes, versions, errors.

Against a real PostgreSQL (conftest's ``pg_dsn``: a fresh database per test).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import sqlite3

import asyncpg
import pytest
from cluster_services import PG_PASSWORD, PostgresServer, free_port

from jacmon.errors import StoreError
from jacmon.store.postgres import PgDatabase, database, schema
from jacmon.store.postgres.database import MIGRATION_LOCK, location


def sqlite_schema():
    """The SQLite store's schema module, wherever the store restructuring put it."""
    for name in ("jacmon.store.sqlite.schema", "jacmon.store.schema"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError:
            continue
    raise AssertionError("the SQLite schema module is neither jacmon.store.schema nor .sqlite")


async def fetch_all(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def applied(dsn: str) -> list[int]:
    return [r["version"] for r in await fetch_all(dsn, "SELECT version FROM schema_migrations")]


def sqlite_layout() -> tuple[dict[str, list[tuple[str, str, bool]]], set[str]]:
    """SQLite's tables as {table: [(column, type, not null)]} and its index names."""
    conn = sqlite3.connect(":memory:")
    try:
        for _, _, script in sqlite_schema().MIGRATIONS:
            conn.executescript(script)
        tables = {}
        for (name,) in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        ):
            tables[name] = [
                (row[1], row[2], bool(row[3]) or bool(row[5]))
                for row in conn.execute(f"PRAGMA table_info({name})")
            ]
        indexes = {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
            )
        }
        return tables, indexes
    finally:
        conn.close()


#: Which PostgreSQL types stand for a SQLite declared type (schema.py's docstring says why).
PG_TYPES = {
    "INTEGER": {"bigint", "integer", "smallint"},
    "REAL": {"double precision"},
    "TEXT": {"text"},
}


def test_the_final_version_is_the_sqlite_stores() -> None:
    assert schema.latest_version() == sqlite_schema().latest_version()
    assert [m[0] for m in schema.MIGRATIONS] == list(range(1, schema.latest_version() + 1))
    assert [m[1] for m in schema.MIGRATIONS] == [m[1] for m in sqlite_schema().MIGRATIONS]


async def test_migrating_an_empty_database_gives_sqlites_tables_columns_and_indexes(
    pg_dsn: str,
) -> None:
    db = await PgDatabase.open(pg_dsn)
    await db.close()
    assert db.version == schema.latest_version()
    assert await applied(pg_dsn) == list(range(1, schema.latest_version() + 1))

    columns = await fetch_all(
        pg_dsn,
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns"
        " WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
    )
    pg_tables: dict[str, list[tuple[str, str, bool]]] = {}
    for row in columns:
        pg_tables.setdefault(row["table_name"], []).append(
            (row["column_name"], row["data_type"], row["is_nullable"] == "NO")
        )
    lite_tables, lite_indexes = sqlite_layout()
    assert set(pg_tables) == set(lite_tables) | {"schema_migrations", "seq_counters"}
    for table, lite_columns in lite_tables.items():
        pg_columns = pg_tables[table]
        assert [c[0] for c in pg_columns] == [c[0] for c in lite_columns], table
        for (name, pg_type, pg_not_null), (_, lite_type, lite_not_null) in zip(
            pg_columns, lite_columns, strict=True
        ):
            assert pg_type in PG_TYPES[lite_type], f"{table}.{name}: {pg_type} for {lite_type}"
            assert pg_not_null == lite_not_null, f"{table}.{name}: NOT NULL differs"

    pg_indexes = {
        r["indexname"]
        for r in await fetch_all(
            pg_dsn,
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            " AND indexname NOT LIKE '%\\_pkey' AND indexname NOT LIKE '%\\_key'",
        )
    }
    assert pg_indexes == lite_indexes
    counters = await fetch_all(pg_dsn, "SELECT name, last_value FROM seq_counters ORDER BY name")
    assert [tuple(r) for r in counters] == [("alert_changes", 0), ("events", 0)]


async def test_reopening_a_migrated_database_changes_nothing(pg_dsn: str, caplog) -> None:
    db = await PgDatabase.open(pg_dsn)
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO meta (key, value) VALUES ('server_id', 'abc')")
    await db.close()
    caplog.set_level(logging.INFO, logger="jacmon.store.postgres")
    for _ in range(2):
        db = await PgDatabase.open(pg_dsn)
        assert db.version == schema.latest_version()
        assert await db.pool.fetchval("SELECT value FROM meta WHERE key = 'server_id'") == "abc"
        await db.close()
    assert "applying migration" not in caplog.text
    assert await applied(pg_dsn) == list(range(1, schema.latest_version() + 1))


async def test_three_nodes_opening_at_once_migrate_once(pg_dsn: str, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jacmon.store.postgres")
    nodes = await asyncio.gather(*(PgDatabase.open(pg_dsn) for _ in range(3)))
    try:
        assert [node.version for node in nodes] == [schema.latest_version()] * 3
    finally:
        await asyncio.gather(*(node.close() for node in nodes))
    applying = [r for r in caplog.records if r.getMessage().startswith("applying migration")]
    assert len(applying) == schema.latest_version()
    assert await applied(pg_dsn) == list(range(1, schema.latest_version() + 1))


async def test_a_node_waits_for_the_migrating_node_then_sees_its_version(
    pg_dsn: str, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="jacmon.store.postgres")
    holder = await asyncpg.connect(pg_dsn)
    try:
        # Another node in the middle of migrating holds the lock.
        await holder.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        opening = asyncio.create_task(PgDatabase.open(pg_dsn))
        await asyncio.sleep(1.0)
        assert not opening.done()
        assert "waiting for another jacmon node to finish migrating" in caplog.text
        await holder.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        db = await asyncio.wait_for(opening, 30)
        assert db.version == schema.latest_version()
        await db.close()
    finally:
        await holder.close()


async def test_a_newer_schema_is_refused_naming_both_versions(pg_dsn: str) -> None:
    db = await PgDatabase.open(pg_dsn)
    newer = schema.latest_version() + 1
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO schema_migrations (version, description, applied_at)"
            " VALUES ($1, 'from a later jacmon', 0)",
            newer,
        )
    await db.close()
    for readonly in (False, True):
        with pytest.raises(StoreError) as error:
            await PgDatabase.open(pg_dsn, readonly=readonly)
        message = str(error.value)
        assert f"schema version {newer}" in message
        assert f"knows up to {schema.latest_version()}" in message
        assert "upgrade jacmon" in message
        assert PG_PASSWORD not in message


async def test_readonly_refuses_an_unmigrated_database_and_creates_nothing(pg_dsn: str) -> None:
    with pytest.raises(StoreError, match=r"schema version 0, expected \d+; start jacmon serve"):
        await PgDatabase.open(pg_dsn, readonly=True)
    tables = await fetch_all(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == []


async def test_a_failing_migration_leaves_nothing_behind(pg_dsn: str, monkeypatch) -> None:
    broken = (schema.latest_version() + 1, "broken", "CREATE TABLE half (a INT); SELECT 1 / 0;")
    monkeypatch.setattr(database, "MIGRATIONS", [*schema.MIGRATIONS, broken])
    monkeypatch.setattr(database, "latest_version", lambda: broken[0])
    with pytest.raises(StoreError, match=r"migration \d+ \(broken\) .* failed: division by zero"):
        await PgDatabase.open(pg_dsn)
    # One transaction: migrations 1..N went with the broken one.
    tables = await fetch_all(pg_dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    assert tables == []


async def test_an_unreachable_server_names_host_port_and_database() -> None:
    port = free_port()
    dsn = f"postgresql://jacmon:{PG_PASSWORD}@127.0.0.1:{port}/jacmon_live"
    with pytest.raises(StoreError) as error:
        await PgDatabase.open(dsn, connect_timeout=5)
    message = str(error.value)
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port} (database jacmon_live)" in message
    assert "is the server running" in message
    assert PG_PASSWORD not in message


async def test_a_server_that_never_answers_times_out_clearly(busy_port: int) -> None:
    # busy_port listens but never accepts: the connection opens, no greeting ever comes.
    dsn = f"postgresql://jacmon:{PG_PASSWORD}@127.0.0.1:{busy_port}/jacmon_live"
    with pytest.raises(StoreError) as error:
        await PgDatabase.open(dsn, connect_timeout=1)
    message = str(error.value)
    assert f"PostgreSQL at 127.0.0.1:{busy_port} (database jacmon_live) did not answer" in message
    assert PG_PASSWORD not in message


async def test_a_wrong_password_is_an_auth_error_without_the_password(
    pg_dsn: str, postgres_server: PostgresServer
) -> None:
    name = pg_dsn.rsplit("/", 1)[1]
    wrong = "not-the-password-42"
    with pytest.raises(StoreError) as error:
        await PgDatabase.open(postgres_server.dsn(name, password=wrong))
    message = str(error.value)
    assert f"PostgreSQL at 127.0.0.1:{postgres_server.port} refused user jacmon" in message
    assert f"for database {name}" in message
    assert "password authentication failed" in message
    assert wrong not in message
    assert PG_PASSWORD not in message


async def test_a_missing_database_says_to_create_it(postgres_server: PostgresServer) -> None:
    missing = r"database no_such_db does not exist on PostgreSQL at .*\(createdb -h 127"
    with pytest.raises(StoreError, match=missing):
        await PgDatabase.open(postgres_server.dsn("no_such_db"))


def test_location_never_holds_the_password() -> None:
    where = location("postgresql://u:s3cret@db.example:6432/jacmon?sslmode=require")
    assert str(where) == "u@db.example:6432/jacmon"
    assert str(location("postgresql:///jacmon?host=/run/postgresql")) == (
        "/run/postgresql:5432/jacmon"
    )
