"""Which PostgreSQL failures are the storage's (StorageUnavailable), and what their
sentence says; no server needed."""

from __future__ import annotations

import asyncpg
import pytest

from jacmon.store.postgres.database import Location
from jacmon.store.postgres.errors import storage_problem

WHERE = Location("db.example", 5433, "jacmon", "app")


@pytest.mark.parametrize(
    ("exc", "says"),
    [
        (asyncpg.DiskFullError("could not extend file"), "disk of PostgreSQL at"),
        (asyncpg.ReadOnlySQLTransactionError("read-only transaction"), "accepts no writes"),
        (asyncpg.PostgresIOError("could not write block"), "reported an I/O error"),
        (asyncpg.TooManyConnectionsError("too many clients"), "refuses more connections"),
        (asyncpg.OutOfMemoryError("out of memory"), "out of resources"),
        (asyncpg.AdminShutdownError("terminating connection"), "shutting down, restarting"),
        (asyncpg.CannotConnectNowError("the database system is starting up"), "shutting down"),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), "failed or was lost"),
        (ConnectionRefusedError(111, "Connect call failed"), "failed or was lost"),
        (TimeoutError(), "failed or was lost"),
        (asyncpg.InterfaceError("connection is closed"), "failed or was lost"),
        (asyncpg.InternalClientError("cannot switch to state 15"), "failed or was lost"),
    ],
)
def test_storage_failures_name_the_server_and_what_to_do(exc, says):
    problem = storage_problem(exc, WHERE)
    assert problem is not None
    assert says in problem
    assert "db.example:5433/jacmon" in problem
    if "failed or was lost" in says:
        # Maybe during COMMIT: not acknowledged, and a resend comes back as duplicates.
        assert "the batch was not acknowledged (a resend is safe)" in problem
    else:
        assert "nothing of the batch was stored" in problem


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.UniqueViolationError("duplicate key"),
        asyncpg.RaiseError("forced failure"),
        asyncpg.DataError("invalid input for query argument $1"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        ValueError("a bug"),
    ],
)
def test_other_failures_are_not_the_storages(exc):
    assert storage_problem(exc, WHERE) is None
