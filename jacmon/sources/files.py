"""Reading files of events for ingest: JSON lines of native events, xAPI statements, or
Caliper envelopes.

A file (or stdin) becomes :class:`Record` values, one per line or array item,
each with where it was (``file:line`` or ``file[i]``) for messages;
:func:`to_event` checks one locally (or maps it from xAPI) so a bad record is
reported by line and never stops the rest. :class:`FileSource` turns the good
ones into batches for :mod:`jacmon.sources.pump`. Nothing here talks to a server.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import IO, Any

from jacmon.errors import EventValidationError
from jacmon.sources.caliper import CaliperMappingError, caliper_to_event, check_envelope
from jacmon.sources.pump import Batch, Tally
from jacmon.sources.xapi import StatementMappingError, statement_to_event

#: The input formats: ``jsonl`` (native events, one per line), ``xapi`` (statements) and
#: ``caliper`` (Caliper 1.2 envelopes: one JSON object, or one per line).
FORMATS = ("jsonl", "xapi", "caliper")


@dataclass(slots=True)
class Record:
    """One input record: where it came from (for messages) and its decoded value or error."""

    where: str
    value: Any = None
    error: str | None = None


class CountingReader:
    """Reads lines from a binary stream and counts the bytes consumed (for the progress bar)."""

    def __init__(self, stream: IO[bytes]):
        self.stream = stream
        self.consumed = 0

    def lines(self) -> Iterator[bytes]:
        for line in self.stream:
            self.consumed += len(line)
            yield line


#: Appended to a rejection when the input looks like the other --format.
XAPI_HINT = "this looks like an xAPI statements array; add --format xapi"
XAPI_LINE_HINT = "this looks like an xAPI statement; add --format xapi"
NATIVE_HINT = (
    "this looks like a native jacmon event; leave out --format xapi (jsonl is the default)"
)


def json_lines(reader: CountingReader, name: str) -> Iterator[Record]:
    """One :class:`Record` per non-blank line of JSON text.

    An input that opens with ``[`` is one JSON array, not JSON lines: it is one
    rejection with the --format hint, not a rejection per line.
    """
    lines = reader.lines()
    for raw in lines:
        if not raw.strip():
            continue
        if raw.lstrip().startswith(b"["):
            for _ in lines:
                pass  # consumed, so the progress bar and byte count reach the end
            yield Record(name, error=f"a JSON array, not one JSON object per line: {XAPI_HINT}")
            return
        yield from _json_lines_from(raw, lines, name)
        return


def _looks_like_statement(value: Any) -> bool:
    return isinstance(value, dict) and "actor" in value and "verb" in value


def _looks_like_native_event(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "actor" not in value
        and {"type", "learner", "ts"} <= value.keys()
    )


def xapi_records(reader: CountingReader, name: str) -> Iterator[Record]:
    """Statements from a JSON array (the whole input) or JSON lines, detected by the first byte."""
    lines = reader.lines()
    first = b""
    for raw in lines:
        if raw.strip():
            first = raw
            break
    if not first:
        return
    if not first.lstrip().startswith(b"["):
        yield from _json_lines_from(first, lines, name)
        return
    text = first + b"".join(lines)
    try:
        statements = json.loads(text)
    except RecursionError:
        yield Record(name, error="not a valid JSON array of statements (nested too deeply)")
        return
    except (ValueError, UnicodeDecodeError) as exc:
        yield Record(name, error=f"not a valid JSON array of statements ({exc})")
        return
    if not isinstance(statements, list):
        yield Record(name, error="expected a JSON array of xAPI statements")
        return
    for index, statement in enumerate(statements):
        yield Record(f"{name}[{index}]", statement)


def _json_lines_from(first: bytes, rest: Iterator[bytes], name: str) -> Iterator[Record]:
    """Like :func:`json_lines` when the first non-blank line was already read."""
    # Leading blank lines before ``first`` are not counted in the line numbers.
    number = 0
    for raw in itertools.chain([first] if first else [], rest):
        number += 1
        text = raw.strip()
        if not text:
            continue
        where = f"{name}:{number}"
        try:
            value = json.loads(text)
        except RecursionError:
            yield Record(
                where, error="not valid JSON (nested too deeply); expected one JSON object per line"
            )
            continue
        except (ValueError, UnicodeDecodeError) as exc:
            yield Record(where, error=f"not valid JSON ({exc}); expected one JSON object per line")
            continue
        yield Record(where, value)


def caliper_records(reader: CountingReader, name: str) -> Iterator[Record]:
    """The events of Caliper envelopes: one envelope (a JSON object, pretty-printed or
    not) or one envelope per line; a record per item of each envelope's ``data``."""
    text = b"".join(reader.lines())
    if not text.strip():
        return
    try:
        envelopes = [json.loads(text)]
        wheres = [name]
    except RecursionError:
        yield Record(name, error="not a valid Caliper envelope (nested too deeply)")
        return
    except (ValueError, UnicodeDecodeError):
        # Not one JSON value: one envelope per line.
        envelopes, wheres = [], []
        for record in _json_lines_from(b"", iter(text.splitlines(keepends=True)), name):
            if record.error is not None:
                yield record
                continue
            envelopes.append(record.value)
            wheres.append(record.where)
    for envelope, where in zip(envelopes, wheres, strict=True):
        try:
            data = check_envelope(envelope)
        except CaliperMappingError as exc:
            yield Record(where, error=str(exc))
            continue
        for index, item in enumerate(data):
            yield Record(f"{where}.data[{index}]", item)


def to_event(record: Record, fmt: str) -> dict[str, Any]:
    """Check one record locally; raise :class:`EventValidationError` with the reason."""
    if record.error is not None:
        raise EventValidationError(record.error)
    if fmt == "caliper":
        try:
            return caliper_to_event(record.value).as_compact_dict()
        except CaliperMappingError as exc:
            raise EventValidationError(str(exc)) from None
    if fmt == "xapi":
        try:
            event = statement_to_event(record.value)
        except StatementMappingError as exc:
            hint = f"; {NATIVE_HINT}" if _looks_like_native_event(record.value) else ""
            raise EventValidationError(
                f"statement {exc.statement_id or '?'}: {exc}{hint}"
            ) from None
        return event.as_compact_dict()
    from jacmon.events import validate_event

    try:
        validate_event(record.value)
    except EventValidationError as exc:
        if _looks_like_statement(record.value):
            raise EventValidationError(f"{exc}; {XAPI_LINE_HINT}") from None
        if isinstance(record.value, list):
            raise EventValidationError(f"{exc}; {XAPI_HINT}") from None
        raise
    return record.value


def read_records(reader: CountingReader, name: str, fmt: str) -> Iterator[Record]:
    """The records of ``reader`` in format ``fmt`` (see :data:`FORMATS`); ``name`` prefixes
    each record's ``where``."""
    if fmt == "xapi":
        return xapi_records(reader, name)
    if fmt == "caliper":
        return caliper_records(reader, name)
    return json_lines(reader, name)


@dataclass(slots=True)
class FileSummary(Tally):
    """What one file ingest did: the pump's tally plus the records read.

    Its rejections carry the record's 0-based index in the input and where it was.
    """

    #: Records read, good and bad.
    read: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": [r.as_dict() for r in self.rejected],
        }


class FileSource:
    """The records of ``stream`` (named ``name`` in messages) as batches of at most
    ``batch_size`` checked events; bad records go to :attr:`summary` as rejections.

    One pass reads the stream to its end; :attr:`reader` counts the bytes read.
    """

    def __init__(self, stream: IO[bytes], name: str, *, fmt: str, batch_size: int) -> None:
        self.reader = CountingReader(stream)
        self.name = name
        self.fmt = fmt
        self.batch_size = batch_size
        self.summary = FileSummary()

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """Batches of the good records, in input order; the rest are counted as rejected."""
        events: list[dict[str, Any]] = []
        #: (input index, where) of each event in ``events``.
        origins: list[tuple[int | None, str]] = []
        for index, record in enumerate(read_records(self.reader, self.name, self.fmt)):
            self.summary.read += 1
            try:
                event = to_event(record, self.fmt)
            except EventValidationError as exc:
                self.summary.refuse(record.where, str(exc), index)
                continue
            events.append(event)
            origins.append((index, record.where))
            if len(events) >= self.batch_size:
                yield Batch(events, origins=origins)
                events, origins = [], []
        if events:
            yield Batch(events, origins=origins)
