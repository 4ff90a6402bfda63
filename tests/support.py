"""Helpers for tests: event factories and reading frames with a deadline."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from jacmon.server.auth import create_token
from jacmon.store import Store

#: Generous: the CI box has 2 shared cores.
TIMEOUT_S = 20.0


def event(n: int, *, learner: str = "u1", **fields: Any) -> dict[str, Any]:
    """A valid ``module.progressed`` event number ``n`` (id ``e-<n>``), fields overridable."""
    body = {
        "id": f"e-{n}",
        "type": "module.progressed",
        "ts": "2026-01-05T10:00:00Z",
        "learner": learner,
        "path": "python-101",
        "module": "m1",
        "progress": min(100, n % 101),
    }
    body.update(fields)
    return body


async def recv_json(ws: ClientConnection, timeout: float = TIMEOUT_S) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def recv_until(
    ws: ClientConnection,
    predicate: Callable[[dict[str, Any]], bool],
    timeout: float = TIMEOUT_S,
) -> dict[str, Any]:
    """Read frames until one satisfies ``predicate``; fail after ``timeout`` seconds."""

    async def loop() -> dict[str, Any]:
        while True:
            message = json.loads(await ws.recv())
            if predicate(message):
                return message

    return await asyncio.wait_for(loop(), timeout)


async def collect_events(
    ws: ClientConnection, count: int, timeout: float = TIMEOUT_S
) -> list[dict[str, Any]]:
    """Read activity frames (snapshot or events) until ``count`` events have arrived."""
    events: list[dict[str, Any]] = []

    async def loop() -> None:
        while len(events) < count:
            message = json.loads(await ws.recv())
            if message["stream"] == "activity" and message["type"] in ("events", "snapshot"):
                events.extend(message["data"]["events"])

    await asyncio.wait_for(loop(), timeout)
    return events


def flat(text: str) -> str:
    """``text`` with every run of whitespace as one space (CLI output wraps by terminal width)."""
    return " ".join(text.split())


async def make_token(db_path: Path, **kwargs: Any) -> str:
    """Create a token in the database at ``db_path`` (``create_token``'s keywords); its text."""
    store = await Store.open(db_path)
    try:
        token, _ = await create_token(store, **kwargs)
    finally:
        await store.close()
    return token


def run_jacmon(
    *args: str, timeout: float = 60, config: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m jacmon ARGS`` as a user would: its result, whatever the exit code.

    No user config is read (``JACMON_CONFIG`` is ``config`` or the null device); ``env``
    adds or overrides variables.
    """
    return subprocess.run(
        [sys.executable, "-m", "jacmon", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "JACMON_CONFIG": str(config) if config else os.devnull, **(env or {})},
    )


async def until(check: Callable[[], Any], what: str, timeout: float = 20.0) -> Any:
    """Poll ``check`` (a function, or one returning a coroutine) until it gives a true
    value, and return it; fail naming ``what`` after ``timeout`` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def dashboard_snapshot(url: str, *, through_seq: int, timeout: float = TIMEOUT_S) -> dict:
    """The data of a dashboard snapshot from ``url`` whose ``progress_seq`` has reached
    ``through_seq``: progress is projected behind ingest (within the lag bound), so a
    snapshot right after an ack may not have the batch yet; reconnect until it has."""
    from websockets.asyncio.client import connect

    async def read() -> dict | None:
        async with connect(url) as ws:
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot", timeout)
        data = snapshot["data"]
        return data if data["progress_seq"] >= through_seq else None

    return await until(read, f"a dashboard snapshot with progress_seq >= {through_seq}", timeout)


def read_events(db_path: Path) -> list[dict[str, Any]]:
    """Every stored event body, oldest first (read-only, straight from SQLite)."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        return [json.loads(row[0]) for row in conn.execute("SELECT body FROM events ORDER BY seq")]
    finally:
        conn.close()


def read_received(db_path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Every pushed record kept, by (source, id): body (decoded), event_id, reason, token."""
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT source, id, body, event_id, reason, token FROM received")
        return {
            (source, ident): {
                "body": json.loads(body),
                "event_id": event_id,
                "reason": reason,
                "token": token,
            }
            for source, ident, body, event_id, reason, token in rows
        }
    finally:
        conn.close()
