"""Logging setup: readable lines for a terminal, or JSON lines for log collectors."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

from jacmon.errors import ConfigError

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")


#: A token's secret part (``jm_<id>_<secret>``: the id is not secret, the rest is).
_TOKEN_SECRET = re.compile(r"\b(jm_[0-9A-Za-z]+_)[0-9A-Za-z_\-]+")
#: The value of a ``token=`` query parameter, whatever it looks like.
_QUERY_TOKEN = re.compile(r"((?:^|[?&;\s])token=)[^&#\s'\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` with every token secret replaced by ``…``: ``jm_<id>_…`` and ``token=…``.

    Used wherever a request path, a URL or a client's input may be quoted: log
    records, close reasons, error messages and the /metrics page.
    """
    text = _QUERY_TOKEN.sub(r"\1…", text)
    return _TOKEN_SECRET.sub(r"\1…", text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (arguments filled in) through :func:`redact`.

    Installed on the handlers, so records of every logger, ``websockets``
    included (it logs request paths when a handshake fails), are covered.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg = clean
            record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (epoch seconds), level, logger, message, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_text:
            entry["exception"] = record.exc_text
        elif record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
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
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # websockets logs every failed handshake at INFO; ours say more.
    logging.getLogger("websockets").setLevel(max(logging.WARNING, root.level))
