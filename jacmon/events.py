"""The ingest contract: what one learner event looks like, and its validation.

An event is one JSON object. ``id`` (the producer's idempotency key), ``type``,
``ts`` (ISO 8601 with a zone) and ``learner`` are always required; each type
names the other fields it needs (:data:`REQUIRED_BY_TYPE`). Unknown extra
fields are kept in :attr:`Event.extra`, never dropped.

This module does no I/O: the server, ``jacmon ingest``, the simulator and the
xAPI mapping all share it.
"""

from __future__ import annotations

import json
import math
import reprlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jacmon.errors import EventValidationError

#: Event types and the fields each needs besides id, type, ts and learner.
REQUIRED_BY_TYPE: dict[str, tuple[str, ...]] = {
    "path.enrolled": ("path",),
    "path.unenrolled": ("path",),
    "path.completed": ("path",),
    "session.started": (),
    "session.ended": (),
    "module.progressed": ("path", "module", "progress"),
    "module.completed": ("path", "module"),
    "lesson.completed": ("path", "module", "item"),
    "assessment.attempted": ("item", "score"),
    "assessment.passed": ("item",),
    "assessment.failed": ("item",),
    "activity": (),
}

EVENT_TYPES: tuple[str, ...] = tuple(REQUIRED_BY_TYPE)

#: Fields of the contract; anything else is an extra, kept as given.
KNOWN_FIELDS = frozenset(
    {
        "id",
        "type",
        "ts",
        "learner",
        "path",
        "module",
        "item",
        "score",
        "success",
        "completion",
        "progress",
        "duration_s",
        "attempt",
        "session",
    }
)

# Limits
MAX_ID_LENGTH = 256
"""Longest accepted identifier (``id``, ``learner``, ``path`` ...), in characters."""

MAX_DURATION_S = 7 * 24 * 3600.0
"""Longest accepted ``duration_s``: one week, in seconds."""

MAX_ATTEMPT = 2**31 - 1
"""Highest accepted ``attempt`` (a 32-bit count; anything above is a producer's bug)."""

MAX_SCORE_MAGNITUDE = 1e15
"""Largest accepted absolute value of ``score.raw``, ``score.min`` and ``score.max``.

Below 2**53, so every whole number in range is exact as a float."""

MAX_EXTRA_DEPTH = 32
"""Deepest nesting of arrays and objects accepted in one extra field's value (levels)."""

MAX_EXTRAS_BYTES = 64 * 1024
"""Largest accepted size of all extra fields of one event together, as compact JSON, in bytes."""

MAX_EXTRA_INT = 2**63 - 1
"""Largest accepted magnitude of a whole number inside an extra field (a signed 64-bit integer)."""


@dataclass(slots=True)
class Score:
    """An assessment score as xAPI gives it; :attr:`percent` is the 0-100 value jacmon uses."""

    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None

    @property
    def percent(self) -> float:
        """The score on a 0-100 scale: ``scaled`` x 100, else ``raw`` within ``min``..``max``."""
        if self.scaled is not None:
            return max(0.0, min(100.0, self.scaled * 100.0))
        low = self.min if self.min is not None else 0.0
        assert self.raw is not None and self.max is not None  # guaranteed by validation
        return max(0.0, min(100.0, (self.raw - low) * 100.0 / (self.max - low)))

    def as_dict(self) -> dict[str, float | None]:
        return {"scaled": self.scaled, "raw": self.raw, "min": self.min, "max": self.max}


