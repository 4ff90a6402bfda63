"""The ingest contract: every required field, every error's wording, scores, times, extras."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from jacmon.errors import EventValidationError
from jacmon.events import (
    EVENT_TYPES,
    MAX_DURATION_S,
    MAX_ID_LENGTH,
    REQUIRED_BY_TYPE,
    Event,
    Score,
    TimeBounds,
    parse_timestamp,
    validate_event,
)

#: 2026-01-05T10:00:00Z in epoch seconds: 2026-01-01 is 1767225600, plus 4 days and 10 hours.
TS_TEXT = "2026-01-05T10:00:00Z"
TS = 1767225600 + 4 * 86400 + 10 * 3600

#: A value for every field a type may require.
FIELD_VALUES: dict[str, Any] = {
    "path": "python-101",
    "module": "m1",
    "item": "quiz-1",
    "progress": 40,
    "score": {"scaled": 0.5},
}


def minimal(kind: str, **fields: Any) -> dict[str, Any]:
    """The smallest valid event of ``kind``: the base four plus what the type requires."""
    body: dict[str, Any] = {"id": "e-1", "type": kind, "ts": TS_TEXT, "learner": "u1"}
    for name in REQUIRED_BY_TYPE[kind]:
        body[name] = FIELD_VALUES[name]
    # A module without its path is refused whatever the type.
    if "module" in body:
        body.setdefault("path", FIELD_VALUES["path"])
    body.update(fields)
    return body


def error_of(body: Any) -> EventValidationError:
    with pytest.raises(EventValidationError) as caught:
        validate_event(body)
    return caught.value


def test_every_type_is_in_the_contract():
    assert set(EVENT_TYPES) == {
        "path.enrolled",
        "path.unenrolled",
        "path.completed",
        "session.started",
        "session.ended",
        "module.progressed",
        "module.completed",
        "lesson.completed",
        "assessment.attempted",
        "assessment.passed",
        "assessment.failed",
        "activity",
    }


@pytest.mark.parametrize("kind", EVENT_TYPES)
def test_minimal_event_of_each_type_is_valid(kind):
    event = validate_event(minimal(kind))
    assert event.type == kind
    assert event.id == "e-1"
    assert event.learner == "u1"
    assert event.ts == TS
    assert event.ts_text == TS_TEXT
    assert event.extra == {}


@pytest.mark.parametrize(
    ("kind", "missing"),
    [(kind, name) for kind, needs in REQUIRED_BY_TYPE.items() for name in needs],
)
def test_each_required_field_of_each_type_is_enforced(kind, missing):
    body = minimal(kind)
    del body[missing]
    error = error_of(body)
    assert error.field == missing
    assert f"field '{missing}' is missing" in str(error)


@pytest.mark.parametrize("missing", ["id", "type", "ts", "learner"])
def test_base_fields_are_required(missing):
    body = minimal("activity")
    del body[missing]
    error = error_of(body)
    assert error.field == missing
    assert f"field '{missing}' is missing" in str(error)


def test_required_field_given_as_null_counts_as_missing():
    error = error_of(minimal("module.progressed", progress=None))
    assert error.field == "progress"
    assert "missing" in str(error)
    assert "module.progressed" in str(error)


def test_score_missing_names_the_type():
    body = minimal("assessment.attempted")
    del body["score"]
    error = error_of(body)
    assert str(error) == "field 'score' is missing; a assessment.attempted event needs a score"


def test_not_an_object():
    error = error_of(["id", "e-1"])
    assert error.field is None
    assert str(error) == "event is ['id', 'e-1']; expected a JSON object"


def test_unknown_type_lists_the_known_ones():
    error = error_of(minimal("activity", type="lesson.started"))
    assert error.field == "type"
    message = str(error)
    assert message.startswith("field 'type' has value 'lesson.started'; expected one of ")
    for kind in EVENT_TYPES:
        assert kind in message


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("id", ""),
        ("id", 17),
        ("id", "x" * (MAX_ID_LENGTH + 1)),
        ("learner", ["u1"]),
        ("learner", ""),
        ("path", 3),
        ("item", False),
        ("session", ""),
    ],
)
def test_identifiers_must_be_short_non_empty_strings(name, value):
    error = error_of(minimal("lesson.completed", **{name: value}))
    assert error.field == name
    assert f"field '{name}' has value " in str(error)
    assert f"expected a non-empty string of at most {MAX_ID_LENGTH} characters" in str(error)


def test_identifier_of_max_length_is_accepted():
    event = validate_event(minimal("activity", id="x" * MAX_ID_LENGTH))
    assert len(event.id) == MAX_ID_LENGTH


def test_long_bad_values_are_shortened_in_the_message():
    error = error_of(minimal("activity", learner="y" * 1000))
    message = str(error)
    assert "..." in message
    # 80 characters of repr at most, not the whole kilobyte.
    assert len(message) < 200


def test_module_without_path_is_refused_even_when_type_does_not_need_path():
    body = minimal("assessment.attempted", module="m1")
    error = error_of(body)
    assert error.field == "path"
    assert "names a module must name its path" in str(error)


# Times


def test_ts_with_z_and_with_offset_are_the_same_instant():
    assert parse_timestamp("2026-01-05T10:00:00Z") == TS
    assert parse_timestamp("2026-01-05T11:00:00+01:00") == TS
    assert parse_timestamp("2026-01-05T05:30:00-04:30") == TS
    assert parse_timestamp("2026-01-05T10:00:00.250Z") == TS + 0.25


def test_ts_without_zone_says_how_to_add_one():
    error = error_of(minimal("activity", ts="2026-01-05T10:00:00"))
    assert error.field == "ts"
    assert str(error) == (
        "field 'ts' has value '2026-01-05T10:00:00'; expected a timestamp with a zone: "
        "add 'Z' for UTC or an offset '+01:00'"
    )


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", 1767607200, None])
def test_ts_not_iso_is_refused(value):
    error = error_of(minimal("activity", ts=value))
    assert error.field == "ts"
    assert "expected an ISO 8601 timestamp with a zone" in str(error)
    assert repr(value) in str(error)


def test_ts_text_is_kept_as_sent():
    event = validate_event(minimal("activity", ts="2026-01-05T11:00:00+01:00"))
    assert event.ts_text == "2026-01-05T11:00:00+01:00"
    assert event.ts == TS


# Numbers and flags


@pytest.mark.parametrize("value", [True, False, "50", -0.1, 100.5, math.nan, math.inf])
def test_progress_must_be_a_number_from_0_to_100(value):
    error = error_of(minimal("module.progressed", progress=value))
    assert error.field == "progress"
    assert "expected a number from 0 to 100 (percent)" in str(error)
    assert repr(value) in str(error)


@pytest.mark.parametrize("value", [0, 100, 33.5])
def test_progress_bounds_are_inclusive_and_stored_as_float(value):
    event = validate_event(minimal("module.progressed", progress=value))
    assert event.progress == float(value)
    assert isinstance(event.progress, float)


@pytest.mark.parametrize("value", [True, -1, MAX_DURATION_S + 1, "60"])
def test_duration_must_be_seconds_up_to_a_week(value):
    error = error_of(minimal("session.ended", duration_s=value))
    assert error.field == "duration_s"
    assert "expected a number from 0 to 604800 seconds" in str(error)


def test_duration_of_exactly_a_week_is_accepted():
    assert validate_event(minimal("session.ended", duration_s=604800)).duration_s == 604800.0


@pytest.mark.parametrize("value", [0, -2, 1.5, True, "2"])
def test_attempt_must_be_a_whole_number_from_1(value):
    error = error_of(minimal("assessment.attempted", attempt=value))
    assert error.field == "attempt"
    assert "expected a whole number >= 1" in str(error)


def test_attempt_ok():
    assert validate_event(minimal("assessment.attempted", attempt=3)).attempt == 3


@pytest.mark.parametrize("name", ["success", "completion"])
@pytest.mark.parametrize("value", [1, 0, "true", "yes"])
def test_flags_are_bools_not_numbers_or_text(name, value):
    error = error_of(minimal("assessment.passed", **{name: value}))
    assert error.field == name
    assert "expected true, false or null" in str(error)


def test_flags_true_false_null():
    event = validate_event(minimal("assessment.passed", success=True, completion=None))
    assert event.success is True
    assert event.completion is None
    assert validate_event(minimal("assessment.failed", success=False)).success is False


# Scores


def test_scaled_score_percent():
    event = validate_event(minimal("assessment.attempted", score={"scaled": 0.85}))
    assert event.score == Score(scaled=0.85)
    assert event.score.percent == pytest.approx(85.0)


def test_negative_scaled_score_is_valid_and_clamps_to_zero_percent():
    score = validate_event(minimal("assessment.attempted", score={"scaled": -0.5})).score
    assert score.scaled == -0.5
    assert score.percent == 0.0


def test_raw_with_max_and_default_min():
    score = validate_event(minimal("assessment.attempted", score={"raw": 18, "max": 24})).score
    # The documented default min (0) is stored, not left null.
    assert score == Score(raw=18.0, min=0.0, max=24.0)
    assert score.percent == 75.0


def test_raw_with_min_and_max():
    # (30 - 20) / (60 - 20) = 25 %
    score = validate_event(
        minimal("assessment.attempted", score={"raw": 30, "min": 20, "max": 60})
    ).score
    assert score.percent == 25.0


def test_scaled_wins_over_raw():
    score = validate_event(
        minimal("assessment.attempted", score={"scaled": 0.2, "raw": 9, "max": 10})
    ).score
    assert score.percent == pytest.approx(20.0)


@pytest.mark.parametrize(
    ("score", "field", "expected"),
    [
        ({"scaled": 1.5}, "score.scaled", "expected a number from -1 to 1"),
        ({"scaled": -1.01}, "score.scaled", "expected a number from -1 to 1"),
        ({"raw": 5}, "score", "'scaled' (-1..1), or 'raw' with 'max'"),
        ({"max": 5}, "score", "'scaled' (-1..1), or 'raw' with 'max'"),
        ({}, "score", "'scaled' (-1..1), or 'raw' with 'max'"),
        ({"raw": 5, "max": 0}, "score.max", "expected a number greater than score.min (0)"),
        (
            {"raw": 5, "min": 10, "max": 10},
            "score.max",
            "expected a number greater than score.min (10)",
        ),
        ({"raw": 11, "max": 10}, "score.raw", "expected a number from 0 to 10"),
        ({"raw": 1, "min": 2, "max": 10}, "score.raw", "expected a number from 2 to 10"),
        ({"scaled": True}, "score.scaled", "expected a finite number"),
        ({"raw": "9", "max": 10}, "score.raw", "expected a finite number"),
        ({"raw": 1, "max": math.inf}, "score.max", "expected a finite number"),
        (0.9, "score", "expected an object with 'scaled' (-1..1) or 'raw' and 'max'"),
    ],
)
def test_bad_scores_name_the_part(score, field, expected):
    error = error_of(minimal("assessment.attempted", score=score))
    assert error.field == field
    assert f"field '{field}' has value " in str(error)
    assert expected in str(error)


def test_score_is_optional_on_other_types_and_validated_when_given():
    assert validate_event(minimal("assessment.passed")).score is None
    error = error_of(minimal("assessment.passed", score={"scaled": 2}))
    assert error.field == "score.scaled"


# Extras and the round trip


def test_extras_are_kept_not_dropped():
    event = validate_event(minimal("activity", verb="viewed", context={"page": 3}))
    assert event.extra == {"verb": "viewed", "context": {"page": 3}}
    body = event.as_dict()
    assert body["verb"] == "viewed"
    assert body["context"] == {"page": 3}


def test_as_dict_lists_every_contract_field_with_nulls():
    body = validate_event(minimal("session.started")).as_dict()
    assert body == {
        "id": "e-1",
        "type": "session.started",
        "ts": TS_TEXT,
        "learner": "u1",
        "path": None,
        "module": None,
        "item": None,
        "score": None,
        "success": None,
        "completion": None,
        "progress": None,
        "duration_s": None,
        "attempt": None,
        "session": None,
    }


def test_as_dict_round_trips_through_validation():
    full = {
        "id": "e-9",
        "type": "assessment.attempted",
        "ts": "2026-01-05T11:00:00+01:00",
        "learner": "u7",
        "path": "python-101",
        "module": "m2",
        "item": "quiz-2",
        "score": {"raw": 7, "min": 2, "max": 12},
        "success": False,
        "completion": True,
        "progress": 60,
        "duration_s": 95.5,
        "attempt": 2,
        "session": "s-1",
        "platform": "moodle",
    }
    event = validate_event(full)
    again = validate_event(event.as_dict())
    assert again == event
    assert again.score.percent == 50.0
    assert again.extra == {"platform": "moodle"}


def test_event_dataclass_defaults_have_independent_extras():
    first = Event(id="a", type="activity", ts=0.0, ts_text="x", learner="u")
    second = Event(id="b", type="activity", ts=0.0, ts_text="x", learner="u")
    first.extra["k"] = 1
    assert second.extra == {}


# Every input is either an Event or an EventValidationError naming the field (issue 10).


def nested(levels: int) -> Any:
    """``1`` inside ``levels`` arrays."""
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("fields", "field", "expected"),
    [
        ({"type": []}, "type", "expected one of"),
        ({"type": {"a": 1}}, "type", "expected one of"),
        ({"id": "\ud800"}, "id", "valid Unicode"),
        ({"learner": "a\udfffb"}, "learner", "valid Unicode"),
        ({"note": "\ud800"}, "note", "valid Unicode"),
        ({"note": {"k": ["ok", "\udc00"]}}, "note", "valid Unicode"),
        ({"note": {"\ud800": 1}}, "note", "valid Unicode"),
        ({"note": math.nan}, "note", "finite"),
        ({"note": [math.inf]}, "note", "finite"),
        ({"note": -math.inf}, "note", "finite"),
        ({"note": 10**30}, "note", "64-bit"),
        ({"duration_s": 10**400}, "duration_s", "a number from 0 to"),
        ({"progress": -(10**400)}, "progress", "a number from 0 to 100"),
        ({"attempt": 2**63}, "attempt", "a whole number >= 1"),
        ({"note": nested(990)}, "note", "nested at most 32 levels"),
        ({"note": nested(33)}, "note", "nested at most 32 levels"),
    ],
)
def test_poison_values_are_refused_naming_field_and_expectation(fields, field, expected):
    error = error_of(minimal("module.progressed", **fields))
    assert error.field == field
    assert expected in str(error)
    assert len(str(error)) < 400  # a huge or deep value is shown cut short


@pytest.mark.parametrize("part", ["raw", "min", "max", "scaled"])
def test_score_parts_beyond_float_range_are_refused(part):
    score = {"raw": 1, "max": 2, part: 10**400}
    error = error_of(minimal("assessment.attempted", score=score))
    assert error.field == f"score.{part}"
    assert "a finite number from -1e15 to 1e15" in str(error)


def test_extras_within_the_bounds_are_kept_as_given():
    extra = {"deep": nested(32), "big": 2**63 - 1, "text": "caf\u00e9 \U0001f600", "n": 1.5}
    assert validate_event(minimal("activity", **extra)).extra == extra


def test_extras_are_measured_as_stored_not_by_the_quick_upper_bound():
    # 6 bytes per character is the quick bound (120,002 here); stored, this is 40,002.
    assert validate_event(minimal("activity", note="x" * 40_000)).extra["note"] == "x" * 40_000


def test_extras_over_the_size_bound_are_refused_with_their_size():
    error = error_of(minimal("activity", blob="x" * (64 * 1024)))
    assert error.field is None
    assert "expected at most 65536 bytes per event" in str(error)


def test_an_event_that_validates_can_always_be_encoded_as_the_store_does():
    body = minimal("activity", note={"a": [1, 2.5, None, True, "\u00e9"]}, n=-(2**63 - 1))
    text = json.dumps(validate_event(body).as_dict(), allow_nan=False, ensure_ascii=False)
    assert json.loads(text.encode("utf-8"))["note"]["a"][4] == "\u00e9"


def test_raw_score_without_min_stores_the_documented_default_min_0():
    body = minimal("assessment.attempted", score={"raw": 3, "max": 4})
    assert validate_event(body).as_dict()["score"] == {
        "scaled": None,
        "raw": 3.0,
        "min": 0.0,
        "max": 4.0,
    }


def test_time_bounds_name_the_setting_and_the_limit():
    bounds = TimeBounds(
        earliest=parse_timestamp("2000-01-01T00:00:00Z"), latest=TS + 300, skew_s=300
    )
    assert bounds.problem(validate_event(minimal("activity"))) is None
    future = bounds.problem(validate_event(minimal("activity", ts="2030-01-01T00:00:00Z")))
    assert future is not None and future.field == "ts"
    assert "'2030-01-01T00:00:00Z'" in str(future) and "300 s ahead" in str(future)
    past = bounds.problem(validate_event(minimal("activity", ts="1970-01-01T00:00:00Z")))
    assert past is not None and "from 2000-01-01T00:00:00Z on" in str(past)
