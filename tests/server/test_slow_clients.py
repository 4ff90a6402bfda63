"""Slow clients on every stream: a fixed short 4008 reason, a byte bound and a send deadline."""

from __future__ import annotations

import asyncio
import logging
import socket
import uuid

from support import TIMEOUT_S, event, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from jacmon.client.ingest import IngestClient
from jacmon.server.auth import create_token

#: The documented 4008 reason (docs/protocol.md, "Close codes").
TOO_SLOW_REASON = "too slow; reconnect with ?since=<last seq>"


async def stuck_client(server, path: str):
    """A client whose socket takes little and which never reads after the handshake."""
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 * 1024)
    raw.setblocking(False)
    await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", server.port))
    return await connect(server.url + path, sock=raw, max_queue=1, max_size=None)


async def wait_closed(ws) -> tuple[int | None, str | None]:
    """Read until the connection ends; (code, reason) received, or (None, None) if aborted."""
    try:
        while True:
            await asyncio.wait_for(ws.recv(), TIMEOUT_S * 3)
    except ConnectionClosed as exc:
        return (exc.rcvd.code, exc.rcvd.reason) if exc.rcvd else (None, None)


async def flood(server, stop: asyncio.Event, count: int = 6000, learner: str = "") -> None:
    """Ingest padded events for up to ``count`` events or until ``stop`` (loopback)."""
    pad = "x" * 2000
    async with IngestClient(server.url) as client:
        for start in range(0, count, 25):
            if stop.is_set():
                return
            await client.send_batch(
                [event(i, learner=learner or f"l{i}", pad=pad) for i in range(start, start + 25)]
            )
            await asyncio.sleep(0.02)


async def test_a_long_path_still_gets_a_short_fixed_4008_reason_and_no_secret_logged(
    tmp_path, server_factory, caplog
):
    learner = str(uuid.uuid4())
    async with server_factory(tmp_path / "j.db", server_client_buffer_frames=2) as server:
        token, record = await create_token(server.server.store, role="viewer")
        slow = await stuck_client(server, f"/ws/activity?since=0&learner={learner}&token={token}")
        stop = asyncio.Event()
        with caplog.at_level(logging.WARNING, logger="jacmon.hub"):
            flooding = asyncio.create_task(flood(server, stop, learner=learner))
            # The client starts reading only after the server gave up on it.
            await recv_until_dropped(server)
            code, reason = await wait_closed(slow)
            stop.set()
            await flooding
    assert (code, reason) == (4008, TOO_SLOW_REASON)
    assert len(TOO_SLOW_REASON.encode()) <= 123
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "closing slow activity client" in logged and learner in logged
    assert record["id"] in logged and token not in logged


async def recv_until_dropped(server, stream: str = "activity") -> None:
    async def loop():
        while server.server.hub.counters.dropped_clients[stream] == 0:  # noqa: ASYNC110 (server state, no event to await)
            await asyncio.sleep(0.05)

    await asyncio.wait_for(loop(), TIMEOUT_S * 3)


async def test_clients_that_never_read_are_closed_on_every_stream(tmp_path, server_factory):
    settings = {
        "server_client_max_unsent_bytes": 64 * 1024,
        "server_client_send_timeout_s": 0.5,
        "server_metrics_interval_s": 0.05,
    }
    async with server_factory(tmp_path / "j.db", **settings) as server:
        stuck = {s: await stuck_client(server, f"/ws/{s}") for s in ("dashboard", "activity")}
        async with connect(server.url + "/ws/dashboard") as healthy:
            await recv_until(healthy, lambda m: m["type"] == "snapshot")
            stop = asyncio.Event()
            flooding = asyncio.create_task(flood(server, stop))
            for name, ws in stuck.items():
                await recv_until_dropped(server, name)
                assert ws.transport is not None
            stop.set()
            await flooding
            # The healthy client on the same stream still gets the newest rows.
            async with IngestClient(server.url) as client:
                await client.send_batch([event(99_999, learner="last")])
            await recv_until(
                healthy,
                lambda m: (
                    m["type"] == "progress"
                    and any(r["learner"] == "last" for r in m["data"]["learners"])
                ),
            )
        for ws in stuck.values():
            code, _ = await wait_closed(ws)
            assert code in (4008, None)  # 4008 if it got the close, else aborted
        hub = server.server.hub
        assert not hub.subscribers[hub_stream("dashboard")] or all(
            not s.dropped for s in hub.subscribers[hub_stream("dashboard")]
        )


def hub_stream(name: str):
    from jacmon.protocol import Stream

    return Stream(name)
