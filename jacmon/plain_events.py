"""A fast path for the common frame: a JSON array of plain, valid events.

:func:`jacmon.events.validate_event` checks a decoded JSON object field by field in
Python (about 5 us per event, the largest Python cost of ingest:
docs/benchmarks.md). Most frames hold nothing but plain events: the contract's
fields only, every one valid. For those, msgspec decodes the frame straight into
typed structs (types checked in C) and :func:`_checked` applies the rest of the
contract (types of events, required fields, lengths, ranges, times, scores) to
build the same :class:`~jacmon.events.Event` the validator would, with its stored
JSON text encoded from the struct in one call (the store would otherwise build a
dict and encode it on its one writer).

It never decides a refusal: a frame with anything else in it (an extra field, a
wrong type, a bad value, JSON msgspec refuses) returns None, and the caller
decodes it generically and validates event by event, so every message names
the field, the value and what was expected as before and one bad event never
takes the others with it. ``tests/test_plain_events.py`` holds both paths to the
same events (hypothesis).
"""

from __future__ import annotations

import msgspec

from jacmon.errors import EventValidationError
from jacmon.events import (
    MAX_ATTEMPT,
    MAX_DURATION_S,
    MAX_ID_LENGTH,
    MAX_SCORE_MAGNITUDE,
    REQUIRED_BY_TYPE,
    Event,
    Score,
    is_valid_unicode,
    parse_timestamp,
)


class _ScoreFields(msgspec.Struct):
    """A score's parts (other keys are ignored, as the validator ignores them)."""

    scaled: float | None = None
    raw: float | None = None
    min: float | None = None
    max: float | None = None


class _PlainEvent(msgspec.Struct, forbid_unknown_fields=True):
    """The contract's fields with their JSON types; an extra field fails the decode."""

    id: str
    type: str
    ts: str
    learner: str
    path: str | None = None
    module: str | None = None
    item: str | None = None
    score: _ScoreFields | None = None
    success: bool | None = None
    completion: bool | None = None
    progress: float | None = None
    duration_s: float | None = None
    attempt: int | None = None
    session: str | None = None


_FRAME = msgspec.json.Decoder(list[_PlainEvent])
#: Encodes a checked struct as the stored body: its fields are the contract's, in the
#: order and with the nulls of ``Event.as_dict``, so the text is ``event_body``'s.
_ENCODE = msgspec.json.Encoder().encode


def decode_plain_events(frame: str | bytes) -> list[Event] | None:
    """The events of a frame that is a JSON array of plain, valid events; else None (the
    caller validates it the full way)."""
    try:
        plain = _FRAME.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        return None
    events = []
    for item in plain:
        event = _checked(item)
        if event is None:
            return None
        events.append(event)
    return events


def _text_ok(value: str | None) -> bool:
    return value is None or (
        0 < len(value) <= MAX_ID_LENGTH and (value.isascii() or is_valid_unicode(value))
    )


def _in(value: float | None, low: float, high: float) -> bool:
    # NaN fails both comparisons; an infinity fails one.
    return value is None or low <= value <= high


def _checked(item: _PlainEvent) -> Event | None:
    """The Event ``validate_event`` would build from this object, or None if it would
    refuse it (or it is not worth deciding here)."""
    needs = REQUIRED_BY_TYPE.get(item.type)
    if needs is None:
        return None
    if not (
        _text_ok(item.id)
        and _text_ok(item.learner)
        and _text_ok(item.path)
        and _text_ok(item.module)
        and _text_ok(item.item)
        and _text_ok(item.session)
    ):
        return None
    for name in needs:
        if getattr(item, name) is None:
            return None
    if item.module is not None and item.path is None:
        return None
    if not (
        _in(item.progress, 0, 100)
        and _in(item.duration_s, 0, MAX_DURATION_S)
        and _in(item.attempt, 1, MAX_ATTEMPT)
    ):
        return None
    try:
        ts = parse_timestamp(item.ts)
    except EventValidationError:
        return None
    score = None
    if item.score is not None:
        score = _score(item.score)
        if score is None:
            return None
        item.score.min = score.min  # the default the stored body carries
    return Event(
        id=item.id,
        type=item.type,
        ts=ts,
        ts_text=item.ts,
        learner=item.learner,
        path=item.path,
        module=item.module,
        item=item.item,
        score=score,
        success=item.success,
        completion=item.completion,
        progress=item.progress,
        duration_s=item.duration_s,
        attempt=item.attempt,
        session=item.session,
        body_text=_ENCODE(item).decode(),
    )


def _score(parts: _ScoreFields) -> Score | None:
    """The Score ``validate_event`` would build (``min`` 0 when ``raw`` comes without it),
    or None if it would refuse it."""
    bound = MAX_SCORE_MAGNITUDE
    if not (
        _in(parts.scaled, -bound, bound)
        and _in(parts.raw, -bound, bound)
        and _in(parts.min, -bound, bound)
        and _in(parts.max, -bound, bound)
    ):
        return None
    score = Score(parts.scaled, parts.raw, parts.min, parts.max)
    if score.raw is not None and score.min is None:
        score.min = 0.0
    if score.scaled is not None:
        return score if -1.0 <= score.scaled <= 1.0 else None
    if score.raw is None or score.max is None:
        return None
    low = score.min if score.min is not None else 0.0
    if score.max <= low or not low <= score.raw <= score.max:
        return None
    return score
