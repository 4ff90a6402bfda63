"""IMS Caliper 1.2 events -> jacmon events (the mapping; no I/O).

A Caliper sensor sends an envelope (``sensor``, ``sendTime``, ``dataVersion``,
``data[]``); each item of ``data`` that is an event (it has ``actor``, ``action``
and ``eventTime``) maps to at most one jacmon event by :func:`map_caliper_event`,
following the table in docs/ingest.md ("Caliper 1.2"):

* the learner is ``actor.id`` (for a ``GradeEvent``, ``object.assignee``: the
  actor is the grading software), the course (``path``) is ``group.id`` or else
  ``membership.organization``, the module is the ``isPartOf`` of the object, the
  item is the object's id; entity ids are IRIs and stay ids as given;
* ``SessionEvent`` LoggedIn -> ``session.started``, LoggedOut / TimedOut ->
  ``session.ended`` (with the session's duration); ``GradeEvent`` Graded with a
  ``scoreGiven`` -> ``assessment.attempted`` with the score; ``AssignableEvent``
  Completed with a course and a module -> ``module.completed``; navigation, views,
  media, assessments, assessment items, assignables and tool use -> ``activity``;
* every mapped event keeps the Caliper ``type``, ``action`` and object id as the
  extras ``caliper_type``, ``caliper_action`` and ``caliper_object``.

What cannot be mapped (an entity in ``data``, an event type outside the table, a
grade without a score, a missing learner) raises :class:`CaliperMappingError`
with the reason; :func:`map_envelope` lists those per index instead, so the rest
of an envelope is still taken.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jacmon.errors import EventValidationError, JacmonError
from jacmon.events import MAX_ID_LENGTH, Event, describe, validate_event
from jacmon.sources.xapi import parse_duration

#: Caliper event types whose every action is learner activity (the action is kept).
ACTIVITY_TYPES = frozenset(
    {
        "NavigationEvent",
        "ViewEvent",
        "MediaEvent",
        "AssessmentEvent",
        "AssessmentItemEvent",
        "AssignableEvent",
        "ToolUseEvent",
        "ReadingEvent",
        "ToolLaunchEvent",
    }
)


class CaliperMappingError(JacmonError):
    """A Caliper event (or envelope) cannot become jacmon events; the message says why.

    ``event_id`` is the Caliper event's ``id`` when it had a usable one.
    """

    def __init__(self, message: str, *, event_id: str | None = None) -> None:
        super().__init__(message)
        self.event_id = event_id


@dataclass(slots=True)
class CaliperSkipped:
    """One item of an envelope's ``data`` that was not mapped: its index, id, reason."""

    index: int
    event_id: str | None
    reason: str


@dataclass(slots=True)
class CaliperResult:
    """What :func:`map_envelope` made of an envelope."""

    #: Validated events, in ``data`` order.
    events: list[Event] = field(default_factory=list)
    skipped: list[CaliperSkipped] = field(default_factory=list)


def _entity_id(value: Any) -> str | None:
    """The id of an entity given inline (``{"id": ...}``) or by reference (an IRI)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, Mapping):
        found = value.get("id")
        return found if isinstance(found, str) and found else None
    return None


def _course(event: Mapping[str, Any]) -> str | None:
    group = _entity_id(event.get("group"))
    if group is not None:
        return group
    membership = event.get("membership")
    if isinstance(membership, Mapping):
        return _entity_id(membership.get("organization"))
    return None


def _learner(event: Mapping[str, Any], kind: str) -> str | None:
    if kind == "GradeEvent":
        target = event.get("object")
        return _entity_id(target.get("assignee")) if isinstance(target, Mapping) else None
    return _entity_id(event.get("actor"))


def _graded(event: Mapping[str, Any], body: dict[str, Any], event_id: str) -> None:
    """A Graded event's attempt and score into ``body`` (raises without a usable score)."""
    target = event.get("object")
    score = event.get("generated")
    given = score.get("scoreGiven") if isinstance(score, Mapping) else None
    highest = score.get("maxScore") if isinstance(score, Mapping) else None
    if not isinstance(given, int | float) or isinstance(given, bool):
        raise CaliperMappingError(
            f"Caliper event {event_id}: a GradeEvent without generated.scoreGiven has no "
            "score to record",
            event_id=event_id,
        )
    if not isinstance(highest, int | float) or isinstance(highest, bool) or highest <= 0:
        raise CaliperMappingError(
            f"Caliper event {event_id}: generated.maxScore is {describe(highest)}; expected a "
            "number above 0 to scale scoreGiven by",
            event_id=event_id,
        )
    body["score"] = {"raw": given, "min": 0, "max": highest}
    if isinstance(target, Mapping):
        item = _entity_id(target.get("assignable")) or _entity_id(target)
        body["item"] = item
        _attempt_count(target, body)


