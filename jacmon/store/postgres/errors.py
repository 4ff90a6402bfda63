"""Which PostgreSQL failures are the storage's, not the batch's, and what to say about them.

A batch that fails because the server is down, the connection dropped, the disk
is full or the database is read-only is not the producer's fault: the server
answers ``storage_unavailable`` (nothing acknowledged) and ``/healthz`` shows
the sentence made here, naming ``host:port/database`` and what clears it. Any
other error (a constraint, a bug in a statement) is raised as it is.
"""

from __future__ import annotations

import asyncpg

from jacmon.store.postgres.database import Location

#: (exception classes, what happened, what to do). First match wins: order matters
#: where classes nest (DiskFullError is an InsufficientResourcesError).
_PROBLEMS: tuple[tuple[tuple[type[BaseException], ...], str, str], ...] = (
    (
        (asyncpg.DiskFullError,),
        "the disk of PostgreSQL at {at} is full",
        "free space on the database server; writes resume on their own",
    ),
    (
        (asyncpg.ReadOnlySQLTransactionError,),
        "PostgreSQL at {at} accepts no writes (a read-only standby, or "
        "default_transaction_read_only)",
        "point the DSN at the primary, or make the database writable",
    ),
    (
        (asyncpg.PostgresIOError, asyncpg.PostgresSystemError),
        "PostgreSQL at {at} reported an I/O error",
        "check the database server's disk and its log",
    ),
    (
        (asyncpg.TooManyConnectionsError,),
        "PostgreSQL at {at} refuses more connections",
        "raise max_connections or lower the number of nodes and pool sizes",
    ),
    (
        (asyncpg.InsufficientResourcesError,),
        "PostgreSQL at {at} is out of resources (memory or similar)",
        "check the database server; writes resume once it recovers",
    ),
    (
        (
            asyncpg.CannotConnectNowError,
            asyncpg.AdminShutdownError,
            asyncpg.CrashShutdownError,
            asyncpg.IdleSessionTimeoutError,
        ),
        "PostgreSQL at {at} is shutting down, restarting or recovering",
        "wait for it to be back; writes resume on their own",
    ),
    (
        (
            asyncpg.PostgresConnectionError,
            # asyncpg's protocol giving up on a connection the server ended while a
            # statement was being sent (a restart or pg_terminate_backend racing BEGIN).
            asyncpg.InternalClientError,
            ConnectionError,
            OSError,
            TimeoutError,
        ),
        "the connection to PostgreSQL at {at} failed or was lost",
        "check that the server is running and reachable; writes resume once it is",
    ),
)


_LOST = _PROBLEMS[-1][0]


def _closed_connection(exc: BaseException) -> bool:
    """asyncpg's InterfaceError for work on a connection that is already closed.

    Its other InterfaceErrors (a DataError for an argument of the wrong type, a
    connection used twice at once) are bugs, not storage problems.
    """
    return (
        isinstance(exc, asyncpg.InterfaceError)
        and not isinstance(exc, asyncpg.DataError)
        and "closed" in str(exc)
    )


def storage_problem(exc: BaseException, where: Location) -> str | None:
    """A sentence naming the storage problem behind ``exc`` at ``where``, or None.

    ``where`` prints as ``user@host:port/database`` (never the password).
    """
    at = f"{where.host}:{where.port}/{where.database}"
    for classes, what, todo in _PROBLEMS:
        if isinstance(exc, classes) or (classes is _LOST and _closed_connection(exc)):
            detail = str(exc) or type(exc).__name__
            if classes is _LOST:
                # The connection may have broken during COMMIT, after the server applied
                # it: the client cannot know. Not acknowledging is still right, and a
                # resend is safe (ids are stored once: those come back as duplicates).
                outcome = "the batch was not acknowledged (a resend is safe)"
            else:
                outcome = "nothing of the batch was stored"
            return f"{what.format(at=at)}: {outcome}; {todo} ({detail})"
    return None
