"""The metrics sampler: one sample every ``interval_s``, kept for the snapshot's history."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from jacmon.analytics.live import LiveWindows, RateMeter
from jacmon.store import Store, StoredEvent


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
        #: Per-learner windows, kept only for learners with a scoped metrics client.
        self.learner_windows: dict[str, LiveWindows] = {}
        self.learner_history: dict[str, deque[dict[str, Any]]] = {}
        self.velocity: dict[str, dict[str, Any]] = {}
        self._connected_clients = connected_clients

    async def prime(self, store: Store) -> None:
        """Fill the windows from the last hour (and last-seen from the last day) in the store."""
        now = self.clock()
        async with store.db.reader.execute(
            "SELECT learner, last_activity FROM learners WHERE last_activity >= ?",
            (now - 86400,),
        ) as cursor:
            for learner, last in await cursor.fetchall():
                self.windows.last_seen[learner] = last
        async with store.db.reader.execute(
            "SELECT ts, learner, score, type FROM events WHERE ts >= ?",
            (now - self.windows.horizon_s,),
        ) as cursor:
            async for ts, learner, score, kind in cursor:
                self.windows.add(ts=ts, learner=learner, score=score, event_type=kind, now=now)

    def observe(self, stored: list[StoredEvent]) -> None:
        """Count committed events."""
        now = self.clock()
        self.ingest_rate.add(len(stored), time.time())
        scoped = self.learner_windows
        for item in stored:
            event = item.event
            score = event.score.percent if event.score is not None else None
            self.windows.add(
                ts=event.ts, learner=event.learner, score=score, event_type=event.type, now=now
            )
            if scoped and event.learner in scoped:
                scoped[event.learner].add(
                    ts=event.ts, learner=event.learner, score=score, event_type=event.type, now=now
                )

    def set_velocity(self, per_path: dict[str, dict[str, Any]]) -> None:
        """Velocity per path from the velocity task; carried in every sample from now on."""
        self.velocity = dict(per_path)

    def watch_learner(self, learner: str) -> None:
        self.learner_windows.setdefault(learner, LiveWindows())
        self.learner_history.setdefault(learner, deque(maxlen=self.history.maxlen))

    def history_for(self, learner: str | None) -> list[dict[str, Any]]:
        if learner is None:
            return list(self.history)
        return list(self.learner_history.get(learner, ()))

    def take_sample(self) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """(the platform sample, per watched learner samples); appended to the histories."""
        now = self.clock()
        sample = {
            "ts": round(now, 3),
            **self.windows.sample(now),
            "ingest_rate": self.ingest_rate.rate(time.time()),
            "connected_clients": self._connected_clients(),
            "velocity": self.velocity,
        }
        self.history.append(sample)
        per_learner = {}
        for learner, windows in self.learner_windows.items():
            mine = {"ts": sample["ts"], **windows.sample(now), "learner": learner}
            self.learner_history[learner].append(mine)
            per_learner[learner] = mine
        return sample, per_learner

    async def run(self, publish: Callable[[dict, dict], None]) -> None:
        """Sample forever every ``interval_s`` seconds of wall time."""
        while True:
            await asyncio.sleep(self.interval_s)
            sample, per_learner = self.take_sample()
            publish(sample, per_learner)
