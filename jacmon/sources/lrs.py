"""Tail a Learning Record Store: poll ``GET /statements``, map, ingest, keep a watermark.

The watermark is the ``stored`` time of the newest statement already ingested.
It lives in the jacmon database as the cursor ``lrs:<endpoint>``, written in the
same transaction as the events it covers (``send_batch(..., cursor=...)``), so
after any crash or restart it is never ahead of what was committed. Each poll
asks for statements stored since ``watermark - overlap`` (an LRS may make a
statement visible a little after its ``stored`` time); statements read twice
are dropped by id here, and by the server's duplicate check after a restart.

:class:`LrsTailer` is a source of :mod:`jacmon.sources.pump`: one poll is one
pass, one page one batch. :func:`run_tailer` is the entry point for ``jacmon
serve`` (from the ``[lrs]`` settings); ``jacmon ingest --lrs`` drives
:class:`LrsTailer` directly.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from jacmon.errors import ConfigError, JacmonError
from jacmon.sources.lrs_client import LrsClient, LrsError, check_endpoint
from jacmon.sources.pump import Backoff, Batch, Outage, Pump, Sink, Tally
from jacmon.sources.xapi import Skipped, map_statements, statement_stored

# The logger's name predates the move to jacmon.sources: log filters keep working.
logger = logging.getLogger("jacmon.lrs")

#: How many unmappable statements (with reasons) :class:`TailStats` keeps for the report.
MAX_SKIPPED_KEPT = 1000


@dataclass(slots=True)
class TailerSettings:
    """How to tail one LRS. ``[lrs]`` in the config file uses the same names."""

    #: The xAPI endpoint, like ``http://lrs.example.com/xAPI``.
    url: str
    user: str | None = None
    password: str | None = None
    #: Start from statements stored after this ISO 8601 time instead of the stored watermark.
    since: str | None = None
    # Timing
    #: Seconds between polls once caught up (``--follow``).
    poll_interval_s: float = 5.0
    #: Seconds re-read before the watermark on every poll (late-visible statements).
    overlap_s: float = 60.0
    #: Longest wait between retries while the LRS or the jacmon server is away, in seconds.
    retry_max_s: float = 30.0
    #: Seconds one LRS request may take.
    timeout_s: float = 30.0
    # Limits
    #: Statements asked for per LRS page (the LRS may cap it lower).
    page_size: int = 500

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> TailerSettings:
        """Build from the ``[lrs]`` table; every bad value raises :class:`ConfigError`."""
        known = set(cls.__dataclass_fields__) | {"enabled"}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"Config 'lrs.{unknown[0]}' is not a setting. Known keys in [lrs]: "
                + ", ".join(sorted(known))
            )
        url = values.get("url")
        if not isinstance(url, str) or not url:
            raise ConfigError(
                f"Config 'lrs.url' has value {url!r}. Expected the LRS xAPI endpoint, "
                "like 'http://lrs.example.com/xAPI'."
            )
        try:
            check_endpoint(url)
        except LrsError as exc:
            raise ConfigError(f"Config 'lrs.url': {exc}") from None
        settings = cls(url=url)
        for name in ("user", "password", "since"):
            value = values.get(name)
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"Config 'lrs.{name}' has value {value!r}. Expected a string.")
            setattr(settings, name, value)
        for name in ("poll_interval_s", "overlap_s", "retry_max_s", "timeout_s"):
            if values.get(name) is not None:
                zero_ok = name == "overlap_s"
                setattr(settings, name, _positive(f"lrs.{name}", values[name], float, zero_ok))
        if values.get("page_size") is not None:
            settings.page_size = int(_positive("lrs.page_size", values["page_size"], int))
        if settings.since is not None:
            _check_since(settings.since, "'lrs.since' (--since)")
        return settings


def lrs_enabled(values: Mapping[str, Any]) -> bool:
    """Whether the ``[lrs]`` table asks the server to run a tailer (a url, not disabled)."""
    enabled = values.get("enabled", True)
    truthy = enabled is True or (
        isinstance(enabled, str) and enabled.lower() in ("1", "true", "yes", "on")
    )
    return bool(values.get("url")) and truthy


def check_lrs_table(values: Mapping[str, Any]) -> TailerSettings | None:
    """Validate the ``[lrs]`` table as ``serve`` reads it: raise ConfigError for any bad key.

    Unknown keys are refused even when no tailer runs (as in every other
    section); the full settings are checked when one does. Returns them, or
    None when the server runs no tailer.
    """
    known = set(TailerSettings.__dataclass_fields__) | {"enabled"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(
            f"Config 'lrs.{unknown[0]}' is not a setting. Known keys in [lrs]: "
            + ", ".join(sorted(known))
        )
    if not lrs_enabled(values):
        return None
    return TailerSettings.from_mapping(values)


def _positive(where: str, value: Any, kind: type, zero_ok: bool = False) -> float:
    try:
        if isinstance(value, bool):
            raise ValueError
        number = kind(value)
        if not math.isfinite(number) or number < 0 or (number == 0 and not zero_ok):
            raise ValueError
    except (TypeError, ValueError):
        bound = ">= 0" if zero_ok else "> 0"
        expected = f"a whole number {bound}" if kind is int else f"a number of seconds {bound}"
        raise ConfigError(f"Config '{where}' has value {value!r}. Expected {expected}.") from None
    return number


def _check_since(text: str, where: str = "since") -> float:
    """Seconds since the epoch for an ISO 8601 time with a zone, else :class:`ConfigError`."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"{where} has value {text!r}. Expected an ISO 8601 time with a zone, "
            "like '2026-01-05T10:00:00Z'."
        )
    return moment.timestamp()


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


