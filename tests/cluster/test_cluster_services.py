"""The real PostgreSQL and Redis the cluster tests run against: up, reachable, restartable."""

from __future__ import annotations

import os

import asyncpg
import cluster_services
import pytest
import redis.asyncio as aioredis
from cluster_services import PostgresServer, RedisServer


async def test_each_test_gets_its_own_empty_database(pg_dsn: str, postgres_server) -> None:
    conn = await asyncpg.connect(pg_dsn)
    try:
        name = await conn.fetchval("SELECT current_database()")
        tables = await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    assert pg_dsn.endswith(f"/{name}")
    assert tables == 0
    assert f":{postgres_server.port}/" in pg_dsn


def test_as_root_the_server_runs_as_the_postgres_user(postgres_server) -> None:
    """initdb and postgres refuse root: as root, the tests run them as ``postgres``."""
    owner = os.stat(f"/proc/{postgres_server.process.pid}").st_uid
    expected = (
        cluster_services.pwd.getpwnam("postgres").pw_uid if os.geteuid() == 0 else os.geteuid()
    )
    assert owner == expected


async def test_postgres_stops_and_comes_back_on_the_same_port(
    own_postgres: PostgresServer,
) -> None:
    dsn = own_postgres.create_database("back")
    port = own_postgres.port
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (n INT); INSERT INTO kept VALUES (7)")
    own_postgres.stop()
    with pytest.raises((OSError, asyncpg.PostgresError, asyncpg.InterfaceError)):
        await conn.fetchval("SELECT 1")
    with pytest.raises(OSError):
        await asyncpg.connect(dsn, timeout=5)
    own_postgres.start()
    assert own_postgres.port == port
    conn = await asyncpg.connect(dsn)
    try:
        assert await conn.fetchval("SELECT n FROM kept") == 7
    finally:
        await conn.close()


async def test_redis_set_get(redis_server: RedisServer) -> None:
    client = aioredis.from_url(redis_server.url)
    try:
        await client.set("jacmon:smoke", "1")
        assert await client.get("jacmon:smoke") == b"1"
    finally:
        await client.aclose()


async def test_redis_restart_keeps_the_port_and_drops_the_data(own_redis: RedisServer) -> None:
    client = aioredis.from_url(own_redis.url)
    await client.set("k", "v")
    await client.aclose()
    port, pid = own_redis.port, own_redis.process.pid
    own_redis.restart()
    assert own_redis.port == port
    assert own_redis.process.pid != pid
    client = aioredis.from_url(own_redis.url)
    try:
        # No persistence (--save '' --appendonly no): a restart is an empty Redis.
        assert await client.get("k") is None
        own_redis.stop()
        assert not own_redis.ping()
        own_redis.start()
        await client.connection_pool.disconnect()  # the old connection died with the server
        assert await client.ping()
    finally:
        await client.aclose()


def test_missing_binaries_fail_saying_ci_run_installs_them(monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(cluster_services, "REDIS_SERVER", str(tmp_path / "redis-server"))
    with pytest.raises(cluster_services.ServiceMissing, match=r"\.ci/run"):
        RedisServer()
    monkeypatch.setattr(cluster_services, "PG_ROOT", tmp_path)
    with pytest.raises(cluster_services.ServiceMissing, match=r"\.ci/run"):
        PostgresServer()
