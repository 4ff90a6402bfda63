"""Caliper 1.2 -> jacmon events, on the IMS caliper-spec example events
(tests/fixtures/caliper/, unchanged); the expected events are written down by hand
from the mapping table in docs/ingest.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jacmon.events import validate_event
from jacmon.sources.caliper import (
    CaliperMappingError,
    caliper_to_event,
    map_caliper_event,
    map_envelope,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "caliper"
USER = "https://example.edu/users/554433"
SECTION = "https://example.edu/terms/201601/courses/7/sections/1"
SESSION = "https://example.edu/sessions/1f6442a482de72ea6ad134943812bff564a76259"
ASSESSMENT = SECTION + "/assess/1"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"caliper{name}.json").read_text())


EXPECTED: dict[str, dict[str, Any]] = {
    "EventSessionLoggedIn": {
        "id": "urn:uuid:fcd495d0-3740-4298-9bec-1154571dc211",
        "type": "session.started",
        "ts": "2016-11-15T10:15:00.000Z",
        "learner": USER,
        "session": SESSION,
        "caliper_type": "SessionEvent",
        "caliper_action": "LoggedIn",
        "caliper_object": "https://example.edu",
    },
    "EventSessionLoggedOut": {
        "id": "urn:uuid:a438f8ac-1da3-4d48-8c86-94a1b387e0f6",
        "type": "session.ended",
        "ts": "2016-11-15T11:05:00.000Z",
        "learner": USER,
        "session": SESSION,
        "duration_s": 3000.0,
        "caliper_type": "SessionEvent",
        "caliper_action": "LoggedOut",
        "caliper_object": "https://example.edu",
    },
    "EventNavigationNavigatedTo": {
        "id": "urn:uuid:ff9ec22a-fc59-4ae1-ae8d-2c9463ee2f8f",
        "type": "activity",
        "ts": "2016-11-15T10:15:00.000Z",
        "learner": USER,
        "path": SECTION,
        "session": SESSION,
        "caliper_type": "NavigationEvent",
        "caliper_action": "NavigatedTo",
        "caliper_object": SECTION + "/pages/2",
    },
    "EventViewViewed": {
        "id": "urn:uuid:cd088ca7-c044-405c-bb41-0b2a8506f907",
        "type": "activity",
        "ts": "2016-11-15T10:15:00.000Z",
        "learner": USER,
        "path": SECTION,
        "session": SESSION,
        "caliper_type": "ViewEvent",
        "caliper_action": "Viewed",
        "caliper_object": "https://example.edu/etexts/201.epub",
    },
    "EventAssessmentSubmitted": {
        "id": "urn:uuid:dad88464-0c20-4a19-a1ba-ddf2f9c3ff33",
        "type": "activity",
        "ts": "2016-11-15T10:25:30.000Z",
        "learner": USER,
        "path": SECTION,
        "item": ASSESSMENT,
        "session": SESSION,
        "caliper_type": "AssessmentEvent",
        "caliper_action": "Submitted",
        "caliper_object": ASSESSMENT,
        # The generated Attempt: count 1, duration PT10M30S.
        "attempt": 1,
        "caliper_attempt": ASSESSMENT + "/users/554433/attempts/1",
        "duration_s": 630.0,
    },
    # The item's module is the assessment it is part of (isPartOf).
    "EventAssessmentItemCompleted": {
        "id": "urn:uuid:e5891791-3d27-4df1-a272-091806a43dfb",
        "type": "activity",
        "ts": "2016-11-15T10:15:12.000Z",
        "learner": USER,
        "path": SECTION,
        "module": ASSESSMENT,
        "item": ASSESSMENT + "/items/3",
        "session": SESSION,
        "caliper_type": "AssessmentItemEvent",
        "caliper_action": "Completed",
        "caliper_object": ASSESSMENT + "/items/3",
        # The generated Response names its attempt (count 1).
        "attempt": 1,
        "caliper_attempt": ASSESSMENT + "/items/3/users/554433/attempts/1",
    },
    "EventToolUseUsed": {
        "id": "urn:uuid:7e10e4f3-a0d8-4430-95bd-783ffae4d916",
        "type": "activity",
        "ts": "2016-11-15T10:15:00.000Z",
        "learner": USER,
        "path": SECTION,
        "session": SESSION,
        "caliper_type": "ToolUseEvent",
        "caliper_action": "Used",
        "caliper_object": "https://example.edu",
    },
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_the_spec_examples_map_to_the_events_written_down(name):
    assert map_caliper_event(fixture(name)) == EXPECTED[name]
    # ... and each is a valid jacmon event, stored as such.
    assert caliper_to_event(fixture(name)) == validate_event(EXPECTED[name])


def test_a_grade_names_the_assignee_and_scales_the_score():
    graded = fixture("EventGradeGraded")
    # The spec's example carries no scoreGiven (maxScore 0.0): nothing to record.
    with pytest.raises(CaliperMappingError, match=r"without generated\.scoreGiven"):
        map_caliper_event(graded)
    graded["generated"] |= {"scoreGiven": 18.0, "maxScore": 25.0}
    assert map_caliper_event(graded) == {
        "id": "urn:uuid:a50ca17f-5971-47bb-8fca-4e6e6879001d",
        "type": "assessment.attempted",
        "ts": "2016-11-15T10:57:06.000Z",
        # The learner is the assignee, not the autograder that acted.
        "learner": USER,
        "path": SECTION,
        "item": ASSESSMENT,
        "attempt": 1,
        "score": {"raw": 18.0, "min": 0, "max": 25.0},
        "caliper_type": "GradeEvent",
        "caliper_action": "Graded",
        "caliper_object": ASSESSMENT + "/users/554433/attempts/1",
    }
    assert caliper_to_event(graded).score.percent == 72.0
    graded["generated"]["maxScore"] = 0.0
    with pytest.raises(CaliperMappingError, match=r"generated.maxScore is 0.0"):
        map_caliper_event(graded)


def test_an_envelope_maps_its_events_and_lists_what_it_cannot():
    envelope = fixture("EnvelopeEventSingle")
    entity = {"id": "https://example.edu/users/554433", "type": "Person"}
    unknown = {**fixture("EventToolUseUsed"), "type": "FeedbackEvent", "action": "Ranked"}
    envelope["data"] += [entity, unknown, "not an object"]
    result = map_envelope(envelope)
    ((started),) = result.events
    assert (started.type, started.item, started.extra["caliper_action"]) == (
        "activity",
        ASSESSMENT,
        "Started",
    )
    assert [(s.index, s.event_id) for s in result.skipped] == [
        (1, USER),  # the entity's own id: which item it was
        (2, unknown["id"]),
        (3, None),
    ]
    reasons = [s.reason for s in result.skipped]
    assert "is a Caliper entity ('Person'), not an event" in reasons[0]
    assert "FeedbackEvent Ranked is not mapped" in reasons[1]
    assert "data item is str" in reasons[2]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda e: e.pop("sensor"), "envelope field 'sensor' is missing"),
        (lambda e: e.pop("data"), "envelope field 'data' is missing"),
        (lambda e: e.update(data={}), "envelope field 'data' is dict"),
        (lambda e: e.update(sendTime=""), "envelope field 'sendTime' is ''"),
    ],
)
def test_a_broken_envelope_is_refused_with_the_reason(change, message):
    envelope = fixture("EnvelopeEventSingle")
    change(envelope)
    with pytest.raises(CaliperMappingError, match=message):
        map_envelope(envelope)


def test_an_event_without_a_learner_or_with_a_bad_time_is_named():
    event = fixture("EventViewViewed")
    event["actor"] = {"type": "Person"}
    with pytest.raises(CaliperMappingError, match="actor has no id"):
        map_caliper_event(event)
    event = fixture("EventViewViewed") | {"eventTime": "yesterday"}
    with pytest.raises(CaliperMappingError, match="field 'ts' has value 'yesterday'"):
        caliper_to_event(event)
