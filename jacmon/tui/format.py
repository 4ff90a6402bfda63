"""Text the panels show: ages, bars, changes, one activity line per event. No Textual here."""

from __future__ import annotations

import math
import time
from datetime import datetime
from typing import Any

#: Event type -> (label in the feed, Rich style). Labels are unique: the feed colours by them.
EVENT_LABELS: dict[str, tuple[str, str]] = {
    "path.enrolled": ("enrolled", "cyan"),
    "path.unenrolled": ("left", "grey50"),
    "path.completed": ("PATH DONE", "bold green"),
    "session.started": ("session+", "grey50"),
    "session.ended": ("session-", "grey50"),
    "module.progressed": ("progress", "dodger_blue1"),
    "module.completed": ("module ok", "green"),
    "lesson.completed": ("lesson ok", "green3"),
    "assessment.attempted": ("attempt", "yellow"),
    "assessment.passed": ("passed", "bold green"),
    "assessment.failed": ("failed", "bold red"),
    "activity": ("activity", "grey50"),
}
LABEL_STYLES: dict[str, str] = {label: style for label, style in EVENT_LABELS.values()}
LABEL_WIDTH = 9
#: Where the label starts in a feed line: after "HH:MM:SS ".
LABEL_OFFSET = 9

SEVERITY_STYLES = {"critical": "bold white on red", "warning": "black on yellow", "info": "cyan"}


def age(seconds: float | None) -> str:
    """A short age: ``4s``, ``12m``, ``3h``, ``2d``; ``-`` when unknown."""
    if seconds is None or math.isnan(seconds):
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{int(seconds)}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m"
    if seconds < 86400:
        return f"{int(seconds // 3600)}h"
    return f"{int(seconds // 86400)}d"


def age_since(ts: Any, now: float | None = None) -> str:
    """Age of an epoch-seconds or ISO 8601 time, relative to ``now`` (epoch seconds)."""
    when = to_epoch(ts)
    if when is None:
        return "-"
    return age((time.time() if now is None else now) - when)


def to_epoch(ts: Any) -> float | None:
    """Epoch seconds from a number or ISO 8601 text; None when neither."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        return float(ts)
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts).timestamp()
        except ValueError:
            return None
    return None


def bar(percent: float, width: int) -> str:
    """A bar of ``width`` cells for 0-100 percent, with eighth-cell resolution."""
    percent = max(0.0, min(100.0, percent or 0.0))
    eighths = round(percent / 100.0 * width * 8)
    full, part = divmod(eighths, 8)
    partial = " ▏▎▍▌▋▊▉"[part] if part else ""
    return ("█" * full + partial).ljust(width)


def change(current: float | None, previous: float | None) -> tuple[str, str]:
    """Arrow and percent change from ``previous`` to ``current``, and a style for it."""
    if current is None or previous is None:
        return "  -", "grey50"
    if previous == 0:
        if current == 0:
            return "→ 0%", "grey50"
        return "↑ new", "green"
    pct = (current - previous) * 100.0 / abs(previous)
    if abs(pct) < 0.5:
        return "→ 0%", "grey50"
    arrow, style = ("↑", "green") if pct > 0 else ("↓", "red")
    return f"{arrow}{abs(pct):.0f}%", style


def number(value: float | None) -> str:
    """A compact number: ``12``, ``3.4``, ``12.3k``."""
    if value is None:
        return "-"
    if abs(value) >= 10000:
        return f"{value / 1000:.1f}k"
    if value == int(value):
        return str(int(value))
    return f"{value:.1f}"


def _clock(ts: Any) -> str:
    when = to_epoch(ts)
    if when is None:
        return "--:--:--"
    return time.strftime("%H:%M:%S", time.localtime(when))


def _score(event: dict[str, Any]) -> str:
    score = event.get("score")
    if isinstance(score, dict):
        if score.get("scaled") is not None:
            return f"{max(0.0, score['scaled']) * 100:.0f}%"
        raw, low, high = score.get("raw"), score.get("min") or 0.0, score.get("max")
        if raw is not None and high is not None and high > low:
            return f"{(raw - low) * 100 / (high - low):.0f}%"
    if event.get("progress") is not None:
        return f"{event['progress']:.0f}%"
    return ""


def short_item(item: str, prefix: str) -> str:
    """An item id without what the line already shows.

    Items are often named under their path and module (``python-101/m3/l2``)
    or are URIs (xAPI activity ids): drop the shown prefix, or keep a URI's
    last segment.
    """
    if prefix and item.startswith(prefix + "/"):
        return item[len(prefix) + 1 :]
    if "://" in item:
        return item.rstrip("/").rsplit("/", 1)[-1]
    return item


def where(event: dict[str, Any]) -> str:
    """``path/module/item`` with what the event names (the item shortened, see short_item)."""
    parts = [str(event[k]) for k in ("path", "module") if event.get(k)]
    prefix = "/".join(parts)
    if event.get("item"):
        parts.append(short_item(str(event["item"]), prefix))
    return "/".join(parts)


def event_line(event: dict[str, Any]) -> str:
    """One feed line: time, what, who, where, score (plain text; the feed colours the label)."""
    kind = event.get("type", "?")
    label = EVENT_LABELS.get(kind, (kind, ""))[0][:LABEL_WIDTH]
    parts = [_clock(event.get("ts")), label.ljust(LABEL_WIDTH), str(event.get("learner", "?"))]
    place = where(event)
    if place:
        parts.append(place)
    score = _score(event)
    if score:
        parts.append(score)
    return " ".join(parts)


def event_matches(event: dict[str, Any], terms: list[tuple[str | None, str]]) -> bool:
    """Whether an event matches every filter term (see :func:`parse_filter`)."""
    for key, value in terms:
        if key is None:
            fields = (event.get("learner"), event.get("path"), event.get("type"))
            if not any(value in str(f).lower() for f in fields if f):
                return False
        elif value not in str(event.get(key) or "").lower():
            return False
    return True


FILTER_KEYS = ("learner", "path", "type", "module")


def parse_filter(text: str) -> list[tuple[str | None, str]]:
    """``"ada path:python"`` -> ``[(None, "ada"), ("path", "python")]`` (lowercase).

    A bare word matches the learner, path or event type; ``key:value`` matches
    one field (``learner``, ``path``, ``type``, ``module``). Raises ValueError
    naming an unknown key.
    """
    terms: list[tuple[str | None, str]] = []
    for word in text.split():
        key, sep, value = word.partition(":")
        if not sep:
            terms.append((None, word.lower()))
            continue
        if key.lower() not in FILTER_KEYS:
            raise ValueError(
                f"filter key {key!r} is unknown; use one of {', '.join(FILTER_KEYS)} or a bare word"
            )
        terms.append((key.lower(), value.lower()))
    return terms
