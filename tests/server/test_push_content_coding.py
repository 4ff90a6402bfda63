"""Compressed pushes on a real server: a gzip or deflate body is stored as if it had
been sent plain; what cannot be read is refused naming why, and nothing is stored."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

import httpx
import pytest
from lrs_fixtures import mixed_statement
from support import make_token, read_events, read_received


@pytest.fixture
async def push_server(server_factory, tmp_path):
    db = tmp_path / "j.db"
    token = await make_token(db, role="ingest")
    # A small body limit, so that a small compressed body can expand past it.
    async with server_factory(
        db, server_require_tokens=True, server_push_max_body_bytes=64 * 1024
    ) as running:
        running.token = token
        yield running


def statements(n: int) -> list[dict[str, Any]]:
    return [mixed_statement(i, timestamp=f"2026-01-05T10:{i:02d}:00Z")[0] for i in range(n)]


def headers(token: str | None, coding: str | None) -> dict[str, str]:
    found = {"X-Experience-API-Version": "1.0.3", "Content-Type": "application/json"}
    if token:
        found["Authorization"] = f"Bearer {token}"
    if coding:
        found["Content-Encoding"] = coding
    return found


async def test_gzip_and_deflate_bodies_are_stored_as_if_sent_plain(push_server) -> None:
    sent = statements(30)
    gzipped = gzip.compress(json.dumps(sent[:20]).encode())
    deflated = zlib.compress(json.dumps(sent[20:]).encode())
    caliper = {
        "sensor": "https://example.edu/sensors/1",
        "sendTime": "2026-01-05T11:00:00.000Z",
        "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "data": [],
    }
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{push_server.port}") as client:
        first = await client.post(
            "/xAPI/statements", content=gzipped, headers=headers(push_server.token, "gzip")
        )
        second = await client.post(
            "/xAPI/statements", content=deflated, headers=headers(push_server.token, "deflate")
        )
        envelope = await client.post(
            "/caliper",
            content=gzip.compress(json.dumps(caliper).encode()),
            headers=headers(push_server.token, "gzip"),
        )
    assert first.status_code == second.status_code == 200, (first.text, second.text)
    assert first.json() + second.json() == [s["id"] for s in sent]
    assert envelope.status_code == 200 and envelope.json()["received"] == 0, envelope.text
    assert {e["id"] for e in read_events(push_server.db_path)} == {s["id"] for s in sent}
    kept = read_received(push_server.db_path)
    assert all(kept[("xapi", s["id"])]["body"] == s for s in sent)  # kept as sent, plain


async def test_what_cannot_be_read_is_refused_naming_why_and_nothing_is_stored(
    push_server,
) -> None:
    body = json.dumps(statements(5)).encode()
    # 1 MiB of one character in about 1 KiB: expands far past the 64 KiB limit.
    bomb = gzip.compress(b"[" + b" " * (1 << 20) + b"]")
    token = push_server.token
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{push_server.port}") as client:

        async def post(content: bytes, coding: str | None, token: str | None = token):
            return await client.post(
                "/xAPI/statements", content=content, headers=headers(token, coding)
            )

        unknown = await post(body, "br")
        corrupt = await post(b"\x1f\x8b" + body, "gzip")
        cut = await post(gzip.compress(body)[:-12], "gzip")
        too_big = await post(bomb, "gzip")
        # The token is checked before anything is decompressed.
        anonymous = await post(bomb, "gzip", token=None)
        # The same connection serves the next request.
        after = await post(gzip.compress(body), "gzip")
    assert len(bomb) < 64 * 1024
    assert unknown.status_code == 415 and unknown.headers["Accept-Encoding"] == "gzip, deflate"
    assert "Content-Encoding 'br' is not accepted" in unknown.json()["message"]
    assert corrupt.status_code == 400 and "not valid gzip data" in corrupt.json()["message"]
    assert cut.status_code == 400 and "cut short" in cut.json()["message"]
    assert too_big.status_code == 413
    assert "expands to more than 65536 bytes" in too_big.json()["message"]
    assert anonymous.status_code == 401
    assert after.status_code == 200, after.text
    assert len(read_events(push_server.db_path)) == 5
