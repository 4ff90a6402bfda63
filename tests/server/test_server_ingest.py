"""Ingest over /ws/ingest against the real server: acks, rejections, duplicates, bad frames."""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import UTC, datetime

from support import event, recv_json, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidStatus

from jacmon.client.ingest import IngestClient


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


def deep(levels: int) -> str:
    return "[" * levels + "1" + "]" * levels


async def send_text(ws, text: str) -> dict:
    await ws.send(text)
    return await recv_json(ws)


async def test_poison_events_are_rejected_by_index_and_their_siblings_stored(running_server):
    # Raw JSON text: NaN, 1e400, escaped lone surrogates are what a producer can send.
    poison = {
        1: '"type": []',
        3: '"type": {"a": 1}',
        5: '"session": "\\ud800"',
        7: '"note": "x\\udfffy"',
        9: '"note": NaN',
        11: '"note": Infinity',
        13: '"note": 1e400',
        15: '"duration_s": 1' + "0" * 400,
        17: '"progress": 1' + "0" * 400,
        19: '"attempt": 9223372036854775808',
        21: '"note": ' + deep(900),  # decodable, far over the bound of 32 levels
    }
    parts = []
    for i in range(23):
        body = json.dumps(event(i))
        if i in poison:
            body = body[:-1] + ", " + poison[i] + "}"
        parts.append(body)
    async with connect(running_server.url + "/ws/activity") as watcher:
        await recv_json(watcher)  # hello
        async with connect(running_server.url + "/ws/ingest") as ws:
            reply = await send_text(ws, "[" + ",".join(parts) + "]")
            assert reply["type"] == "ack", reply
            ack = reply["data"]
            assert [r["index"] for r in ack["rejected"]] == sorted(poison)
            reasons = {r["index"]: r["error"] for r in ack["rejected"]}
            assert "field 'type'" in reasons[1] and "field 'session'" in reasons[5]
            assert "field 'note'" in reasons[9] and "finite" in reasons[9]
            assert "field 'duration_s'" in reasons[15] and "field 'attempt'" in reasons[19]
            assert "nested at most 32 levels" in reasons[21]
            assert ack["accepted"] == 12
            # The connection stays open.
            assert (await send_text(ws, json.dumps([event(100)])))["type"] == "ack"
        # Other clients keep receiving.
        await recv_until(watcher, lambda m: any(e["id"] == "e-100" for e in events_of(m)))
    assert stored_ids(running_server.db_path) == [f"e-{i}" for i in range(0, 23, 2)] + ["e-100"]


def events_of(message: dict) -> list[dict]:
    return message["data"].get("events", []) if message["stream"] == "activity" else []


async def test_bad_frames_and_messages_get_errors_never_1011(running_server):
    async with connect(running_server.url + "/ws/ingest") as ws:
        frames = {
            deep(100_000): "bad_json",  # deeper than the JSON decoder's recursion
            '{"type": "ping", "id": ' + deep(900) + "}": "bad_message",
            '{"type": "ping", "id": NaN}': "bad_message",
            '{"type": ' + deep(900) + "}": "bad_message",
            '{"type": "batch", "events": [], "cursor": {"name": "c", "value": "\\ud800"}}': (
                "bad_message"
            ),
            '{"type": "batch", "events": [], "cursor": {"name": "\\udc00", "value": "v"}}': (
                "bad_message"
            ),
            '{"type": "cursor.get", "name": "\\ud800"}': "bad_message",
            b"\xff\xfe[]": "bad_json",
        }
        for frame, code in frames.items():
            reply = await send_text(ws, frame)
            assert reply["type"] == "error", (frame[:40], reply)
            assert reply["data"]["code"] == code
            assert len(reply["data"]["message"]) < 600
        assert (await send_text(ws, '{"type": "ping", "id": 7}'))["data"] == {"id": 7}
        assert (await send_text(ws, json.dumps([event(1)])))["data"]["accepted"] == 1


async def test_cursor_moves_only_when_an_event_of_its_batch_was_processed(running_server):
    bad = event(1, progress=140)
    async with IngestClient(running_server.url) as client:
        # Every event rejected: the watermark stays where it was (never stored).
        ack = await client.send_batch([bad, bad], cursor=("lrs:x", "t1"))
        assert ack.accepted == 0 and len(ack.rejected) == 2
        assert await client.get_cursor("lrs:x") is None
        # One valid event among rejected ones: stored, and the cursor with it.
        await client.send_batch([bad, event(2)], cursor=("lrs:x", "t2"))
        assert await client.get_cursor("lrs:x") == "t2"
        # Only duplicates: processed before, so the watermark may move past them.
        await client.send_batch([event(2)], cursor=("lrs:x", "t3"))
        assert await client.get_cursor("lrs:x") == "t3"
        # An empty batch moves it (a producer with nothing new up to there).
        await client.send_batch([], cursor=("lrs:x", "t4"))
        assert await client.get_cursor("lrs:x") == "t4"
        await client.send_batch([bad], cursor=("lrs:x", "t5"))
        assert await client.get_cursor("lrs:x") == "t4"


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


async def test_event_times_out_of_bounds_are_rejected_with_the_reason(running_server):
    now = time.time()
    batch = [
        event(1, ts=iso(now + 3600)),  # an hour ahead of the server's clock
        event(2, ts="1970-01-01T00:00:00Z"),
        event(3, ts=iso(now + 60)),  # within the default skew of 300 s
        event(4, ts="2000-01-01T00:00:00Z"),
    ]
    async with IngestClient(running_server.url) as client:
        ack = await client.send_batch(batch)
    assert [r.index for r in ack.rejected] == [0, 1]
    assert "field 'ts'" in ack.rejected[0].error
    assert "300 s ahead of the server's clock" in ack.rejected[0].error
    assert "from 2000-01-01T00:00:00Z on" in ack.rejected[1].error
    assert stored_ids(running_server.db_path) == ["e-3", "e-4"]


async def test_event_times_follow_the_servers_clock_and_settings(server_factory, tmp_path, caplog):
    simulated = datetime(2031, 6, 1, tzinfo=UTC).timestamp()
    async with server_factory(
        tmp_path / "j.db",
        clock=lambda: simulated,
        server_max_clock_skew_s=10.0,
        server_earliest_event_ts="2020-01-01T00:00:00Z",
    ) as running:
        batch = [
            event(1, ts=iso(simulated + 5)),
            event(2, ts=iso(simulated + 20)),
            event(3, ts="2019-12-31T23:59:59Z"),
        ]
        async with IngestClient(running.url) as client:
            ack = await client.send_batch(batch)
        assert [r.index for r in ack.rejected] == [1, 2]
        assert "10 s ahead" in ack.rejected[0].error
    with caplog.at_level("WARNING", logger="jacmon.ingest"):
        async with server_factory(
            tmp_path / "w.db", server_out_of_range_ts="warn", server_max_clock_skew_s=10.0
        ) as running:
            async with IngestClient(running.url) as client:
                ack = await client.send_batch([event(5, ts="2040-01-01T00:00:00Z")])
            assert ack.accepted == 1 and not ack.rejected
    assert "out-of-range ts" in caplog.text
