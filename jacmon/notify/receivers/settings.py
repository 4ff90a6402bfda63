"""Reading one ``[[notify.receivers]]`` table: each setting checked, errors that say where.

Every error names the receiver (``where``, e.g. ``notify.receivers[2] (name "ops")``),
the key, the value and what was expected. A secret's value is never shown.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

from jacmon.errors import ConfigError

#: Duration units a setting may use: ``"30s"``, ``"5m"``, ``"24h"``, ``"7d"``.
DURATION_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}

#: Keys a settings table may repeat from its receiver (the spec holds them already).
_SPEC_KEYS = frozenset({"name", "type"})

_MISSING = object()


class ReceiverSettings:
    """The settings of one receiver, read key by key; :meth:`finish` refuses unknown keys.

    Each getter records its key as known, so the unknown-key error can list
    every setting this receiver type has.
    """

    def __init__(self, settings: dict[str, Any], *, where: str, type_: str) -> None:
        if not isinstance(settings, dict):
            raise ConfigError(f"Config {where}: expected a table of settings, got {settings!r}.")
        self.settings = settings
        self.where = where
        self.type = type_
        self.known: set[str] = set()

    def _raw(self, key: str, default: Any) -> Any:
        self.known.add(key)
        value = self.settings.get(key, default)
        if value is _MISSING:
            raise ConfigError(
                f"Config {self.where}: '{key}' is missing; a {self.type} receiver needs it."
            )
        return value

    def fail(self, key: str, value: Any, expected: str) -> ConfigError:
        """The error for a bad value: where, key, value, expectation."""
        return ConfigError(
            f"Config {self.where}: '{key}' has value {value!r}. Expected {expected}."
        )

    def text(self, key: str, default: Any = _MISSING) -> str | None:
        """A non-empty string; ``default`` when absent (no default: required)."""
        value = self._raw(key, default)
        if value is None or value is default:
            return value
        if not isinstance(value, str) or not value.strip():
            raise self.fail(key, value, "a non-empty string")
        return value

    def choice(self, key: str, options: Iterable[str], default: str) -> str:
        """One of ``options``."""
        options = list(options)
        value = self._raw(key, default)
        if value not in options:
            raise self.fail(key, value, "one of " + ", ".join(repr(o) for o in options))
        return str(value)

    def url(self, key: str, *, hide_path: bool = False) -> str:
        """An ``http://`` or ``https://`` URL with a host (required).

        ``hide_path``: the path is a credential (Slack's webhook URL), so an
        error shows only the scheme and host.
        """
        value = self._raw(key, _MISSING)
        parts = urlsplit(value) if isinstance(value, str) else None
        if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
            shown = value
            if parts is not None and parts.password:
                shown = value.replace(parts.password, "***")  # a password never goes in an error
            if hide_path and isinstance(value, str) and parts is not None:
                shown = f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "(hidden)"
            raise self.fail(
                key, shown, "an http:// or https:// URL with a host, like https://host/path"
            )
        try:
            _ = parts.port  # a port that is not a number raises here
        except ValueError:
            raise self.fail(key, value, "a URL whose port is a number from 1 to 65535") from None
        return value

    def port(self, key: str, default: int) -> int:
        """A TCP port, 1 to 65535."""
        value = self._raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
            raise self.fail(key, value, "a port number from 1 to 65535")
        return value

    def seconds(self, key: str, default: float) -> float:
        """A positive duration: a number of seconds or ``"30s"``, ``"5m"``, ``"24h"``, ``"7d"``."""
        value = self._raw(key, default)
        seconds = parse_duration(value)
        if seconds is None:
            raise self.fail(
                key, value, 'a positive duration: seconds (10) or "30s", "5m", "24h", "7d"'
            )
        return seconds

    def address(self, key: str, default: Any = _MISSING) -> str | None:
        """One email address (``ops@example.org`` or ``Jacmon <ops@example.org>``)."""
        value = self._raw(key, default)
        if value is None or value is default:
            return value
        if not is_address(value):
            raise self.fail(key, value, "an email address like ops@example.org")
        return value

    def addresses(self, key: str) -> list[str]:
        """A non-empty list of email addresses (a single string is one address)."""
        value = self._raw(key, _MISSING)
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(key, value, 'a list of email addresses, like ["ops@example.org"]')
        for item in items:
            if not is_address(item):
                raise self.fail(key, item, "an email address like ops@example.org")
        return list(items)

    def secret(self, key: str, env_key: str, *, required: bool = False) -> str | None:
        """A secret from ``key`` or from the environment variable named by ``env_key``.

        The variable is read now (at build time): a missing one is an error naming
        it. The secret's value never appears in an error.
        """
        value = self._raw(key, None)
        env_name = self._raw(env_key, None)
        if value is not None and env_name is not None:
            raise ConfigError(
                f"Config {self.where}: both '{key}' and '{env_key}' are set; keep one "
                f"('{env_key}' keeps the secret out of the config file)."
            )
        if env_name is not None:
            if not isinstance(env_name, str) or not re.fullmatch(
                r"[A-Za-z_][A-Za-z0-9_]*", env_name
            ):
                raise self.fail(env_key, env_name, "the name of an environment variable")
            value = os.environ.get(env_name)
            if not value:
                raise ConfigError(
                    f"Config {self.where}: '{env_key}' names the environment variable "
                    f"{env_name}, which is not set or empty; export it before starting "
                    f"jacmon, or set '{key}' in the config."
                )
            return value
        if value is None:
            if required:
                raise ConfigError(
                    f"Config {self.where}: '{key}' (or '{env_key}') is missing; "
                    f"a {self.type} receiver needs it."
                )
            return None
        if not isinstance(value, str) or not value:
            raise ConfigError(
                f"Config {self.where}: '{key}' must be a non-empty string "
                "(its value is not shown: it is a secret)."
            )
        return value

    def finish(self) -> None:
        """Refuse any key no getter asked for (a typo would otherwise be silently ignored)."""
        unknown = sorted(set(self.settings) - self.known - _SPEC_KEYS)
        if unknown:
            raise ConfigError(
                f"Config {self.where}: {', '.join(repr(k) for k in unknown)} "
                f"{'is not a setting' if len(unknown) == 1 else 'are not settings'} "
                f"of a {self.type} receiver. Known: {', '.join(sorted(self.known))}."
            )


def parse_duration(value: Any) -> float | None:
    """Seconds from a positive number or ``"30s"``/``"5m"``/``"24h"``/``"7d"``; None if neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value > 0 else None
    if not isinstance(value, str):
        return None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
    if match is None or float(match.group(1)) <= 0:
        return None
    return float(match.group(1)) * DURATION_UNITS[match.group(2) or "s"]


def is_address(value: Any) -> bool:
    """Whether ``value`` is one email address, bare or with a display name."""
    if not isinstance(value, str) or "\n" in value or "\r" in value:
        return False
    _, address = parseaddr(value)
    return bool(re.fullmatch(r"[^@\s<>,;]+@[^@\s<>,;]+", address))
