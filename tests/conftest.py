"""Shared fixtures: a real jacmon server on port 0 with a real database file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from jacmon.config import Settings
from jacmon.server.app import JacmonServer

#: postgres_server, pg_dsn, own_postgres, redis_server, own_redis (tests/cluster), started
#: only by the tests that ask for them.
pytest_plugins = ["service_fixtures"]


def make_settings(db_path: Path, **server: Any) -> Settings:
    """Settings for a test server: loopback, port 0, fast metrics."""
    settings = Settings()
    settings.server.db = db_path
    settings.server.port = 0
    settings.server.metrics_interval_s = 0.25
    settings.server.shutdown_grace_s = 5.0
    for key, value in server.items():
        setattr(settings.server, key, value)
    return settings


@dataclass
class RunningServer:
    """A jacmon server running in the test's event loop.

    ``url`` is ``ws://127.0.0.1:PORT``; ``restart()`` stops it and starts a new
    one on the same port and database (what a client sees across a restart);
    ``stop()``/``start()`` do the halves, for tests that act while it is down.
    """

    settings: Settings
    server: JacmonServer | None = None
    port: int = 0
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def db_path(self) -> Path:
        return self.settings.server.db

    async def start(self) -> None:
        self.settings.server.port = self.port
        self.server = JacmonServer(self.settings, **self.options)
        for attempt in range(50):
            try:
                await self.server.start()
                break
            except OSError:
                # The old socket may linger for a moment after a restart.
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
                self.server = JacmonServer(self.settings, **self.options)
        self.port = self.server.port or 0

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@contextlib.asynccontextmanager
async def start_server(db_path: Path, **options: Any) -> AsyncIterator[RunningServer]:
    """Start a server on ``db_path``; ``options`` go to JacmonServer, ``server_*`` to settings,
    ``notify`` (a dict) to the ``[notify]`` table."""
    server_settings = {
        k[len("server_") :]: v for k, v in options.items() if k.startswith("server_")
    }
    notify = options.pop("notify", None)
    server_options = {k: v for k, v in options.items() if not k.startswith("server_")}
    server_options.setdefault("run_scheduler", False)
    settings = make_settings(db_path, **server_settings)
    if notify is not None:
        settings.notify = notify  # the [notify] table, as a config file gives it
    running = RunningServer(settings, options=server_options)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def running_server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """A real server on 127.0.0.1, port 0, database ``tmp_path/jacmon.db``, no scheduler."""
    async with start_server(tmp_path / "jacmon.db") as running:
        yield running


@pytest.fixture
def server_factory():
    """``async with server_factory(db_path, server_<setting>=...) as running:``."""
    return start_server


@pytest.fixture
def isolated_env(tmp_path, monkeypatch):
    """No JACMON_* variables and no user config or data dir from the machine running the tests.

    The CLI test modules use it for every test (``pytestmark``).
    """
    for name in list(os.environ):
        if name.startswith("JACMON_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def utc(monkeypatch):
    """The process's local time zone is UTC for the test (``TZ``), and restored after."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def busy_port():
    """A port something else is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


@pytest.fixture
def restore_logging():
    """``serve`` configures the root logger on the runner's stderr; undo it for later tests."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