@dataclass(slots=True)
class TailStats(Tally):
    """Running totals of one tailer, for the progress display and the final report.

    The pump's :class:`~jacmon.sources.pump.Tally` (accepted, duplicates, rejected
    events named ``statement <id>``, outages: times the LRS or the server could not
    be reached, or a fault was waited out) plus what only the tailer knows.
    """

    #: Statements read from the LRS (re-reads within the overlap window not counted).
    fetched: int = 0
    #: Statements that could not be mapped (see :attr:`skipped`).
    unmappable: int = 0
    #: The first :data:`MAX_SKIPPED_KEPT` unmappable statements and why.
    skipped: list[Skipped] = field(default_factory=list)
    #: Polls done (one poll reads every page there is).
    polls: int = 0
    #: The watermark now: ``stored`` of the newest statement ingested (ISO 8601), or None.
    watermark: str | None = None


class LrsTailer:
    """Reads an LRS page by page and sends what it maps to ``sink`` with the watermark.

    A :class:`~jacmon.sources.pump.FollowedSource`: :meth:`batches` is one poll.
    ``on_progress`` is called with the :class:`TailStats` after every page.
    """

    def __init__(
        self,
        settings: TailerSettings,
        sink: Sink,
        *,
        on_progress: Callable[[TailStats], None] | None = None,
    ) -> None:
        self.settings = settings
        self.sink = sink
        self.client = LrsClient(
            settings.url,
            user=settings.user,
            password=settings.password,
            timeout=settings.timeout_s,
        )
        self.cursor_name = f"lrs:{self.client.endpoint}"
        self.stats = TailStats()
        self.on_progress = on_progress
        self._watermark: float | None = None
        # Statement ids read within the overlap window: re-reads are dropped here.
        self._recent: dict[str, float] = {}
        self._loaded = False
        self._reloading = False

    def reload(self) -> None:
        """Re-read the watermark from the sink before the next poll.

        Needed after the sink failed: a batch whose ack was lost may have been committed.
        """
        self._loaded = False
        self._reloading = True

    async def load_watermark(self) -> None:
        """Start from ``settings.since`` if given, else the cursor stored in the jacmon database.

        After :meth:`reload` the stored cursor wins (``since`` only picks the first start).
        """
        text = self.settings.since if not self._reloading else None
        if text is None:
            text = await self.sink.get_cursor(self.cursor_name)
            if text is None:
                text = self.settings.since
        self._set_watermark(text)
        self._loaded = True
        logger.info("lrs %s: starting after %s", self.client.endpoint, text or "the beginning")

    def _set_watermark(self, text: str | None) -> None:
        if text is None:
            self._watermark, self.stats.watermark = None, None
            return
        try:
            self._watermark = _check_since(text)
        except ConfigError:
            raise JacmonError(
                f"LRS watermark {text!r} for {self.cursor_name} is not an ISO 8601 time; "
                "pass --since to start over from a given time"
            ) from None
        self.stats.watermark = text

    async def poll(self) -> int:
        """Read every page there is now and ingest it; return how many new statements were read."""
        before = self.stats.fetched
        await Pump(self.sink, self.stats).drain(self)
        return self.stats.fetched - before

    async def batches(self) -> AsyncGenerator[Batch, None]:
        """One poll as batches, one per page, each with the cursor it may move.

        The pump resumes this only once the sink stored a batch: the watermark
        moves, and the page's statement ids are remembered, after that.
        """
        if not self._loaded:
            await self.load_watermark()
        since: str | None = None
        if self._watermark is not None:
            # With no overlap, send the watermark text as stored: no float round trip.
            overlap = self.settings.overlap_s
            since = _iso(self._watermark - overlap) if overlap > 0 else self.stats.watermark
        url = self.client.statements_url(since=since, limit=self.settings.page_size)
        # The cursor may only move with a page if pages come oldest first; an LRS
        # that ignores 'ascending' gets its watermark moved once the poll is done.
        ordered = True
        #: The newest (stored time, stored text) of the pages read so far.
        poll_max: tuple[float, str] | None = None
        while url is not None:
            page = await self.client.fetch(url)
            next_url = (
                self.client.resolve_more(page.more) if page.more and page.statements else None
            )
            # A 'more' that points to the same page again would loop forever.
            url = next_url if next_url != url else None
            # Each statement's stored time, parsed once.
            timed = [(s, statement_stored(s)) for s in page.statements]
            fresh = [(s, t) for s, t in timed if not self._seen(s)]
            stored = [(t, s["stored"]) for s, t in timed if t]
            page_max = max(stored) if stored else None
            if stored and poll_max is not None and min(stored)[0] < poll_max[0]:
                ordered = False
            if page_max is not None:
                poll_max = page_max if poll_max is None else max(poll_max, page_max)
            cursor = self._cursor_after(page_max if ordered else None)
            yield self._map([s for s, _ in fresh], cursor)
            self._committed(cursor)
            for statement, stored_at in fresh:
                self._remember(statement, stored_at)
            if self.on_progress is not None:
                self.on_progress(self.stats)
        if not ordered and poll_max is not None:
            cursor = self._cursor_after(poll_max)
            if cursor is not None:
                yield Batch([], cursor)
                self._committed(cursor)
        self._forget_old()
        self.stats.polls += 1

    def _cursor_after(self, page_max: tuple[float, str] | None) -> tuple[str, str] | None:
        """The cursor to store with a batch: the page's newest ``stored`` if it moves forward."""
        if page_max is None or (self._watermark is not None and page_max[0] <= self._watermark):
            return None
        return (self.cursor_name, page_max[1])

    def _map(self, statements: list[dict[str, Any]], cursor: tuple[str, str] | None) -> Batch:
        """The batch for one page's new statements; the unmappable ones are counted here.

        With no events and no cursor the pump sends nothing.
        """
        outcome = map_statements(statements, start=self.stats.fetched)
        self.stats.fetched += len(statements)
        for skipped in outcome.skipped:
            self.stats.unmappable += 1
            if len(self.stats.skipped) < MAX_SKIPPED_KEPT:
                self.stats.skipped.append(skipped)
            logger.warning("lrs: skipped statement %s: %s", skipped.statement_id, skipped.reason)
        # A rejection names the statement: mapped events keep the statement id.
        origins = [(None, f"statement {event.get('id')}") for event in outcome.events]
        return Batch(outcome.events, cursor, origins)

    def _committed(self, cursor: tuple[str, str] | None) -> None:
        """The batch with ``cursor`` is stored: the watermark moves to it."""
        if cursor is not None:
            self._set_watermark(cursor[1])

    def _seen(self, statement: Any) -> bool:
        return isinstance(statement, dict) and statement.get("id") in self._recent

    def _remember(self, statement: Any, stored: float | None) -> None:
        """Note a statement's id with its ``stored`` time (None: unknown, kept for good)."""
        if isinstance(statement, dict) and isinstance(statement.get("id"), str):
            self._recent[statement["id"]] = stored if stored is not None else math.inf

    def _forget_old(self) -> None:
        """Drop ids older than the overlap window: they will not be read again."""
        if self._watermark is None:
            return
        horizon = self._watermark - self.settings.overlap_s - 1.0
        self._recent = {k: t for k, t in self._recent.items() if t >= horizon}

    async def follow(
        self,
        stop: asyncio.Event,
        *,
        on_outage: Callable[[Outage], None] | None = None,
        retry_faults: bool = False,
    ) -> None:
        """Poll until ``stop`` is set, waiting ``poll_interval_s`` once caught up.

        While the LRS (or the jacmon server) is unreachable it retries with a
        growing delay, from ``poll_interval_s`` up to ``retry_max_s``; a page
        interrupted by an outage is read again from the watermark.
        :class:`LrsError` that retrying cannot fix is raised, unless
        ``retry_faults`` (then it is logged and retried every ``retry_max_s``).
        ``on_outage`` reports each wait (default: :meth:`log_outage`).
        """
        pump = Pump(
            self.sink,
            self.stats,
            on_outage=on_outage or self.log_outage,
            retry_faults=retry_faults,
        )
        backoff = Backoff(first_s=self.settings.poll_interval_s, max_s=self.settings.retry_max_s)
        await pump.follow(self, stop, interval_s=self.settings.poll_interval_s, backoff=backoff)

    def log_outage(self, outage: Outage) -> None:
        """Log one wait of :meth:`follow`: a warning while something is away, an error for
        a fault."""
        if outage.side == "fault":
            logger.error("lrs tailer: %s; retrying in %.0fs", outage.error, outage.wait_s)
        elif outage.side == "sink":
            logger.warning(
                "lrs: jacmon server away (%s); retrying in %.1fs", outage.error, outage.wait_s
            )
        else:
            logger.warning("lrs unavailable (%s); retrying in %.1fs", outage.error, outage.wait_s)


async def run_tailer(
    settings_lrs: Mapping[str, Any],
    sink: Sink,
    stop: asyncio.Event,
) -> TailStats:
    """Tail the LRS of the ``[lrs]`` settings into ``sink`` until ``stop`` is set.

    ``sink`` stores events and the cursor in one transaction (see
    :class:`~jacmon.sources.pump.Sink`). Nothing short of ``stop`` ends it: LRS
    outages are retried, and errors retrying cannot fix (bad credentials, a sink
    failure) are logged and retried every ``retry_max_s`` so a fixed LRS is picked
    up without restarting the server. Returns the totals when stopped.
    """
    settings = TailerSettings.from_mapping(settings_lrs)
    tailer = LrsTailer(settings, sink)
    await tailer.follow(stop, retry_faults=True)
    return tailer.stats
