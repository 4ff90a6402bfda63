"""What the server's parts share: the small context each of them is given.

The parts (stream sessions, the ingest service, the HTTP endpoints, the
background loops) receive this instead of the server object, so none of them
imports :mod:`jacmon.server.app` and the server is wired in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from jacmon.bus import Bus
from jacmon.config import ServerSettings
from jacmon.server.hub import Hub
from jacmon.server.sampler import MetricsSampler
from jacmon.store import Store


@dataclass(eq=False)
class ServerContext:
    """One running server's shared parts."""

    settings: ServerSettings
    store: Store
    #: Committed facts: ingest and the alert feed publish, the fan-out and sampler listen.
    bus: Bus
    #: Per-client delivery and slow-client policy.
    hub: Hub
    sampler: MetricsSampler
    #: The server's clock, epoch seconds (the demo's is simulated).
    now: Callable[[], float]
    #: Seconds of ``now`` per wall second (the demo's speed; 1 for real time).
    clock_rate: float
    #: When this server process started (epoch seconds, whole): sent in ``hello``.
    epoch: int
    #: Tell the alert feed to look for new changes now (after an ack or a task run).
    nudge_alerts: Callable[[], None]
