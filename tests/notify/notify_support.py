"""Alerts and notifications for the receiver tests, shaped as the alert stream sends them."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jacmon.notify.model import AlertChange, Notification

#: A fixed "first fired" an hour ago, so RFC 3339 and UTC texts can be checked.
HOUR_AGO = float(int(time.time()) - 3600)

#: The login the STARTTLS test SMTP server accepts.
SMTP_LOGIN = ("jacmon", "s3cret-pass")


def make_alert(alert_id: int = 1, **fields: Any) -> dict[str, Any]:
    """A firing consecutive_low_scores alert of learner ``u<id>`` on python-101, overridable."""
    alert: dict[str, Any] = {
        "id": alert_id,
        "rule": "consecutive_low_scores",
        "severity": "critical",
        "state": "firing",
        "learner": f"u{alert_id}",
        "path": "python-101",
        "message": f"the latest 3 scores of u{alert_id} are below 50 (35, 40, 20)",
        "numbers": {"low_run": 3, "latest": [35.0, 40.0, 20.0]},
        "first_seen": HOUR_AGO,
        "last_seen": HOUR_AGO + 600,
        "resolved_at": None,
        "acknowledged": None,
        "acknowledgements": [],
    }
    alert.update(fields)
    return alert


def make_notification(
    alerts: list[dict[str, Any]],
    *,
    change: str = "fired",
    key: str = "n-1",
    receiver: str = "ops",
    group: dict[str, str] | None = None,
    dashboard_url: str | None = None,
) -> Notification:
    """One notification carrying ``change`` for every alert in ``alerts`` (seq 1, 2, ...)."""
    changes = tuple(
        AlertChange(change=change if a.get("state") != "resolved" else "resolved", seq=n, alert=a)
        for n, a in enumerate(alerts, start=1)
    )
    return Notification(
        receiver=receiver,
        key=key,
        group=group
        if group is not None
        else {"rule": "consecutive_low_scores", "path": "python-101"},
        changes=changes,
        created_at=HOUR_AGO,
        dashboard_url=dashboard_url,
    )


@contextmanager
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections (the kernel's backlog) but never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def free_port() -> int:
    """A loopback TCP port nothing listens on right now (connecting to it is refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
