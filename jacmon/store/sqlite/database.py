"""Opening the SQLite database: WAL mode, migrations, one writer and one reader connection."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from jacmon.errors import StoreError
from jacmon.hints import suggest_command
from jacmon.store.sqlite.progress_sql import MATH_FALLBACKS
from jacmon.store.sqlite.schema import MIGRATIONS, latest_version

log = logging.getLogger("jacmon.store")

T = TypeVar("T")

#: Host parameters per ``IN (...)`` statement: well under SQLite's limit (32766 since 3.32).
IN_CHUNK = 900


def chunks(items: Sequence[T], size: int = IN_CHUNK) -> Iterator[Sequence[T]]:
    """``items`` in slices of at most ``size``, for ``IN (...)`` lists."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


#: Upsert of one ``meta`` row (also run on the database thread with plain sqlite3).
SET_META = (
    "INSERT INTO meta (key, value) VALUES (?, ?) "
    "ON CONFLICT (key) DO UPDATE SET value = excluded.value"
)


async def get_meta(conn: aiosqlite.Connection, key: str) -> str | None:
    """The ``meta`` value of ``key`` (None: not set)."""
    async with conn.execute("SELECT value FROM meta WHERE key = ?", (key,)) as cursor:
        row = await cursor.fetchone()
    return row[0] if row else None


async def set_meta(conn: aiosqlite.Connection, key: str, value: str) -> None:
    """Set ``meta`` ``key`` inside the caller's transaction."""
    await conn.execute(SET_META, (key, value))


async def _connect(path: Path, *, readonly: bool) -> aiosqlite.Connection:
    if readonly:
        uri = f"file:{path.absolute()}?mode=ro"
        conn = await aiosqlite.connect(uri, uri=True, isolation_level=None)
    else:
        conn = await aiosqlite.connect(path, isolation_level=None)
    try:
        conn.row_factory = sqlite3.Row
        # Writers wait for each other instead of failing at once (a task run and ingest).
        await conn.execute("PRAGMA busy_timeout = 10000")
        if not readonly:
            # NORMAL in WAL mode: a commit survives a process crash; only power loss can
            # lose the last transactions (PERF-NOTES: ~2x the ingest rate of FULL).
            await conn.execute("PRAGMA synchronous = NORMAL")
            await conn.execute("PRAGMA foreign_keys = ON")
            await _ensure_math_functions(conn)
    except BaseException:
        # An open connection's thread would keep the process alive.
        await conn.close()
        raise
    return conn


async def _ensure_math_functions(conn: aiosqlite.Connection) -> None:
    """Register Python floor()/sqrt() where SQLite lacks its math functions (ingest needs them)."""
    for name, fallback in MATH_FALLBACKS.items():
        try:
            await conn.execute(f"SELECT {name}(1.0)")
        except sqlite3.OperationalError:
            await conn.create_function(name, 1, fallback, deterministic=True)


async def migrate(conn: aiosqlite.Connection) -> int:
    """Apply the migrations this database lacks; return the resulting version.

    Writes nothing when the schema is current, so read-only commands leave the
    file untouched.
    """
    async with conn.execute("PRAGMA user_version") as cursor:
        (version,) = await cursor.fetchone()
    if version > latest_version():
        raise StoreError(
            f"database schema version {version} is newer than this jacmon "
            f"(knows up to {latest_version()}); upgrade jacmon"
        )
    for number, description, script in MIGRATIONS:
        if number <= version:
            continue
        log.info("applying migration %d: %s", number, description)
        # executescript commits first; wrap the script so a failure leaves nothing half-done.
        try:
            await conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {number};\nCOMMIT;"
            )
        except sqlite3.Error as exc:
            if conn.in_transaction:
                await conn.execute("ROLLBACK")
            raise StoreError(f"migration {number} ({description}) failed: {exc}") from None
        version = number
    return version


def _in_transaction(conn: sqlite3.Connection, fn: Callable[..., T], args: tuple) -> T:
    """On the database thread: BEGIN IMMEDIATE, fn, COMMIT (ROLLBACK on any error)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = fn(conn, *args)
    except BaseException:
        # SQLite has already rolled back after some errors (SQLITE_FULL): a second
        # ROLLBACK would raise and hide the error that says why.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except BaseException:
        # A failed COMMIT (disk full, I/O error) can leave the transaction open.
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def location_problem(path: Path) -> str | None:
    """Why a database cannot be created or written at ``path``, as a sentence; None if it can.

    Checked before SQLite opens anything, so the operator gets "read-only" or
    "not a directory" instead of SQLite's "unable to open database file".
    """
    parent = path.absolute().parent
    existing = parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        return f"database {path}: {existing} is not a directory"
    if path.is_dir():
        return f"database {path} is a directory; expected a file path"
    if existing == parent and path.exists() and not os.access(path, os.W_OK):
        return f"database {path} is read-only (no write permission on the file)"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"database {path}: directory {existing} is read-only (no write permission)"
    return None


def schema_version(path: Path) -> int | str | None:
    """Schema version of the database, read-only; None if there is no file, the error
    text if it cannot be read."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path.absolute()}?mode=ro", uri=True)
        ) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        return str(exc)


