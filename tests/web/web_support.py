"""Helpers for the web UI's tests: a server in a background thread, raw HTTP requests.

The browser tests use Playwright's sync API, which must not run inside an asyncio
loop: the server gets its own loop in a thread (:class:`ServerThread`).
"""

from __future__ import annotations

import asyncio
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jacmon.config import Settings
from jacmon.server.app import JacmonServer

#: Ports whose test server is stopped now -> when its stop began (time.monotonic()). A
#: page left open on such a server reconnects, and Chromium logs each refused attempt:
#: the page fixture does not count those as page problems (see tests/web/conftest.py).
STOPPED_PORTS: dict[int, float] = {}

#: Generous bounds for a 2-core CI box, in seconds.
START_TIMEOUT_S = 20.0
REQUEST_TIMEOUT_S = 5.0


class ServerThread:
    """A JacmonServer on 127.0.0.1 running in a thread with its own event loop.

    ``start()`` returns once it listens (port 0 picks one, kept across
    ``restart()``, which stops it and starts a new one on the same port and
    database); ``stop()`` shuts it down and joins the thread. No scheduler runs.
    """

    def __init__(self, settings: Settings, *, web_root: Path | None = None):
        self.settings = settings
        self.web_root = web_root
        self.port = settings.server.port
        self.server: JacmonServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerThread:
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="jacmon-test-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise TimeoutError(f"the test server did not start within {START_TIMEOUT_S} s")
        if self._error is not None:
            raise self._error
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        STOPPED_PORTS[self.port] = time.monotonic()
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(START_TIMEOUT_S)
        assert not self._thread.is_alive(), "the test server did not stop"
        self._thread = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.settings.server.port = self.port
        for attempt in range(50):
            server = JacmonServer(self.settings, run_scheduler=False, web_root=self.web_root)
            try:
                await server.start()
                break
            except OSError:
                # The old socket may linger for a moment after a restart.
                if attempt == 49:
                    raise
                await asyncio.sleep(0.1)
        self.server = server
        self.port = server.port or 0
        STOPPED_PORTS.pop(self.port, None)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await server.shutdown()
            self.server = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def server_thread(
    tmp_path: Path, *, web_root: Path | None = None, web: dict[str, Any] | None = None, **server
) -> ServerThread:
    """A not yet started ServerThread on ``tmp_path/jacmon.db``; ``server`` are [server]
    settings, ``web`` [web] settings."""
    settings = Settings()
    settings.server.db = tmp_path / "jacmon.db"
    settings.server.port = 0
    settings.server.shutdown_grace_s = 5.0
    for key, value in server.items():
        setattr(settings.server, key, value)
    for key, value in (web or {}).items():
        setattr(settings.web, key, value)
    return ServerThread(settings, web_root=web_root)


@dataclass
class Reply:
    """One HTTP response: status, headers (names as sent; look up with ``header()``), body."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        assert len(values) <= 1, f"{name} sent {len(values)} times"
        return values[0] if values else None

    @property
    def text(self) -> str:
        return self.body.decode()


def request(
    port: int, path: str, headers: dict[str, str] | None = None, *, method: str = "GET"
) -> Reply:
    """Send ``method path`` exactly as given (no normalisation, no encoding) and read the
    response; for traversal attempts a normal client would rewrite."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT_S) as sock:
        sock.sendall(raw)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        body = response.read()
        return Reply(response.status, response.getheaders(), body)
