"""Notification counters for ``/metrics``: sent, failed and pending per receiver, and
how long delivery took (from routing to the receiver's acceptance)."""

from __future__ import annotations

from collections import Counter

from jacmon.notify.model import Delivery, Notification

#: Histogram bucket upper bounds for delivery latency, in seconds.
LATENCY_BUCKETS_S = (1.0, 5.0, 15.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


class NotifyMetrics:
    """Counters since the server started, and the outbox's pending rows per receiver."""

    def __init__(self) -> None:
        self.sent: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.retried: Counter[str] = Counter()
        self.pending: dict[str, int] = {}
        #: receiver -> counts per bucket (cumulative at render time), sum and count.
        self._buckets: dict[str, list[int]] = {}
        self._sum: Counter[str] = Counter()

    def set_pending(self, counts: dict[str, int]) -> None:
        """Take the outbox's undelivered rows per receiver."""
        self.pending = dict(counts)

    def record(
        self, notification: Notification, delivery: Delivery, state: str, *, now: float
    ) -> None:
        """Count one send's outcome; ``now`` is when the answer came (epoch seconds)."""
        name = notification.receiver
        if state == "sent":
            self.sent[name] += 1
            latency = max(0.0, now - notification.created_at)
            buckets = self._buckets.setdefault(name, [0] * (len(LATENCY_BUCKETS_S) + 1))
            index = next(
                (i for i, bound in enumerate(LATENCY_BUCKETS_S) if latency <= bound),
                len(LATENCY_BUCKETS_S),
            )
            buckets[index] += 1
            self._sum[name] += latency
        elif state == "failed":
            self.failed[name] += 1
        else:
            self.retried[name] += 1

    def prometheus_lines(self) -> list[str]:
        """The counters in Prometheus text format."""
        names = sorted(set(self.sent) | set(self.failed) | set(self.pending) | set(self.retried))
        lines: list[str] = []
        for metric, kind, help_text, values in (
            ("sent_total", "counter", "Notifications a receiver accepted.", self.sent),
            ("failed_total", "counter", "Notifications given up on.", self.failed),
            ("retries_total", "counter", "Sends that failed and will be retried.", self.retried),
            ("pending", "gauge", "Outbox rows not yet delivered.", self.pending),
        ):
            lines += [
                f"# HELP jacmon_notifications_{metric} {help_text}",
                f"# TYPE jacmon_notifications_{metric} {kind}",
            ]
            lines += [
                f'jacmon_notifications_{metric}{{receiver="{n}"}} {values.get(n, 0)}' for n in names
            ]
        histogram = "jacmon_notification_delivery_seconds"
        lines += [
            f"# HELP {histogram} From routing to the receiver's acceptance.",
            f"# TYPE {histogram} histogram",
        ]
        for name in sorted(self._buckets):
            running = 0
            bounds = (*LATENCY_BUCKETS_S, float("inf"))
            for bound, count in zip(bounds, self._buckets[name], strict=True):
                running += count
                le = "+Inf" if bound == float("inf") else f"{bound:g}"
                lines.append(f'{histogram}_bucket{{receiver="{name}",le="{le}"}} {running}')
            lines.append(f'{histogram}_sum{{receiver="{name}"}} {self._sum[name]:.3f}')
            lines.append(f'{histogram}_count{{receiver="{name}"}} {running}')
        return lines
