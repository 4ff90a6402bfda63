"""/healthz and /metrics over plain HTTP on the server's port."""

from __future__ import annotations

import asyncio
import json

from support import event

from jacmon.client.ingest import IngestClient
from jacmon.server.auth import create_token
from jacmon.store import Store


async def make_tokens(db_path, *roles: str) -> list[str]:
    store = await Store.open(db_path)
    try:
        return [(await create_token(store, role=role))[0] for role in roles]
    finally:
        await store.close()


async def http_get(
    port: int, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    writer.write(
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}Connection: close\r\n\r\n".encode()
    )
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return status, headers, body


async def test_healthz_reports_version_uptime_db_and_connections(running_server):
    status, headers, body = await http_get(running_server.port, "/healthz")
    assert status == 200 and headers["Content-Type"].startswith("application/json")
    health = json.loads(body)
    assert health["status"] == "ok" and health["db"]["ok"] is True
    assert health["version"] and health["uptime_s"] >= 0
    assert set(health["connections"]) >= {"dashboard", "alerts", "metrics", "activity", "ingest"}


async def test_metrics_counts_ingest_outcomes(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(1), event(1), {"id": "x"}])
    status, headers, body = await http_get(running_server.port, "/metrics")
    text = body.decode()
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    # Every sample names the node that served it (several nodes are scraped apart).
    node = f'node="{running_server.server.node}"'
    assert f'jacmon_events_total{{{node},outcome="accepted"}} 1' in text
    assert f'jacmon_events_total{{{node},outcome="duplicate"}} 1' in text
    assert f'jacmon_events_total{{{node},outcome="rejected"}} 1' in text
    assert f"jacmon_ingest_batch_seconds_count{{{node}}} 1" in text
    assert f'jacmon_connections{{{node},stream="activity"}} 0' in text
    samples = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert samples and all(line.split("{", 1)[1].startswith(node) for line in samples)


async def test_metrics_show_the_projection_catching_up(running_server):
    """The projector's lag and watermark: events acked, then folded into progress."""
    from support import until

    async with IngestClient(running_server.url) as client:
        ack = await client.send_batch([event(n) for n in range(1, 41)])
    node = f'node="{running_server.server.node}"'

    async def caught_up() -> str | None:
        _, _, body = await http_get(running_server.port, "/metrics")
        text = body.decode()
        return text if f"jacmon_projection_seq{{{node}}} {ack.last_seq}" in text else None

    text = await until(caught_up, "the projection watermark to reach the last ack")
    assert f"jacmon_projection_lag_events{{{node}}} 0" in text
    assert f"jacmon_projection_lag_seconds{{{node}}} 0.000" in text
    assert f"jacmon_projection_events_total{{{node}}} 40" in text
    assert f"jacmon_projection_failures_total{{{node}}} 0" in text


async def test_plain_http_to_a_stream_path_is_refused_cleanly(running_server):
    status, _, body = await http_get(running_server.port, "/ws/activity")
    assert status in (400, 426)
    status, _, body = await http_get(running_server.port, "/nope")
    assert status == 404 and b"/healthz" in body


async def test_required_tokens_guard_healthz_and_metrics(tmp_path, server_factory):
    db = tmp_path / "j.db"
    admin, viewer, ingest = await make_tokens(db, "admin", "viewer", "ingest")
    async with server_factory(
        db, server_require_tokens=True, server_metrics_token="scrape-me-123"
    ) as running:
        port = running.port
        for path in ("/healthz", "/metrics"):
            status, _, body = await http_get(port, path)
            assert status == 401 and b"token is required" in body, path
            assert str(db).encode() not in body
        status, _, body = await http_get(port, "/healthz", {"Authorization": f"Bearer {viewer}"})
        health = json.loads(body)
        assert status == 200 and health["status"] == "ok" and "path" not in health["db"]
        status, _, body = await http_get(port, f"/healthz?token={admin}")
        assert status == 200 and json.loads(body)["db"]["path"] == str(db)
        status, _, body = await http_get(port, f"/metrics?token={viewer}")
        assert status == 200 and b"jacmon_last_seq" in body
        status, _, _ = await http_get(port, "/metrics", {"Authorization": "Bearer scrape-me-123"})
        assert status == 200
        status, _, body = await http_get(port, f"/metrics?token={ingest}")
        assert status == 403 and b"metrics token" in body
        status, _, body = await http_get(port, "/healthz?token=scrape-me-123")
        assert status == 401


async def test_healthz_shows_no_path_to_a_foreign_page(running_server):
    _, _, body = await http_get(running_server.port, "/healthz", {"Origin": "https://evil.example"})
    assert "path" not in json.loads(body)["db"]


async def test_healthz_is_degraded_while_writes_fail(running_server):
    store = running_server.server.store
    store.write_problem = "the disk is full: nothing new is stored"
    status, _, body = await http_get(running_server.port, "/healthz")
    health = json.loads(body)
    assert status == 503 and health["status"] == "degraded"
    assert health["problems"] == ["the disk is full: nothing new is stored"]
    store.write_problem = None
    status, _, body = await http_get(running_server.port, "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
