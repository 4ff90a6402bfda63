"""What the xAPI statements endpoint checks before it maps: xAPI 1.0.3 and 2.0.0 rules.

A sender (an LRS forwarding, Open edX, Moodle, any xAPI client) gets a 400 with
the statement and field named for a statement that is not valid xAPI; a valid
statement jacmon cannot map (a voiding statement, an object that is an Agent) is
still accepted and kept, with the reason (:mod:`jacmon.sources.xapi` maps).

:func:`check_version` reads the ``X-Experience-API-Version`` header;
:func:`prepare_statements` checks a request's statements, gives each one an id
and the content digest a conflict is judged by, and the copy the mapping reads
(timestamps in UTC, ``stored`` set). No I/O here.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec

from jacmon.errors import JacmonError
from jacmon.events import describe, is_valid_unicode

#: The versions a request may name, and what ``GET /xAPI/about`` lists.
ABOUT_VERSIONS = ("1.0.0", "1.0.1", "1.0.2", "1.0.3", "2.0.0")
_VERSION = re.compile(r"^(1\.0(\.\d+)?|2\.0(\.0)?)$")
#: The version a request without the header is read as (and echoed back).
DEFAULT_VERSION = "1.0.3"

#: Most nesting levels of one statement (extensions included).
MAX_STATEMENT_DEPTH = 32

#: Properties an LRS sets, not the sender: not part of the content a conflict compares.
LRS_PROPERTIES = frozenset({"stored", "authority", "version"})

#: Namespace of the ids given to statements sent without one (see :func:`statement_id`).
GENERATED_ID_NAMESPACE = uuid.UUID("6b1f6a4e-3c55-4a55-9a8e-6a636d6f6e00")

_SHA1_HEX = re.compile(r"^[0-9a-fA-F]{40}$")
_IRI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
#: A timestamp already as UTC with 'Z' (what most senders send): kept as it is.
_UTC_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
_OBJECT_TYPES = ("Activity", "Agent", "Group", "StatementRef", "SubStatement")


class StatementInvalid(JacmonError):
    """A statement is not valid xAPI: the message names the statement and the field."""


def check_version(header: str | None) -> str:
    """The ``X-Experience-API-Version`` a request names, to echo back; StatementInvalid
    (a 400) naming the value when it is not a 1.0.x or 2.0.0 version.

    A request without the header is read as 1.0.3: xAPI requires the header, but real
    senders omit it (Ralph's statement forwarding posts plain JSON), and refusing them
    would make a sender retry the same statements forever.
    """
    if header is None:
        return DEFAULT_VERSION
    value = header.strip()
    if not _VERSION.match(value):
        raise StatementInvalid(
            f"X-Experience-API-Version {value[:40]!r} is not supported; send 1.0.0 to 1.0.3 "
            "or 2.0.0"
        )
    return value


@dataclass(frozen=True, slots=True)
class PreparedStatement:
    """One checked statement: its id, the JSON kept, the content digest, what maps."""

    id: str
    #: The statement as JSON text, as sent, with the id added if it had none.
    raw: str
    #: SHA-256 (hex) of the content as sent, LRS-set properties left out.
    digest: str
    #: The copy the mapping reads: the id, the timestamp in UTC, ``stored`` set.
    for_mapping: dict[str, Any]


_ENCODER = msgspec.json.Encoder()
_SORTED_ENCODER = msgspec.json.Encoder(order="sorted")


def compact_json(value: Any, *, standard: bool, sort_keys: bool = False) -> bytes:
    """``value`` (decoded from a request body) as compact JSON.

    ``standard``: the body was standard JSON (msgspec decoded it), so msgspec encodes it,
    about 7x faster than the json module. Otherwise the json module decoded what only it
    accepts (NaN, Infinity, lone surrogates) and encodes it back the same way, as ASCII
    so any text is storable.
    """
    if standard:
        return _SORTED_ENCODER.encode(value) if sort_keys else _ENCODER.encode(value)
    return json.dumps(value, sort_keys=sort_keys, separators=(",", ":")).encode()


def json_digest(value: Any, *, standard: bool = True) -> str:
    """SHA-256 (hex) of ``value`` as compact JSON with sorted keys: equal for equal
    content whatever the key order (``standard``: as for :func:`compact_json`)."""
    return hashlib.sha256(compact_json(value, standard=standard, sort_keys=True)).hexdigest()


def content_digest(statement: Mapping[str, Any], *, standard: bool = True) -> str:
    """SHA-256 (hex) of a statement's content: keys sorted, LRS-set properties left out,
    so the same statement sent again (by a retrying sender) has the same digest."""
    content = {k: v for k, v in statement.items() if k not in LRS_PROPERTIES}
    return json_digest(content, standard=standard)


def statement_id(statement: Mapping[str, Any], digest: str) -> str:
    """The id of a statement sent without one: derived from its content when it has a
    ``timestamp`` (a sender retrying the same statement gets the same id, so it is
    stored once), else random (without a time, two sends may be two statements)."""
    if "timestamp" in statement:
        return str(uuid.uuid5(GENERATED_ID_NAMESPACE, digest))
    return str(uuid.uuid4())


def utc_timestamp(text: str) -> str:
    """An xAPI timestamp (``T`` or, as 2.0 allows, a space between date and time; any
    offset; no offset meaning UTC) as ISO 8601 in UTC with ``Z``."""
    if _UTC_Z.match(text):
        datetime.fromisoformat(text)  # the fields in range (month 13 is not a time)
        return text
    moment = datetime.fromisoformat(text.replace("z", "Z"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def check_uuid(value: Any, field: str) -> str:
    """``value`` if it is a UUID (as text); StatementInvalid naming ``field`` otherwise."""
    return _Checker("the request").uuid(value, field)


class _Checker:
    """Checks one statement; each problem names ``statement <n>`` and the field."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, field: str, value: Any, expected: str) -> StatementInvalid:
        return StatementInvalid(
            f"{self.where}: '{field}' is {describe(value)}; expected {expected}"
        )

    def obj(self, value: Any, field: str) -> dict[str, Any]:
        if type(value) is not dict:
            raise self.fail(field, value, "an object")
        return value

    def text(self, value: Any, field: str, expected: str = "text") -> str:
        if not isinstance(value, str) or not value or not is_valid_unicode(value):
            raise self.fail(field, value, expected)
        return value

    def iri(self, value: Any, field: str) -> str:
        text = self.text(value, field, "an IRI like 'http://adlnet.gov/expapi/verbs/completed'")
        if not _IRI.match(text):
            raise self.fail(field, value, "an IRI like 'http://adlnet.gov/expapi/verbs/completed'")
        return text

    def uuid(self, value: Any, field: str) -> str:
        if isinstance(value, str) and _UUID.match(value):
            return value
        raise self.fail(field, value, "a UUID like '3f0c2a7e-8b1d-4f6e-9c2a-1d2e3f405162'")

    def timestamp(self, value: Any, field: str) -> str:
        try:
            if isinstance(value, str) and len(value) <= 64:
                return utc_timestamp(value)
        except ValueError:
            pass
        raise self.fail(field, value, "an ISO 8601 timestamp like '2026-01-05T10:00:00Z'")

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, value, "a number")
        if not math.isfinite(value):
            raise self.fail(field, value, "a finite number")
        return float(value)

    def agent(self, value: Any, field: str, *, group_allowed: bool = True) -> None:
        actor = self.obj(value, field)
        kind = actor.get("objectType", "Agent")
        if kind not in ("Agent", "Group") or (kind == "Group" and not group_allowed):
            raise self.fail(f"{field}.objectType", kind, "'Agent' or 'Group'")
        identifiers = [k for k in ("mbox", "mbox_sha1sum", "openid", "account") if k in actor]
        if len(identifiers) > 1:
            raise self.fail(
                field, dict(actor), "exactly one of mbox, mbox_sha1sum, openid, account"
            )
        if not identifiers:
            if kind == "Group" and isinstance(actor.get("member"), list):
                for n, member in enumerate(actor["member"]):
                    self.agent(member, f"{field}.member[{n}]", group_allowed=False)
                return
            raise self.fail(
                field, dict(actor), "an identifier: mbox, mbox_sha1sum, openid or account"
            )
        name = identifiers[0]
        found = actor[name]
        if name == "mbox":
            if not isinstance(found, str) or not found.startswith("mailto:"):
                raise self.fail(f"{field}.mbox", found, "a 'mailto:' IRI")
        elif name == "mbox_sha1sum":
            if not isinstance(found, str) or not _SHA1_HEX.match(found):
                raise self.fail(f"{field}.mbox_sha1sum", found, "40 hex digits (SHA-1)")
        elif name == "openid":
            self.iri(found, f"{field}.openid")
        else:
            account = self.obj(found, f"{field}.account")
            self.iri(account.get("homePage"), f"{field}.account.homePage")
            self.text(account.get("name"), f"{field}.account.name")

    def verb(self, value: Any) -> None:
        verb = self.obj(value, "verb")
        self.iri(verb.get("id"), "verb.id")
        if "display" in verb:
            self.obj(verb["display"], "verb.display")

    def object(self, value: Any, field: str = "object", *, nested: bool = False) -> None:
        obj = self.obj(value, field)
        kind = obj.get("objectType", "Activity")
        if kind not in _OBJECT_TYPES or (nested and kind == "SubStatement"):
            raise self.fail(f"{field}.objectType", kind, " or ".join(_OBJECT_TYPES))
        if kind == "Activity":
            self.iri(obj.get("id"), f"{field}.id")
            if "definition" in obj:
                self.obj(obj["definition"], f"{field}.definition")
        elif kind in ("Agent", "Group"):
            self.agent(obj, field)
        elif kind == "StatementRef":
            self.uuid(obj.get("id"), f"{field}.id")
        else:
            self.agent(obj.get("actor"), f"{field}.actor")
            self.verb_in(obj.get("verb"), f"{field}.verb")
            self.object(obj.get("object"), f"{field}.object", nested=True)

    def verb_in(self, value: Any, field: str) -> None:
        verb = self.obj(value, field)
        self.iri(verb.get("id"), f"{field}.id")

    def result(self, value: Any) -> None:
        result = self.obj(value, "result")
        for flag in ("success", "completion"):
            if flag in result and not isinstance(result[flag], bool):
                raise self.fail(f"result.{flag}", result[flag], "true or false")
        if "score" not in result:
            return
        score = self.obj(result["score"], "result.score")
        values = {
            key: self.number(score[key], f"result.score.{key}")
            for key in ("scaled", "raw", "min", "max")
            if key in score
        }
        if "scaled" in values and not -1 <= values["scaled"] <= 1:
            raise self.fail("result.score.scaled", score["scaled"], "a number from -1 to 1")
        low, high = values.get("min"), values.get("max")
        if low is not None and high is not None and low >= high:
            raise self.fail("result.score.max", score["max"], f"a number above min ({low:g})")
        raw = values.get("raw")
        if raw is not None and (
            (low is not None and raw < low) or (high is not None and raw > high)
        ):
            raise self.fail("result.score.raw", score["raw"], "a number from min to max")

    def context(self, value: Any) -> None:
        context = self.obj(value, "context")
        if "registration" in context:
            self.uuid(context["registration"], "context.registration")
        if "instructor" in context:
            self.agent(context["instructor"], "context.instructor")
        if "contextActivities" in context:
            activities = self.obj(context["contextActivities"], "context.contextActivities")
            for key, listed in activities.items():
                items = listed if isinstance(listed, list) else [listed]
                for n, item in enumerate(items):
                    self.object(item, f"context.contextActivities.{key}[{n}]")
        # xAPI 2.0: agents and groups in context, each with an actor and relevant types.
        for key, member in (("contextAgents", "agent"), ("contextGroups", "group")):
            if key not in context:
                continue
            if not isinstance(context[key], list):
                raise self.fail(f"context.{key}", context[key], "an array")
            for n, item in enumerate(context[key]):
                entry = self.obj(item, f"context.{key}[{n}]")
                self.agent(entry.get(member), f"context.{key}[{n}].{member}")


