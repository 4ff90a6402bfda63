"""The stored text of an event: compact JSON of the whole event, extras included."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st
from support import event

from jacmon.errors import EventValidationError
from jacmon.events import validate_event
from jacmon.store.encoding import event_body

extras = st.dictionaries(
    st.text(min_size=1, max_size=8).filter(lambda k: k not in event(1)),
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    max_size=4,
)


@settings(max_examples=200, deadline=None)
@given(extra=extras)
def test_the_stored_text_decodes_to_the_event_as_a_dict(extra):
    try:
        validated = validate_event(event(1) | extra)
    except EventValidationError:
        return  # a key or value the contract refuses is not stored at all
    body = event_body(validated)
    assert json.loads(body) == validated.as_dict()


def test_non_ascii_text_is_stored_as_utf8_not_escaped():
    body = event_body(validate_event(event(1, learner="zoë") | {"note": "☃"}))
    assert '"learner":"zoë"' in body and '"note":"☃"' in body
    assert ", " not in body and ": " not in body  # compact