@dataclass(slots=True)
class Event:
    """One validated learner event.

    ``ts`` is the event time in seconds since the Unix epoch (UTC);
    ``ts_text`` is the ISO 8601 text the producer sent.
    """

    id: str
    type: str
    ts: float
    ts_text: str
    learner: str
    path: str | None = None
    module: str | None = None
    item: str | None = None
    score: Score | None = None
    success: bool | None = None
    completion: bool | None = None
    progress: float | None = None
    duration_s: float | None = None
    attempt: int | None = None
    session: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: The stored JSON text (:func:`jacmon.store.encoding.event_body`), when the decoder
    #: already made it (the plain-events fast path); not part of the event's value.
    body_text: str | None = field(default=None, compare=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The event as the contract's JSON object (extras included, absent fields as null)."""
        body: dict[str, Any] = {
            "id": self.id,
            "type": self.type,
            "ts": self.ts_text,
            "learner": self.learner,
            "path": self.path,
            "module": self.module,
            "item": self.item,
            "score": self.score.as_dict() if self.score is not None else None,
            "success": self.success,
            "completion": self.completion,
            "progress": self.progress,
            "duration_s": self.duration_s,
            "attempt": self.attempt,
            "session": self.session,
        }
        if self.extra:
            body.update(self.extra)
        return body

    def as_compact_dict(self) -> dict[str, Any]:
        """:meth:`as_dict` without null fields (smaller frames; null means absent anyway)."""
        return {key: value for key, value in self.as_dict().items() if value is not None}


def _bounded_repr() -> reprlib.Repr:
    shower = reprlib.Repr()
    shower.maxlevel = 3
    shower.maxstring = 80
    shower.maxother = 80
    shower.maxlong = 40
    return shower


_SHOWER = _bounded_repr()


def describe(value: Any) -> str:
    """``repr(value)`` cut to about 80 characters, safe for any decoded JSON value.

    A plain ``repr`` of a value nested 990 levels deep raises RecursionError and
    one of a huge text makes a huge message; the bound keeps error texts small.
    """
    try:
        shown = _SHOWER.repr(value)
    except (ValueError, RecursionError):
        # ValueError: an int with more digits than Python converts to text.
        return f"<{type(value).__name__}>"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return shown


def _fail(field_name: str | None, value: Any, expected: str) -> EventValidationError:
    shown = describe(value)
    if field_name is None:
        return EventValidationError(f"event is {shown}; expected {expected}", field=None)
    return EventValidationError(
        f"field '{field_name}' has value {shown}; expected {expected}", field=field_name
    )


def _text(body: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise EventValidationError(
                f"field '{name}' is missing; it is required for this event", field=name
            )
        return None
    if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
        raise _fail(name, value, f"a non-empty string of at most {MAX_ID_LENGTH} characters")
    if not value.isascii() and not is_valid_unicode(value):
        raise _fail(name, value, "text without lone surrogates (valid Unicode)")
    return value


def is_valid_unicode(text: str) -> bool:
    """True if ``text`` encodes as UTF-8: no lone surrogate such as a decoded ``"\\ud800"``.

    JSON may escape half of a surrogate pair on its own; SQLite and every
    client then fail to encode it, so it is refused at the boundary.
    """
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _in_range(value: Any, low: float, high: float) -> bool:
    """True for a number (not a bool) from ``low`` to ``high``; never converts a huge int."""
    kind = type(value)
    if kind is float:
        # NaN fails both comparisons; an infinity fails one.
        return low <= value <= high
    # Compared as ints: float() of an int beyond float range raises OverflowError.
    # bool is an int subclass (type() is bool, not int): True is not a number of seconds.
    return kind is int and low <= value <= high


def _number(value: Any, name: str, low: float, high: float, unit: str) -> float:
    if not _in_range(value, low, high):
        raise _fail(name, value, f"a number from {low:g} to {high:g}{unit}")
    return float(value)


def _flag(body: dict[str, Any], name: str) -> bool | None:
    value = body.get(name)
    if value is None or isinstance(value, bool):
        return value
    raise _fail(name, value, "true, false or null")


def parse_timestamp(value: Any, name: str = "ts") -> float:
    """ISO 8601 text with a zone (``Z`` or ``+01:00``) -> seconds since the epoch (UTC)."""
    if not isinstance(value, str):
        raise _fail(name, value, "an ISO 8601 timestamp with a zone, like '2026-01-05T10:00:00Z'")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise _fail(
            name, value, "an ISO 8601 timestamp with a zone, like '2026-01-05T10:00:00Z'"
        ) from None
    if moment.tzinfo is None:
        raise _fail(name, value, "a timestamp with a zone: add 'Z' for UTC or an offset '+01:00'")
    return moment.timestamp()


def _score(value: Any) -> Score:
    if not isinstance(value, dict):
        raise _fail("score", value, "an object with 'scaled' (-1..1) or 'raw' and 'max'")
    score = Score()
    for key in ("scaled", "raw", "min", "max"):
        part = value.get(key)
        if part is None:
            continue
        if not _in_range(part, -MAX_SCORE_MAGNITUDE, MAX_SCORE_MAGNITUDE):
            raise _fail(f"score.{key}", part, "a finite number from -1e15 to 1e15")
        setattr(score, key, float(part))
    if score.raw is not None and score.min is None:
        score.min = 0.0  # the contract's default, stored so every reader sees the same scale
    if score.scaled is not None:
        if not -1.0 <= score.scaled <= 1.0:
            raise _fail("score.scaled", score.scaled, "a number from -1 to 1")
        return score
    if score.raw is None or score.max is None:
        raise _fail("score", value, "'scaled' (-1..1), or 'raw' with 'max' (and optional 'min')")
    low = score.min if score.min is not None else 0.0
    if score.max <= low:
        raise _fail("score.max", score.max, f"a number greater than score.min ({low:g})")
    if not low <= score.raw <= score.max:
        raise _fail("score.raw", score.raw, f"a number from {low:g} to {score.max:g}")
    return score


def validate_event(body: Any) -> Event:
    """Check one decoded JSON value against the contract and return the :class:`Event`.

    Raises :class:`~jacmon.errors.EventValidationError` naming the field, the
    bad value and what was expected.
    """
    if not isinstance(body, dict):
        raise _fail(None, body, "a JSON object")
    event_id = _text(body, "id", required=True)
    kind = body.get("type")
    # A list or object is unhashable: test the type before looking it up.
    if not isinstance(kind, str) or kind not in REQUIRED_BY_TYPE:
        if kind is None:
            raise EventValidationError("field 'type' is missing; it is required", field="type")
        raise _fail("type", kind, "one of " + ", ".join(EVENT_TYPES))
    needs = REQUIRED_BY_TYPE[kind]
    if "ts" not in body:
        raise EventValidationError("field 'ts' is missing; it is required", field="ts")
    ts_text = body["ts"]
    ts = parse_timestamp(ts_text)
    learner = _text(body, "learner", required=True)
    event = Event(
        id=event_id,  # type: ignore[arg-type]
        type=kind,
        ts=ts,
        ts_text=ts_text,
        learner=learner,  # type: ignore[arg-type]
        path=_text(body, "path", required="path" in needs),
        module=_text(body, "module", required="module" in needs),
        item=_text(body, "item", required="item" in needs),
        session=_text(body, "session", required=False),
        success=_flag(body, "success"),
        completion=_flag(body, "completion"),
    )
    if event.module is not None and event.path is None:
        raise EventValidationError(
            "field 'path' is missing; an event that names a module must name its path",
            field="path",
        )
    score = body.get("score")
    if score is not None:
        event.score = _score(score)
    elif "score" in needs:
        raise EventValidationError(
            f"field 'score' is missing; a {kind} event needs a score", field="score"
        )
    progress = body.get("progress")
    if progress is not None:
        event.progress = _number(progress, "progress", 0, 100, " (percent)")
    elif "progress" in needs:
        raise EventValidationError(
            f"field 'progress' is missing; a {kind} event needs progress 0-100", field="progress"
        )
    duration = body.get("duration_s")
    if duration is not None:
        event.duration_s = _number(duration, "duration_s", 0, MAX_DURATION_S, " seconds")
    attempt = body.get("attempt")
    if attempt is not None:
        if isinstance(attempt, bool) or not isinstance(attempt, int):
            raise _fail("attempt", attempt, f"a whole number >= 1 and <= {MAX_ATTEMPT}")
        if not 1 <= attempt <= MAX_ATTEMPT:
            raise _fail("attempt", attempt, f"a whole number >= 1 and <= {MAX_ATTEMPT}")
        event.attempt = attempt
    if len(body) > len(KNOWN_FIELDS & body.keys()):
        event.extra = _extras(body)
    return event


def _extras(body: dict[Any, Any]) -> dict[str, Any]:
    """The fields outside the contract, checked so the stored body can always be encoded."""
    extra = {key: value for key, value in body.items() if key not in KNOWN_FIELDS}
    bound = 2
    for key, value in extra.items():
        if not isinstance(key, str) or not is_valid_unicode(key):
            raise _fail(None, key, "field names that are valid Unicode text")
        bound += _text_bound(key) + 2 + _check_json_value(key, value)
    if bound <= MAX_EXTRAS_BYTES:
        return extra  # the usual case: no need to encode to know the size
    # Checked first, so encoding cannot fail.
    size = len(_encode_extras(extra))
    if size > MAX_EXTRAS_BYTES:
        raise EventValidationError(
            f"extra fields take {size} bytes as JSON; expected at most {MAX_EXTRAS_BYTES} "
            "bytes per event",
            field=None,
        )
    return extra


#: Encodes extras as the store does (ASCII-escaped, compact): their stored size in bytes.
_encode_extras = json.JSONEncoder(separators=(",", ":"), allow_nan=False).encode

#: Most bytes one number takes as JSON: a 64-bit integer or a float's repr, with a sign.
_NUMBER_BOUND = 25


def _text_bound(text: str) -> int:
    """Most bytes ``text`` takes as ASCII-escaped JSON: 6 per character (``\\uXXXX``) + quotes."""
    return 6 * len(text) + 2


def _check_json_value(name: str, value: Any) -> int:
    """Raise unless ``value`` is plain JSON: finite numbers, valid text, at most 32 levels deep.

    Returns an upper bound of its size as stored JSON, in bytes. Iterative, so
    a value nested thousands of levels deep is refused, not a RecursionError.
    """
    if type(value) is str and value.isascii():
        return _text_bound(value)  # the common case, without the walk's bookkeeping
    bound = 0
    pending: list[tuple[Any, int]] = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if item is None or isinstance(item, bool):
            bound += 5
        elif isinstance(item, str):
            if not is_valid_unicode(item):
                raise _fail(name, item, "text without lone surrogates (valid Unicode)")
            bound += _text_bound(item)
        elif isinstance(item, int):
            if not -MAX_EXTRA_INT <= item <= MAX_EXTRA_INT:
                raise _fail(name, item, "whole numbers within a signed 64-bit integer")
            bound += _NUMBER_BOUND
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise _fail(name, item, "finite numbers (JSON has no NaN or Infinity)")
            bound += _NUMBER_BOUND
        elif isinstance(item, list | dict):
            if depth > MAX_EXTRA_DEPTH:
                raise _fail(name, value, f"a value nested at most {MAX_EXTRA_DEPTH} levels deep")
            bound += 2 + len(item)  # brackets and commas
            if isinstance(item, dict):
                for key in item:
                    if not isinstance(key, str) or not is_valid_unicode(key):
                        raise _fail(name, key, "object keys that are valid Unicode text")
                    bound += _text_bound(key) + 1  # and the colon
                children = item.values()
            else:
                children = item
            pending.extend((child, depth + 1) for child in children)
        else:
            raise _fail(name, item, "a JSON value (text, number, true/false, null, array, object)")
    return bound


@dataclass(frozen=True, slots=True)
class TimeBounds:
    """The event times a server accepts, in seconds since the epoch (UTC).

    ``earliest`` is ``server.earliest_event_ts``; ``latest`` is the server's
    clock now plus ``server.max_clock_skew_s``.
    """

    earliest: float
    latest: float
    skew_s: float

    def problem(self, event: Event) -> EventValidationError | None:
        """Why ``event.ts`` is out of bounds, or None if it is within them."""
        if event.ts > self.latest:
            return _fail(
                "ts",
                event.ts_text,
                f"a time at most {self.skew_s:g} s ahead of the server's clock "
                f"(server.max_clock_skew_s; now {_iso(self.latest - self.skew_s)})",
            )
        if event.ts < self.earliest:
            return _fail(
                "ts",
                event.ts_text,
                f"a time from {_iso(self.earliest)} on (server.earliest_event_ts)",
            )
        return None


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
