"""The ``/ws/ingest`` endpoint: batches in, acks out after commit.

A frame is a JSON array of events, or ``{"type": "batch", "events": [...],
"cursor": {"name": ..., "value": ...}}`` to store a producer's watermark with
the batch. Invalid events are rejected one by one (index and reason) and the
valid ones of the same batch are stored. Bad frames get an ``error`` frame;
the connection stays open: nothing a producer sends closes it with 1011.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

import msgspec
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from jacmon.bus import EventsCommitted
from jacmon.client.ingest import Ack
from jacmon.config import ServerSettings
from jacmon.errors import EventValidationError
from jacmon.events import (
    MAX_ID_LENGTH,
    Event,
    TimeBounds,
    describe,
    is_valid_unicode,
    validate_event,
)
from jacmon.plain_events import decode_plain_events
from jacmon.protocol import ServerType, Stream, envelope, error_data
from jacmon.server.context import ServerContext
from jacmon.server.ops import IngestCounters
from jacmon.store import ReceivedRecord, StorageUnavailable

log = logging.getLogger("jacmon.ingest")

#: Most events accepted in one frame.
MAX_BATCH_EVENTS = 10_000
#: How a frame that is a JSON array starts (bytes or text): the fast path's candidates.
_ARRAY_START = (b"[", "[")

#: Longest cursor name accepted, in characters (``lrs:`` and an endpoint URL, say).
MAX_CURSOR_NAME = 1024

#: Longest cursor value accepted, in characters (a watermark: a time, an offset, a token).
MAX_CURSOR_VALUE = 4096

#: Seconds between two warnings about stored out-of-range event times (``warn`` mode).
OUT_OF_RANGE_WARNING_INTERVAL_S = 60.0


def _error(code: str, message: str, **details: Any) -> bytes:
    return envelope(Stream.INGEST, ServerType.ERROR, 0, error_data(code, message, **details))


def _parse_cursor(value: Any) -> tuple[str, str]:
    """The (name, value) of a batch's cursor; ValueError saying what was expected."""
    expected = (
        f'{{"name": "...", "value": "..."}}: a name of 1 to {MAX_CURSOR_NAME} characters '
        f"and a value of at most {MAX_CURSOR_VALUE}, both valid Unicode text"
    )
    if not isinstance(value, dict):
        raise ValueError(f"'cursor' is {describe(value)}; expected {expected}")
    name, text = value.get("name"), value.get("value")
    if not isinstance(name, str) or not 0 < len(name) <= MAX_CURSOR_NAME:
        raise ValueError(f"'cursor.name' is {describe(name)}; expected {expected}")
    if not isinstance(text, str) or len(text) > MAX_CURSOR_VALUE:
        raise ValueError(f"'cursor.value' is {describe(text)}; expected {expected}")
    for part, shown in ((name, "cursor.name"), (text, "cursor.value")):
        if not is_valid_unicode(part):
            raise ValueError(f"'{shown}' is {describe(part)}; expected {expected}")
    return name, text


def _ping_id(value: Any) -> Any:
    """The ping's ``id`` if it can be echoed: a short text, a finite number or null."""
    if value is None:
        return value
    if isinstance(value, int | float) and abs(value) < 2**53:
        return value  # NaN and Infinity fail the comparison: they are not JSON
    if isinstance(value, str) and len(value) <= MAX_ID_LENGTH and is_valid_unicode(value):
        return value
    raise ValueError(
        f"ping 'id' is {describe(value)}; expected null, a number or text of at most "
        f"{MAX_ID_LENGTH} characters"
    )


#: The fast path of :func:`_decode` (one decoder for the process: it keeps no state).
_FAST_DECODER = msgspec.json.Decoder()


def _decode(frame: str | bytes) -> Any:
    """The frame's JSON value; ValueError with the reason if it is not JSON.

    msgspec decodes what it accepts about 3x faster than ``json.loads``
    (bench/bench_decode.py) into the same values. What it refuses (the ``NaN`` and
    ``Infinity`` literals, numbers beyond a double, lone surrogates, malformed
    JSON) goes to ``json.loads``, whose rules and messages decide as before: a
    batch with a NaN score is still decoded and that one event rejected by name.

    The decoder recurses once per nesting level: a frame nested deeper than
    Python's recursion limit allows (about 980 levels) is refused whole. Events
    nested less deeply are decoded and judged one by one (the validator bounds
    extras to 32 levels).
    """
    try:
        return _FAST_DECODER.decode(frame)
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(frame)
    except RecursionError:
        raise ValueError("it nests arrays or objects too deeply") from None
    except UnicodeDecodeError as exc:
        raise ValueError(f"it is not UTF-8 ({exc.reason})") from None
    except ValueError as exc:
        raise ValueError(str(exc)) from None


