"""Words every human-facing receiver (Slack, email) uses for a notification.

``headline``: ``3 firing, 1 resolved: consecutive_low_scores on python-101``;
``alert_line``: ``CRITICAL consecutive_low_scores · learner u1 · path python-101: …``.
"""

from __future__ import annotations

from typing import Any

from jacmon.notify.model import Notification

#: At most this many alerts are listed one by one in a message; the rest are counted.
MAX_LISTED = 20

#: Changes that leave the alert firing, reported by its state.
_STATE_CHANGES = {"fired", "updated", "repeat", "unacknowledged"}


def alert_status(notification: Notification) -> dict[int, str]:
    """Alert id -> what the message says about it: ``firing``, ``acknowledged`` or ``resolved``.

    An alert's last change in the message decides; an acknowledgement of an alert
    that is still firing reads ``acknowledged``.
    """
    status: dict[int, str] = {}
    for change in notification.changes:
        alert = change.alert
        if alert.get("state") == "resolved" or change.change == "resolved":
            word = "resolved"
        elif change.change == "acknowledged" or (
            change.change not in _STATE_CHANGES and alert.get("acknowledged")
        ):
            word = "acknowledged"
        else:
            word = "firing"
        status[int(alert["id"])] = word
    return status


def counts_text(notification: Notification) -> str:
    """``3 firing, 1 acknowledged, 1 resolved`` (only the words that occur)."""
    status = list(alert_status(notification).values())
    parts = [
        f"{status.count(w)} {w}" for w in ("firing", "acknowledged", "resolved") if w in status
    ]
    return ", ".join(parts) or "no alerts"


def group_text(notification: Notification) -> str:
    """The group in words: ``consecutive_low_scores on python-101``, else its labels.

    Without group labels: the rules of the alerts.
    """
    group = dict(notification.group)
    rule = group.pop("rule", None)
    path = group.pop("path", None)
    words = []
    if rule:
        words.append(str(rule))
    if path:
        words.append(f"on {path}")
    words.extend(f"{key} {value}" for key, value in sorted(group.items()))
    if not words:
        rules = sorted({str(a.get("rule", "?")) for a in notification.alerts})
        words.append(", ".join(rules) if rules else "jacmon")
    return " ".join(words)


def headline(notification: Notification) -> str:
    """``3 firing, 1 resolved: consecutive_low_scores on python-101``."""
    return f"{counts_text(notification)}: {group_text(notification)}"


def alert_line(alert: dict[str, Any], status: str | None = None) -> str:
    """One alert on one line: severity, rule, learner, path, message (and a status not firing)."""
    parts = [f"{str(alert.get('severity', 'info')).upper()} {alert.get('rule', '?')}"]
    if alert.get("learner"):
        parts.append(f"learner {alert['learner']}")
    if alert.get("path"):
        parts.append(f"path {alert['path']}")
    head = " · ".join(parts)
    if status and status != "firing":
        head += f" ({status})"
    return f"{head}: {alert.get('message', '')}".rstrip(": ")


def more_text(total: int, listed: int = MAX_LISTED) -> str | None:
    """``and 480 more`` when ``total`` exceeds what is listed; None otherwise."""
    return f"and {total - listed} more" if total > listed else None
