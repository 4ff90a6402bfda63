"""Logging setup: readable lines for a terminal, or JSON lines for log collectors."""

from __future__ import annotations

import json
import logging
import sys
import time

from jacmon.errors import ConfigError

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (epoch seconds), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    """Configure the root logger on stderr; ``fmt`` is ``text`` or ``json``."""
    if level.lower() not in LEVELS:
        raise ConfigError(f"Config 'log_level' has value {level!r}. Expected one of {LEVELS}.")
    if fmt not in FORMATS:
        raise ConfigError(f"Config 'log_format' has value {fmt!r}. Expected 'text' or 'json'.")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        formatter.converter = time.gmtime
        formatter.default_time_format = "%Y-%m-%dT%H:%M:%S"
        formatter.default_msec_format = "%s.%03dZ"
        handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # websockets logs every failed handshake at INFO; ours say more.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
