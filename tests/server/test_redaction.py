"""Token secrets never reach the log, a close reason, an error or /metrics."""

from __future__ import annotations

import asyncio
import logging
import socket

import pytest
from support import event, make_token, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jacmon.client.ingest import IngestClient
from jacmon.logs import redact, setup_logging


@pytest.fixture
def logs_on_stderr(capsys):
    """jacmon's own logging setup writing to the captured stderr; restored afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    ws_level = logging.getLogger("websockets").level
    setup_logging("info")
    yield capsys
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("websockets").setLevel(ws_level)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/ws/activity?since=3&token=jm_ab12_s3cr-et_x&x=1", "/ws/activity?since=3&token=…&x=1"),
        ("token jm_ab12cd34_s3cr-et_x was used", "token jm_ab12cd34_… was used"),
        ("/ws/alerts?TOKEN=anything-else", "/ws/alerts?TOKEN=…"),
        ("nothing secret here: seq=4", "nothing secret here: seq=4"),
    ],
)
def test_redact_hides_token_secrets_and_keeps_the_id(text, expected):
    assert redact(text) == expected


async def slow_reader(url: str) -> tuple:
    """A client that reads (almost) nothing: a tiny receive buffer and a one-frame queue."""
    host, port = url.removeprefix("ws://").split("/")[0].split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    sock.setblocking(False)
    return await connect(url, sock=sock, max_queue=1).__aenter__(), sock


async def test_no_code_path_logs_a_token_secret(tmp_path, server_factory, logs_on_stderr):
    db = tmp_path / "j.db"
    admin = await make_token(db, role="admin")
    secret = admin.split("_", 2)[2]
    async with server_factory(db, server_client_buffer_frames=1) as running:
        # Handshake refusals: a foreign origin, an unknown path, a revoked-looking token.
        with pytest.raises(InvalidStatus) as info:
            async with connect(
                f"{running.url}/ws/alerts?token={admin}", origin="https://evil.example"
            ):
                pass
        assert secret not in info.value.response.body.decode()
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{running.url}/ws/{admin}?token={admin}"):
                pass
        assert secret not in info.value.response.body.decode()
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{running.url}/ws/alerts?token={admin}x"):
                pass
        assert secret not in info.value.response.body.decode()
        # A slow client closed by the server, its ?token= in the request path.
        ws, sock = await slow_reader(f"{running.url}/ws/activity?since=0&token={admin}")
        try:
            padding = "x" * 2000
            loop = asyncio.get_running_loop()
            end = loop.time() + 60
            async with IngestClient(running.url, token=admin) as producer:
                for batch in range(200):
                    if ws.close_code is not None or loop.time() > end:
                        break
                    await producer.send_batch(
                        [event(batch * 200 + n, note=padding) for n in range(200)]
                    )
                    await asyncio.sleep(0)
            with pytest.raises(ConnectionClosed):
                await recv_until(ws, lambda m: False, timeout=60)
            assert ws.close_code is not None and ws.close_code != 1011
            assert secret not in (ws.close_reason or "")
        finally:
            await ws.close()
            sock.close()
    captured = logs_on_stderr.readouterr()
    assert "slow" in captured.err or "too slow" in captured.err or ws.close_code == 4008
    assert secret not in captured.err and secret not in captured.out


def test_json_log_lines_and_tracebacks_are_redacted_too(capsys):
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        setup_logging("info", "json")
        path = "/ws/activity?token=jm_ab12cd34_TopSecret99"
        logging.getLogger("websockets.server").warning("opening handshake failed: %s", path)
        try:
            raise ValueError(f"bad request {path}")
        except ValueError:
            logging.getLogger("jacmon.server").exception("handshake error")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    err = capsys.readouterr().err
    assert "TopSecret99" not in err
    # JSON escapes the ellipsis; the message and the exception text are each redacted.
    assert err.count("token=\\u2026") == 2