def _attempt_count(attempt: Mapping[str, Any], body: dict[str, Any]) -> None:
    """An Attempt's ``count`` (a whole number from 1) into ``body`` as ``attempt``."""
    count = attempt.get("count")
    if isinstance(count, int) and not isinstance(count, bool) and count >= 1:
        body["attempt"] = count


def _duration(duration: Any, body: dict[str, Any], event_id: str, whose: str) -> None:
    """An ISO 8601 ``duration`` (of the ``whose``: session, attempt) into ``body`` as
    ``duration_s``; a duration that is not one refuses the event, naming it."""
    try:
        body["duration_s"] = parse_duration(duration)
    except ValueError as exc:
        raise CaliperMappingError(
            f"Caliper event {event_id}: {whose} {exc}", event_id=event_id
        ) from None


def _session_duration(event: Mapping[str, Any], body: dict[str, Any], event_id: str) -> None:
    """The ended session's ``duration`` (ISO 8601) into ``body`` as ``duration_s``."""
    session = event.get("session")
    duration = session.get("duration") if isinstance(session, Mapping) else None
    if duration is not None:
        _duration(duration, body, event_id, "session")


def _attempt(event: Mapping[str, Any], body: dict[str, Any], event_id: str) -> None:
    """The attempt an assessment (item) event belongs to into ``body``: ``attempt`` (its
    count), ``caliper_attempt`` (its id) and, once submitted, ``duration_s``.

    The ``generated`` entity is the Attempt itself (assessment Started, Submitted;
    item Started) or a Response naming it as ``attempt`` (item Completed).
    """
    generated = event.get("generated")
    if not isinstance(generated, Mapping):
        return
    attempt = generated if generated.get("type") == "Attempt" else generated.get("attempt")
    if not isinstance(attempt, Mapping):
        return
    attempt_id = _entity_id(attempt)
    if attempt_id is not None:
        body["caliper_attempt"] = attempt_id
    _attempt_count(attempt, body)
    duration = attempt.get("duration")
    if duration is not None and event.get("action") == "Submitted":
        _duration(duration, body, event_id, "attempt")