def time_bounds(settings: ServerSettings, now: float) -> TimeBounds:
    """The event times accepted at ``now`` (the server's clock: simulated in the demo)."""
    earliest = datetime.fromisoformat(settings.earliest_event_ts).timestamp()
    skew = settings.max_clock_skew_s
    return TimeBounds(earliest=earliest, latest=now + skew, skew_s=skew)


class _OutOfRangeWarnings:
    """Logs stored out-of-range event times at most once a minute, with a count."""

    def __init__(self) -> None:
        self.last_logged = float("-inf")
        self.unlogged = 0

    def note(self, reason: str) -> None:
        self.unlogged += 1
        now = time.monotonic()
        if now - self.last_logged < OUT_OF_RANGE_WARNING_INTERVAL_S:
            return
        log.warning("stored %d event(s) with out-of-range ts, e.g. %s", self.unlogged, reason)
        self.last_logged = now
        self.unlogged = 0


class IngestService:
    """Ingest for one server: producer connections on ``/ws/ingest`` and in-process
    producers (:meth:`sink`), the same path: validate, store in one transaction,
    publish the committed batch to the bus, acknowledge."""

    def __init__(self, ctx: ServerContext):
        self.ctx = ctx
        self.counters = IngestCounters()
        #: Open ``/ws/ingest`` connections.
        self.connections = 0
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._out_of_range = _OutOfRangeWarnings()

    async def wait_idle(self) -> None:
        """Return once no batch is between arrival and commit (shutdown waits for it)."""
        await self._idle.wait()

    @contextlib.asynccontextmanager
    async def _batch_in_flight(self) -> AsyncIterator[None]:
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    async def handle(self, ws: ServerConnection) -> None:
        """Serve one producer connection until it closes."""
        self.connections += 1
        try:
            async for frame in ws:
                reply = await self._answer(frame)
                await ws.send(reply, text=True)
        except ConnectionClosed:
            pass
        finally:
            self.connections -= 1

    async def _answer(self, frame: str | bytes) -> bytes:
        """The reply to one frame: an ack, a pong, a cursor or an error; never an exception."""
        try:
            return await self._handle_frame(frame)
        except StorageUnavailable as exc:
            return _error(
                "storage_unavailable",
                # Not "not stored": a connection lost during COMMIT leaves that unknown. What
                # holds is that nothing is acknowledged, and a resend stores nothing twice.
                f"batch not acknowledged: {exc}; send it again later (events already "
                "stored are recognised by id and stored once)",
            )
        except Exception:
            # A bug must not close the producer with 1011 and lose its other batches.
            log.exception("ingest frame failed")
            return _error(
                "internal_error",
                "the server failed on this frame and stored nothing of it; see the server log",
            )

    async def _handle_frame(self, frame: str | bytes) -> bytes:
        started = time.perf_counter()
        if frame[:1] in _ARRAY_START:
            plain = decode_plain_events(frame)
            if plain is not None and len(plain) <= MAX_BATCH_EVENTS:
                # Every event valid as it stands: no generic decode, no per-field checks.
                ack = await self.store_validated(*self.check_times(plain), cursor=None)
                self.counters.latency.observe(time.perf_counter() - started)
                return envelope(Stream.INGEST, ServerType.ACK, ack["last_seq"], ack)
        try:
            message = _decode(frame)
        except ValueError as exc:
            return _error(
                "bad_json", f"frame is not valid JSON ({exc}); send a JSON array of events"
            )
        cursor = None
        if isinstance(message, dict):
            kind = message.get("type")
            if kind == "ping":
                try:
                    ping_id = _ping_id(message.get("id"))
                except ValueError as exc:
                    return _error("bad_message", str(exc))
                return envelope(Stream.INGEST, ServerType.PONG, 0, {"id": ping_id})
            if kind == "cursor.get":
                name = message.get("name")
                if not isinstance(name, str) or not name or not is_valid_unicode(name):
                    return _error(
                        "bad_message", f"cursor.get needs a 'name' string, got {describe(name)}"
                    )
                value = await self.ctx.store.get_cursor(name)
                return envelope(Stream.INGEST, ServerType.CURSOR, 0, {"name": name, "value": value})
            if kind != "batch":
                return _error(
                    "bad_message",
                    f"message type {describe(kind)} is unknown on /ws/ingest; send a JSON array of "
                    "events, or an object with type 'batch', 'cursor.get' or 'ping'",
                )
            events_raw = message.get("events")
            if "cursor" in message and message["cursor"] is not None:
                try:
                    cursor = _parse_cursor(message["cursor"])
                except ValueError as exc:
                    return _error("bad_message", str(exc))
        else:
            events_raw = message
        if not isinstance(events_raw, list):
            return _error(
                "bad_batch",
                f"batch is {type(events_raw).__name__}; expected a JSON array of event objects",
            )
        if len(events_raw) > MAX_BATCH_EVENTS:
            return _error(
                "batch_too_large",
                f"batch has {len(events_raw)} events; send at most {MAX_BATCH_EVENTS} per frame",
            )
        ack = await self.ingest_events(events_raw, cursor=cursor)
        self.counters.latency.observe(time.perf_counter() - started)
        return envelope(Stream.INGEST, ServerType.ACK, ack["last_seq"], ack)

    def _validate_batch(
        self, events_raw: list[Any]
    ) -> tuple[list[Event], list[int], list[dict[str, Any]]]:
        """(valid events, their indexes in the batch, rejections as ``{"index", "error"}``)."""
        checked: list[Event | None] = []
        rejected: list[dict[str, Any]] = []
        for index, body in enumerate(events_raw):
            try:
                checked.append(validate_event(body))
            except EventValidationError as exc:
                rejected.append({"index": index, "error": str(exc)})
                checked.append(None)
        valid, indexes, out_of_range = self.check_times(checked)
        # In batch order: the contract's rejections and the times refused, by index.
        return valid, indexes, sorted(rejected + out_of_range, key=lambda r: r["index"])

    def check_times(
        self, events: Sequence[Event | None]
    ) -> tuple[list[Event], list[int], list[dict[str, Any]]]:
        """(events within the accepted times, their indexes, refusals as ``{"index",
        "error"}``); ``None`` entries (already refused) are skipped. An event outside
        the bounds is refused or only noted, as ``server.out_of_range_ts`` says."""
        valid: list[Event] = []
        indexes: list[int] = []
        rejected: list[dict[str, Any]] = []
        settings = self.ctx.settings
        bounds = time_bounds(settings, self.ctx.now())
        reject_out_of_range = settings.out_of_range_ts == "reject"
        for index, event in enumerate(events):
            if event is None:
                continue
            problem = bounds.problem(event)
            if problem is not None:
                if reject_out_of_range:
                    rejected.append({"index": index, "error": str(problem)})
                    continue
                self._out_of_range.note(str(problem))
            valid.append(event)
            indexes.append(index)
        return valid, indexes, rejected

    async def ingest_events(
        self, events_raw: list[Any], *, cursor: tuple[str, str] | None = None
    ) -> dict[str, Any]:
        """Validate, store (one transaction) and publish one batch; returns the ack's data.

        ``cursor`` is stored with the batch unless every event of a non-empty batch
        was rejected: a producer's watermark must not move past events that are not
        stored. Raises StorageUnavailable when the storage fails (nothing stored).
        """
        valid, indexes, rejected = self._validate_batch(events_raw)
        return await self.store_validated(
            valid, indexes, rejected, cursor=cursor, batch_size=len(events_raw)
        )

    async def store_validated(
        self,
        valid: list[Event],
        indexes: list[int],
        rejected: list[dict[str, Any]],
        *,
        cursor: tuple[str, str] | None = None,
        batch_size: int | None = None,
        records: Sequence[ReceivedRecord] = (),
    ) -> dict[str, Any]:
        """Store the valid events of one batch (one transaction) and publish them; the
        ack's data. ``batch_size``: how many events the batch had (default: valid +
        rejected); ``records``: the pushed records they came from, kept with them."""
        if batch_size is None:
            batch_size = len(valid) + len(rejected)
        keep_cursor = cursor is not None and (bool(valid) or not batch_size)
        store = self.ctx.store
        async with self._batch_in_flight():
            outcome = await store.ingest(
                valid, cursor=cursor if keep_cursor else None, records=records
            )
        counters = self.counters
        counters.batches += 1
        counters.accepted += len(outcome.stored)
        counters.duplicates += len(outcome.duplicate_indexes)
        counters.rejected += len(rejected)
        if outcome.stored:
            # No await since the commit: every subscriber has the batch before anything
            # else runs (the streams' register-snapshot-live handshake relies on it).
            self.ctx.bus.publish(EventsCommitted(outcome.stored))
        ack: dict[str, Any] = {
            "accepted": len(outcome.stored),
            "duplicates": len(outcome.duplicate_indexes),
            "duplicate_indexes": [indexes[i] for i in outcome.duplicate_indexes],
            "rejected": rejected,
            "last_seq": store.last_seq,
        }
        if cursor is not None:
            ack["cursor_stored"] = keep_cursor
        return ack

    def sink(self) -> ServerSink:
        """An in-process producer's way in (the LRS tailer): the same path, no socket."""
        return ServerSink(self)


class ServerSink:
    """In-process ingest for producers inside the server (the LRS tailer): same path, no socket."""

    def __init__(self, service: IngestService):
        self.service = service

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        return Ack.from_message(await self.service.ingest_events(list(events), cursor=cursor))

    async def get_cursor(self, name: str) -> str | None:
        return await self.service.ctx.store.get_cursor(name)
