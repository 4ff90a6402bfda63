"""Origin checks at the WebSocket handshake: no cross-site WebSocket hijacking."""

from __future__ import annotations

import asyncio

import pytest
from support import make_token, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from jacmon.server.auth import OriginCheck, OriginKind

STREAMS = ("dashboard", "alerts", "metrics", "activity", "ingest")


async def raw_handshake(port: int, path: str, headers: dict[str, str]) -> tuple[int, str]:
    """A WebSocket handshake with exactly these headers (Host included); (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [
        f"GET {path} HTTP/1.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status = int(head.split()[1])
    body = b""
    if status != 101:
        body = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return status, body.decode()


async def test_a_foreign_origin_is_refused_on_every_ws_path(running_server):
    for stream in STREAMS:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{running_server.url}/ws/{stream}", origin="https://evil.example"):
                pass
        response = info.value.response
        body = response.body.decode()
        assert response.status_code == 403, stream
        assert "'https://evil.example'" in body and "--allowed-origin" in body


async def test_no_origin_and_the_servers_own_origin_pass_without_a_token(running_server):
    async with connect(f"{running_server.url}/ws/alerts") as ws:
        await recv_until(ws, lambda m: m["type"] == "hello")
    port = running_server.port
    own = (
        ("127.0.0.1", f"http://127.0.0.1:{port}"),
        # Case and spelling of the host do not matter, the scheme's default port is implied.
        ("localhost", f"HTTP://LocalHost:{port}"),
    )
    for host, origin in own:
        async with connect(f"ws://{host}:{port}/ws/alerts", origin=origin) as ws:
            await recv_until(ws, lambda m: m["type"] == "hello")


async def test_own_origin_needs_the_scheme_the_server_serves(running_server):
    port = running_server.port
    status, body = await raw_handshake(
        port,
        "/ws/alerts",
        {"Host": f"127.0.0.1:{port}", "Origin": f"https://127.0.0.1:{port}"},
    )
    assert status == 403 and f"https://127.0.0.1:{port}" in body


async def test_a_rebound_domain_on_a_loopback_server_is_not_its_own_origin(running_server):
    # DNS rebinding: evil.example resolves to 127.0.0.1, so Host and Origin agree.
    port = running_server.port
    status, body = await raw_handshake(
        port,
        "/ws/dashboard",
        {"Host": f"evil.example:{port}", "Origin": f"http://evil.example:{port}"},
    )
    assert status == 403 and "evil.example" in body


async def test_an_allowed_origin_still_needs_a_token(tmp_path, server_factory):
    db = tmp_path / "j.db"
    token = await make_token(db, role="viewer")
    async with server_factory(db, server_allowed_origins=["https://lms.example.com"]) as running:
        with pytest.raises(InvalidStatus) as info:
            async with connect(f"{running.url}/ws/alerts", origin="https://LMS.example.com:443"):
                pass
        assert info.value.response.status_code == 401
        assert "token is required" in info.value.response.body.decode()
        async with connect(
            f"{running.url}/ws/alerts?token={token}", origin="https://lms.example.com"
        ) as ws:
            await recv_until(ws, lambda m: m["type"] == "hello")
        # Another origin is still refused, token or not.
        with pytest.raises(InvalidStatus) as info:
            async with connect(
                f"{running.url}/ws/alerts?token={token}", origin="https://other.example.com"
            ):
                pass
        assert info.value.response.status_code == 403


@pytest.mark.parametrize(
    ("origin", "host", "tls", "kind"),
    [
        (None, "127.0.0.1:8765", False, OriginKind.NONE),
        ("http://127.0.0.1:8765", "127.0.0.1:8765", False, OriginKind.OWN),
        ("http://[::1]:8765", "[::1]:8765", False, OriginKind.OWN),
        ("http://[0:0::1]:8765", "[::1]:8765", False, OriginKind.OWN),
        ("https://localhost", "LOCALHOST:443", True, OriginKind.OWN),
        ("http://localhost", "localhost:80", False, OriginKind.OWN),
        ("http://localhost:8765", "localhost:8765", True, OriginKind.FOREIGN),
        ("null", "127.0.0.1:8765", False, OriginKind.FOREIGN),
        ("http://127.0.0.1:9999", "127.0.0.1:8765", False, OriginKind.FOREIGN),
        ("https://lms.example.com", "127.0.0.1:8765", False, OriginKind.ALLOWED),
        ("https://lms.example.com:443", "127.0.0.1:8765", False, OriginKind.ALLOWED),
        ("http://lms.example.com", "127.0.0.1:8765", False, OriginKind.FOREIGN),
    ],
)
def test_origin_comparison_handles_default_ports_brackets_and_case(origin, host, tls, kind):
    check = OriginCheck(tls=tls, loopback=True, allowed=["https://lms.example.com"])
    assert check.classify(origin, host) is kind


async def test_a_repeated_origin_header_is_a_clear_400(running_server):
    port = running_server.port
    status, body = await raw_handshake(
        port,
        "/ws/alerts",
        {"Host": f"127.0.0.1:{port}", "Origin": f"http://127.0.0.1:{port}\r\nOrigin: https://x"},
    )
    assert status == 400 and "Origin is sent twice" in body
