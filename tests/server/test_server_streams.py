"""The four streams against the real server: order, resume, scope, slow clients, aliases."""

from __future__ import annotations

import asyncio
import json
import socket

from support import TIMEOUT_S, collect_events, dashboard_snapshot, event, recv_json, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from jacmon.client.ingest import IngestClient


async def test_hello_snapshot_and_legacy_greeting(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(60)])
    async with connect(running_server.url + "/ws/activity") as ws:
        hello = await recv_json(ws)
        assert hello["type"] == "hello"
        # hello.seq is what this client was given (nothing yet); the head is head_seq.
        assert hello["data"]["head_seq"] == 60 and hello["data"]["server_id"]
        assert hello["seq"] == hello["data"]["seq"] == 0
        assert (await recv_json(ws))["type"] == "connection_established"
        snapshot = await recv_json(ws)
        assert snapshot["type"] == "snapshot"
        assert [e["seq"] for e in snapshot["data"]["events"]] == list(range(11, 61))
        assert snapshot["seq"] == 60


async def test_events_arrive_in_order_without_gaps(running_server):
    async with connect(running_server.url + "/ws/activity") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        async with IngestClient(running_server.url) as client:
            for start in range(0, 1000, 100):
                batch = [event(i) for i in range(start, start + 100)]
                batch.append(event(start))  # a duplicate in every batch
                await client.send_batch(batch)
        events = await collect_events(ws, 1000)
    assert [e["seq"] for e in events] == list(range(1, 1001))
    assert [e["id"] for e in events] == [f"e-{i}" for i in range(1000)]


async def test_resume_delivers_exactly_the_missed_events(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(20)])
        async with connect(running_server.url + "/ws/activity") as ws:
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
            last_seq = snapshot["data"]["events"][-1]["seq"]
        for start in range(20, 520, 100):
            await client.send_batch([event(i) for i in range(start, start + 100)])
    async with connect(f"{running_server.url}/ws/activity?since={last_seq}") as ws:
        hello = await recv_json(ws)
        assert hello["data"]["resumed"] is True
        events = await collect_events(ws, 500)
        assert [e["id"] for e in events] == [f"e-{i}" for i in range(20, 520)]
        # Nothing more: the next frame is a pong, not a repeat.
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        assert (await recv_until(ws, lambda m: m["stream"] == "activity"))["type"] == "pong"


async def test_resume_across_a_server_restart(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(5)])
    await running_server.restart()
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(5, 8)])
    async with connect(f"{running_server.url}/ws/activity?since=5") as ws:
        events = await collect_events(ws, 3)
    assert [e["seq"] for e in events] == [6, 7, 8]


async def test_resume_older_than_the_replay_window_gets_a_reset_snapshot(tmp_path, server_factory):
    async with server_factory(tmp_path / "j.db", server_replay_window=100) as server:
        async with IngestClient(server.url) as client:
            await client.send_batch([event(i) for i in range(300)])
        async with connect(f"{server.url}/ws/activity?since=10") as ws:
            hello = await recv_json(ws)
            assert hello["data"]["resumed"] is False
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
            assert snapshot["data"]["reset"] is True
            assert snapshot["data"]["events"][-1]["seq"] == 300


async def test_resume_message_and_refresh(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(10)])
    async with connect(running_server.url + "/ws/activity") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        # The snapshot already gave events 1-10: resuming from 7 re-sends none of them.
        await ws.send(json.dumps({"type": "resume", "since": 7}))
        hello = await recv_until(ws, lambda m: m["type"] == "hello")
        assert hello["data"]["resumed"] is True and hello["seq"] == 10
        async with IngestClient(running_server.url) as client:
            await client.send_batch([event(i) for i in range(10, 12)])
        frame = await recv_until(ws, lambda m: m["type"] == "events")
        assert [e["seq"] for e in frame["data"]["events"]] == [11, 12]
        await ws.send(json.dumps({"type": "request_update"}))  # the earlier design's refresh
        hello = await recv_until(ws, lambda m: m["type"] == "hello")
        assert hello["data"]["resumed"] is False and hello["seq"] == 12
        snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
        assert len(snapshot["data"]["events"]) == 12


async def test_bad_client_messages_get_errors_and_the_stream_continues(running_server):
    async with connect(running_server.url + "/ws/activity") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        await ws.send("not json")
        error = await recv_until(ws, lambda m: m["type"] == "error")
        assert "JSON" in error["data"]["message"]
        await ws.send(json.dumps({"type": "subscribe"}))
        error = await recv_until(ws, lambda m: m["type"] == "error")
        assert "'subscribe'" in error["data"]["message"]
        await ws.send(json.dumps({"type": "resume", "since": "yesterday"}))
        error = await recv_until(ws, lambda m: m["type"] == "error")
        assert "'yesterday'" in error["data"]["message"]
        async with IngestClient(running_server.url) as client:
            await client.send_batch([event(1)])
        frame = await recv_until(ws, lambda m: m["type"] == "events")
        assert frame["data"]["events"][0]["id"] == "e-1"


async def test_learner_query_scopes_the_activity_stream(running_server):
    async with connect(running_server.url + "/ws/activity?learner=ana") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        async with IngestClient(running_server.url) as client:
            await client.send_batch(
                [event(i, learner="ana" if i % 2 else "ben") for i in range(20)]
            )
        events = await collect_events(ws, 10)
    assert {e["learner"] for e in events} == {"ana"}
    assert len(events) == 10


