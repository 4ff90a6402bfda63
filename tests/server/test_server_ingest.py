"""Ingest over /ws/ingest against the real server: acks, rejections, duplicates, bad frames."""

from __future__ import annotations

import json
import sqlite3

from support import event, recv_json
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from jacmon.ingest_client import IngestClient


def stored_ids(db_path) -> list[str]:
    with sqlite3.connect(db_path) as conn:
        return [row[0] for row in conn.execute("SELECT id FROM events ORDER BY seq")]


async def test_batch_with_invalid_events_stores_the_valid_ones(running_server):
    batch = [event(i) for i in range(100)]
    batch[10] = {
        "id": "bad-type",
        "type": "lesson.started",
        "ts": "2026-01-05T10:00:00Z",
        "learner": "u1",
    }
    batch[50] = event(50, progress=140)
    batch[99] = event(99, ts="2026-01-05 10:00")
    async with IngestClient(running_server.url) as client:
        ack = await client.send_batch(batch)
        assert ack.accepted == 97
        assert ack.duplicates == 0
        assert [r.index for r in ack.rejected] == [10, 50, 99]
        assert "'type'" in ack.rejected[0].error and "lesson.started" in ack.rejected[0].error
        assert "'progress'" in ack.rejected[1].error and "140" in ack.rejected[1].error
        assert "'ts'" in ack.rejected[2].error and "zone" in ack.rejected[2].error
        # The connection keeps working after the rejections.
        again = await client.send_batch([event(1000)])
        assert again.accepted == 1
    ids = stored_ids(running_server.db_path)
    assert len(ids) == 98
    assert "e-50" not in ids and "bad-type" not in ids


async def test_duplicates_are_stored_once_and_counted(running_server):
    async with IngestClient(running_server.url) as client:
        first = await client.send_batch([event(1), event(2), event(1)])
        assert (first.accepted, first.duplicates) == (2, 1)
        second = await client.send_batch([event(2), event(3)])
        assert (second.accepted, second.duplicates) == (1, 1)
        assert second.last_seq == 3
    assert stored_ids(running_server.db_path) == ["e-1", "e-2", "e-3"]


async def test_unknown_extra_fields_are_kept(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(1, device="tablet", lms={"course": 7})])
    with sqlite3.connect(running_server.db_path) as conn:
        (body,) = conn.execute("SELECT body FROM events").fetchone()
    stored = json.loads(body)
    assert stored["device"] == "tablet" and stored["lms"] == {"course": 7}


async def test_malformed_json_gets_an_error_and_the_connection_survives(running_server):
    async with connect(running_server.url + "/ws/ingest") as ws:
        await ws.send("[{not json")
        reply = await recv_json(ws)
        assert reply["type"] == "error" and reply["data"]["code"] == "bad_json"
        await ws.send(json.dumps({"events": []}))
        reply = await recv_json(ws)
        assert reply["type"] == "error" and "type" in reply["data"]["message"]
        await ws.send(json.dumps([event(1)]))
        reply = await recv_json(ws)
        assert reply["type"] == "ack" and reply["data"]["accepted"] == 1


async def test_frame_over_the_size_limit_is_closed_with_1009_others_unaffected(running_server):
    async with connect(running_server.url + "/ws/activity") as watcher:
        async with connect(running_server.url + "/ws/ingest", max_size=None) as ws:
            huge = json.dumps([event(i, note="x" * 2000) for i in range(600)])
            assert len(huge) > 1024 * 1024
            await ws.send(huge)
            try:
                await recv_json(ws)
                raise AssertionError("expected the server to close the connection")
            except ConnectionClosedError as exc:
                assert exc.rcvd is not None and exc.rcvd.code == 1009
        # Another producer and the watcher still work.
        async with IngestClient(running_server.url) as client:
            assert (await client.send_batch([event(7)])).accepted == 1
        await recv_json(watcher)  # hello
        frames = [await recv_json(watcher) for _ in range(3)]
        assert frames[-1]["type"] == "events"
        assert frames[-1]["data"]["events"][0]["id"] == "e-7"


async def test_unknown_path_is_refused_with_404_and_a_reason(running_server):
    try:
        async with connect(running_server.url + "/ws/progress"):
            raise AssertionError("expected a refusal")
    except InvalidStatus as exc:
        assert exc.response.status_code == 404
        assert b"/ws/dashboard" in exc.response.body


async def test_cursor_is_stored_with_its_batch(running_server):
    async with IngestClient(running_server.url) as client:
        assert await client.get_cursor("lrs:x") is None
        await client.send_batch([event(1)], cursor=("lrs:x", "2026-01-05T10:00:00Z"))
        assert await client.get_cursor("lrs:x") == "2026-01-05T10:00:00Z"
