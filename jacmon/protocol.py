"""The wire protocol shared by server and client: streams, envelopes, messages, close codes.

Every frame the server sends is one JSON envelope::

    {"stream": "activity", "type": "events", "seq": 42, "ts": 1767607200.0, "data": ...}

``seq`` increases per stream; ``ts`` is the server's send time in seconds since
the epoch. No I/O here: encoding, decoding and the names both sides agree on.
docs/protocol.md is the prose version of this module.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jacmon.errors import ProtocolError

PROTOCOL_VERSION = 1


class Stream(StrEnum):
    """The four live streams, plus ``ingest`` (producers' acks)."""

    DASHBOARD = "dashboard"
    ALERTS = "alerts"
    METRICS = "metrics"
    ACTIVITY = "activity"
    INGEST = "ingest"


#: The streams a viewer can subscribe to, each at ``/ws/<name>``.
LIVE_STREAMS: tuple[Stream, ...] = (
    Stream.DASHBOARD,
    Stream.ALERTS,
    Stream.METRICS,
    Stream.ACTIVITY,
)


class ServerType(StrEnum):
    """Message types the server sends (the envelope's ``type``)."""

    HELLO = "hello"
    #: Sent right after ``hello`` for clients of the earlier design.
    CONNECTION_ESTABLISHED = "connection_established"
    SNAPSHOT = "snapshot"
    #: activity: a list of events; ``seq`` is the last one's store seq.
    EVENTS = "events"
    #: dashboard: changed progress rows.
    PROGRESS = "progress"
    #: metrics: one sample.
    SAMPLE = "sample"
    #: alerts: one alert change (fired, updated, resolved, acknowledged).
    ALERT = "alert"
    PONG = "pong"
    ACK = "ack"
    CURSOR = "cursor"
    ERROR = "error"


class ClientType(StrEnum):
    """Message types a client sends (``{"type": ..., ...}``)."""

    PING = "ping"
    RESUME = "resume"
    REFRESH = "refresh"
    ACK = "ack"
    # ingest only
    BATCH = "batch"
    CURSOR_GET = "cursor.get"


#: Names of the earlier (Django Channels) design, accepted as aliases.
CLIENT_ALIASES: dict[str, ClientType] = {
    "request_update": ClientType.REFRESH,
    "acknowledge_alert": ClientType.ACK,
}


class CloseCode:
    """WebSocket close codes jacmon uses; 4xxx are ours (RFC 6455 leaves them to applications)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED = 1003
    POLICY = 1008
    TOO_BIG = 1009
    INTERNAL = 1011
    #: The client fell too far behind; reconnect with ``?since=<last seq>`` to resume.
    TOO_SLOW = 4008
    #: The token was revoked while connected.
    TOKEN_REVOKED = 4001


@dataclass(slots=True, frozen=True)
class ClientMessage:
    """A decoded client message; ``body`` is the whole JSON object."""

    type: ClientType
    body: dict[str, Any]


def envelope(stream: str, kind: str, seq: int, data: Any, *, ts: float | None = None) -> bytes:
    """Encode one server frame as UTF-8 JSON bytes (encoded once, sent to many)."""
    return json.dumps(
        {
            "stream": stream,
            "type": kind,
            "seq": seq,
            "ts": round(time.time() if ts is None else ts, 3),
            "data": data,
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


def envelope_from_json(
    stream: str, kind: str, seq: int, data_json: str, *, ts: float | None = None
) -> bytes:
    """:func:`envelope` with ``data`` already JSON text, e.g. spliced from stored events."""
    stamp = json.dumps(round(time.time() if ts is None else ts, 3))
    return (
        f'{{"stream":{json.dumps(str(stream))},"type":{json.dumps(str(kind))},'
        f'"seq":{seq},"ts":{stamp},"data":{data_json}}}'
    ).encode()


def event_json(seq: int, body: str) -> str:
    """A stored event as the streams send it: its stored JSON object with ``seq`` first.

    Spliced as text, so an event is never decoded and encoded again on its way out.
    """
    return f'{{"seq":{seq},{body[1:]}'


def decode_envelope(frame: str | bytes) -> dict[str, Any]:
    """Client side: parse one server frame; :class:`ProtocolError` if not an envelope."""
    try:
        message = json.loads(frame)
    except ValueError as exc:
        raise ProtocolError(f"server sent a frame that is not JSON: {exc}") from None
    if not isinstance(message, dict) or not {"stream", "type", "seq", "data"} <= message.keys():
        raise ProtocolError(f"server sent a frame that is not an envelope: {str(frame)[:80]!r}")
    return message


def decode_client_message(frame: str | bytes) -> ClientMessage:
    """Server side: parse one client control message, accepting the older names."""
    try:
        body = json.loads(frame)
    except ValueError as exc:
        raise ProtocolError(f"message is not valid JSON ({exc}); send one JSON object") from None
    if not isinstance(body, dict):
        raise ProtocolError(
            f"message is {type(body).__name__}; expected a JSON object with a 'type'"
        )
    name = body.get("type")
    if name is None:
        known = ", ".join([t.value for t in ClientType] + list(CLIENT_ALIASES))
        raise ProtocolError(f"message has no 'type'; expected one of {known}")
    if not isinstance(name, str):
        raise ProtocolError(f"message 'type' is {name!r}; expected a string such as 'ping'")
    if name in CLIENT_ALIASES:
        return ClientMessage(CLIENT_ALIASES[name], body)
    try:
        return ClientMessage(ClientType(name), body)
    except ValueError:
        known = ", ".join([t.value for t in ClientType] + list(CLIENT_ALIASES))
        raise ProtocolError(f"message type {name!r} is unknown; expected one of {known}") from None


def error_data(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The ``data`` of an ``error`` frame: a stable code, a human message, details."""
    return {"code": code, "message": message, **details}
