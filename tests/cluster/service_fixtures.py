"""Fixtures for the tests that need a real PostgreSQL or Redis on loopback (a pytest plugin).

tests/conftest.py loads this module (``pytest_plugins``), so tests/cluster and the
store suite in tests/store share one session server. Nothing starts until a test
asks for a fixture: a run of SQLite-only tests starts no PostgreSQL.

``postgres_server`` and ``redis_server`` are started once per session (by
cluster_services, as the ``postgres`` system user when the tests run as root) and
stopped, by their PIDs, at the end. ``pg_dsn`` gives each test a fresh, empty
database on the session's server, dropped after the test. Tests that stop or kill
a server start their own with ``own_postgres``/``own_redis`` (or the
``running_postgres()``/``running_redis()`` context managers), so the shared ones
stay up for everyone else.

Nothing is skipped: without the binaries the fixtures fail, saying what to install
(``.ci/run`` installs them).
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
from cluster_services import (
    PostgresServer,
    RedisServer,
    ServiceMissing,
    running_postgres,
    running_redis,
)

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL for the session (its ``dsn(database)``, ``psql()``, ``port``)."""
    try:
        with running_postgres() as server:
            yield server
    except ServiceMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh empty database on the session's PostgreSQL, as a ``postgresql://`` DSN.

    Dropped (its connections closed by force) after the test.
    """
    name = f"t{os.getpid()}_{next(_database_numbers)}"
    dsn = postgres_server.create_database(name)
    try:
        yield dsn
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL of the test's own, free to stop, kill and start again."""
    try:
        with running_postgres() as server:
            yield server
    except ServiceMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One Redis for the session (its ``url``, ``port``, ``restart()``); leave it running."""
    try:
        with running_redis() as server:
            yield server
    except ServiceMissing as exc:
        pytest.fail(str(exc))


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    """A Redis of the test's own, free to stop and start again."""
    try:
        with running_redis() as server:
            yield server
    except ServiceMissing as exc:
        pytest.fail(str(exc))
