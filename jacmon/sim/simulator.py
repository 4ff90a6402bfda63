"""The seeded learner-population simulator, for the demo, tests and benchmarks.

A :class:`Simulator` merges every simulated learner's events into one stream in
simulated-time order, numbers them (``sim-<seed>-<learner index>-<n>``: the
learner's n-th event, whatever the start) and stamps them (``ts`` in ISO 8601
UTC, on the simulated clock). The same seed, population
size, start and catalog give the same events, byte for byte. Every event
follows the ingest contract of :mod:`jacmon.events`.

Usage::

    clock = SimClock(datetime.now(UTC), speed=600)   # 10 simulated minutes per second
    sim = Simulator(seed=7, learners=50, clock=clock, history=timedelta(days=2))
    backlog = list(sim.events_until(clock.now()))     # two simulated days of history
    ...
    for event in sim.events_until(clock.now()):       # what happened since
        ...
"""

from __future__ import annotations

import heapq
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import Any

from jacmon.errors import UsageError
from jacmon.sim.catalog import DEMO_CATALOG, SimModule, SimPath, load_catalog
from jacmon.sim.clock import SimClock, require_aware
from jacmon.sim.learner import PASS_MARK, learner_events
from jacmon.sim.population import ARCHETYPE_NAMES, LearnerProfile, make_population

__all__ = [
    "ARCHETYPE_NAMES",
    "DEMO_CATALOG",
    "PASS_MARK",
    "LearnerProfile",
    "SimClock",
    "SimModule",
    "SimPath",
    "Simulator",
    "format_ts",
    "generate_history",
    "load_catalog",
]

DEFAULT_ENROLL_WINDOW = timedelta(hours=12)
"""How long after the population start learners keep enrolling (most enrol early)."""


