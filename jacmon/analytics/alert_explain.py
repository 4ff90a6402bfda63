"""An alert in words: what each rule means and its evidence (``numbers``) as readable lines.

Pure: no I/O, no Textual or Rich, no activity feed. The notification receivers
(Slack, email, webhook) and the dashboard's alert detail share it, so an alert
reads the same on a screen and in a message.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

#: Rule name -> what makes it fire, in words (the thresholds are in the server's config).
RULE_TEXTS: dict[str, str] = {
    "performance_decline": (
        "The learner's average score over the recent window fell below the decline "
        "threshold, by more than the allowed points under their average in the window before."
    ),
    "consecutive_low_scores": (
        "The learner's newest scores, one after another, are all below the low-score line; "
        "it clears once the newest score is back above the clear line."
    ),
    "inactivity": (
        "The learner is enrolled on a path they have not finished and has done nothing "
        "for longer than the inactivity limit."
    ),
    "engagement_drop": (
        "The learner was active in the window before but has no events at all in the "
        "latest window of the same length: a sudden stop rather than a slow fade."
    ),
    "low_consistency": (
        "The learner was active on fewer days of the consistency window than the minimum."
    ),
    "completion_stagnation": (
        "The learner has made no progress on this path for longer than the stagnation "
        "limit while still short of finishing it."
    ),
}

#: ``numbers`` key -> how the evidence list names it.
NUMBER_LABELS: dict[str, str] = {
    "recent_avg": "average score, recent window",
    "recent_count": "scores in the recent window",
    "previous_avg": "average score, window before",
    "previous_count": "scores in the window before",
    "drop": "drop (points)",
    "low_run": "low scores in a row",
    "latest": "newest scores",
    "idle_days": "days without activity",
    "last_activity": "last activity",
    "recent_events": "events in the latest window",
    "prior_events": "events in the window before",
    "active_days": "days active",
    "window_days": "window (days)",
    "percent": "progress (%)",
}

#: ``numbers`` keys that hold a time (epoch seconds or ISO 8601), shown as a date.
TIME_KEYS = frozenset({"last_activity", "first_activity", "at", "ts", "since", "until"})


def rule_text(rule: str | None) -> str:
    """The rule explained in words; an unknown rule is named as such."""
    return RULE_TEXTS.get(str(rule), f"rule {rule!r}: no description known to this dashboard")


def utc_time(ts: Any) -> str:
    """``2026-01-05 10:00 UTC`` from epoch seconds or ISO 8601 text; ``-`` when unreadable.

    UTC, not local time: a message is read in other time zones than the server's.
    """
    when = _epoch(ts)
    if when is None:
        return "-"
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%d %H:%M UTC")


def number_text(value: Any) -> str:
    """A compact number: ``12``, ``3.4``, ``12.3k``; anything else as text, None as ``-``."""
    if value is None:
        return "-"
    if not isinstance(value, int | float) or isinstance(value, bool):
        return str(value)
    if abs(value) >= 10000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def evidence_lines(alert: dict[str, Any]) -> list[str]:
    """The alert's ``numbers`` as readable lines, without the activity feed.

    Each key gets its label (:data:`NUMBER_LABELS`, else the key in words);
    times read ``YYYY-MM-DD HH:MM UTC``; a list gets one indented line per item,
    a score item ``{"score": 35, "ts": ...}`` with its date. No numbers: ``[]``.
    """
    lines = []
    numbers = alert.get("numbers")
    for key, value in (numbers if isinstance(numbers, dict) else {}).items():
        label = NUMBER_LABELS.get(key, str(key).replace("_", " "))
        if key in TIME_KEYS or str(key).endswith("_at"):
            lines.append(f"{label}: {utc_time(value)}")
        elif isinstance(value, list):
            lines.append(f"{label}:")
            lines.extend(f"  • {_item_text(item)}" for item in value)
        else:
            lines.append(f"{label}: {number_text(value)}")
    return lines


def _item_text(item: Any) -> str:
    """One list item: a bare score, or a dict score with its time."""
    if isinstance(item, dict):
        value = item.get("score", item.get("value"))
        when = item.get("ts", item.get("at"))
        return (
            f"{number_text(value)} on {utc_time(when)}" if when is not None else number_text(value)
        )
    return number_text(item)


def _epoch(ts: Any) -> float | None:
    """Epoch seconds from a number or ISO 8601 text (a trailing ``Z`` is UTC); None otherwise."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        try:
            parsed = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None
        # A time without a zone is taken as UTC, as the ingest contract writes them.
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None
