"""The ``/ws/ingest`` endpoint: batches in, acks out after commit.

A frame is a JSON array of events, or ``{"type": "batch", "events": [...],
"cursor": {"name": ..., "value": ...}}`` to store a producer's watermark with
the batch. Invalid events are rejected one by one (index and reason) and the
valid ones of the same batch are stored. Bad frames get an ``error`` frame;
the connection stays open.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from jacmon.errors import EventValidationError
from jacmon.events import Event, validate_event
from jacmon.ingest_client import Ack
from jacmon.protocol import ServerType, Stream, envelope, error_data

if TYPE_CHECKING:
    from jacmon.server.app import JacmonServer

log = logging.getLogger("jacmon.ingest")

#: Most events accepted in one frame.
MAX_BATCH_EVENTS = 10_000


def _error(code: str, message: str, **details: Any) -> bytes:
    return envelope(Stream.INGEST, ServerType.ERROR, 0, error_data(code, message, **details))


def _parse_cursor(value: Any) -> tuple[str, str]:
    if (
        not isinstance(value, dict)
        or not isinstance(value.get("name"), str)
        or not isinstance(value.get("value"), str)
        or not value["name"]
    ):
        raise ValueError(
            f'\'cursor\' is {value!r}; expected {{"name": "...", "value": "..."}} strings'
        )
    return value["name"], value["value"]


async def handle_ingest(server: JacmonServer, ws: ServerConnection) -> None:
    """Serve one producer connection until it closes."""
    server.ingest_connections += 1
    try:
        async for frame in ws:
            reply = await _handle_frame(server, frame)
            await ws.send(reply, text=True)
    except ConnectionClosed:
        pass
    finally:
        server.ingest_connections -= 1


async def _handle_frame(server: JacmonServer, frame: str | bytes) -> bytes:
    started = time.perf_counter()
    try:
        message = json.loads(frame)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error("bad_json", f"frame is not valid JSON ({exc}); send a JSON array of events")
    cursor = None
    if isinstance(message, dict):
        kind = message.get("type")
        if kind == "ping":
            return envelope(Stream.INGEST, ServerType.PONG, 0, {"id": message.get("id")})
        if kind == "cursor.get":
            name = message.get("name")
            if not isinstance(name, str) or not name:
                return _error("bad_message", f"cursor.get needs a 'name' string, got {name!r}")
            value = await server.store.get_cursor(name)
            return envelope(Stream.INGEST, ServerType.CURSOR, 0, {"name": name, "value": value})
        if kind != "batch":
            return _error(
                "bad_message",
                f"message type {kind!r} is unknown on /ws/ingest; send a JSON array of events, "
                "or an object with type 'batch', 'cursor.get' or 'ping'",
            )
        events_raw = message.get("events")
        if "cursor" in message and message["cursor"] is not None:
            try:
                cursor = _parse_cursor(message["cursor"])
            except ValueError as exc:
                return _error("bad_message", str(exc))
    else:
        events_raw = message
    if not isinstance(events_raw, list):
        return _error(
            "bad_batch",
            f"batch is {type(events_raw).__name__}; expected a JSON array of event objects",
        )
    if len(events_raw) > MAX_BATCH_EVENTS:
        return _error(
            "batch_too_large",
            f"batch has {len(events_raw)} events; send at most {MAX_BATCH_EVENTS} per frame",
        )
    ack = await ingest_events(server, events_raw, cursor=cursor)
    server.ingest_counters.latency.observe(time.perf_counter() - started)
    return envelope(Stream.INGEST, ServerType.ACK, ack["last_seq"], ack)


async def ingest_events(
    server: JacmonServer, events_raw: list[Any], *, cursor: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Validate, store (one transaction) and publish one batch; returns the ack's data."""
    valid: list[Event] = []
    indexes: list[int] = []
    rejected: list[dict[str, Any]] = []
    for index, body in enumerate(events_raw):
        try:
            valid.append(validate_event(body))
            indexes.append(index)
        except EventValidationError as exc:
            rejected.append({"index": index, "error": str(exc)})
    async with server.batch_in_flight():
        outcome = await server.store.ingest(valid, cursor=cursor)
    counters = server.ingest_counters
    counters.batches += 1
    counters.accepted += len(outcome.stored)
    counters.duplicates += len(outcome.duplicate_indexes)
    counters.rejected += len(rejected)
    server.on_committed(outcome)
    return {
        "accepted": len(outcome.stored),
        "duplicates": len(outcome.duplicate_indexes),
        "duplicate_indexes": [indexes[i] for i in outcome.duplicate_indexes],
        "rejected": rejected,
        "last_seq": server.store.last_seq,
    }


class ServerSink:
    """In-process ingest for producers inside the server (the LRS tailer): same path, no socket."""

    def __init__(self, server: JacmonServer):
        self.server = server

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        return Ack.from_message(await ingest_events(self.server, list(events), cursor=cursor))

    async def get_cursor(self, name: str) -> str | None:
        return await self.server.store.get_cursor(name)
