"""Rows as the streams and commands see them, and the pure rules both stores apply to
them: one copy for SQLite and PostgreSQL alike (neither backend may import the other).
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Iterable, Sequence
from typing import Any

from jacmon.notify.config import Route
from jacmon.store.types import ReceivedRecord, RecordConflict

log = logging.getLogger("jacmon.alerts")

#: First and longest wait before a notification is retried, in seconds.
BACKOFF_BASE_S = 2.0
BACKOFF_CAP_S = 600.0

#: The silences table's columns, in the order :func:`silence_from_row` reads them.
SILENCE_COLUMNS = (
    "id, rule, learner, path, starts_at, ends_at, created_by, note, expired_by, expired_at"
)
SILENCE_KEYS = tuple(column.strip() for column in SILENCE_COLUMNS.split(","))


def finite(value: Any) -> Any:
    """``value`` with non-finite numbers as None, at any depth.

    Rows written before client values were validated may hold ``inf`` or NaN;
    they are not JSON, so one such row would stop every frame that carries it.
    """
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [finite(item) for item in value]
    return value


def load_json(text: str | None, default: Any) -> Any:
    """Stored JSON text as a value with only finite numbers; ``default`` if unreadable."""
    if text is None:
        return default
    try:
        return finite(json.loads(text))
    except (ValueError, RecursionError):
        log.warning("skipping unreadable stored alert json: %.80s", text)
        return default


def alert_change(seq: int, change: str, alert: dict[str, Any]) -> dict[str, Any]:
    return {"seq": seq, "change": change, "alert": alert}


def run_from_row(row: Sequence[Any]) -> dict[str, Any]:
    (id_, task, trigger, outcome, scheduled, started, finished, duration, summary, error, pid) = (
        tuple(row)
    )
    return {
        "id": id_,
        "task": task,
        "trigger": trigger,
        "outcome": outcome,
        "scheduled": scheduled,
        "started": started,
        "finished": finished,
        "duration_s": duration,
        "summary": json.loads(summary) if summary else None,
        "error": error,
        "pid": pid,
    }


def silence_from_row(row: Sequence[Any]) -> dict[str, Any]:
    """A silences row as a dict; ``state`` is active, pending (starts later) or expired."""
    silence = dict(zip(SILENCE_KEYS, tuple(row), strict=True))
    now = time.time()
    if silence["expired_at"] is not None or silence["ends_at"] <= now:
        silence["state"] = "expired"
    elif silence["starts_at"] > now:
        silence["state"] = "pending"
    else:
        silence["state"] = "active"
    return silence


def receivers_for(routes: list[Route], alert: dict[str, Any], change: str):
    """(receiver, route) pairs for one change: every matching route, each receiver once
    (through the first route that reaches it)."""
    seen: set[str] = set()
    for route in routes:
        if not (route.sends(change) and route.matches(alert)):
            continue
        for receiver in route.receivers:
            if receiver not in seen:
                seen.add(receiver)
                yield receiver, route


def backoff_s(
    attempts: int,
    *,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number ``attempts`` (1-based): full jitter over an
    exponential ceiling (``base_s`` doubling up to ``cap_s``), so retries of many
    notifications spread out."""
    ceiling = min(cap_s, base_s * 2 ** min(max(0, attempts - 1), 60))
    return (rng or random).uniform(0, ceiling)


# Pushed records (the ``received`` table)

#: The columns ``received_log`` returns, in order.
RECEIVED_LOG_COLUMNS = ("source", "id", "received", "event_id", "reason", "token", "body")


def totals_by_source(rows: Iterable[Sequence[Any]]) -> dict[str, dict[str, int]]:
    """Source -> {"mapped": n, "unmapped": n} from rows of (source, mapped, count)."""
    totals: dict[str, dict[str, int]] = {}
    for source, mapped, count in rows:
        totals.setdefault(source, {"mapped": 0, "unmapped": 0})[
            "mapped" if mapped else "unmapped"
        ] = count
    return totals


def raise_other_content(strict: Sequence[ReceivedRecord], kept: dict[tuple[str, str], str]) -> None:
    """Raise :class:`RecordConflict` when a record of ``strict`` (those refusing other
    content) meets its id with another digest: in ``kept`` ((source, id) -> digest, what
    was stored before) or earlier in ``strict`` itself (the first of an id is the one
    this batch keeps)."""
    known = dict(kept)
    conflicts: dict[str, list[str]] = {}
    for record in strict:
        if known.setdefault((record.source, record.id), record.digest) != record.digest:
            conflicts.setdefault(record.source, []).append(record.id)
    if conflicts:
        source, ids = next(iter(conflicts.items()))
        raise RecordConflict(source, ids)
