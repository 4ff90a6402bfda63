"""xAPI 1.0.3 statements -> jacmon events: the mapping documented in docs/ingest.md.

:func:`map_statement` turns one decoded statement into a native event dict (or
raises :class:`StatementMappingError` saying why it cannot); :func:`statement_to_event`
also runs the result through :func:`jacmon.events.validate_event`, so whatever it
returns is a valid event. :func:`map_statements` maps many and keeps the reasons
for the ones it skipped. No I/O here: the file reader, the LRS tailer and the
server share it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from jacmon.errors import EventValidationError, JacmonError
from jacmon.events import Event, describe, parse_timestamp, validate_event

ADL = "http://adlnet.gov/expapi/verbs/"
TINCAN_VERB = "http://id.tincanapi.com/verb/"
ACROSSX_VERB = "https://w3id.org/xapi/acrossx/verbs/"
ADL_ACTIVITY = "http://adlnet.gov/expapi/activities/"
CMI5_ACTIVITY = "https://w3id.org/xapi/cmi5/activitytype/"

#: cmi5 progress result extension: a whole number 0-100 (percent).
PROGRESS_EXTENSION = "https://w3id.org/xapi/cmi5/result/extensions/progress"

#: Context extensions that carry a session id, most specific first.
SESSION_EXTENSIONS: tuple[str, ...] = (
    "https://w3id.org/xapi/cmi5/context/extensions/sessionid",
    "https://w3id.org/xapi/openedx/extensions/session-id",
    "https://w3id.org/xapi/openedx/extension/session-id",
    "https://w3id.org/xapi/video/extensions/session-id",
)

#: Activity types that stand for a learning path (a course).
PATH_TYPES = frozenset({ADL_ACTIVITY + "course", CMI5_ACTIVITY + "course"})
#: Activity types that stand for a module of a path.
MODULE_TYPES = frozenset({ADL_ACTIVITY + "module", CMI5_ACTIVITY + "block"})

#: Verbs with a fixed event type; ``completed``, ``passed``/``failed``, the
#: attempt verbs and ``voided`` depend on the statement and are handled apart.
SIMPLE_VERBS: dict[str, str] = {
    ADL + "registered": "path.enrolled",
    TINCAN_VERB + "unregistered": "path.unenrolled",
    ADL + "launched": "session.started",
    ADL + "initialized": "session.started",
    ADL + "terminated": "session.ended",
    ADL + "abandoned": "session.ended",
    ADL + "progressed": "module.progressed",
}

#: Verbs that report an assessment attempt (with a score).
ATTEMPT_VERBS = frozenset({ADL + "attempted", ADL + "answered", ACROSSX_VERB + "evaluated"})

VOIDED = ADL + "voided"

# ISO 8601 duration as xAPI uses it: PnYnMnDTnHnMnS or PnW; the last unit may be fractional.
_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W|"
    r"(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?)$"
)
# Calendar units have no fixed length; these are the usual approximations, in seconds.
_UNIT_SECONDS = {
    "weeks": 7 * 86400.0,
    "years": 365 * 86400.0,
    "months": 30 * 86400.0,
    "days": 86400.0,
    "hours": 3600.0,
    "minutes": 60.0,
    "seconds": 1.0,
}


class StatementMappingError(JacmonError):
    """A statement cannot become a jacmon event; the message says why.

    ``statement_id`` is the statement's ``id`` when it had a usable one.
    """

    def __init__(self, message: str, *, statement_id: str | None = None) -> None:
        super().__init__(message)
        self.statement_id = statement_id


@dataclass(slots=True)
class Skipped:
    """One statement that was not mapped: its position in the input, id and the reason."""

    index: int
    statement_id: str | None
    reason: str


@dataclass(slots=True)
class MappingResult:
    """What :func:`map_statements` made of its input."""

    #: Native event dicts, each already checked by :func:`validate_event`.
    events: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)


def parse_duration(text: Any) -> float:
    """An xAPI (ISO 8601) duration like ``PT1H2M3.5S`` -> seconds.

    Years and months count as 365 and 30 days. Raises :class:`ValueError`
    naming the value when it is not a duration.
    """
    if not isinstance(text, str):
        raise ValueError(f"duration {describe(text)} is not text; expected ISO 8601 like 'PT1M30S'")
    match = _DURATION.match(text)
    if match is None or text in ("P", "PT") or text.endswith("T"):
        raise ValueError(f"duration {describe(text)} is not ISO 8601; expected like 'PT1M30S'")
    return sum(
        float(value) * _UNIT_SECONDS[unit]
        for unit, value in match.groupdict().items()
        if value is not None
    )


def learner_id(actor: Any) -> str:
    """The jacmon learner for an xAPI actor (Agent or identified Group).

    ``account`` -> ``name@homePage``; ``mbox`` -> the ``mailto:`` IRI as given;
    ``mbox_sha1sum`` -> ``sha1:<hex>``; ``openid`` -> the URI as given.
    """
    if not isinstance(actor, dict):
        raise StatementMappingError(f"'actor' is {describe(actor)}; expected an Agent object")
    account = actor.get("account")
    if isinstance(account, dict):
        name, home = account.get("name"), account.get("homePage")
        if isinstance(name, str) and name and isinstance(home, str) and home:
            return f"{name}@{home}"
        raise StatementMappingError(
            f"'actor.account' is {describe(dict(account))}; expected both 'homePage' and 'name'"
        )
    for key, prefix in (("mbox", ""), ("mbox_sha1sum", "sha1:"), ("openid", "")):
        value = actor.get(key)
        if isinstance(value, str) and value:
            return prefix + value
    kind = actor.get("objectType", "Agent")
    raise StatementMappingError(
        f"'actor' ({kind}) has no account, mbox, mbox_sha1sum or openid; "
        "jacmon needs one identified learner per statement"
    )


def _activities(context: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    """``context.contextActivities.<key>`` as a list (xAPI allows one object or an array)."""
    holder = context.get("contextActivities")
    if not isinstance(holder, dict):
        return []
    value = holder.get(key)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list):
        return []
    return [a for a in value if isinstance(a, dict) and isinstance(a.get("id"), str)]


def _activity_type(activity: Mapping[str, Any]) -> str | None:
    definition = activity.get("definition")
    if isinstance(definition, dict) and isinstance(definition.get("type"), str):
        return definition["type"]
    return None


def _path_and_module(context: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """Path from ``grouping`` (a course first) or a course-type parent; module from a parent."""
    parents = _activities(context, "parent")
    grouping = _activities(context, "grouping")
    path = next((a["id"] for a in grouping if _activity_type(a) in PATH_TYPES), None)
    if path is None:
        path = next((a["id"] for a in parents if _activity_type(a) in PATH_TYPES), None)
    if path is None and grouping:
        path = grouping[0]["id"]
    module = next((a["id"] for a in parents if _activity_type(a) not in PATH_TYPES), None)
    return path, module


def _session(context: Mapping[str, Any]) -> str | None:
    extensions = context.get("extensions")
    if not isinstance(extensions, dict):
        return None
    for key in SESSION_EXTENSIONS:
        value = extensions.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def _result_fields(result: Mapping[str, Any], body: dict[str, Any]) -> None:
    """Copy score, success, completion and duration from ``result`` into ``body``."""
    score = result.get("score")
    if isinstance(score, dict):
        body["score"] = {k: score[k] for k in ("scaled", "raw", "min", "max") if k in score}
    elif score is not None:
        body["score"] = score  # validate_event names the bad value
    for key in ("success", "completion"):
        if key in result:
            body[key] = result[key]
    if "duration" in result:
        try:
            body["duration_s"] = parse_duration(result["duration"])
        except ValueError as exc:
            raise StatementMappingError(f"'result.duration': {exc}") from None


def _has_score(body: Mapping[str, Any]) -> bool:
    score = body.get("score")
    return isinstance(score, dict) and (
        score.get("scaled") is not None
        or (score.get("raw") is not None and score.get("max") is not None)
    )


def _event_type(verb: str, body: dict[str, Any], object_type: str | None) -> str:
    """Pick the event type for ``verb``; may fill ``path``/``module`` from the object."""
    item = body["item"]
    if verb in SIMPLE_VERBS:
        kind = SIMPLE_VERBS[verb]
        if kind.startswith("path."):
            # The object of (un)registering is the path itself.
            body["path"] = (
                item if object_type in PATH_TYPES or not body.get("path") else body["path"]
            )
        elif kind == "module.progressed" and (
            object_type in MODULE_TYPES or not body.get("module")
        ):
            body["module"] = item
        return kind
    if verb == ADL + "completed":
        body.setdefault("completion", True)
        if object_type in PATH_TYPES:
            body["path"] = item
            return "path.completed"
        if object_type in MODULE_TYPES:
            body["module"] = item
            return "module.completed"
        if body.get("path") and body.get("module"):
            return "lesson.completed"
        return "activity"
    if verb in (ADL + "passed", ADL + "failed"):
        passed = verb == ADL + "passed"
        body.setdefault("success", passed)
        if object_type in PATH_TYPES:
            body["path"] = item
            # There is no "path.failed": a failed course is kept as activity.
            return "path.completed" if passed else "activity"
        return "assessment.passed" if passed else "assessment.failed"
    if verb in ATTEMPT_VERBS:
        # 'attempted' without a score only says an attempt began.
        return "assessment.attempted" if _has_score(body) else "activity"
    return "activity"


def map_statement(statement: Any) -> dict[str, Any]:
    """One decoded xAPI statement -> a native event dict (not yet validated).

    Raises :class:`StatementMappingError` saying why the statement cannot be
    mapped. The raw verb id is kept in the event's ``verb`` extra and the
    object's activity type, when given, in ``activity_type``.
    """
    if not isinstance(statement, dict):
        raise StatementMappingError(f"statement is {describe(statement)}; expected a JSON object")
    statement_id = statement.get("id")
    if not isinstance(statement_id, str) or not statement_id:
        raise StatementMappingError(
            f"statement 'id' is {describe(statement_id)}; expected a UUID (an LRS assigns one "
            "on store)"
        )

    def fail(reason: str) -> StatementMappingError:
        return StatementMappingError(reason, statement_id=statement_id)

    verb = statement.get("verb")
    verb_id = verb.get("id") if isinstance(verb, dict) else None
    if not isinstance(verb_id, str) or not verb_id:
        raise fail(f"'verb' is {describe(verb)}; expected an object with an 'id' IRI")
    if verb_id == VOIDED:
        raise fail("a voiding statement; jacmon events are append-only and are not retracted")
    obj = statement.get("object")
    if not isinstance(obj, dict):
        raise fail(f"'object' is {describe(obj)}; expected an Activity")
    object_kind = obj.get("objectType", "Activity")
    if object_kind != "Activity":
        raise fail(f"'object' is a {object_kind}; jacmon maps statements about activities only")
    item = obj.get("id")
    if not isinstance(item, str) or not item:
        raise fail(f"'object.id' is {describe(item)}; expected the activity IRI")
    ts = statement.get("timestamp", statement.get("stored"))
    if ts is None:
        raise fail("statement has neither 'timestamp' nor 'stored'")
    if isinstance(ts, str) and "T" in ts and not _has_zone(ts):
        ts += "Z"  # xAPI reads a timestamp without a zone as UTC
    try:
        learner = learner_id(statement.get("actor"))
    except StatementMappingError as exc:
        raise fail(str(exc)) from None

    context = statement.get("context")
    context = context if isinstance(context, dict) else {}
    path, module = _path_and_module(context)
    body: dict[str, Any] = {"id": statement_id, "ts": ts, "learner": learner, "item": item}
    if path:
        body["path"] = path
    if module:
        body["module"] = module
    session = _session(context)
    if session:
        body["session"] = session
    result = statement.get("result")
    if isinstance(result, dict):
        try:
            _result_fields(result, body)
        except StatementMappingError as exc:
            raise fail(str(exc)) from None
        extensions = result.get("extensions")
        if isinstance(extensions, dict) and PROGRESS_EXTENSION in extensions:
            body["progress"] = extensions[PROGRESS_EXTENSION]
    object_type = _activity_type(obj)
    body["type"] = _event_type(verb_id, body, object_type)
    if body["type"] == "module.progressed" and "progress" not in body:
        raise fail(
            f"'progressed' statement has no progress: add result.extensions {PROGRESS_EXTENSION}"
        )
    if body.get("module") and not body.get("path"):
        if body["type"] == "activity":
            # An activity does not need its module; keep what can be kept.
            body["parent_activity"] = body.pop("module")
        else:
            raise fail(
                f"module {body['module']!r} has no path: add a course to "
                "context.contextActivities.grouping (or a course-type parent)"
            )
    body["verb"] = verb_id
    if object_type:
        body["activity_type"] = object_type
    return body


def _has_zone(ts: str) -> bool:
    tail = ts.rsplit("T", 1)[-1]
    return tail.endswith(("Z", "z")) or "+" in tail or "-" in tail


def statement_to_event(statement: Any) -> Event:
    """Map and validate one statement; any failure is a :class:`StatementMappingError`."""
    body = map_statement(statement)
    try:
        return validate_event(body)
    except EventValidationError as exc:
        raise StatementMappingError(
            f"mapped event is not valid: {exc}", statement_id=body["id"]
        ) from None


def map_statements(statements: Iterable[Any], *, start: int = 0) -> MappingResult:
    """Map many statements; the unmappable ones are listed with their reason, not raised.

    ``start`` is the input index of the first statement (for messages).
    """
    outcome = MappingResult()
    for index, statement in enumerate(statements, start):
        try:
            event = statement_to_event(statement)
        except StatementMappingError as exc:
            outcome.skipped.append(Skipped(index, exc.statement_id, str(exc)))
            continue
        outcome.events.append(event.as_compact_dict())
    return outcome


def statement_stored(statement: Any) -> float | None:
    """When the LRS stored ``statement``, in seconds since the epoch, or None if unknown."""
    if not isinstance(statement, dict):
        return None
    try:
        return parse_timestamp(statement.get("stored"), "stored")
    except EventValidationError:
        return None
