"""The metrics sampler: one sample every ``interval_s``, kept for the snapshot's history."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from jacmon.analytics.live import LiveWindows, RateMeter
from jacmon.bus import Bus, EventsCommitted
from jacmon.store import Store, StoredEvent

log = logging.getLogger("jacmon.sampler")

#: Keys of the platform sample that a learner-scoped sample carries as null.
PLATFORM_ONLY_KEYS = ("ingest_rate", "connected_clients", "velocity")


@dataclass(eq=False)
class WatchedLearner:
    """Windows and sample history for one learner, kept while a scoped client needs them."""

    windows: LiveWindows
    history: deque[dict[str, Any]]
    #: Scoped metrics clients of this learner connected now.
    clients: int = 1
    #: Fills the windows from the store; samples wait until it is done.
    priming: asyncio.Task | None = field(default=None, repr=False)

    @property
    def primed(self) -> bool:
        return self.priming is None or self.priming.done()


class MetricsSampler:
    """Rolling windows fed by ingest, sampled on a timer and published on the metrics stream.

    ``clock`` returns the current time in seconds since the epoch: the wall
    clock normally, the simulated clock in the demo (event times are on it).
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        interval_s: float,
        history_s: float,
        connected_clients: Callable[[], int],
    ):
        self.clock = clock
        self.interval_s = interval_s
        self.windows = LiveWindows()
        self.ingest_rate = RateMeter()
        self.history: deque[dict[str, Any]] = deque(maxlen=max(1, int(history_s / interval_s)))
        #: Per-learner windows, kept only while the learner has a scoped metrics client.
        self.watched: dict[str, WatchedLearner] = {}
        self.velocity: dict[str, dict[str, Any]] = {}
        self._connected_clients = connected_clients

    async def prime(self, store: Store) -> None:
        """Fill the windows from the last hour (and last-seen from the last day) in the store."""
        now = self.clock()
        self.windows.last_seen.update(await store.last_seen(since=now - 86400))
        async for ts, learner, score, kind in store.recent_events(
            since=now - self.windows.horizon_s
        ):
            self.windows.add(ts=ts, learner=learner, score=score, event_type=kind, now=now)

    def subscribe(self, bus: Bus) -> None:
        """Count every committed batch the bus carries (its windows are fed from it)."""
        bus.subscribe(EventsCommitted, lambda fact: self.observe(fact.stored))

    def observe(self, stored: list[StoredEvent]) -> None:
        """Count committed events."""
        now = self.clock()
        self.ingest_rate.add(len(stored), time.time())
        watched = self.watched
        for item in stored:
            event = item.event
            score = event.score.percent if event.score is not None else None
            self.windows.add(
                ts=event.ts, learner=event.learner, score=score, event_type=event.type, now=now
            )
            if watched and event.learner in watched:
                watched[event.learner].windows.add(
                    ts=event.ts, learner=event.learner, score=score, event_type=event.type, now=now
                )

    def set_velocity(self, per_path: dict[str, dict[str, Any]]) -> None:
        """Velocity per path from the velocity task; carried in every sample from now on."""
        self.velocity = dict(per_path)

    def watch_learner(self, learner: str, store: Store) -> None:
        """Count one more scoped client of ``learner``; the first one's windows are filled
        from the store (see :meth:`learner_ready`).

        Call it with no await between it and the store's last commit being observed:
        events up to the store's last seq now are read from the store, later ones are
        counted by :meth:`observe`, so none is counted twice.
        """
        watched = self.watched.get(learner)
        if watched is not None:
            watched.clients += 1
            return
        watched = WatchedLearner(LiveWindows(), deque(maxlen=self.history.maxlen))
        watched.priming = asyncio.create_task(
            self._prime_learner(store, learner, watched.windows, through_seq=store.last_seq),
            name="prime-learner",
        )
        self.watched[learner] = watched

    def unwatch_learner(self, learner: str) -> None:
        """One scoped client of ``learner`` left; the last one's leaving forgets the learner."""
        watched = self.watched.get(learner)
        if watched is None:
            return
        watched.clients -= 1
        if watched.clients <= 0:
            del self.watched[learner]
            if watched.priming is not None:
                watched.priming.cancel()

    async def learner_ready(self, learner: str) -> None:
        """Wait until a watched learner's windows hold its stored events."""
        watched = self.watched.get(learner)
        if watched is not None and watched.priming is not None:
            await asyncio.shield(watched.priming)

    async def _prime_learner(
        self, store: Store, learner: str, windows: LiveWindows, *, through_seq: int
    ) -> None:
        """Fill one learner's windows with their stored events up to ``through_seq``
        within the windows' span, and their last activity."""
        now = self.clock()
        try:
            seen = await store.last_seen(learner=learner)
            if learner in seen:
                windows.last_seen[learner] = min(seen[learner], now)
            async for ts, _, score, kind in store.recent_events(
                since=now - windows.horizon_s, learner=learner, through_seq=through_seq
            ):
                windows.add(ts=ts, learner=learner, score=score, event_type=kind, now=now)
        except Exception:
            # Its samples then count only live events; the stream goes on.
            log.exception("reading a learner's stored events failed")

    def history_for(self, learner: str | None) -> list[dict[str, Any]]:
        """The samples kept for the snapshot: the platform's (``learner`` None) or one
        watched learner's. A watched learner with none yet gets one taken now."""
        if learner is None:
            return list(self.history)
        watched = self.watched.get(learner)
        if watched is None:
            return []
        if not watched.history:
            watched.history.append(self._learner_sample(learner, watched, self.clock()))
        return list(watched.history)

    def _learner_sample(self, learner: str, watched: WatchedLearner, now: float) -> dict:
        """A learner's sample: the platform sample's keys, the platform-only ones null."""
        return {
            "ts": round(now, 3),
            **watched.windows.sample(now),
            **dict.fromkeys(PLATFORM_ONLY_KEYS),
            "learner": learner,
        }

    def take_sample(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(the platform sample, per watched learner samples); appended to the histories."""
        now = self.clock()
        sample = {
            "ts": round(now, 3),
            **self.windows.sample(now),
            "ingest_rate": self.ingest_rate.rate(time.time()),
            "connected_clients": self._connected_clients(),
            "velocity": self.velocity,
            "learner": None,
        }
        self.history.append(sample)
        per_learner = {}
        for learner, watched in self.watched.items():
            if not watched.primed:
                # Its windows lack the stored events yet: a sample now would undercount.
                continue
            mine = self._learner_sample(learner, watched, now)
            watched.history.append(mine)
            per_learner[learner] = mine
        return sample, per_learner

    async def run(self, publish: Callable[[dict, dict], None]) -> None:
        """Sample forever every ``interval_s`` seconds of wall time."""
        while True:
            await asyncio.sleep(self.interval_s)
            sample, per_learner = self.take_sample()
            publish(sample, per_learner)
