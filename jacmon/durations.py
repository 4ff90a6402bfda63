"""Human durations (``"30s"``, ``"5m"``, ``"24h"``, ``"7d"``, ``"2w"``, or seconds) in seconds.

One parser for every place a person writes a duration: config (``group_wait``),
flags (``--for 7d``, ``--expires-in 2h``) and prompts.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Unit suffix -> seconds.
UNITS: dict[str, float] = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(value: Any, what: str = "duration", *, allow_zero: bool = False) -> float:
    """``value`` as seconds: a number of seconds, or text like ``"30s"``, ``"5m"``, ``"24h"``.

    Raises ValueError naming ``what``, the value and the expected form; a
    negative, non-finite or (unless ``allow_zero``) zero duration is refused.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        match = _DURATION.fullmatch(value)
        if match:
            seconds = float(match.group(1)) * UNITS[(match.group(2) or "s").lower()]
    if (
        seconds is None
        or not math.isfinite(seconds)
        or seconds < 0
        or (seconds == 0 and not allow_zero)
    ):
        raise ValueError(
            f'{what} is {value!r}; expected a duration like "30s", "5m", "24h", "7d" '
            f"or a number of seconds{'' if allow_zero else ' above 0'}"
        )
    return seconds


def format_duration(seconds: float) -> str:
    """``seconds`` the way people write it back: ``"30s"``, ``"5m"``, ``"1h30m"``, ``"7d"``."""
    seconds = round(seconds)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size or (unit == "s" and not parts):
            count, seconds = divmod(seconds, size)
            if count or unit == "s":
                parts.append(f"{count}{unit}")
    return "".join(parts[:2])
