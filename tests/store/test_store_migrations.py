"""SQLite's schema migrations: applied in order, once, atomically; versions checked on open.

SQLite only: these are about the file, ``PRAGMA user_version`` and the aiosqlite
connections opened and closed. PostgreSQL's migrations (the same versions, once across
nodes under an advisory lock) are tested in tests/cluster/test_pg_database.py.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import aiosqlite
import pytest

from jacmon.errors import StoreError
from jacmon.store import Store
from jacmon.store.sqlite import database
from jacmon.store.sqlite.schema import MIGRATIONS, latest_version


@pytest.fixture
async def connections(monkeypatch) -> AsyncIterator[list[aiosqlite.Connection]]:
    """Record every aiosqlite connection the store opens; close the leaked ones afterwards.

    A leaked connection's worker thread would keep the test process from exiting.
    """
    opened: list[aiosqlite.Connection] = []
    real_connect = aiosqlite.connect

    def recording_connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        opened.append(conn)
        return conn

    monkeypatch.setattr(database.aiosqlite, "connect", recording_connect)
    yield opened
    for conn in opened:
        with contextlib.suppress(Exception):
            await conn.close()


async def assert_all_closed(opened: list[aiosqlite.Connection]) -> None:
    assert opened, "the store opened no connection"
    for conn in opened:
        # A closed aiosqlite connection refuses work; an open one (a leak) answers.
        with pytest.raises(ValueError):
            await conn.execute("SELECT 1")


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_migrations_are_numbered_consecutively_from_one():
    assert [number for number, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert latest_version() == len(MIGRATIONS) == 6
    assert all(description for _, description, _ in MIGRATIONS)


async def test_fresh_database_gets_every_migration(tmp_path):
    path = tmp_path / "jacmon.db"
    store = await Store.open(path)
    await store.close()
    assert user_version(path) == 6
    assert {
        "meta",
        "events",
        "catalog_paths",
        "catalog_modules",
        "module_progress",
        "path_progress",
        "learners",
        "tokens",
        "cursors",
        "alerts",
        "alert_changes",
        "task_runs",
        "daily_learner_stats",
        "daily_platform_stats",
        "path_velocity",
        "learner_pace",
        "received",
    } <= tables(path)


async def test_version_1_database_is_upgraded_and_keeps_its_data(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][2] + "\nPRAGMA user_version = 1;")
    conn.execute(
        "INSERT INTO events (seq, id, type, ts, received, learner, body)"
        " VALUES (7, 'old-1', 'activity', 0, 0, 'u1', '{\"id\":\"old-1\"}')"
    )
    conn.commit()
    conn.close()
    assert "alerts" not in tables(path)

    store = await Store.open(path)
    try:
        assert store.last_seq == 7
        assert user_version(path) == 6
        assert {"alerts", "task_runs", "learner_pace"} <= tables(path)
        async with store.db.reader.execute("SELECT id FROM events") as cursor:
            assert [r[0] for r in await cursor.fetchall()] == ["old-1"]
        # Before version 5 ingest kept progress current: it reflects every stored event,
        # so the projection starts after them (folding them again would count them twice).
        assert await store.progress_seq() == 7
        assert await store.project() is None
    finally:
        await store.close()


async def test_current_database_is_not_rewritten_on_open(tmp_path):
    path = tmp_path / "jacmon.db"
    store = await Store.open(path)
    await store.close()
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    readonly = await Store.open(path, readonly=True)
    await readonly.close()
    assert path.stat().st_mtime_ns == before - 10**9
    assert user_version(path) == 6


async def test_database_from_a_newer_jacmon_is_refused(tmp_path, connections):
    path = tmp_path / "future.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(StoreError) as caught:
        await Store.open(path)
    assert str(caught.value) == (
        "database schema version 99 is newer than this jacmon (knows up to 6); upgrade jacmon"
    )
    assert user_version(path) == 99


async def test_readonly_open_of_an_old_schema_says_how_to_migrate(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0][2] + "\nPRAGMA user_version = 1;")
    conn.close()
    with pytest.raises(StoreError) as caught:
        await Store.open(path, readonly=True)
    assert str(caught.value) == (
        f"database {path} has schema version 1, expected 6; "
        f"start 'jacmon serve --db {path}' once to migrate it"
    )
    assert user_version(path) == 1


async def test_file_that_is_not_sqlite_is_a_store_error(tmp_path, connections):
    path = tmp_path / "notes.db"
    path.write_text("these are not the bytes of a database, " * 50)
    with pytest.raises(StoreError) as caught:
        await Store.open(path)
    assert str(caught.value) == f"cannot open database {path}: file is not a database"


def broken_migration(monkeypatch) -> None:
    """Add a migration after the last whose second statement fails, after its first created
    a table."""
    number = len(MIGRATIONS) + 1
    broken = [
        *MIGRATIONS,
        (
            number,
            "broken",
            "CREATE TABLE half_done (x INTEGER);\nINSERT INTO no_such_table VALUES (1);",
        ),
    ]
    monkeypatch.setattr(database, "MIGRATIONS", broken)
    monkeypatch.setattr(database, "latest_version", lambda: number)


def can_write(path: Path) -> bool:
    """True if another connection gets the write lock within half a second."""
    conn = sqlite3.connect(path, timeout=0.5)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


async def test_failing_migration_leaves_nothing_half_done(tmp_path, monkeypatch, connections):
    path = tmp_path / "jacmon.db"
    store = await Store.open(path)
    await store.close()
    broken_migration(monkeypatch)
    with pytest.raises(StoreError, match="no such table: no_such_table"):
        await Store.open(path)
    assert user_version(path) == 6
    assert "half_done" not in tables(path)


async def test_failing_migration_releases_the_database(tmp_path, monkeypatch, connections):
    path = tmp_path / "jacmon.db"
    store = await Store.open(path)
    await store.close()
    broken_migration(monkeypatch)
    with pytest.raises(StoreError):
        await Store.open(path)
    assert can_write(path)


def not_a_database(path: Path) -> None:
    path.write_text("these are not the bytes of a database, " * 50)


def newer_database(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 99")
    conn.close()


@pytest.mark.parametrize("prepare", [not_a_database, newer_database])
async def test_failed_open_closes_its_connections(tmp_path, connections, prepare):
    path = tmp_path / "bad.db"
    prepare(path)
    with pytest.raises(StoreError):
        await Store.open(path)
    await assert_all_closed(connections)


async def test_successful_open_and_close_leave_no_connection(tmp_path, connections):
    store = await Store.open(tmp_path / "jacmon.db")
    await store.close()
    await assert_all_closed(connections)


async def test_no_snapshot_connection_is_opened_after_close(tmp_path, connections):
    """A stream session still reading while the server shuts down must not open a
    connection the closed store would never close (its thread outlives the loop)."""
    store = await Store.open(tmp_path / "jacmon.db")
    assert (await store.progress_snapshot())["progress_seq"] == 0  # opens the snapshot one
    await store.close()
    with pytest.raises(StoreError, match="is closed"):
        await store.progress_snapshot()
    await assert_all_closed(connections)
