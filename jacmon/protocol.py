"""The wire protocol shared by server and client: streams, envelopes, messages, close codes.

Every frame the server sends is one JSON envelope::

    {"stream": "activity", "type": "events", "seq": 42, "ts": 1767607200.0, "data": ...}

``seq`` increases per stream; ``ts`` is the server's send time in seconds since
the epoch. No I/O here: encoding, decoding and the names both sides agree on.
docs/protocol.md is the prose version of this module.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jacmon.errors import ProtocolError
from jacmon.events import describe, is_valid_unicode

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
    #: alerts: withdraw the current acknowledgement of an alert.
    UNACK = "unack"
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


# Limits
MAX_MESSAGE_BYTES = 64 * 1024
"""Largest client message accepted on a stream, in bytes (control messages are small)."""

MAX_MESSAGE_DEPTH = 16
"""Deepest nesting of arrays and objects accepted in a client message."""

MAX_SEQ = 2**63 - 1
"""Largest sequence number (SQLite's integer range); also the largest alert id."""

MAX_NOTE_LENGTH = 2000
"""Longest acknowledgement note, in characters."""

MAX_ACK_DURATION_S = 366 * 24 * 3600.0
"""Furthest an acknowledgement may expire, in seconds after it is made (about a year)."""

_SINCE_DIGITS = 19


def _known_types() -> str:
    return ", ".join([t.value for t in ClientType] + list(CLIENT_ALIASES))


def _depth_within(value: Any, limit: int) -> bool:
    """True if ``value`` nests arrays and objects at most ``limit`` deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return False
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return True


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def decode_client_message(frame: str | bytes) -> ClientMessage:
    """Server side: parse one client control message, accepting the older names.

    Raises :class:`ProtocolError` naming what is wrong for anything that is not
    one JSON object of at most :data:`MAX_MESSAGE_BYTES` bytes and
    :data:`MAX_MESSAGE_DEPTH` levels with a known ``type``; never anything else.
    """
    size = len(frame.encode("utf-8", "surrogatepass") if isinstance(frame, str) else frame)
    if size > MAX_MESSAGE_BYTES:
        raise ProtocolError(
            f"message is {size} bytes; stream messages are at most {MAX_MESSAGE_BYTES} bytes"
        )
    try:
        # NaN and Infinity are not JSON; Python's decoder would accept them.
        body = json.loads(frame, parse_constant=_no_constant)
    except RecursionError:
        raise ProtocolError(
            f"message nests too deeply; expected at most {MAX_MESSAGE_DEPTH} levels"
        ) from None
    except ValueError as exc:
        # UnicodeDecodeError is a ValueError too: a binary frame that is not UTF-8.
        raise ProtocolError(f"message is not valid JSON ({exc}); send one JSON object") from None
    if not isinstance(body, dict):
        raise ProtocolError(
            f"message is {type(body).__name__}; expected a JSON object with a 'type'"
        )
    if not _depth_within(body, MAX_MESSAGE_DEPTH):
        raise ProtocolError(
            f"message nests too deeply; expected at most {MAX_MESSAGE_DEPTH} levels"
        )
    name = body.get("type")
    if name is None:
        raise ProtocolError(f"message has no 'type'; expected one of {_known_types()}")
    if not isinstance(name, str):
        raise ProtocolError(f"message 'type' is {describe(name)}; expected a string such as 'ping'")
    if name in CLIENT_ALIASES:
        return ClientMessage(CLIENT_ALIASES[name], body)
    try:
        return ClientMessage(ClientType(name), body)
    except ValueError:
        raise ProtocolError(
            f"message type {describe(name)} is unknown; expected one of {_known_types()}"
        ) from None


def parse_since(value: Any, where: str = "since") -> int:
    """A resume point: the last ``seq`` a client received, as ``?since=`` text or a number.

    Text must be ASCII digits only (no sign, no ``_``, no other scripts' digits,
    not empty); a number must be a whole JSON number, not a boolean. Both within
    0..:data:`MAX_SEQ`. Raises :class:`ProtocolError` naming the value.
    """
    expected = f"expected the last seq received: a whole number from 0 to {MAX_SEQ}"
    if isinstance(value, str):
        if not (0 < len(value) <= _SINCE_DIGITS and value.isascii() and value.isdigit()):
            raise ProtocolError(f"{where}={describe(value)} is not valid; {expected}")
        number = int(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        raise ProtocolError(f"{where} is {describe(value)}; {expected}")
    if not 0 <= number <= MAX_SEQ:
        raise ProtocolError(f"{where} is {describe(value)}; {expected}")
    return number


def parse_alert_id(value: Any, message: str = "ack") -> int:
    """An alert id from a client ``message``: a whole number 1..:data:`MAX_SEQ` (or its digits)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SEQ:
        raise ProtocolError(
            f"{message} 'alert_id' is {describe(value)}; expected the alert's numeric id "
            f"(a whole number from 1 to {MAX_SEQ})"
        )
    return value


def parse_ack_note(value: Any, message: str = "ack") -> str | None:
    """An (un)acknowledgement note: null or text of at most :data:`MAX_NOTE_LENGTH` characters."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_NOTE_LENGTH or not is_valid_unicode(value):
        raise ProtocolError(
            f"{message} 'note' is {describe(value)}; expected text of at most {MAX_NOTE_LENGTH} "
            "characters, or null"
        )
    return value


def parse_ack_expiry(value: Any, now: float) -> float | None:
    """An acknowledgement's expiry: null, or a finite time after ``now`` and at most
    :data:`MAX_ACK_DURATION_S` after it, in epoch seconds."""
    if value is None:
        return None
    latest = now + MAX_ACK_DURATION_S
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or not now < value <= latest
    ):
        raise ProtocolError(
            f"ack 'expires_at' is {describe(value)}; expected null or a time in epoch seconds "
            f"after now ({now:.0f}) and at most {MAX_ACK_DURATION_S / 86400:.0f} days ahead"
        )
    return float(value)


def error_data(code: str, message: str, **details: Any) -> dict[str, Any]:
    """The ``data`` of an ``error`` frame: a stable code, a human message, details."""
    return {"code": code, "message": message, **details}
