"""Property-based fuzzing of client messages on the four streams, against one real server.

Whatever a client sends on a stream, the server answers with a frame (an
``error``, a ``pong``, a ``hello`` and its snapshot or replay) and keeps the
connection, or closes it with a documented code: never 1011. Another client
on each stream keeps receiving, and nothing stored changes (the fuzzing
client's token may acknowledge, but only within a learner who has no alerts,
so every ack is refused after validation).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ_SETTINGS, LONE_SURROGATES, VALUES, encode
from hypothesis import given, settings
from hypothesis import strategies as st
from support import TIMEOUT_S, event, make_token, recv_until
from test_stream_sessions import alerts_db
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from jacmon.client.ingest import IngestClient
from jacmon.protocol import LIVE_STREAMS, Stream

#: Examples: each is one round trip; a few seconds in total on the 2-core CI box.
EXAMPLES = 300

#: Close codes a stream may end a fuzzing client's connection with (docs/protocol.md).
DOCUMENTED_CLOSES = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 4001, 4008}

#: Frame types a stream may send while answering a client message (its replies, and the
#: live data that keeps flowing meanwhile).
REPLIES = {
    "error",
    "pong",
    "hello",
    "connection_established",
    "snapshot",
    "events",
    "alert",
    "sample",
    "progress",
}

TYPES = st.one_of(
    st.sampled_from(
        [
            "ping",
            "resume",
            "refresh",
            "ack",
            "unack",
            "request_update",
            "acknowledge_alert",
            "batch",
        ]
    ),
    VALUES,
)

#: A message: any value, or an object with a real or random type and random fields.
MESSAGES = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"type": TYPES},
        optional={
            "id": VALUES,
            "since": st.one_of(VALUES, st.integers(-5, 10**20)),
            "alert_id": st.one_of(VALUES, st.integers(-5, 2**65)),
            "note": st.one_of(VALUES, st.text(max_size=3000)),
            "expires_at": st.one_of(VALUES, st.floats()),
        },
    ),
)

#: How a message goes on the wire: as careless JSON, raw text or bytes.
FRAMES = st.one_of(
    MESSAGES.map(encode),
    st.text(max_size=40),
    # Nested near and past the decoder's recursion limit, written as text: encoding
    # such a value here would hit this process's own limit first.
    st.integers(min_value=900, max_value=3000).map(
        lambda n: '{"type": "ping", "id": ' + "[" * n + "]" * n + "}"
    ),
    st.sampled_from(["1e999", "-1e999", "Infinity", "NaN", str(2**63), str(10**30)]).map(
        lambda number: '{"type": "ack", "alert_id": 1, "expires_at": ' + number + "}"
    ),
    # Escaped lone surrogates ("\ud800"): valid JSON text, not valid Unicode.
    LONE_SURROGATES.map(lambda s: encode({"type": "ping", "id": s})),
    st.binary(max_size=40),
)


@dataclass
class StreamHarness:
    loop: asyncio.AbstractEventLoop
    url: str
    token: str
    db_path: Path
    fuzzers: dict[Stream, ClientConnection]
    pings: Iterator[int]

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S))

    async def open(self, stream: Stream) -> ClientConnection:
        ws = await connect(f"{self.url}/ws/{stream.value}?token={self.token}", max_size=None)
        await recv_until(ws, lambda f: f["type"] == "snapshot")
        return ws

    async def send(self, stream: Stream, frame: str | bytes) -> None:
        """Send ``frame``, then a ping; every frame until its pong must be a reply."""
        ws = self.fuzzers[stream]
        marker = next(self.pings)
        try:
            await ws.send(frame)
            await ws.send(json.dumps({"type": "ping", "id": marker}))
            while True:
                reply = json.loads(await ws.recv())
                assert reply["type"] in REPLIES, reply
                assert reply["stream"] == stream.value
                assert isinstance(reply["seq"], int) and reply["seq"] >= 0
                if reply["type"] == "error":
                    assert len(reply["data"]["message"]) < 2000
                if reply["type"] == "pong" and reply["data"]["id"] == marker:
                    return
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code in DOCUMENTED_CLOSES, closed
            self.fuzzers[stream] = await self.open(stream)


def stored_state(db_path: Path) -> tuple[list, list]:
    with sqlite3.connect(db_path) as conn:
        alerts = conn.execute("SELECT * FROM alerts ORDER BY id").fetchall()
        changes = conn.execute("SELECT seq, body FROM alert_changes ORDER BY seq").fetchall()
    return alerts, changes


@pytest.fixture
def harness(tmp_path: Path, server_factory) -> Iterator[StreamHarness]:
    loop = asyncio.new_event_loop()
    db, ids, _ = loop.run_until_complete(alerts_db(tmp_path))

    token = loop.run_until_complete(make_token(db, role="viewer", learner="nobody", can_ack=True))
    before = stored_state(db)
    server_cm = server_factory(db)
    running = loop.run_until_complete(server_cm.__aenter__())
    try:
        harness = StreamHarness(loop, running.url, token, db, {}, itertools.count(1))
        observers = {}
        for stream in LIVE_STREAMS:
            harness.fuzzers[stream] = harness.run(harness.open(stream))
            observers[stream] = harness.run(connect(f"{running.url}/ws/{stream.value}"))
        yield harness
        # Nothing the fuzzing client sent changed what is stored ...
        assert stored_state(db) == before
        # ... and the other client on every stream still receives.
        harness.run(_observers_still_receive(running.url, observers, ids["a"]))
        for ws in [*harness.fuzzers.values(), *observers.values()]:
            harness.run(ws.close())
    finally:
        loop.run_until_complete(server_cm.__aexit__(None, None, None))
        loop.close()


async def _observers_still_receive(url: str, observers: dict, alert_id: int) -> None:
    async with IngestClient(url) as client:
        await client.send_batch([event(1, learner="a")])
    await recv_until(observers[Stream.ACTIVITY], lambda f: f["type"] == "events")
    await recv_until(observers[Stream.METRICS], lambda f: f["type"] == "sample")
    await recv_until(observers[Stream.DASHBOARD], lambda f: f["type"] == "progress")
    await observers[Stream.ALERTS].send(json.dumps({"type": "ack", "alert_id": alert_id}))
    acked = await recv_until(observers[Stream.ALERTS], lambda f: f["type"] == "alert")
    assert acked["data"]["alert"]["id"] == alert_id


def test_fuzzed_client_messages_get_replies_on_every_stream(harness):
    @settings(FUZZ_SETTINGS, max_examples=EXAMPLES)
    @given(stream=st.sampled_from(LIVE_STREAMS), frame=FRAMES)
    def check(stream: Stream, frame: str | bytes) -> None:
        harness.run(harness.send(stream, frame))

    check()
