"""/healthz and /metrics over plain HTTP on the server's port."""

from __future__ import annotations

import asyncio
import json

from support import event

from jacmon.ingest_client import IngestClient


async def http_get(port: int, path: str) -> tuple[int, dict[str, str], bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
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
    assert 'jacmon_events_total{outcome="accepted"} 1' in text
    assert 'jacmon_events_total{outcome="duplicate"} 1' in text
    assert 'jacmon_events_total{outcome="rejected"} 1' in text
    assert "jacmon_ingest_batch_seconds_count 1" in text
    assert 'jacmon_connections{stream="activity"} 0' in text


async def test_plain_http_to_a_stream_path_is_refused_cleanly(running_server):
    status, _, body = await http_get(running_server.port, "/ws/activity")
    assert status in (400, 426)
    status, _, body = await http_get(running_server.port, "/nope")
    assert status == 404 and b"/healthz" in body