class ServeLock:
    """An exclusive lock on ``<db>.lock`` held while one server serves a database.

    ``flock`` locks belong to the open file, so the OS releases them when the
    process dies (SIGKILL included): nothing stale is left behind. Commands that
    share the store with a running server (run-task, alerts, token, catalog load)
    do not take it.
    """

    def __init__(self, db_path: Path):
        self.path = Path(f"{db_path}.lock")
        self.db_path = db_path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise StoreError naming the database and the holder's pid."""
        problem = location_problem(self.db_path)
        if problem is not None:
            raise StoreError(problem)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(f"cannot create the lock file {self.path}: {exc.strerror}") from None
        self._lock(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _lock(self, fd: int) -> None:
        """flock ``fd`` exclusively without waiting; on failure close it and raise StoreError."""
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise StoreError(f"cannot lock {self.path}: {exc.strerror}") from None
            who = f" (pid {holder})" if holder.isdigit() else ""
            raise StoreError(
                f"database {self.db_path} is already served by another jacmon process{who}; "
                "stop it first, or serve another --db"
            ) from None

    def release(self) -> None:
        """Let go of the lock (the file stays: removing it would race a starting server)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def problem(self) -> str | None:
        """For ``serve --check``: why this database cannot be served now, or None.

        Creates nothing: a missing lock file means no server holds it.
        """
        problem = location_problem(self.db_path)
        if problem is not None or not self.path.exists():
            return problem
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as exc:
            return f"cannot read the lock file {self.path}: {exc.strerror}"
        try:
            self._lock(fd)
        except StoreError as exc:
            return str(exc)
        os.close(fd)
        return None


#: WAL frames (4 KiB pages) past which the checkpoint finishes under the write lock so the
#: WAL restarts: bounds the WAL to about this much plus what 2 s of ingest write, while the
#: finishing checkpoint (and its fsync) holds ingest up at most once in a few seconds.
WAL_RESTART_FRAMES = 16_384


class Database:
    """The two connections jacmon keeps open on one SQLite file.

    ``writer`` is used under :meth:`transaction` only (one writer at a time);
    ``reader`` serves snapshots and queries and never blocks on the writer (WAL).
    """

    def __init__(
        self, path: Path, writer: aiosqlite.Connection | None, reader: aiosqlite.Connection
    ):
        self.path = path
        self._writer = writer
        self.reader = reader
        self._write_lock = asyncio.Lock()
        self._checkpointer: aiosqlite.Connection | None = None
        #: A third connection for reads that must see one snapshot across statements
        #: (opened on first use; see :meth:`snapshot`).
        self._snapshot_conn: aiosqlite.Connection | None = None
        self._snapshot_lock = asyncio.Lock()
        #: Set by close(): no connection is opened after it (its thread would outlive
        #: the event loop: a stream session still reading while the server shuts down).
        self._closed = False

    @classmethod
    async def open(cls, path: Path, *, readonly: bool = False) -> Database:
        """Open (creating and migrating unless ``readonly``) the database at ``path``."""
        path = Path(path)
        opened: list[aiosqlite.Connection] = []
        try:
            if readonly:
                if not path.exists():
                    raise StoreError(
                        f"database {path} does not exist; check --db, or create it by "
                        f"starting {suggest_command('serve', db=path)} once"
                    )
                reader = await _connect(path, readonly=True)
                opened.append(reader)
                async with reader.execute("PRAGMA user_version") as cursor:
                    (version,) = await cursor.fetchone()
                if version != latest_version():
                    raise StoreError(
                        f"database {path} has schema version {version}, expected "
                        f"{latest_version()}; start {suggest_command('serve', db=path)} once to "
                        "migrate it"
                    )
                return cls(path, None, reader)
            problem = location_problem(path)
            if problem is not None:
                raise StoreError(problem)
            path.parent.mkdir(parents=True, exist_ok=True)
            writer = await _connect(path, readonly=False)
            opened.append(writer)
            async with writer.execute("PRAGMA journal_mode") as cursor:
                (mode,) = await cursor.fetchone()
            if mode != "wal":
                await writer.execute("PRAGMA journal_mode = WAL")
            await migrate(writer)
            reader = await _connect(path, readonly=False)
            opened.append(reader)
            await reader.execute("PRAGMA query_only = ON")
            return cls(path, writer, reader)
        except BaseException as exc:
            # Close what was opened: an aiosqlite thread left running keeps the process alive.
            for conn in opened:
                with contextlib.suppress(Exception):
                    await conn.close()
            if isinstance(exc, sqlite3.Error | OSError):
                raise StoreError(f"cannot open database {path}: {exc}") from None
            raise

    async def take_over_checkpoints(self) -> None:
        """Stop the writer from checkpointing inside its commits; call :meth:`checkpoint` instead.

        SQLite checkpoints the WAL within the COMMIT that crosses 1,000 pages,
        and that checkpoint (with its fsync) stalls the batch being acked. A
        long-running server checkpoints from its own connection on a timer.
        """
        await self.writer.execute("PRAGMA wal_autocheckpoint = 0")
        self._checkpointer = await _connect(self.path, readonly=False)

    async def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL into the database file so that the WAL can start over: (WAL frames,
        frames copied).

        Two PASSIVE checkpoints (neither waits for readers; what one cannot copy now is
        copied next time). The first, from the checkpoint connection, copies the bulk
        while ingest goes on. The second runs under the write lock and copies only what
        was written meanwhile: with no write in between it can finish, and only a
        finished checkpoint lets the next write restart the WAL from its beginning.
        Without it, under continuous ingest the WAL never restarts and grows without
        bound (4.5 GB after 800,000 events here, each read slower: docs/benchmarks.md).
        """
        if self._checkpointer is None:
            raise StoreError("call take_over_checkpoints() before checkpoint()")
        async with self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
            _, frames, copied = await cursor.fetchone()
        if frames >= WAL_RESTART_FRAMES:
            async with self._write_lock:
                async with self.writer.execute("PRAGMA wal_checkpoint(PASSIVE)") as cursor:
                    _, frames, copied = await cursor.fetchone()
        return frames, copied

    @property
    def writer(self) -> aiosqlite.Connection:
        if self._writer is None:
            raise StoreError(f"database {self.path} was opened read-only")
        return self._writer

    async def run_transaction(
        self,
        fn: Callable[..., T],
        *args: Any,
        on_commit: Callable[[T], None] | None = None,
    ) -> T:
        """Run ``fn(connection, *args)`` in one transaction on the writer's own thread.

        One round trip to the database thread instead of one per statement:
        the event loop is not needed between statements, so a busy loop does
        not stretch the transaction. ``on_commit(result)`` runs in the loop
        once it committed, even if the caller was cancelled meanwhile (the
        transaction cannot be stopped half-way, so its effects must be
        recorded).
        """
        async with self._write_lock:
            writer = self.writer
            # aiosqlite runs fn on its connection thread; _execute and _conn are the
            # way in (aiosqlite is pinned to the minor this is tested with).
            done = asyncio.ensure_future(writer._execute(_in_transaction, writer._conn, fn, args))
            try:
                result = await asyncio.shield(done)
            except asyncio.CancelledError:
                result = await done
                if on_commit is not None:
                    on_commit(result)
                raise
            if on_commit is not None:
                on_commit(result)
            return result

    @contextlib.asynccontextmanager
    async def snapshot(self) -> AsyncIterator[aiosqlite.Connection]:
        """A connection in a read transaction: every statement in the block sees the same
        committed state (WAL keeps it while the writer goes on), e.g. progress rows and
        the watermark they reflect. One block at a time; ``reader`` is not held up."""
        async with self._snapshot_lock:
            if self._closed:
                raise StoreError(f"database {self.path} is closed")
            if self._snapshot_conn is None:
                self._snapshot_conn = await _connect(self.path, readonly=self._writer is None)
                await self._snapshot_conn.execute("PRAGMA query_only = ON")
            conn = self._snapshot_conn
            await conn.execute("BEGIN")
            try:
                # A deferred BEGIN takes its snapshot at the first read: take it now.
                async with conn.execute("SELECT 1 FROM meta LIMIT 1") as cursor:
                    await cursor.fetchall()
                yield conn
            finally:
                await conn.execute("COMMIT")

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction: commits on success, rolls back on any error."""
        async with self._write_lock:
            conn = self.writer
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.execute("ROLLBACK")
                raise
            else:
                await conn.execute("COMMIT")

    async def close(self) -> None:
        """Close the connections (waiting for the transaction in flight)."""
        self._closed = True
        async with self._write_lock:
            if self._checkpointer is not None:
                await self._checkpointer.close()
                self._checkpointer = None
            async with self._snapshot_lock:
                if self._snapshot_conn is not None:
                    await self._snapshot_conn.close()
                    self._snapshot_conn = None
            # The readers first: a read left open (a reader cancelled mid-statement while
            # the server stops) would make the TRUNCATE below wait out the busy timeout
            # (10 s) and the shutdown give up on closing the writer.
            await self.reader.close()
            if self._writer is not None:
                with contextlib.suppress(sqlite3.Error):
                    # Fold the WAL back so the file alone is a complete copy; never wait
                    # for another process still reading (the WAL then stays, complete).
                    await self._writer.execute("PRAGMA busy_timeout = 0")
                    await self._writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                await self._writer.close()
                self._writer = None
