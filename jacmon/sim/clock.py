"""The simulated clock: simulated time that runs ``speed`` times faster than the wall clock.

The simulator, the demo's scheduler and anything else that must agree on "now"
share one :class:`SimClock`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from jacmon.errors import UsageError


def require_aware(value: datetime, name: str) -> datetime:
    """Return ``value`` if it has a time zone, else raise a UsageError naming ``name``."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise UsageError(
            f"{name} {value.isoformat()!r} has no time zone. "
            "Expected an aware datetime, e.g. datetime(2026, 1, 5, tzinfo=UTC)."
        )
    return value


class SimClock:
    """Simulated time: ``start`` at the moment the clock is created, then ``speed`` x wall time.

    ``speed`` is simulated seconds per wall second (60 makes a simulated hour
    pass in a wall minute; 1 is real time). ``wall`` is the wall-clock
    function in seconds (default :func:`time.monotonic`); ``wall_start`` is the
    wall reading that corresponds to ``start`` (``None``: the reading now).
    """

    def __init__(
        self,
        start: datetime,
        speed: float = 1.0,
        *,
        wall: Callable[[], float] = time.monotonic,
        wall_start: float | None = None,
    ) -> None:
        if not speed > 0:
            raise UsageError(
                f"speed has value {speed!r}. Expected a number above 0 "
                "(simulated seconds per wall second)."
            )
        self.start = require_aware(start, "start")
        self.speed = float(speed)
        self._wall = wall
        self.wall_start = wall() if wall_start is None else wall_start

    def now(self) -> datetime:
        """The simulated time now (aware, in ``start``'s zone)."""
        return self.simulated_at(self._wall())

    def time(self) -> float:
        """The simulated time now in seconds since the Unix epoch, like :func:`time.time`."""
        return self.now().timestamp()

    def simulated_at(self, wall_time: float) -> datetime:
        """The simulated time at wall reading ``wall_time`` (seconds, same clock as ``wall``)."""
        return self.start + timedelta(seconds=(wall_time - self.wall_start) * self.speed)

    def wall_at(self, sim_time: datetime) -> float:
        """The wall reading (seconds) at which simulated time reaches ``sim_time``."""
        elapsed = (require_aware(sim_time, "sim_time") - self.start).total_seconds()
        return self.wall_start + elapsed / self.speed

    def wall_seconds_until(self, sim_time: datetime) -> float:
        """Wall seconds from now until ``sim_time``; 0 if it has already passed."""
        return max(0.0, self.wall_at(sim_time) - self._wall())

    async def sleep_until(self, sim_time: datetime) -> None:
        """Sleep (asyncio) until the simulated clock reaches ``sim_time``."""
        await asyncio.sleep(self.wall_seconds_until(sim_time))

    def __repr__(self) -> str:
        return f"SimClock(start={self.start.isoformat()}, speed={self.speed:g})"
