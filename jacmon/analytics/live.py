"""Live metrics as rolling windows over event time: no I/O, fed event by event.

The metrics stream samples a :class:`LiveWindows` every few seconds instead of
querying the database, so a sample costs the same at 10 or 10,000 events/s.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

COMPLETION_TYPES = frozenset({"module.completed", "path.completed"})


@dataclass(slots=True)
class _Bucket:
    second: int
    events: int = 0
    score_sum: float = 0.0
    scores: int = 0
    completions: int = 0


@dataclass
class LiveWindows:
    """Per-second buckets of the last hour of event time, and learners' last activity.

    Times are seconds since the epoch on the server's clock (a simulated clock
    in the demo). Events older than the hour are ignored for the windows.
    """

    horizon_s: int = 3600
    _buckets: deque[_Bucket] = field(default_factory=deque)
    #: learner -> last event time, for "active in the last 5 min / 24 h".
    last_seen: dict[str, float] = field(default_factory=dict)

    def add(
        self, *, ts: float, learner: str, score: float | None, event_type: str, now: float
    ) -> None:
        """Count one event (``score`` 0-100 or None).

        An event stamped ahead of ``now`` (a producer's clock running fast, or
        a simulator) counts as happening now; one older than the horizon only
        updates the learner's last activity.
        """
        ts = min(ts, now)
        previous = self.last_seen.get(learner)
        if previous is None or ts > previous:
            self.last_seen[learner] = ts
        if ts < now - self.horizon_s:
            return
        second = math.floor(ts)
        bucket = self._bucket_for(second)
        bucket.events += 1
        if score is not None:
            bucket.score_sum += score
            bucket.scores += 1
        if event_type in COMPLETION_TYPES:
            bucket.completions += 1

    def _bucket_for(self, second: int) -> _Bucket:
        buckets = self._buckets
        if buckets and buckets[-1].second == second:
            return buckets[-1]
        if not buckets or buckets[-1].second < second:
            bucket = _Bucket(second)
            buckets.append(bucket)
            return bucket
        # Out of order (rare): find or insert in place.
        for index in range(len(buckets) - 1, -1, -1):
            if buckets[index].second == second:
                return buckets[index]
            if buckets[index].second < second:
                bucket = _Bucket(second)
                buckets.insert(index + 1, bucket)
                return bucket
        bucket = _Bucket(second)
        buckets.appendleft(bucket)
        return bucket

    def prune(self, now: float) -> None:
        """Forget buckets past the horizon and learners idle for over a day."""
        cutoff = now - self.horizon_s
        while self._buckets and self._buckets[0].second < cutoff:
            self._buckets.popleft()
        if len(self.last_seen) > 1000:
            day_ago = now - 86400
            stale = [k for k, v in self.last_seen.items() if v < day_ago]
            for key in stale:
                del self.last_seen[key]

    def sample(self, now: float) -> dict[str, float | int | None]:
        """Events/min (last 60 s), completions/hour, average score (last hour), active learners."""
        self.prune(now)
        minute_ago = now - 60
        events_min = completions = scores = 0
        score_sum = 0.0
        for bucket in self._buckets:
            if bucket.second >= minute_ago:
                events_min += bucket.events
            completions += bucket.completions
            scores += bucket.scores
            score_sum += bucket.score_sum
        five_min_ago = now - 300
        day_ago = now - 86400
        active_5m = active_24h = 0
        for seen in self.last_seen.values():
            if seen >= day_ago:
                active_24h += 1
                if seen >= five_min_ago:
                    active_5m += 1
        return {
            "events_per_min": events_min,
            "completions_per_hour": completions,
            "avg_score": round(score_sum / scores, 2) if scores else None,
            "active_learners_5m": active_5m,
            "active_learners_24h": active_24h,
        }


@dataclass
class RateMeter:
    """Events per second over the last ``window_s`` seconds of wall time."""

    window_s: float = 10.0
    _marks: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, count: int, now: float) -> None:
        self._marks.append((now, count))

    def rate(self, now: float) -> float:
        cutoff = now - self.window_s
        while self._marks and self._marks[0][0] < cutoff:
            self._marks.popleft()
        return round(sum(c for _, c in self._marks) / self.window_s, 1)
