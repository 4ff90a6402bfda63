"""Feeding simulated events somewhere: into a server at a paced rate, or into a JSONL file."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import IO, Any

from jacmon.client.ingest import IngestClient
from jacmon.errors import UsageError
from jacmon.sim.simulator import Simulator


class TokenBucket:
    """Paces a producer to ``rate`` tokens per second with bursts up to ``capacity`` tokens.

    ``clock`` is the time source in seconds (default :func:`time.monotonic`).
    The bucket starts full.
    """

    def __init__(
        self, rate: float, capacity: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not rate > 0:
            raise UsageError(f"rate has value {rate!r}. Expected events per second above 0.")
        if not capacity >= 1:
            raise UsageError(f"capacity has value {capacity!r}. Expected at least 1 token.")
        self.rate = float(rate)
        self.capacity = float(capacity)
        self._clock = clock
        self._tokens = self.capacity
        self._stamp = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def wait_time(self, tokens: float) -> float:
        """Seconds until ``tokens`` tokens are available (0 if they are now)."""
        if tokens > self.capacity:
            raise UsageError(
                f"a take of {tokens:g} tokens exceeds the bucket capacity {self.capacity:g}. "
                "Expected batches no larger than the capacity."
            )
        self._refill()
        return max(0.0, (tokens - self._tokens) / self.rate)

    async def take(self, tokens: float) -> None:
        """Wait (asyncio) until ``tokens`` tokens are available, then spend them."""
        delay = self.wait_time(tokens)
        while delay > 0:
            await asyncio.sleep(delay)
            delay = self.wait_time(tokens)
        self._tokens -= tokens


@dataclass(slots=True)
class StreamSummary:
    """What one streaming run did. Times are wall seconds; ``sim_*`` are simulated times."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    #: Every event the server rejected: ``{index, id, error}``, ``index`` counting the
    #: events sent from 0 (the shape of the ingest ack's rejections, plus the event id).
    rejected: list[dict[str, Any]] = field(default_factory=list)
    batches: int = 0
    wall_s: float = 0.0
    sim_from: datetime | None = None
    sim_to: datetime | None = None
    #: Simulated seconds the stream was behind the simulated clock at the end (rate cap).
    lag_s: float = 0.0
    #: Whether that lag means the --rate cap could not keep up (see :func:`is_behind`).
    behind: bool = False
    #: Why streaming stopped: ``duration``, ``events``, ``finished`` (every learner
    #: done) or ``present`` (the next event is dated after the ``present`` limit).
    stopped: str = "duration"

    def as_dict(self) -> dict[str, Any]:
        """The summary for ``--json``; times stay datetimes and durations unrounded
        (the CLI's JSON emitter formats them like every command's)."""
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": list(self.rejected),
            "batches": self.batches,
            "wall_s": self.wall_s,
            "rate_ev_per_s": round(self.sent / self.wall_s, 1) if self.wall_s > 0 else 0.0,
            "sim_from": self.sim_from,
            "sim_to": self.sim_to,
            "lag_s": self.lag_s,
            "behind": self.behind,
            "stopped": self.stopped,
        }


#: A stream is behind the clock when its lag is more than this many batch intervals
#: (batch size / rate) of wall time: up to one interval is the pacing itself.
BEHIND_BATCHES = 4
#: ... and more than this many wall seconds (ack round trips on a busy server).
BEHIND_MIN_WALL_S = 1.0


def is_behind(lag_s: float, *, speed: float, rate: float, batch_size: int) -> bool:
    """Whether a stream ``lag_s`` simulated seconds behind its clock is held back by ``rate``.

    Paced in batches of ``batch_size`` at ``rate`` events/s, a stream that keeps up
    is still behind by up to one batch interval whenever a burst is due: at 600x
    and 4 batches/s that is 150 simulated seconds. Judged in wall time, that is
    pacing; a rate that cannot keep up falls further behind all the time.
    """
    threshold_s = max(BEHIND_MIN_WALL_S, BEHIND_BATCHES * batch_size / rate)
    return lag_s / speed > threshold_s