def map_caliper_event(event: Any) -> dict[str, Any]:
    """One Caliper event as a native jacmon event body (not yet validated)."""
    if not isinstance(event, Mapping):
        raise CaliperMappingError(
            f"data item is {type(event).__name__}; expected a Caliper event object"
        )
    raw_id = event.get("id")
    event_id = raw_id if isinstance(raw_id, str) and raw_id else None
    kind = event.get("type")
    action = event.get("action")
    if "actor" not in event or "action" not in event:
        raise CaliperMappingError(
            f"data item {event_id or '(no id)'} is a Caliper entity ({describe(kind)}), not an "
            "event: only events (with actor, action and eventTime) are recorded",
            event_id=event_id,
        )
    if event_id is None or len(event_id) > MAX_ID_LENGTH:
        raise CaliperMappingError(
            f"Caliper event has id {describe(raw_id)}; expected an IRI or urn:uuid of at most "
            f"{MAX_ID_LENGTH} characters",
            event_id=None,
        )
    learner = _learner(event, str(kind))
    if learner is None:
        where = "object.assignee" if kind == "GradeEvent" else "actor"
        raise CaliperMappingError(
            f"Caliper event {event_id}: {where} has no id; it names the learner",
            event_id=event_id,
        )
    target = event.get("object")
    object_id = _entity_id(target)
    body: dict[str, Any] = {
        "id": event_id,
        "ts": event.get("eventTime"),
        "learner": learner,
        "caliper_type": kind,
        "caliper_action": action,
    }
    if object_id is not None:
        body["caliper_object"] = object_id
    session = _entity_id(event.get("session"))
    if session is not None:
        body["session"] = session
    course = _course(event)
    if course is not None:
        body["path"] = course
        module = _entity_id(target.get("isPartOf")) if isinstance(target, Mapping) else None
        if module is not None:
            body["module"] = module
    if kind == "SessionEvent" and action in ("LoggedIn", "LoggedOut", "TimedOut"):
        # A login is the platform's, not a course's.
        body.pop("path", None)
        body.pop("module", None)
        body["type"] = "session.started" if action == "LoggedIn" else "session.ended"
        if action != "LoggedIn":
            _session_duration(event, body, event_id)
    elif kind == "GradeEvent" and action == "Graded":
        body["type"] = "assessment.attempted"
        body.pop("module", None)
        _graded(event, body, event_id)
    elif kind == "AssignableEvent" and action == "Completed" and "module" in body:
        body["type"] = "module.completed"
    elif kind in ACTIVITY_TYPES:
        body["type"] = "activity"
        if kind in ("AssessmentEvent", "AssessmentItemEvent"):
            if object_id is not None:
                body["item"] = object_id
            _attempt(event, body, event_id)
    else:
        raise CaliperMappingError(
            f"Caliper event {event_id}: {kind} {action} is not mapped (docs/ingest.md lists "
            "the Caliper events jacmon records)",
            event_id=event_id,
        )
    return body


def caliper_to_event(event: Any) -> Event:
    """Map and validate one Caliper event; any failure is a :class:`CaliperMappingError`."""
    body = map_caliper_event(event)
    try:
        return validate_event(body)
    except EventValidationError as exc:
        raise CaliperMappingError(
            f"Caliper event {body['id']}: mapped event is not valid: {exc}", event_id=body["id"]
        ) from None


def check_envelope(envelope: Any) -> list[Any]:
    """The ``data`` of a Caliper envelope; :class:`CaliperMappingError` naming what is
    wrong with the envelope itself (then nothing of it is taken)."""
    if not isinstance(envelope, Mapping):
        raise CaliperMappingError(
            f"envelope is {type(envelope).__name__}; expected an object with sensor, "
            "sendTime, dataVersion and data"
        )
    for name in ("sensor", "sendTime", "dataVersion", "data"):
        if name not in envelope:
            raise CaliperMappingError(
                f"envelope field '{name}' is missing; an envelope has sensor, sendTime, "
                "dataVersion and data"
            )
    for name in ("sensor", "sendTime", "dataVersion"):
        value = envelope.get(name)
        if not isinstance(value, str) or not value:
            raise CaliperMappingError(
                f"envelope field '{name}' is {describe(value)}; expected a non-empty string"
            )
    data = envelope.get("data")
    if not isinstance(data, list):
        raise CaliperMappingError(
            f"envelope field 'data' is {type(data).__name__}; expected an array of events"
        )
    return data


def map_envelope(envelope: Any) -> CaliperResult:
    """Every event of an envelope; the unmappable ones listed with their reason.

    Raises :class:`CaliperMappingError` only for an envelope that is not one.
    """
    result = CaliperResult()
    for index, item in enumerate(check_envelope(envelope)):
        try:
            result.events.append(caliper_to_event(item))
        except CaliperMappingError as exc:
            result.skipped.append(CaliperSkipped(index, exc.event_id, str(exc)))
    return result