def format_ts(t: float) -> str:
    """Seconds since the epoch -> ISO 8601 UTC with milliseconds (``2026-01-05T10:00:00.250Z``)."""
    millis = round(t * 1000.0)
    seconds, millis = divmod(millis, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


class Simulator:
    """A seeded population of ``learners`` learners taking the catalog's paths.

    ``start`` is the simulated time at which the clock starts (aware datetime;
    ``None``: now, UTC). The population starts ``history`` earlier, so that
    much simulated past is ready at once (``events_until(start)``). ``speed``
    is simulated seconds per wall second; pass ``clock`` instead to share a
    :class:`SimClock` with other code (then ``start`` and ``speed`` come from it).
    ``catalog`` is the TOML catalog file (``None``: the demo catalog) or the
    paths themselves. Learners enrol over ``enroll_window`` from the population
    start, most of them early.
    """

    def __init__(
        self,
        seed: int = 0,
        learners: int = 100,
        start: datetime | None = None,
        speed: float = 60.0,
        *,
        clock: SimClock | None = None,
        history: timedelta = timedelta(0),
        enroll_window: timedelta = DEFAULT_ENROLL_WINDOW,
        catalog: Path | Sequence[SimPath] | None = None,
    ) -> None:
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UsageError(f"seed has value {seed!r}. Expected a whole number.")
        if history < timedelta(0):
            raise UsageError(f"history has value {history}. Expected zero or a positive duration.")
        if enroll_window < timedelta(0):
            raise UsageError(
                f"enroll_window has value {enroll_window}. Expected zero or a positive duration."
            )
        if clock is None:
            if start is None:
                start = datetime.now(UTC).replace(microsecond=0)
            clock = SimClock(require_aware(start, "start"), speed)
        self.seed = seed
        self.clock = clock
        #: Simulated moment the population starts: the clock's start minus ``history``.
        self.population_start: datetime = clock.start - history
        if catalog is None or isinstance(catalog, Path):
            self.paths: tuple[SimPath, ...] = load_catalog(catalog)
        else:
            self.paths = tuple(catalog)
        self._paths_by_id = {p.id: p for p in self.paths}
        self._enroll_window_s = enroll_window.total_seconds()
        population = make_population(
            seed,
            learners,
            start=self.population_start.timestamp(),
            enroll_window_s=self._enroll_window_s,
            paths=self.paths,
        )
        #: The learners, by index.
        self.learners: list[LearnerProfile] = [profile for profile, _rng in population]
        self._cursor: Iterator[tuple[float, dict[str, Any]]] | None = None
        self._pending: tuple[float, dict[str, Any]] | None = None
        #: Events handed out so far by :meth:`events_until`.
        self.emitted = 0

    # -- the event stream ----------------------------------------------------

    def _timed(self) -> Iterator[tuple[float, dict[str, Any]]]:
        """Every event with its time (epoch seconds), in simulated-time order, from the start."""
        # Fresh random streams (the traits come out the same): a second pass replays the first.
        population = make_population(
            self.seed,
            len(self.learners),
            start=self.population_start.timestamp(),
            enroll_window_s=self._enroll_window_s,
            paths=self.paths,
        )
        heap: list[list[Any]] = []
        for profile, rng in population:
            stream = learner_events(profile, rng, self._paths_by_id)
            first = next(stream, None)
            if first is not None:
                heap.append([first[0], profile.index, first[1], stream])
        heapq.heapify(heap)
        # Ids name the seed, the learner and its n-th event, not the start: a second run
        # with the same seed (whatever its start) re-sends the same events, which the
        # server counts as duplicates instead of storing every learner's history twice.
        numbers: dict[int, int] = {}
        while heap:
            entry = heap[0]
            t, index, body = entry[0], entry[1], entry[2]
            numbers[index] = numbers.get(index, 0) + 1
            event_id = f"sim-{self.seed}-{index}-{numbers[index]}"
            event = {"id": event_id, "type": body.pop("type"), "ts": format_ts(t)}
            event.update(body)
            following = next(entry[3], None)
            if following is None:
                heapq.heappop(heap)
            else:
                entry[0], entry[2] = following
                heapq.heapreplace(heap, entry)
            yield t, event

    def events(self) -> Iterator[dict[str, Any]]:
        """Every event from the population start, in simulated-time order (a fresh pass each call).

        Ends when every learner has finished or dropped out, which may be never
        in practice: bound it (``itertools.islice``, or :meth:`events_until`).
        """
        return (event for _t, event in self._timed())

    def events_until(self, until: datetime) -> Iterator[dict[str, Any]]:
        """The events with ``ts <= until`` not yet handed out by an earlier call, in order.

        Calls continue one stream: ``events_until(t1)`` then ``events_until(t2)``
        gives each event once. Stop iterating early and the rest stays pending.
        """
        limit = require_aware(until, "until").timestamp()
        if self._cursor is None:
            self._cursor = self._timed()
        while True:
            if self._pending is None:
                self._pending = next(self._cursor, None)
                if self._pending is None:
                    return
            t, event = self._pending
            if t > limit:
                return
            self._pending = None
            self.emitted += 1
            yield event

    def next_event_time(self) -> datetime | None:
        """Simulated time of the next event :meth:`events_until` will hand out (None: no more)."""
        if self._cursor is None:
            self._cursor = self._timed()
        if self._pending is None:
            self._pending = next(self._cursor, None)
        if self._pending is None:
            return None
        return datetime.fromtimestamp(self._pending[0], UTC)

    def simulated_now(self, wall_time: float | None = None) -> datetime:
        """Simulated time at ``wall_time`` (the clock's wall seconds; ``None``: now)."""
        return self.clock.now() if wall_time is None else self.clock.simulated_at(wall_time)

    def due_events(self) -> Iterator[dict[str, Any]]:
        """The events whose simulated time has come and that were not handed out yet."""
        return self.events_until(self.clock.now())


def generate_history(
    *,
    seed: int = 0,
    learners: int = 1000,
    days: float | None = None,
    events: int | None = None,
    end: datetime | None = None,
    catalog: Path | Sequence[SimPath] | None = None,
) -> Iterator[dict[str, Any]]:
    """A simulated past, as fast as it can be generated, for benchmarks and files.

    The population starts ``days`` before ``end`` (``None``: now, UTC) and the
    events stop at ``end`` or after ``events`` events, whichever comes first.
    With only ``events`` given, ``days`` defaults to 30.
    """
    if days is None and events is None:
        raise UsageError("generate_history needs a bound: pass days=D or events=N (or both).")
    if days is None:
        days = 30.0
    if not days > 0:
        raise UsageError(f"days has value {days!r}. Expected a number of days above 0.")
    if events is not None and (
        isinstance(events, bool) or not isinstance(events, int) or events < 1
    ):
        raise UsageError(f"events has value {events!r}. Expected a whole number of at least 1.")
    if end is None:
        end = datetime.now(UTC).replace(microsecond=0)
    sim = Simulator(
        seed=seed,
        learners=learners,
        start=require_aware(end, "end"),
        history=timedelta(days=days),
        catalog=catalog,
    )
    stream = sim.events_until(end)
    return stream if events is None else islice(stream, events)
