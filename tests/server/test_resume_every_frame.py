"""Every frame's seq is safe to resume from: reconnecting with ``?since=<seq>`` of any frame
received (hello, connection_established, snapshot, events, alert, pong, error) gives
exactly the data that came after that frame: each event or alert change once, in order.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from support import TIMEOUT_S, event, recv_json, recv_until
from test_stream_sessions import alerts_db
from websockets.asyncio.client import ClientConnection, connect

from jacmon.client.ingest import IngestClient
from jacmon.store import Store
from jacmon.store.sqlite.alerts import acknowledge_alert

#: Data frame types per stream, and how to list the seqs of the data a frame carries.
DATA = {
    "activity": lambda f: (
        [e["seq"] for e in f["data"]["events"]] if f["type"] in ("snapshot", "events") else []
    ),
    "alerts": lambda f: [f["seq"]] if f["type"] == "alert" else [],
}


async def exchange(ws: ClientConnection, frames: list[dict[str, Any]], marker: int) -> None:
    """Send a ping and a bad message; record every frame until the pong for ``marker``."""
    await ws.send(json.dumps({"type": "nonsense"}))
    await ws.send(json.dumps({"type": "ping", "id": marker}))
    while True:
        frame = await recv_json(ws)
        frames.append(frame)
        if frame["type"] == "pong" and frame["data"]["id"] == marker:
            return


async def missed_after(url: str, stream: str, since: int) -> list[int]:
    """The data seqs a client resuming from ``since`` receives, until a pong says it is all."""
    received: list[int] = []
    async with connect(f"{url}/ws/{stream}?since={since}") as ws:
        hello = await recv_json(ws)
        assert hello["type"] == "hello" and hello["data"]["resumed"] is True, hello
        assert hello["seq"] == since
        await ws.send(json.dumps({"type": "ping", "id": "done"}))
        while True:
            frame = await recv_json(ws)
            if frame["type"] == "pong":
                return received
            received.extend(DATA[stream](frame))


def expected_after(frames: list[dict[str, Any]], index: int, stream: str) -> list[int]:
    """What came after frame ``index`` (data not already given by then)."""
    given = frames[index]["seq"]
    later = [seq for frame in frames[index + 1 :] for seq in DATA[stream](frame)]
    return [seq for seq in later if seq > given]


async def test_resuming_from_any_activity_frame_gives_exactly_the_missed_events(running_server):
    url = running_server.url
    frames: list[dict[str, Any]] = []
    async with IngestClient(url) as client:
        await client.send_batch([event(i) for i in range(5)])
        async with connect(url + "/ws/activity") as ws:
            for batch in range(1, 4):
                await exchange(ws, frames, batch)
                await client.send_batch([event(10 * batch + i) for i in range(5)])
                head = 5 + 5 * batch
                while not frames or frames[-1]["seq"] < head:
                    frames.append(await recv_json(ws))
            await exchange(ws, frames, 99)
    kinds = {f["type"] for f in frames}
    assert {"hello", "connection_established", "snapshot", "events", "pong", "error"} <= kinds
    assert sorted(seq for f in frames for seq in DATA["activity"](f)) == list(range(1, 21))
    for index, frame in enumerate(frames):
        missed = await missed_after(url, "activity", frame["seq"])
        assert missed == expected_after(frames, index, "activity"), (index, frame["type"])


async def test_resuming_from_any_alerts_frame_gives_exactly_the_missed_changes(
    tmp_path, server_factory
):
    db, ids, _ = await alerts_db(tmp_path)
    frames: list[dict[str, Any]] = []
    async with server_factory(db) as running:
        url = running.url
        async with connect(url + "/ws/alerts") as ws:
            await exchange(ws, frames, 1)
            # One change from this stream, one written by another process (as the CLI does).
            await ws.send(json.dumps({"type": "ack", "alert_id": ids["a"], "note": "stream"}))
            frames.append(await recv_until(ws, lambda f: f["type"] == "alert"))
            await exchange(ws, frames, 2)
            other = await Store.open(db)
            try:
                await acknowledge_alert(other.db, ids["b"], by="cli", note="cli")
            finally:
                await other.close()
            frames.append(
                await asyncio.wait_for(recv_until(ws, lambda f: f["type"] == "alert"), TIMEOUT_S)
            )
            await exchange(ws, frames, 3)
        kinds = {f["type"] for f in frames}
        assert {"hello", "connection_established", "snapshot", "alert", "pong", "error"} <= kinds
        for index, frame in enumerate(frames):
            missed = await missed_after(url, "alerts", frame["seq"])
            if frame["seq"] < frames[2]["seq"]:
                # Before the snapshot: the replay holds the changes the snapshot summed up.
                assert missed[-2:] == expected_after(frames, index, "alerts")
                assert missed == sorted(set(missed))
            else:
                assert missed == expected_after(frames, index, "alerts"), (index, frame["type"])
