"""Settings: defaults < TOML file < ``JACMON_*`` environment < command-line flags.

The file has one table per section (``[server]``, ``[client]``, ``[web]``,
``[tasks]``, ``[lrs]``, ``[notify]``); the environment sets any key as ``JACMON_<SECTION>__<KEY>``
(``JACMON_SERVER__PORT=9000``), and the common ones have short names too
(:data:`ENV_ALIASES`: ``JACMON_PORT``, ``JACMON_DB``, ``JACMON_TOKEN`` ...).
Every bad value raises :class:`~jacmon.errors.ConfigError` naming the key, the
value and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import platformdirs

from jacmon.errors import ConfigError
from jacmon.logs import FORMATS as LOG_FORMATS
from jacmon.logs import LEVELS as LOG_LEVELS

DEFAULT_PORT = 8765


def default_db_path() -> Path:
    """The database used when no ``--db`` is given: ``jacmon.db`` in the user's data dir."""
    return Path(platformdirs.user_data_dir("jacmon", appauthor=False)) / "jacmon.db"


def default_config_path() -> Path:
    """Where ``jacmon`` looks for a config file when ``--config`` is not given."""
    return Path(platformdirs.user_config_dir("jacmon", appauthor=False)) / "config.toml"


@dataclass(slots=True)
class ServerSettings:
    """What ``jacmon serve`` listens on and how it treats clients."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    db: Path = field(default_factory=default_db_path)
    #: A shared store for several nodes, ``postgresql://user:password@host:port/database``;
    #: unset: the SQLite file at ``db`` (one node).
    store: str | None = None
    #: The bus between nodes, ``redis://host:port/0``; unset: one node, no bus.
    bus: str | None = None
    #: This node's name in /metrics labels and the bus (default: host name and process id).
    node: str | None = None
    #: Serve off loopback without tokens (not recommended).
    insecure: bool = False
    #: Require a token even on loopback.
    require_tokens: bool = False
    #: Browser origins (``scheme://host[:port]``) whose pages may open WebSockets here,
    #: besides the server's own origin; a handshake without ``Origin`` (a non-browser
    #: client) is always let through to the token check.
    allowed_origins: list[str] = field(default_factory=list)
    #: A separate secret that also opens ``/metrics`` (for a Prometheus scraper) where
    #: tokens are required; None: only an admin or viewer token does.
    metrics_token: str | None = None
    # Limits
    #: Largest frame accepted from a client, in bytes.
    max_frame_bytes: int = 1024 * 1024
    #: Largest request body the xAPI and Caliper endpoints accept, in bytes (413 above).
    push_max_body_bytes: int = 32 * 1024 * 1024
    #: Most statements (xAPI) or events (Caliper) in one request (413 above).
    push_max_records: int = 25_000
    #: How many events back a client may resume from the store; older gets a reset snapshot.
    replay_window: int = 100_000
    #: Frames a client may have waiting before the server acts on it (per stream policy).
    client_buffer_frames: int = 256
    #: Bytes a stream client may leave unread (queued frames, the connection's buffer and
    #: the socket's kernel send buffer together) before it is closed as too slow.
    client_max_unsent_bytes: int = 4 * 1024 * 1024
    #: How long one frame may take to reach a stream client before it is closed as too
    #: slow, in seconds.
    client_send_timeout_s: float = 30.0
    #: How far ahead of the server's clock an event's ``ts`` may be, in seconds (clock skew).
    max_clock_skew_s: float = 300.0
    #: The earliest event time accepted (ISO 8601 with a zone): older is a producer's bug.
    earliest_event_ts: str = "2000-01-01T00:00:00Z"
    #: What happens to an event outside those bounds: ``reject`` it (with the reason), or
    #: ``warn``: store it and log a warning.
    out_of_range_ts: str = "reject"
    # Timing
    #: How often activity events are flushed to clients as one frame, in milliseconds.
    activity_flush_ms: int = 50
    #: How often a metrics sample is taken, in seconds.
    metrics_interval_s: float = 2.0
    #: How much metrics history the snapshot carries, in seconds.
    metrics_history_s: float = 900.0
    #: How long shutdown waits for the batch in flight, in seconds.
    shutdown_grace_s: float = 10.0
    # TLS: both set to serve wss:// directly; otherwise put a reverse proxy in front.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # Logging
    log_level: str = "info"
    #: ``text`` for a terminal, ``json`` for JSON lines.
    log_format: str = "text"

    @property
    def store_location(self) -> str | Path:
        """Where the store is: the ``store`` URL if set, else the SQLite file ``db``."""
        return self.store or self.db


@dataclass(slots=True)
class ClientSettings:
    """Where ``jacmon dashboard``, ``ingest`` and ``sim`` connect to."""

    server: str = f"ws://127.0.0.1:{DEFAULT_PORT}"
    token: str | None = None
    #: Scope the dashboard to one learner.
    learner: str | None = None


@dataclass(slots=True)
class WebSettings:
    """The browser dashboard ``jacmon serve`` serves on its port (docs/web.md)."""

    #: Serve the pages (``/``, ``/learner``, ``/static/...``); False answers them 404.
    enabled: bool = True
    #: Who may show the pages in a frame (CSP ``frame-ancestors``): ``'self'``,
    #: ``'none'`` (alone), or origins like ``https://lms.example.com`` (``https://*.example.com``).
    frame_ancestors: list[str] = field(default_factory=lambda: ["'self'"])


@dataclass(slots=True)
class Settings:
    """All settings; each section is its own dataclass."""

    server: ServerSettings = field(default_factory=ServerSettings)
    client: ClientSettings = field(default_factory=ClientSettings)
    web: WebSettings = field(default_factory=WebSettings)
    #: Scheduler and task settings, read by :mod:`jacmon.monitoring.scheduler` (free-form table).
    tasks: dict[str, Any] = field(default_factory=dict)
    #: LRS tailer settings, read by :mod:`jacmon.sources.lrs` (free-form table).
    lrs: dict[str, Any] = field(default_factory=dict)
    #: Notification receivers and routes, read by :mod:`jacmon.notify.config`.
    notify: dict[str, Any] = field(default_factory=dict)
    #: The file these settings were read from, if any.
    source: Path | None = None


#: Short environment names for the settings people set most.
ENV_ALIASES: dict[str, tuple[str, str]] = {
    "JACMON_HOST": ("server", "host"),
    "JACMON_PORT": ("server", "port"),
    "JACMON_DB": ("server", "db"),
    "JACMON_STORE": ("server", "store"),
    "JACMON_BUS": ("server", "bus"),
    "JACMON_NODE": ("server", "node"),
    "JACMON_LOG_LEVEL": ("server", "log_level"),
    "JACMON_LOG_FORMAT": ("server", "log_format"),
    "JACMON_SERVER": ("client", "server"),
    "JACMON_TOKEN": ("client", "token"),
    "JACMON_LEARNER": ("client", "learner"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def coerce_setting(where: str, value: Any, annotation: Any) -> Any:
    """Convert ``value`` (from TOML or the environment) to ``annotation`` or raise ConfigError.

    ``where`` names the setting in the error (``"server.port"``). Handles
    optional types, bool, int, float, Path, str and list[str] (a
    comma-separated string from the environment is split).
    """
    if isinstance(annotation, str):
        annotation = eval(annotation, vars(typing), {"Path": Path})
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(annotation) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.lower() in ("", "none", "null")):
            return None
        return coerce_setting(where, value, options[0])
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
            return value.lower() in _TRUE
        raise ConfigError(f"Config '{where}' has value {value!r}. Expected true or false.")
    if annotation is int:
        try:
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        except (TypeError, ValueError):
            raise ConfigError(
                f"Config '{where}' has value {value!r}. Expected an integer."
            ) from None
    if annotation is float:
        try:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"Config '{where}' has value {value!r}. Expected a number.") from None
    if annotation is Path:
        if not isinstance(value, str | Path):
            raise ConfigError(f"Config '{where}' has value {value!r}. Expected a file path.")
        return Path(value).expanduser()
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"Config '{where}' has value {value!r}. Expected a string.")
        return value
    if origin is list:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"Config '{where}' has value {value!r}. Expected a list of strings.")
        return list(value)
    return value


def apply_section(section: Any, name: str, values: Mapping[str, Any]) -> None:
    """Set ``values`` on the settings dataclass ``section`` (``[name]``), each coerced to
    its field's type; an unknown key is a ConfigError listing the known ones."""
    fields = {f.name: f for f in dataclasses.fields(section)}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(
                f"Config '{name}.{key}' is not a setting. Known keys in [{name}]: "
                + ", ".join(sorted(fields))
            )
        setattr(section, key, coerce_setting(f"{name}.{key}", value, fields[key].type))