def _nests_deeper(value: dict | list, levels: int) -> bool:
    """True when the container ``value`` nests more than ``levels`` levels (recursion
    bounded by ``levels``: a hostile document cannot exhaust the stack)."""
    if levels == 0:
        return True
    for child in value.values() if type(value) is dict else value:
        kind = type(child)
        if (kind is dict or kind is list) and _nests_deeper(child, levels - 1):
            return True
    return False


def check_statement(statement: Any, where: str) -> str | None:
    """Raise StatementInvalid naming ``where`` and the field unless ``statement`` is
    valid xAPI; the timestamp in UTC (None without one)."""
    checker = _Checker(where)
    body = checker.obj(statement, "statement")
    if _nests_deeper(body, MAX_STATEMENT_DEPTH):
        raise StatementInvalid(f"{where} nests deeper than {MAX_STATEMENT_DEPTH} levels")
    if "id" in body:
        checker.uuid(body["id"], "id")
    checker.agent(body.get("actor"), "actor")
    checker.verb(body.get("verb"))
    checker.object(body.get("object"))
    if "result" in body:
        checker.result(body["result"])
    if "context" in body:
        checker.context(body["context"])
    if "timestamp" in body:
        return checker.timestamp(body["timestamp"], "timestamp")
    return None


def prepare_statements(
    statements: list[Any], *, stored: float, put_id: str | None = None, standard: bool = True
) -> list[PreparedStatement]:
    """Check every statement of one request (all or none, as xAPI asks) and prepare each.

    ``stored`` is the arrival time (epoch seconds); ``put_id`` the ``statementId`` of
    a PUT, which the statement's own id, if any, must equal. Raises StatementInvalid
    naming the first bad statement (by index) and field; two statements with one id
    in a request are refused too. ``standard``: as for :func:`compact_json`.
    """
    stored_text = datetime.fromtimestamp(stored, UTC).isoformat().replace("+00:00", "Z")
    prepared: list[PreparedStatement] = []
    seen: set[str] = set()
    for index, statement in enumerate(statements):
        where = "the statement" if put_id is not None else f"statement {index}"
        timestamp = check_statement(statement, where)
        given = statement.get("id")
        if put_id is not None and given is not None and given.lower() != put_id.lower():
            raise StatementInvalid(
                f"the statement's id {given!r} differs from statementId {put_id!r}; send one id"
            )
        digest = content_digest(statement, standard=standard)
        ident = (given or put_id or statement_id(statement, digest)).lower()
        if ident in seen:
            raise StatementInvalid(f"{where}: id {ident!r} appears twice in this request")
        seen.add(ident)
        kept = statement if given == ident else {**statement, "id": ident}
        for_mapping = {**kept, "stored": stored_text}
        if timestamp is not None:
            for_mapping["timestamp"] = timestamp
        raw = compact_json(kept, standard=standard).decode()
        prepared.append(PreparedStatement(ident, raw, digest, for_mapping))
    return prepared