async def test_dashboard_snapshot_and_deltas(running_server):
    async with connect(running_server.url + "/ws/dashboard") as ws:
        snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
        assert snapshot["data"]["paths"] == []
        async with IngestClient(running_server.url) as client:
            await client.send_batch(
                [
                    event(1, type="path.enrolled", module=None, progress=None),
                    event(2, module="m1", progress=50),
                    event(3, type="module.completed", module="m2", progress=None),
                ]
            )
        delta = await recv_until(ws, lambda m: m["type"] == "progress" and m["data"]["paths"])
    (path,) = delta["data"]["paths"]
    assert path["path"] == "python-101"
    assert path["enrolled"] == 1 and path["modules"] == 2
    assert path["mean_percent"] == 75.0  # (50 + 100) / 2 modules
    (row,) = delta["data"]["learner_paths"]
    assert row["learner"] == "u1" and row["modules_completed"] == 1


async def test_metrics_stream_samples_and_history(running_server):
    async with IngestClient(running_server.url) as client:
        now = running_server.server.now()
        from datetime import UTC, datetime

        stamp = datetime.fromtimestamp(now, UTC).isoformat()
        await client.send_batch(
            [
                event(
                    1,
                    ts=stamp,
                    type="assessment.attempted",
                    item="q1",
                    score={"scaled": 0.8},
                    module=None,
                    progress=None,
                ),
                event(
                    2,
                    ts=stamp,
                    learner="u2",
                    type="assessment.attempted",
                    item="q1",
                    score={"raw": 6, "max": 10},
                    module=None,
                    progress=None,
                ),
            ]
        )
    async with connect(running_server.url + "/ws/metrics") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        sample = await recv_until(ws, lambda m: m["type"] == "sample")
    data = sample["data"]
    assert data["events_per_min"] == 2
    assert data["avg_score"] == 70.0
    assert data["active_learners_5m"] == 2
    assert data["connected_clients"] >= 1
    async with connect(running_server.url + "/ws/metrics") as ws:
        snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
        assert snapshot["data"]["samples"], "the snapshot carries recent history"


async def test_slow_activity_client_is_closed_with_4008_and_can_resume(tmp_path, server_factory):
    async with server_factory(tmp_path / "j.db", server_client_buffer_frames=8) as server:
        # This client stops reading after one queued frame (max_queue=1), and its socket's
        # receive buffer is pinned small: the kernel may otherwise autotune it to tens of
        # MB (tcp_rmem) and swallow the whole stream, so the server would never see it lag.
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
        raw.setblocking(False)
        await asyncio.get_running_loop().sock_connect(raw, ("127.0.0.1", server.port))
        slow = await connect(server.url + "/ws/activity", sock=raw, max_queue=1, max_size=None)
        # A healthy client alongside is unaffected.
        async with connect(server.url + "/ws/activity") as healthy:
            await recv_until(healthy, lambda m: m["type"] == "snapshot")
            reading = asyncio.create_task(collect_events(healthy, 4000, timeout=TIMEOUT_S * 3))
            async with IngestClient(server.url) as client:
                payload = "x" * 3000
                for start in range(0, 4000, 50):
                    await client.send_batch(
                        [event(i, pad=payload) for i in range(start, start + 50)]
                    )
                    await asyncio.sleep(0.06)  # one flush per batch: many frames
            events = await reading
            assert [e["seq"] for e in events] == list(range(1, 4001))
        closed_code = None
        try:
            while True:
                await asyncio.wait_for(slow.recv(), TIMEOUT_S)
        except ConnectionClosed as exc:
            closed_code = exc.rcvd.code if exc.rcvd else None
        assert closed_code == 4008
        async with connect(f"{server.url}/ws/activity?since=3990") as again:
            events = await collect_events(again, 10)
            assert [e["seq"] for e in events] == list(range(3991, 4001))


async def test_a_catalog_loaded_beside_a_running_server_is_picked_up(
    tmp_path, server_factory, monkeypatch
):
    from jacmon.server import loops
    from jacmon.store import Store
    from jacmon.store.catalog import CatalogPath

    monkeypatch.setattr(loops, "STORE_WATCH_S", 0.1)
    async with server_factory(tmp_path / "j.db") as server:
        async with IngestClient(server.url) as client:
            await client.send_batch([event(1, module="m1", progress=100)])
        # Another process (here: other connections) loads a four-module catalog.
        other = await Store.open(server.db_path)
        await other.load_catalog(
            [CatalogPath("python-101", "Python 101", [(f"m{i}", None) for i in range(1, 5)])]
        )
        await other.close()
        deadline = asyncio.get_running_loop().time() + TIMEOUT_S
        while server.server.store.catalog.module_counts.get("python-101") != 4:
            assert asyncio.get_running_loop().time() < deadline, "catalog never reloaded"
            await asyncio.sleep(0.05)
        # Progress follows ingest within the projector's lag.
        await dashboard_snapshot(server.url + "/ws/dashboard", through_seq=1)
        async with connect(server.url + "/ws/dashboard") as ws:
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
            (path,) = snapshot["data"]["paths"]
            assert path["modules"] == 4 and path["mean_percent"] == 25.0
            async with IngestClient(server.url) as client:
                await client.send_batch([event(2, module="m2", progress=100)])
            delta = await recv_until(ws, lambda m: m["type"] == "progress" and m["data"]["paths"])
            assert delta["data"]["paths"][0]["mean_percent"] == 50.0