#: Sections of typed settings (each key coerced to its field's type) ...
_TYPED_SECTIONS = ("server", "client", "web")
#: ... and sections kept as raw tables, validated where they are used
#: (monitoring/tasks/config.py, sources/lrs.py, notify/config.py).
_SECTIONS = (*_TYPED_SECTIONS, "tasks", "lrs", "notify")


def _merge(settings: Settings, section: str, values: Mapping[str, Any]) -> None:
    """Layer ``values`` over one known section of ``settings``."""
    if section in _TYPED_SECTIONS:
        apply_section(getattr(settings, section), section, values)
    else:
        getattr(settings, section).update(values)


def read_config_file(path: Path) -> dict[str, Any]:
    """Parse a TOML config file, with errors that name the file and the problem."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist; check the --config path.") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Config file {path} is not valid TOML: {exc}") from None


def load_settings(
    config_path: Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> Settings:
    """Build the settings: defaults < file < environment < ``overrides`` (the flags).

    ``config_path`` None reads ``JACMON_CONFIG`` or the default config path if
    that file exists. ``overrides`` maps section -> key -> value; a ``None``
    value means "flag not given" and is skipped.
    """
    env = os.environ if env is None else env
    settings = Settings()
    if config_path is None and env.get("JACMON_CONFIG"):
        config_path = Path(env["JACMON_CONFIG"])
    if config_path is None and default_config_path().exists():
        config_path = default_config_path()
    if config_path is not None:
        data = read_config_file(config_path)
        settings.source = config_path
        for name, table in data.items():
            if name not in _SECTIONS:
                raise ConfigError(
                    f"Config file {config_path} has an unknown table [{name}]. "
                    "Known: [server], [client], [web], [tasks], [lrs], [notify]."
                )
            if not isinstance(table, dict):
                raise ConfigError(f"Config '{name}' must be a table ([{name}]).")
            _merge(settings, name, table)
    for var, value in env.items():
        if not var.startswith("JACMON_") or var == "JACMON_CONFIG":
            continue
        if var in ENV_ALIASES:
            section, key = ENV_ALIASES[var]
        elif "__" in var:
            section, _, key = var[len("JACMON_") :].lower().partition("__")
        else:
            continue
        if section not in _SECTIONS:
            raise ConfigError(
                f"Environment variable {var} names section '{section}', which does not exist. "
                "Known: SERVER, CLIENT, WEB, TASKS, LRS, NOTIFY (as JACMON_<SECTION>__<KEY>)."
            )
        _merge(settings, section, {key: value})
    for section, values in (overrides or {}).items():
        _merge(settings, section, {k: v for k, v in values.items() if v is not None})
    check_server_settings(settings.server)
    check_web_settings(settings.web)
    return settings


#: (setting, lowest allowed, highest allowed or None) for the numeric server settings.
_RANGES: tuple[tuple[str, float, float | None], ...] = (
    ("port", 0, 65535),
    ("max_frame_bytes", 1024, None),
    ("push_max_body_bytes", 1024, None),
    ("push_max_records", 1, None),
    ("replay_window", 0, None),
    ("client_buffer_frames", 1, None),
    ("activity_flush_ms", 1, 10_000),
    ("metrics_interval_s", 0.01, None),
    ("metrics_history_s", 0, None),
    ("shutdown_grace_s", 0, None),
    ("client_max_unsent_bytes", 64 * 1024, None),
    ("client_send_timeout_s", 0.1, None),
    ("max_clock_skew_s", 0, None),
)

#: Choices for ``server.out_of_range_ts``.
OUT_OF_RANGE_TS_CHOICES = ("reject", "warn")


def check_server_settings(server: ServerSettings) -> None:
    """Raise ConfigError for a value out of range or not one of the choices."""
    for name, low, high in _RANGES:
        value = getattr(server, name)
        if value < low or (high is not None and value > high):
            bound = f"from {low:g} to {high:g}" if high is not None else f"at least {low:g}"
            raise ConfigError(f"Config 'server.{name}' has value {value!r}. Expected {bound}.")
    if server.log_level.lower() not in LOG_LEVELS:
        raise ConfigError(
            f"Config 'server.log_level' has value {server.log_level!r}. "
            "Expected debug, info, warning or error."
        )
    if server.log_format not in LOG_FORMATS:
        raise ConfigError(
            f"Config 'server.log_format' has value {server.log_format!r}. Expected text or json."
        )
    if server.out_of_range_ts not in OUT_OF_RANGE_TS_CHOICES:
        raise ConfigError(
            f"Config 'server.out_of_range_ts' has value {server.out_of_range_ts!r}. "
            "Expected reject or warn."
        )
    try:
        moment = datetime.fromisoformat(server.earliest_event_ts)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ConfigError(
            f"Config 'server.earliest_event_ts' has value {server.earliest_event_ts!r}. "
            "Expected an ISO 8601 time with a zone, like '2000-01-01T00:00:00Z'."
        )
    for origin in server.allowed_origins:
        if origin != "*" and not re.fullmatch(r"https?://[^/?#\s]+", origin):
            raise ConfigError(
                f"Config 'server.allowed_origins' has value {origin!r}. Expected an origin "
                "like 'https://lms.example.com' (scheme and host, optional port, no path)."
            )


#: A ``frame-ancestors`` origin: http(s), a host (``*.`` wildcard allowed) or an IPv6
#: address in brackets, an optional port; no path, and nothing that could end the CSP value.
_FRAME_ANCESTOR = re.compile(
    r"https?://(?:(?:\*\.)?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
)


def check_web_settings(web: WebSettings) -> None:
    """Raise ConfigError for a ``web.frame_ancestors`` entry that is not a CSP source we allow."""
    where = "Config 'web.frame_ancestors'"
    if not web.frame_ancestors:
        raise ConfigError(
            f"{where} is empty. Expected \"'self'\", \"'none'\" or origins like "
            "'https://lms.example.com'."
        )
    for entry in web.frame_ancestors:
        if entry in ("'self'", "'none'") or _FRAME_ANCESTOR.fullmatch(entry):
            continue
        hint = ""
        if entry in ("self", "none"):
            hint = f" (with the single quotes: \"'{entry}'\")"
        raise ConfigError(
            f"{where} has value {entry!r}. Expected \"'self'\", \"'none'\" or an origin like "
            f"'https://lms.example.com' or 'https://*.example.com' (scheme, host, optional "
            f"port, no path){hint}."
        )
    if "'none'" in web.frame_ancestors and len(web.frame_ancestors) > 1:
        raise ConfigError(
            f"{where} has value {web.frame_ancestors!r}. \"'none'\" must be the only entry: "
            "it forbids every frame."
        )
