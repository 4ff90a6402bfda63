"""The ``/metrics`` page (Prometheus text) and the ingest counters it shows."""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from jacmon.logs import redact

if TYPE_CHECKING:
    from jacmon.server.hub import HubCounters

#: Upper bounds of the ingest batch latency buckets, in seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class Histogram:
    """A Prometheus histogram (cumulative buckets, sum, count)."""

    bounds: tuple[float, ...] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))
    total: float = 0.0
    count: int = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def lines(self, name: str) -> list[str]:
        out = []
        running = 0
        for bound, count in zip(self.bounds, self.counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        out.append(f'{name}_bucket{{le="+Inf"}} {self.count}')
        out.append(f"{name}_sum {self.total:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


@dataclass
class IngestCounters:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    batches: int = 0
    latency: Histogram = field(default_factory=Histogram)


def _per_stream(name: str, kind: str, help_text: str, counts: dict) -> list[str]:
    """One Prometheus metric with a sample per stream."""
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
    lines += [f'{name}{{stream="{stream}"}} {count}' for stream, count in counts.items()]
    return lines


def prometheus_text(
    *,
    connections: dict[str, int],
    ingest: IngestCounters,
    counters: HubCounters,
    last_seq: int,
    node: str,
    extra: Iterable[str] = (),
) -> str:
    """The /metrics page (redacted: no label may carry a token secret). ``connections``:
    open connections per stream; ``node`` labels every sample (several nodes are scraped
    apart); ``extra``: more lines (the notifier's)."""
    lines = [
        *_per_stream(
            "jacmon_connections",
            "gauge",
            "Open WebSocket connections per stream.",
            connections,
        ),
        "# HELP jacmon_events_total Events received at ingest, by outcome.",
        "# TYPE jacmon_events_total counter",
        f'jacmon_events_total{{outcome="accepted"}} {ingest.accepted}',
        f'jacmon_events_total{{outcome="duplicate"}} {ingest.duplicates}',
        f'jacmon_events_total{{outcome="rejected"}} {ingest.rejected}',
        *_per_stream(
            "jacmon_frames_sent_total",
            "counter",
            "Frames sent to stream clients.",
            counters.frames_sent,
        ),
        *_per_stream(
            "jacmon_conflated_total",
            "counter",
            "Messages replaced by a newer one before a client got them.",
            counters.conflated,
        ),
        *_per_stream(
            "jacmon_clients_dropped_total",
            "counter",
            "Clients closed for falling too far behind.",
            counters.dropped_clients,
        ),
        "# HELP jacmon_ingest_batch_seconds Time from a batch's arrival to its ack.",
        "# TYPE jacmon_ingest_batch_seconds histogram",
        *ingest.latency.lines("jacmon_ingest_batch_seconds"),
        "# HELP jacmon_last_seq Sequence number of the newest stored event.",
        "# TYPE jacmon_last_seq gauge",
        f"jacmon_last_seq {last_seq}",
        *extra,
    ]
    lines = [_with_node(line, node) for line in lines]
    return redact("\n".join(lines) + "\n")


def _with_node(line: str, node: str) -> str:
    """A sample line with ``node="<node>"`` as its first label (comments unchanged)."""
    if line.startswith("#") or not line:
        return line
    label = 'node="' + node.replace("\\", "\\\\").replace('"', '\\"') + '"'
    name, sep, rest = line.partition("{")
    if sep:
        return f"{name}{{{label},{rest}"
    name, _, value = line.partition(" ")
    return f"{name}{{{label}}} {value}"
