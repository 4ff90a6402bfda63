"""The wire protocol without I/O: envelopes, client messages and their aliases, errors."""

from __future__ import annotations

import json
import math

import pytest

from jacmon.errors import ProtocolError
from jacmon.protocol import (
    CLIENT_ALIASES,
    LIVE_STREAMS,
    ClientType,
    Stream,
    decode_client_message,
    decode_envelope,
    envelope,
    error_data,
    parse_since,
)


def test_live_streams_are_the_four_viewer_streams():
    assert [str(s) for s in LIVE_STREAMS] == ["dashboard", "alerts", "metrics", "activity"]
    assert Stream.INGEST not in LIVE_STREAMS


def test_envelope_is_compact_json_with_every_key():
    frame = envelope("activity", "events", 42, {"events": [1, 2]}, ts=1767607200.12345)
    assert isinstance(frame, bytes)
    assert frame == (
        b'{"stream":"activity","type":"events","seq":42,'
        b'"ts":1767607200.123,"data":{"events":[1,2]}}'
    )


def test_envelope_ts_defaults_to_now(monkeypatch):
    monkeypatch.setattr("jacmon.protocol.time.time", lambda: 1000.0004)
    assert json.loads(envelope("metrics", "sample", 1, None))["ts"] == 1000.0


def test_envelope_refuses_nan_rather_than_sending_invalid_json():
    with pytest.raises(ValueError):
        envelope("metrics", "sample", 1, {"avg": math.nan}, ts=0)


@pytest.mark.parametrize("as_text", [False, True])
def test_envelope_round_trip_through_decode(as_text):
    data = {"rows": [{"learner": "u1", "percent": 50.0}], "text": "é"}
    frame = envelope("dashboard", "progress", 7, data, ts=5)
    message = decode_envelope(frame.decode() if as_text else frame)
    assert message == {"stream": "dashboard", "type": "progress", "seq": 7, "ts": 5, "data": data}


def test_decode_envelope_without_ts_is_still_an_envelope():
    message = decode_envelope('{"stream":"alerts","type":"alert","seq":1,"data":null}')
    assert message["data"] is None


@pytest.mark.parametrize(
    "frame",
    [
        '{"stream":"alerts","type":"alert","seq":1}',
        '{"type":"alert","seq":1,"data":{}}',
        "[1, 2]",
        '"hello"',
    ],
)
def test_decode_envelope_refuses_non_envelopes(frame):
    with pytest.raises(ProtocolError, match="server sent a frame that is not an envelope"):
        decode_envelope(frame)


@pytest.mark.parametrize("frame", ["{not json", b"\xff\xfe", ""])
def test_decode_envelope_refuses_non_json(frame):
    with pytest.raises(ProtocolError, match="server sent a frame that is not JSON"):
        decode_envelope(frame)


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("ping", ClientType.PING),
        ("resume", ClientType.RESUME),
        ("refresh", ClientType.REFRESH),
        ("ack", ClientType.ACK),
        ("batch", ClientType.BATCH),
        ("cursor.get", ClientType.CURSOR_GET),
    ],
)
def test_client_message_types(name, kind):
    message = decode_client_message(json.dumps({"type": name, "since": 5}))
    assert message.type is kind
    assert message.body == {"type": name, "since": 5}


def test_aliases_of_the_earlier_design():
    assert CLIENT_ALIASES == {
        "request_update": ClientType.REFRESH,
        "acknowledge_alert": ClientType.ACK,
    }
    refresh = decode_client_message('{"type": "request_update"}')
    assert refresh.type is ClientType.REFRESH
    ack = decode_client_message(b'{"type": "acknowledge_alert", "alert_id": 12}')
    assert ack.type is ClientType.ACK
    # The body is kept whole, alias name included, so the handler reads alert_id.
    assert ack.body == {"type": "acknowledge_alert", "alert_id": 12}


def test_unknown_type_lists_every_accepted_name():
    with pytest.raises(ProtocolError) as caught:
        decode_client_message('{"type": "subscribe"}')
    message = str(caught.value)
    assert message.startswith("message type 'subscribe' is unknown; expected one of ")
    for name in ["ping", "resume", "refresh", "ack", "batch", "cursor.get", "request_update"]:
        assert name in message


def test_missing_type_is_unknown_none():
    with pytest.raises(ProtocolError, match="message has no 'type'; expected one of ping"):
        decode_client_message('{"since": 3}')


def test_client_message_not_json():
    with pytest.raises(
        ProtocolError, match=r"message is not valid JSON \(.*\); send one JSON object"
    ):
        decode_client_message("ping")


@pytest.mark.parametrize(("frame", "kind"), [("[]", "list"), ("3", "int"), ('"ping"', "str")])
def test_client_message_not_an_object(frame, kind):
    with pytest.raises(ProtocolError) as caught:
        decode_client_message(frame)
    assert str(caught.value) == f"message is {kind}; expected a JSON object with a 'type'"


@pytest.mark.parametrize("frame", ['{"type": ["ping"]}', '{"type": {"name": "ping"}}'])
def test_client_message_with_unhashable_type_is_a_protocol_error(frame):
    with pytest.raises(ProtocolError, match="expected a string such as 'ping'"):
        decode_client_message(frame)


def test_error_data_shape():
    assert error_data("bad_message", "no", index=3) == {
        "code": "bad_message",
        "message": "no",
        "index": 3,
    }


@pytest.mark.parametrize("text", ["-1", "+3", "1_000", "\u0663", "", " 1", "1" * 20, True, 1.0, -1])
def test_parse_since_accepts_ascii_digits_only(text):
    with pytest.raises(ProtocolError, match="since"):
        parse_since(text)


def test_parse_since_accepts_digits_and_ints():
    assert parse_since("0") == 0 and parse_since("42") == 42 and parse_since(7) == 7


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"ping","id":' + "[" * 990 + "]" * 990 + "}",
        '{"type":"ping","id":"' + "x" * 70_000 + '"}',
        '{"type":"ping","id":NaN}',
        b"\xff\xfe",
    ],
)
def test_client_messages_are_bounded(raw):
    with pytest.raises(ProtocolError):
        decode_client_message(raw)