async def stream_to_server(
    sim: Simulator,
    server: str,
    *,
    token: str | None = None,
    rate: float = 200.0,
    duration_s: float | None = 60.0,
    max_events: int | None = None,
    batch_size: int = 200,
    idle_poll_s: float = 0.5,
    on_batch: Callable[[StreamSummary], None] | None = None,
    present: Callable[[], datetime] | None = None,
) -> StreamSummary:
    """Send ``sim``'s events to ``server`` as they come due on its clock, at most ``rate``/s.

    Batches hold at most ``batch_size`` events, fewer at low rates (about a
    quarter second's worth) so pacing stays smooth. Stops after
    ``duration_s`` wall seconds or ``max_events`` events (at least one bound
    is required), or when every simulated learner has finished.
    ``idle_poll_s`` caps a wait for the next event, in wall seconds.
    ``on_batch`` is called with the running summary after each acknowledged batch
    (``wall_s`` up to date), for progress displays.
    ``present`` (None: no limit) is the real time now: events dated after it are
    never sent, and streaming stops when the next one is (a live server takes
    no events from the future; faster than real time, the simulation gets there).
    """
    if duration_s is None and max_events is None:
        raise UsageError(
            "streaming needs a bound: pass a duration (seconds) or a number of events."
        )
    if duration_s is not None and not duration_s > 0:
        raise UsageError(f"duration has value {duration_s!r}. Expected seconds above 0.")
    if batch_size < 1:
        raise UsageError(f"batch size has value {batch_size!r}. Expected at least 1.")
    size = max(1, min(batch_size, math.ceil(rate / 4)))
    bucket = TokenBucket(rate, size)
    summary = StreamSummary()
    started = time.monotonic()
    deadline = started + duration_s if duration_s is not None else math.inf
    async with IngestClient(server, token=token) as client:
        while time.monotonic() < deadline:
            want = size if max_events is None else min(size, max_events - summary.sent)
            if want <= 0:
                summary.stopped = "events"
                break
            until = sim.clock.now() if present is None else min(sim.clock.now(), present())
            batch = list(islice(sim.events_until(until), want))
            if not batch:
                upcoming = sim.next_event_time()
                if upcoming is None:
                    summary.stopped = "finished"  # every learner finished or dropped out
                    break
                if present is not None and upcoming > present():
                    summary.stopped = "present"
                    break
                wait = sim.clock.wall_seconds_until(upcoming)
                await asyncio.sleep(min(max(wait, 0.001), idle_poll_s, deadline - time.monotonic()))
                continue
            await bucket.take(len(batch))
            ack = await client.send_batch(batch)
            summary.batches += 1
            summary.accepted += ack.accepted
            summary.duplicates += ack.duplicates
            for rejection in ack.rejected:
                summary.rejected.append(
                    {
                        "index": summary.sent + rejection.index,
                        "id": batch[rejection.index]["id"],
                        "error": rejection.error,
                    }
                )
            summary.sent += len(batch)
            if summary.sim_from is None:
                summary.sim_from = datetime.fromisoformat(batch[0]["ts"])
            summary.sim_to = datetime.fromisoformat(batch[-1]["ts"])
            if on_batch is not None:
                summary.wall_s = time.monotonic() - started
                on_batch(summary)
    summary.wall_s = time.monotonic() - started
    upcoming = sim.next_event_time()
    if upcoming is not None and summary.stopped != "present":
        summary.lag_s = max(0.0, (sim.clock.now() - upcoming).total_seconds())
        # Stopped by --events, what is left was not waiting on the rate.
        summary.behind = summary.stopped == "duration" and is_behind(
            summary.lag_s, speed=sim.clock.speed, rate=rate, batch_size=size
        )
    return summary


#: Events between two ``on_count`` calls of :func:`write_jsonl`.
COUNT_EVERY = 1000


def write_jsonl(
    events: Iterable[dict[str, Any]],
    out: IO[str],
    *,
    on_count: Callable[[int], None] | None = None,
) -> int:
    """Write ``events`` one JSON object per line to ``out``; returns how many.

    ``on_count`` is called with the number written so far every :data:`COUNT_EVERY`
    events, for progress displays.
    """
    count = 0
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    write = out.write
    for event in events:
        write(dumps(event))
        write("\n")
        count += 1
        if on_count is not None and count % COUNT_EVERY == 0:
            on_count(count)
    return count
