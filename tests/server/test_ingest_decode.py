"""The ingest frame decoder (msgspec first, json.loads for what msgspec refuses) gives
exactly what ``json.loads`` gives, and refuses exactly what it refuses."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jacmon.server.ingest import _decode

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
    max_leaves=30,
)


def outcome(decode, text):
    try:
        return ("ok", repr(decode(text)))
    except (ValueError, RecursionError):
        return ("refused",)


@settings(max_examples=300, deadline=None)
@given(value=values, ascii_only=st.booleans(), as_bytes=st.booleans())
def test_any_json_value_decodes_as_json_loads_decodes_it(value, ascii_only, as_bytes):
    text = json.dumps(value, ensure_ascii=ascii_only)  # NaN/Infinity as json writes them
    frame = text.encode("utf-8", "surrogatepass") if as_bytes else text
    assert outcome(_decode, frame) == outcome(json.loads, frame)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=40))
def test_any_text_is_refused_or_decoded_as_json_loads_does(text):
    assert outcome(_decode, text) == outcome(json.loads, text)


@pytest.mark.parametrize(
    "frame",
    [
        '[{"score": NaN}]',
        "[1E400]",
        '["\\ud800"]',
        '{"a": 1, "a": 2}',
        "[1]x",
        "[" * 3000 + "]" * 3000,
        b"[\xff]",
    ],
)
def test_what_msgspec_refuses_json_loads_decides(frame):
    assert outcome(_decode, frame) == outcome(json.loads, frame)
