"""Property-based fuzzing of the ingest boundary (hypothesis), against one real server.

Bounded for CI: a fixed number of examples per property, derandomized (the
same examples on every run), no example database. The server, its ingest
connection and an activity watcher live across all examples of a test in
one event loop, driven from a synchronous test (hypothesis calls the
example function many times; an async test function cannot be given to it).

Properties: every frame is answered with an ``ack`` or an ``error`` frame,
never a close; an ack rejects exactly the events the contract refuses (by
index) and stores every other one; the watcher keeps receiving every stored
event.
"""

from __future__ import annotations

import asyncio
import json
import math
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from fuzz_support import FUZZ_SETTINGS, LONE_SURROGATES, VALUES, encode
from hypothesis import given
from hypothesis import strategies as st
from support import TIMEOUT_S, event, recv_json
from websockets.asyncio.client import ClientConnection, connect

from jacmon.errors import EventValidationError
from jacmon.events import KNOWN_FIELDS, TimeBounds, validate_event

FIELD_NAMES = st.one_of(st.sampled_from(sorted(KNOWN_FIELDS)), st.text(max_size=8), LONE_SURROGATES)


@st.composite
def events(draw: st.DrawFn) -> Any:
    """A valid event, an event with some fields replaced by arbitrary values, or any value."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(VALUES)
    body = event(draw(st.integers(0, 10**6)), learner=draw(st.sampled_from(["u1", "u2"])))
    body["id"] = f"fz-{draw(st.uuids())}"
    if choice >= 6:
        return body  # valid
    for name, value in draw(st.dictionaries(FIELD_NAMES, VALUES, min_size=1, max_size=3)).items():
        body[name] = value
    return body


def refused(body: Any) -> bool:
    """True if the contract or the server's default time bounds refuse ``body``."""
    try:
        valid = validate_event(body)
    except EventValidationError:
        return True
    # Default settings: from 2000-01-01, at most 300 s ahead of the wall clock.
    bounds = TimeBounds(earliest=946684800.0, latest=time.time() + 300, skew_s=300)
    return bounds.problem(valid) is not None


@dataclass
class Harness:
    """One server, an ingest connection and an activity watcher, in one event loop."""

    loop: asyncio.AbstractEventLoop
    ingest: ClientConnection
    db_path: Path
    seen_ids: list[str] = field(default_factory=list)
    accepted: int = 0
    #: Set by the watcher once the last event (sent after every fuzzed frame) arrived.
    sentinel_seen: asyncio.Event = field(default_factory=asyncio.Event)

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(asyncio.wait_for(coro, TIMEOUT_S))

    async def exchange(self, frame: str) -> dict[str, Any]:
        """Send one frame; its reply, which must be an ack or an error (not a close)."""
        await self.ingest.send(frame)
        reply = await recv_json(self.ingest)
        assert reply["stream"] == "ingest" and reply["type"] in ("ack", "error", "pong"), reply
        return reply


@pytest.fixture
def harness(tmp_path: Path, server_factory) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    stack: list[Any] = []
    try:
        server_cm = server_factory(tmp_path / "fuzz.db")
        running = loop.run_until_complete(server_cm.__aenter__())
        stack.append(server_cm)
        ingest = loop.run_until_complete(connect(running.url + "/ws/ingest", max_size=None))
        watcher = loop.run_until_complete(connect(running.url + "/ws/activity"))
        harness = Harness(loop, ingest, running.db_path)
        watching = loop.create_task(_watch(watcher, harness))
        yield harness
        # The watcher still receives: a last event reaches it, after every fuzzed one.
        sentinel = event(0, learner="u1")
        sentinel["id"] = "fz-sentinel"
        reply = harness.run(harness.exchange(json.dumps([sentinel])))
        assert reply["data"]["accepted"] == 1
        harness.run(harness.sentinel_seen.wait())
        with sqlite3.connect(harness.db_path) as conn:
            stored = [row[0] for row in conn.execute("SELECT id FROM events ORDER BY seq")]
        assert stored == harness.seen_ids
        assert len(stored) == harness.accepted + 1
        watching.cancel()
        loop.run_until_complete(asyncio.gather(watching, return_exceptions=True))
        loop.run_until_complete(watcher.close())
        loop.run_until_complete(ingest.close())
    finally:
        for cm in reversed(stack):
            loop.run_until_complete(cm.__aexit__(None, None, None))
        loop.close()


async def _watch(watcher: ClientConnection, harness: Harness) -> None:
    async for raw in watcher:
        message = json.loads(raw)
        if message["type"] in ("events", "snapshot"):
            harness.seen_ids.extend(e["id"] for e in message["data"]["events"])
            if "fz-sentinel" in harness.seen_ids:
                harness.sentinel_seen.set()


def test_fuzzed_batches_are_acked_with_exactly_the_refused_events_rejected(harness):
    @FUZZ_SETTINGS
    @given(batch=st.lists(events(), max_size=8), cursor=st.booleans())
    def check(batch: list[Any], cursor: bool) -> None:
        frame: Any = batch
        if cursor:
            frame = {"type": "batch", "events": batch, "cursor": {"name": "fz", "value": "v"}}
        reply = harness.run(harness.exchange(encode(frame)))
        assert reply["type"] == "ack", reply
        ack = reply["data"]
        # Decoded as the server does: the same NaN, the same surrogates.
        decoded = json.loads(encode(batch))
        expected = [i for i, body in enumerate(decoded) if refused(body)]
        assert [r["index"] for r in ack["rejected"]] == expected
        assert ack["accepted"] + ack["duplicates"] == len(batch) - len(expected)
        assert all(len(r["error"]) < 1000 for r in ack["rejected"])
        harness.accepted += ack["accepted"]

    check()


def test_fuzzed_frames_get_an_ack_or_an_error_and_the_connection_stays(harness):
    messages = st.one_of(
        VALUES,
        st.fixed_dictionaries(
            {"type": st.one_of(st.sampled_from(["ping", "batch", "cursor.get"]), VALUES)},
            optional={"id": VALUES, "name": VALUES, "events": VALUES, "cursor": VALUES},
        ),
    )

    @FUZZ_SETTINGS
    @given(message=messages)
    def check(message: Any) -> None:
        reply = harness.run(harness.exchange(encode(message)))
        if reply["type"] == "ack":
            harness.accepted += reply["data"]["accepted"]
        if reply["type"] == "error":
            assert reply["data"]["code"] in ("bad_json", "bad_batch", "bad_message")
            assert len(reply["data"]["message"]) < 1000

    check()


@FUZZ_SETTINGS
@given(body=events())
def test_a_validated_event_can_always_be_stored_as_json(body: Any) -> None:
    try:
        valid = validate_event(body)
    except EventValidationError as exc:
        assert exc.field is None or isinstance(exc.field, str)
        return
    text = json.dumps(valid.as_dict(), allow_nan=False, ensure_ascii=False)
    assert json.loads(text.encode("utf-8"))["id"] == valid.id
    assert math.isfinite(valid.ts)
