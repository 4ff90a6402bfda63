"""The store suite runs against every backend: ``store_location`` is a SQLite file or a
fresh PostgreSQL database (``pg_dsn``, asked for only when the PostgreSQL case runs, so
``-k sqlite`` starts no PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from jacmon.store import Store

BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """The backend under test: "sqlite" or "postgresql"."""
    return request.param


@pytest.fixture
def store_location(backend: str, request, tmp_path: Path) -> Path | str:
    """Where the store under test lives: a SQLite file path or a PostgreSQL DSN."""
    if backend == "sqlite":
        return tmp_path / "jacmon.db"
    return request.getfixturevalue("pg_dsn")


@pytest.fixture
async def store(store_location: Path | str) -> AsyncIterator[Store]:
    """A fresh store of the backend under test, closed after the test."""
    opened = await Store.open(store_location)
    try:
        yield opened
    finally:
        await opened.close()
