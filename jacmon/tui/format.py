"""Text the panels show: ages, bars, changes, one activity line per event. No Textual here."""

from __future__ import annotations

import math
import re
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
#: Where the label starts in a feed line: after "HH:MM:SS " (an event of today).
LABEL_OFFSET = 9
#: Where the label starts in a line of another day: after "YYYY-MM-DD HH:MM:SS ".
DATED_LABEL_OFFSET = 20
#: Width of the score column in a feed line ("100%"): scores are never the part that is cut.
SCORE_WIDTH = 4

#: Learner and path ids longer than this are cut in the middle in a feed line (an xAPI
#: IRI or a 40-character learner would leave no room for where the event happened).
FEED_ID_WIDTH = 20

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


def _clock(ts: Any, today: str | None = None) -> str:
    """``HH:MM:SS`` for a time on ``today`` (``YYYY-MM-DD``, local), else with its date.

    ``today`` None always shows the date: a line never passes for today's without it.
    """
    when = to_epoch(ts)
    if when is None:
        return "--:--:--"
    local = time.localtime(when)
    if today is not None and time.strftime("%Y-%m-%d", local) == today:
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%Y-%m-%d %H:%M:%S", local)


def local_day(epoch_s: float) -> str:
    """``YYYY-MM-DD`` of an epoch-seconds time, in the local zone."""
    return time.strftime("%Y-%m-%d", time.localtime(epoch_s))


def date_time(ts: Any) -> str:
    """``2026-01-05 10:00:00`` (local) from epoch seconds or ISO 8601; ``-`` when unreadable."""
    when = to_epoch(ts)
    if when is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


def middle_ellipsis(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle: ids differ at both ends.

    ``http://adlnet.gov/expapi/activities/course/python`` -> ``http://adl…course/python``.
    """
    if len(text) <= width or width < 3:
        return text
    head = (width - 1) // 2
    tail = width - 1 - head
    return f"{text[:head]}…{text[-tail:]}"


def fit_parts(parts: list[tuple[int, str]], width: int, sep: str = " · ") -> list[int]:
    """Which of ``parts`` (priority, text) fit in ``width`` cells joined by ``sep``: their indexes.

    Priority 0 is the most important; the least important parts are dropped
    first, and the shown ones keep their order. What is left may still be
    wider than ``width`` (the caller cuts the end).
    """
    # Most important first; ties keep their order.
    keep = sorted(range(len(parts)), key=lambda i: (parts[i][0], i))
    while len(keep) > 1 and len(sep.join(parts[i][1] for i in sorted(keep))) > width:
        keep.pop()
    return sorted(keep)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float | None:
    """``"30m"``, ``"2h"``, ``"1d"`` -> seconds; empty -> None (no expiry).

    Raises ValueError naming the text and the expected form.
    """
    text = text.strip().lower()
    if not text:
        return None
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text)
    if match is None:
        raise ValueError(
            f"expiry {text!r} is not a duration; expected a number and a unit, "
            "like 30m, 2h, 1d or 1w (empty: no expiry)"
        )
    return float(match.group(1)) * DURATION_UNITS[match.group(2)]


def score_percent(event: dict[str, Any]) -> float | None:
    """An event's score on 0-100 (scaled, or raw within min..max); None without a score."""
    score = event.get("score")
    if not isinstance(score, dict):
        return None
    if score.get("scaled") is not None:
        return max(0.0, score["scaled"]) * 100
    raw, low, high = score.get("raw"), score.get("min") or 0.0, score.get("max")
    if raw is not None and high is not None and high > low:
        return (raw - low) * 100 / (high - low)
    return None


def _score(event: dict[str, Any]) -> str:
    score = score_percent(event)
    if score is not None:
        return f"{score:.0f}%"
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
    """``path/module/item`` with what the event names (the item shortened, see short_item).

    A long path id (an xAPI IRI) is cut in the middle to FEED_ID_WIDTH cells.
    """
    parts = [str(event[k]) for k in ("path", "module") if event.get(k)]
    prefix = "/".join(parts)
    if event.get("item"):
        parts.append(short_item(str(event["item"]), prefix))
    if event.get("path"):
        parts[0] = middle_ellipsis(parts[0], FEED_ID_WIDTH)
    return "/".join(parts)


def event_line(event: dict[str, Any], today: str | None = None) -> str:
    """One feed line: time, what, score, who, where (plain text; the feed colours the label).

    The time carries its date unless the event is of ``today`` (``YYYY-MM-DD``,
    local; None: always dated). The score comes before the ids, in a fixed
    column, so a narrow panel cuts the path, never the score.
    """
    kind = event.get("type", "?")
    label = EVENT_LABELS.get(kind, (kind, ""))[0][:LABEL_WIDTH]
    parts = [
        _clock(event.get("ts"), today),
        label.ljust(LABEL_WIDTH),
        _score(event).rjust(SCORE_WIDTH),
        middle_ellipsis(str(event.get("learner", "?")), FEED_ID_WIDTH),
    ]
    place = where(event)
    if place:
        parts.append(place)
    return " ".join(parts)


def label_offset(line: str) -> int:
    """Where a feed line's label starts: after the time, or after the date and time."""
    return LABEL_OFFSET if line[2:3] == ":" else DATED_LABEL_OFFSET


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
