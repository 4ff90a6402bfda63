"""The xAPI -> jacmon event mapping (jacmon/sources/xapi.py), statement by statement."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from lrs_fixtures import check_event, mixed_statement, unmappable_statements

from jacmon.sources.xapi import (
    ADL,
    PROGRESS_EXTENSION,
    StatementMappingError,
    learner_id,
    map_statements,
    parse_duration,
    statement_to_event,
)

COURSE = "http://adlnet.gov/expapi/activities/course"
MODULE = "http://adlnet.gov/expapi/activities/module"
CMI5_COURSE = "https://w3id.org/xapi/cmi5/activitytype/course"
TS = "2026-01-05T10:00:00Z"


def statement(verb: str, **parts: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "6f1c2f1e-0000-4000-8000-000000000001",
        "actor": {"mbox": "mailto:ada@example.com"},
        "verb": {"id": verb if verb.startswith("http") else ADL + verb},
        "object": {"id": "https://lms.example.com/lesson/1"},
        "timestamp": TS,
        "context": {
            "contextActivities": {
                "parent": [{"id": "https://lms.example.com/m1"}],
                "grouping": [{"id": "https://lms.example.com/c1", "definition": {"type": COURSE}}],
            }
        },
    }
    base.update(parts)
    return base


@pytest.mark.parametrize("i", range(40))
def test_mixed_statements_map_to_the_expected_event(i: int) -> None:
    body, expected = mixed_statement(i, timestamp=TS)
    event = statement_to_event(body).as_dict()
    assert check_event(event, expected) == []
    assert event["ts"] == TS


def test_registered_and_unregistered_enrol_in_the_course_object() -> None:
    course = {"id": "https://lms.example.com/c9", "definition": {"type": CMI5_COURSE}}
    enrolled = statement_to_event(statement("registered", object=course, context={}))
    assert (enrolled.type, enrolled.path) == ("path.enrolled", course["id"])
    left = statement_to_event(
        statement("http://id.tincanapi.com/verb/unregistered", object=course, context={})
    )
    assert (left.type, left.path, left.extra["verb"]) == (
        "path.unenrolled",
        course["id"],
        "http://id.tincanapi.com/verb/unregistered",
    )


def test_session_verbs_and_duration() -> None:
    assert statement_to_event(statement("initialized")).type == "session.started"
    ended = statement_to_event(statement("abandoned", result={"duration": "PT1H2M3.25S"}))
    assert (ended.type, ended.duration_s) == ("session.ended", 3723.25)


def test_openedx_session_extension() -> None:
    body = statement("launched")
    body["context"]["extensions"] = {"https://w3id.org/xapi/openedx/extensions/session-id": "e1"}
    assert statement_to_event(body).session == "e1"


def test_attempt_scores_scaled_else_raw_and_max() -> None:
    scaled = statement_to_event(
        statement("attempted", result={"score": {"scaled": 0.75}, "success": True})
    )
    assert (scaled.type, scaled.score.percent, scaled.success) == (
        "assessment.attempted",
        75.0,
        True,
    )
    raw = statement_to_event(
        statement(
            "https://w3id.org/xapi/acrossx/verbs/evaluated",
            result={"score": {"raw": 3, "max": 4}},
        )
    )
    assert (raw.type, raw.score.percent) == ("assessment.attempted", 75.0)


def test_attempted_without_score_is_activity_keeping_the_verb() -> None:
    event = statement_to_event(statement("attempted"))
    assert (event.type, event.extra["verb"]) == ("activity", ADL + "attempted")


def test_passed_failed_on_assessment_and_course() -> None:
    assert statement_to_event(statement("failed")).type == "assessment.failed"
    course = {"id": "https://lms.example.com/c1", "definition": {"type": COURSE}}
    passed = statement_to_event(statement("passed", object=course))
    assert (passed.type, passed.path, passed.success) == ("path.completed", course["id"], True)
    failed = statement_to_event(statement("failed", object=course))
    assert (failed.type, failed.success) == ("activity", False)


def test_completed_follows_object_type() -> None:
    lesson = statement_to_event(statement("completed"))
    assert (lesson.type, lesson.module, lesson.path) == (
        "lesson.completed",
        "https://lms.example.com/m1",
        "https://lms.example.com/c1",
    )
    module = statement_to_event(
        statement(
            "completed", object={"id": "https://lms.example.com/m2", "definition": {"type": MODULE}}
        )
    )
    assert (module.type, module.module) == ("module.completed", "https://lms.example.com/m2")
    loose = statement_to_event(statement("completed", context={}))
    assert (loose.type, loose.completion) == ("activity", True)


def test_progressed_reads_the_cmi5_extension() -> None:
    event = statement_to_event(
        statement("progressed", result={"extensions": {PROGRESS_EXTENSION: 40}})
    )
    assert (event.type, event.module, event.progress) == (
        "module.progressed",
        "https://lms.example.com/m1",
        40.0,
    )


def test_path_from_course_type_parent_when_no_grouping() -> None:
    body = statement("completed")
    body["context"] = {
        "contextActivities": {
            "parent": [
                {"id": "https://lms.example.com/c7", "definition": {"type": COURSE}},
                {"id": "https://lms.example.com/m7"},
            ]
        }
    }
    event = statement_to_event(body)
    assert (event.path, event.module) == (
        "https://lms.example.com/c7",
        "https://lms.example.com/m7",
    )


def test_single_object_context_activities_are_accepted() -> None:
    body = statement("launched")
    body["context"]["contextActivities"]["grouping"] = {"id": "https://lms.example.com/c3"}
    assert statement_to_event(body).path == "https://lms.example.com/c3"


@pytest.mark.parametrize(
    ("actor", "learner"),
    [
        ({"account": {"homePage": "https://lms", "name": "u1"}}, "u1@https://lms"),
        ({"mbox": "mailto:x@y.z"}, "mailto:x@y.z"),
        ({"mbox_sha1sum": "ab12"}, "sha1:ab12"),
        ({"openid": "https://id.example.com/x"}, "https://id.example.com/x"),
        ({"objectType": "Group", "mbox": "mailto:team@y.z", "member": []}, "mailto:team@y.z"),
    ],
)
def test_learner_from_each_identifier(actor: dict[str, Any], learner: str) -> None:
    assert learner_id(actor) == learner


def test_timestamp_without_zone_is_utc_and_stored_is_the_fallback() -> None:
    naive = statement_to_event(statement("launched", timestamp="2026-01-05T10:00:00"))
    assert naive.ts == statement_to_event(statement("launched")).ts
    body = statement("launched", stored="2026-01-06T00:00:00+00:00")
    del body["timestamp"]
    assert statement_to_event(body).ts_text == "2026-01-06T00:00:00+00:00"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"id": None}, "statement 'id' is None"),
        ({"actor": {"objectType": "Group", "member": []}}, "has no account, mbox"),
        ({"actor": {"account": {"name": "x"}}}, "expected both 'homePage' and 'name'"),
        ({"verb": {"display": {"en": "did"}}}, "expected an object with an 'id'"),
        ({"verb": {"id": ADL + "voided"}}, "voiding statement"),
        ({"object": {"objectType": "StatementRef", "id": "x"}}, "is a StatementRef"),
        ({"timestamp": "yesterday"}, "field 'ts' has value 'yesterday'"),
        ({"result": {"duration": "90 seconds"}}, "duration '90 seconds' is not ISO 8601"),
        ({"result": {"score": {"scaled": 3}}}, "score.scaled"),
    ],
)
def test_unmappable_statement_says_why(change: dict[str, Any], reason: str) -> None:
    body = statement("launched")
    body.update(change)
    with pytest.raises(StatementMappingError, match=None) as caught:
        statement_to_event(body)
    assert reason in str(caught.value)


def test_progressed_without_progress_and_module_without_path_are_refused() -> None:
    with pytest.raises(StatementMappingError, match="has no progress"):
        statement_to_event(statement("progressed"))
    body = statement("completed", object={"id": "https://m", "definition": {"type": MODULE}})
    body["context"] = {}
    with pytest.raises(StatementMappingError, match="has no path"):
        statement_to_event(body)


def test_map_statements_keeps_the_good_and_lists_the_bad() -> None:
    good = [mixed_statement(i, timestamp=TS)[0] for i in range(12)]
    bad = unmappable_statements(1000)
    mixed = [good[0], bad[0], *good[1:6], bad[1], "not an object", *good[6:], bad[2]]
    result = map_statements(mixed, start=10)
    assert [e["id"] for e in result.events] == [s["id"] for s in good]
    assert [s.index for s in result.skipped] == [11, 17, 18, 25]
    assert [s.statement_id for s in result.skipped] == [
        bad[0]["id"],
        bad[1]["id"],
        None,
        bad[2]["id"],
    ]
    assert all(s.reason for s in result.skipped)


def test_mapping_does_not_modify_the_statement() -> None:
    body, _ = mixed_statement(6, timestamp=TS)
    before = copy.deepcopy(body)
    statement_to_event(body)
    assert body == before


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT0S", 0.0), ("PT1.5S", 1.5), ("PT2M", 120.0), ("P1DT1H", 90000.0), ("P2W", 1209600.0)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["P", "PT", "1H", "PT1H2", "P1WT1H", 5])
def test_parse_duration_refuses(text: Any) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)
