"""The fast path for frames of plain events builds exactly the Events the validator
builds, and declines (never refuses) everything else: the validator decides those."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from jacmon.errors import EventValidationError
from jacmon.events import EVENT_TYPES, validate_event
from jacmon.plain_events import decode_plain_events
from jacmon.store.encoding import event_body

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

texts = st.one_of(
    st.sampled_from(["u1", "p1", "m1", "quiz", "s-1", "ä-ö", "x" * 256, "x" * 257, ""]),
    st.text(max_size=6),
)
numbers = st.one_of(
    st.integers(min_value=-5, max_value=2**32),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-2.0, max_value=1e6),
    st.sampled_from([0, 100, 100.5, -1, 604800, 604801, 2**31 - 1, 2**31, 1e15, 1.5e15]),
)
any_value = st.one_of(st.none(), st.booleans(), numbers, texts)
scores = st.one_of(
    any_value,
    st.fixed_dictionaries(
        {},
        optional={
            "scaled": st.one_of(numbers, any_value),
            "raw": st.one_of(numbers, any_value),
            "min": st.one_of(numbers, any_value),
            "max": st.one_of(numbers, any_value),
            "other": any_value,
        },
    ),
)
timestamps = st.one_of(
    st.sampled_from(
        ["2026-01-05T10:00:00Z", "2026-01-05T10:00:00+01:00", "2026-01-05T10:00:00", "x"]
    ),
    any_value,
)
FIELDS = (
    "id", "type", "ts", "learner", "path", "module", "item", "session", "score", "success",
    "completion", "progress", "duration_s", "attempt", "extra_field",
)  # fmt: skip
good_scores = st.one_of(
    st.fixed_dictionaries({"scaled": st.floats(-1, 1)}),
    st.fixed_dictionaries(
        {"raw": st.integers(0, 10), "max": st.sampled_from([10, 10.0])},
        optional={"min": st.sampled_from([0, 0.0, -1])},
    ),
)


@st.composite
def events(draw) -> dict:
    """Mostly valid events of every type, some with one field changed to anything
    (or removed, or an extra one added), so both paths see both kinds."""
    kind = draw(st.sampled_from(EVENT_TYPES))
    body: dict = {
        "id": draw(texts.filter(bool)),
        "type": kind,
        "ts": "2026-01-05T10:00:00Z",
        "learner": "u1",
        "path": "p1",
        "module": "m1",
        "item": "quiz",
        "score": draw(good_scores),
        "progress": draw(st.one_of(st.integers(0, 100), st.floats(0, 100))),
        "duration_s": draw(st.one_of(st.none(), st.integers(0, 604800), st.floats(0, 1e5))),
        "attempt": draw(st.one_of(st.none(), st.integers(1, 5))),
        "success": draw(st.one_of(st.none(), st.booleans())),
        "completion": draw(st.one_of(st.none(), st.booleans())),
        "session": draw(st.one_of(st.none(), texts)),
    }
    for name in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        change = draw(st.sampled_from(["set", "drop", "none"]))
        if change == "drop":
            body.pop(name, None)
        elif change == "none":
            body[name] = None
        else:
            body[name] = draw(
                scores if name == "score" else timestamps if name == "ts" else any_value
            )
    return body


def validated(bodies: list) -> list | None:
    """What the validator makes of each body, or None if it refuses any of them."""
    try:
        return [validate_event(body) for body in bodies]
    except EventValidationError:
        return None


@settings(max_examples=600, deadline=None)
@given(bodies=st.lists(events(), min_size=1, max_size=4))
def test_the_fast_path_builds_what_the_validator_builds_or_declines(bodies):
    frame = json.dumps(bodies)
    fast = decode_plain_events(frame)
    if fast is None:
        return  # declined: the validator decides, message and all
    slow = validated(json.loads(frame))
    assert fast == slow
    # The stored text made from the structs is the one the store makes from the Event.
    assert [e.body_text for e in fast] == [event_body(e) for e in slow]


def test_plain_frames_take_the_fast_path():
    from common import make_event

    bodies = [make_event(n) for n in range(400)]
    frame = json.dumps(bodies)
    assert decode_plain_events(frame) == validated(bodies)
    assert decode_plain_events(frame.encode()) == validated(bodies)


def test_anything_else_is_declined():
    good = {"id": "e1", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "u1"}
    for frame in [
        json.dumps([good, {**good, "sent_at": 1}]),  # an extra field: kept by the validator
        json.dumps([good, {**good, "progress": 101}]),
        json.dumps([{**good, "ts": "2026-01-05T10:00:00"}]),  # no zone
        json.dumps([{**good, "type": "unknown"}]),
        json.dumps([{**good, "module": "m1"}]),  # a module needs its path
        '[{"id": "e1", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": NaN}]',
        json.dumps({"type": "batch", "events": [good]}),
        "[",
    ]:
        assert decode_plain_events(frame) is None, frame
