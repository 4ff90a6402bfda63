"""Several ``jacmon serve`` processes on one PostgreSQL and one Redis, and stream readers.

Each :class:`Node` is a real child process (``python -m jacmon serve --store ...
--bus ...``) on a free loopback port; its log is drained in the background (a full
pipe would stall it) and kept for failure messages. Ended by its own PID only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect

#: How long a node may take to start listening, in seconds (a 2-core CI box).
START_TIMEOUT_S = 60.0


class Node:
    """One ``jacmon serve`` of a cluster."""

    def __init__(self, name: str, dsn: str, bus: str, workdir: Path, **settings: str):
        self.name = name
        self.dsn = dsn
        self.bus = bus
        self.workdir = workdir
        self.settings = settings
        self.port: int | None = None
        self.process: asyncio.subprocess.Process | None = None
        self.log: list[str] = []
        self._drain: asyncio.Task | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> Node:
        env = {**os.environ, "JACMON_CONFIG": os.devnull}
        for key, value in self.settings.items():
            env[f"JACMON_{key.upper()}"] = value
        args = [sys.executable, "-m", "jacmon", "serve", "--store", self.dsn, "--bus", self.bus]
        args += ["--node", self.name, "--port", str(self.port or 0)]
        args += ["--db", str(self.workdir / f"{self.name}-unused.db"), "--no-web"]
        self.process = await asyncio.create_subprocess_exec(
            *args, stderr=asyncio.subprocess.PIPE, env=env
        )
        assert self.process.stderr is not None
        async with asyncio.timeout(START_TIMEOUT_S):
            while True:
                line = (await self.process.stderr.readline()).decode()
                self.log.append(line)
                if not line:
                    raise AssertionError(f"node {self.name} exited:\n{''.join(self.log)}")
                if "serving on" in line:
                    self.port = int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])
                    break
        self._drain = asyncio.create_task(self._read_log())
        return self

    async def _read_log(self) -> None:
        assert self.process is not None and self.process.stderr is not None
        while line := await self.process.stderr.readline():
            self.log.append(line.decode())

    def kill(self) -> None:
        """SIGKILL: no shutdown, no goodbye."""
        if self.process is not None and self.process.returncode is None:
            self.process.send_signal(signal.SIGKILL)

    async def stop(self) -> None:
        """SIGTERM and wait (SIGKILL after 30 s)."""
        process = self.process
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
        if self._drain is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain, 5)
        self.process = None

    async def health(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=5) as client:
            return (await client.get(f"{self.http}/healthz")).json()


class ActivityReader:
    """Reads ``/ws/activity`` of one node in the background: every seq, in order."""

    def __init__(self, node: Node, since: int | None = None):
        self.node = node
        self.since = since
        self.seqs: list[int] = []
        self.frames: list[dict[str, Any]] = []
        self._ws: ClientConnection | None = None
        self._task: asyncio.Task | None = None

    async def __aenter__(self) -> ActivityReader:
        query = "" if self.since is None else f"?since={self.since}"
        self._ws = await connect(f"{self.node.url}/ws/activity{query}", max_size=None)
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _read(self) -> None:
        assert self._ws is not None
        async for raw in self._ws:
            frame = json.loads(raw)
            self.frames.append(frame)
            if frame["type"] in ("events", "snapshot"):
                self.seqs.extend(e["seq"] for e in frame["data"]["events"])

    async def until(self, last: int, timeout: float = 60.0) -> None:
        async def reached() -> None:
            while not self.seqs or self.seqs[-1] < last:  # noqa: ASYNC110 (a reader's list)
                await asyncio.sleep(0.05)

        try:
            await asyncio.wait_for(reached(), timeout)
        except TimeoutError:
            tail = self.seqs[-5:]
            raise AssertionError(
                f"a reader on {self.node.name} reached {tail}, not {last}; its log:\n"
                + "".join(self.node.log[-30:])
            ) from None
