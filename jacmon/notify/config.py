"""The ``[notify]`` table: receivers, routes and delivery settings, validated.

```toml
[notify]
dashboard_url = "https://monitor.example.com/"   # linked from messages (optional)
max_age = "24h"                                   # retry a notification this long, then fail it
retry_backoff = "2s"                              # first retry within this, doubling up to
max_retry_backoff = "10m"                         # ... this

[[notify.receivers]]
name = "tutors"
type = "slack"
url = "https://hooks.slack.com/services/..."

[[notify.routes]]
receivers = ["tutors"]
severity = "warning"          # at least: warning and critical
rule = "inactivity"           # optional matchers: rule, path, learner (a value or a list)
send = ["fired", "resolved"]  # which changes: fired, resolved, acknowledged
group_by = ["rule", "path"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "24h"
```
Nothing configured: no notifications. Every bad value is a ConfigError naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jacmon.durations import parse_duration
from jacmon.errors import ConfigError
from jacmon.notify.model import ReceiverSpec

SEVERITIES = ("info", "warning", "critical")
#: Changes a route may send; ``acknowledged`` also sends ``unacknowledged``.
SENDABLE_CHANGES = ("fired", "resolved", "acknowledged")
#: Alert labels a route may group by.
GROUP_LABELS = ("rule", "path", "learner", "severity")
RECEIVER_TYPES = ("webhook", "slack", "email", "alertmanager")

_TOP_KEYS = {
    "dashboard_url",
    "max_age",
    "receivers",
    "routes",
    "poll_interval",
    "retry_backoff",
    "max_retry_backoff",
}
_ROUTE_KEYS = {
    "name",
    "receivers",
    "severity",
    "rule",
    "path",
    "learner",
    "send",
    "group_by",
    "group_wait",
    "group_interval",
    "repeat_interval",
}


@dataclass(frozen=True, slots=True)
class Route:
    """Which alert changes go to which receivers, and how they are grouped and repeated.

    A matcher that is None matches everything; ``severity`` is a minimum.
    Durations are in seconds.
    """

    name: str
    receivers: tuple[str, ...]
    severity: str | None = None
    rules: frozenset[str] | None = None
    paths: frozenset[str] | None = None
    learners: frozenset[str] | None = None
    send: frozenset[str] = frozenset({"fired", "resolved"})
    group_by: tuple[str, ...] = ("rule", "path")
    group_wait_s: float = 30.0
    group_interval_s: float = 300.0
    repeat_interval_s: float = 86400.0

    def matches(self, alert: dict[str, Any]) -> bool:
        """True when ``alert`` passes every matcher of this route."""
        if self.severity is not None:
            severity = alert.get("severity")
            rank = SEVERITIES.index(severity) if severity in SEVERITIES else -1
            if rank < SEVERITIES.index(self.severity):
                return False
        for values, key in ((self.rules, "rule"), (self.paths, "path"), (self.learners, "learner")):
            if values is not None and alert.get(key) not in values:
                return False
        return True

    def sends(self, change: str) -> bool:
        """True when this route sends alert changes of kind ``change``."""
        if change == "unacknowledged":
            change = "acknowledged"
        return change in self.send

    def group_of(self, alert: dict[str, Any]) -> tuple[str, dict[str, str]]:
        """The group key (stable text) and labels of ``alert`` under this route."""
        labels = {label: str(alert.get(label) or "") for label in self.group_by}
        key = self.name + "|" + "|".join(f"{k}={v}" for k, v in labels.items())
        return key, labels


@dataclass(frozen=True, slots=True)
class NotifySettings:
    """The parsed ``[notify]`` table (empty: notifications off)."""

    receivers: tuple[ReceiverSpec, ...] = ()
    routes: tuple[Route, ...] = ()
    dashboard_url: str | None = None
    #: How long a notification is retried before it is marked failed, in seconds.
    max_age_s: float = 86400.0
    #: How often the router looks for new alert changes and due groups, in seconds.
    poll_interval_s: float = 1.0
    #: The first retry waits up to this long (full jitter), doubling per attempt, in seconds.
    retry_backoff_s: float = 2.0
    #: The longest wait between two attempts, in seconds.
    max_retry_backoff_s: float = 600.0

    @property
    def enabled(self) -> bool:
        return bool(self.receivers and self.routes)

    def receiver_names(self) -> list[str]:
        return [spec.name for spec in self.receivers]


def parse_notify(raw: dict[str, Any] | None) -> NotifySettings:
    """Validate the raw ``[notify]`` table; ConfigError names the key and value at fault."""
    raw = raw or {}
    if not isinstance(raw, dict):
        raise ConfigError("Config 'notify' must be a table ([notify]).")
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise ConfigError(
            f"Config 'notify.{sorted(unknown)[0]}' is not a setting. Known keys in [notify]: "
            + ", ".join(sorted(_TOP_KEYS))
        )
    dashboard_url = raw.get("dashboard_url")
    if dashboard_url is not None and (
        not isinstance(dashboard_url, str) or not dashboard_url.startswith(("http://", "https://"))
    ):
        raise ConfigError(
            f"Config 'notify.dashboard_url' is {dashboard_url!r}; expected an http(s):// URL."
        )
    max_age_s = _duration(raw.get("max_age", "24h"), "notify.max_age")
    poll_s = _duration(raw.get("poll_interval", 1.0), "notify.poll_interval")
    backoff_s = _duration(raw.get("retry_backoff", "2s"), "notify.retry_backoff")
    max_backoff_s = _duration(raw.get("max_retry_backoff", "10m"), "notify.max_retry_backoff")
    receivers = tuple(_receiver(i, r) for i, r in enumerate(_tables(raw, "receivers")))
    names = [r.name for r in receivers]
    for name in names:
        if names.count(name) > 1:
            raise ConfigError(
                f"Config [[notify.receivers]] names {name!r} twice; names must be unique."
            )
    routes = tuple(_route(i, r, names) for i, r in enumerate(_tables(raw, "routes")))
    return NotifySettings(
        receivers=receivers,
        routes=routes,
        dashboard_url=dashboard_url,
        max_age_s=max_age_s,
        poll_interval_s=poll_s,
        retry_backoff_s=backoff_s,
        max_retry_backoff_s=max(backoff_s, max_backoff_s),
    )


def _tables(raw: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise ConfigError(
            f"Config 'notify.{key}' must be an array of tables ([[notify.{key}]]), "
            f"not {type(value).__name__}."
        )
    return value


def _duration(value: Any, where: str, *, allow_zero: bool = False) -> float:
    try:
        return parse_duration(value, f"Config '{where}'", allow_zero=allow_zero)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _receiver(index: int, table: dict[str, Any]) -> ReceiverSpec:
    where = f"notify.receivers[{index}]"
    name, kind = table.get("name"), table.get("type")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"Config '{where}.name' is {name!r}; every receiver needs a name.")
    if kind not in RECEIVER_TYPES:
        raise ConfigError(
            f"Config '{where}.type' (receiver {name!r}) is {kind!r}; expected one of "
            + ", ".join(RECEIVER_TYPES)
        )
    settings = {k: v for k, v in table.items() if k not in ("name", "type")}
    return ReceiverSpec(name=name, type=kind, settings=settings)


def _names(value: Any, where: str, allowed: tuple[str, ...] | None = None) -> frozenset[str] | None:
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise ConfigError(f"Config '{where}' is {value!r}; expected a name or a list of names.")
    if allowed is not None:
        for item in items:
            if item not in allowed:
                raise ConfigError(
                    f"Config '{where}' has {item!r}; expected one of " + ", ".join(allowed)
                )
    return frozenset(items)


def _route(index: int, table: dict[str, Any], receivers: list[str]) -> Route:
    where = f"notify.routes[{index}]"
    unknown = set(table) - _ROUTE_KEYS
    if unknown:
        raise ConfigError(
            f"Config '{where}.{sorted(unknown)[0]}' is not a route setting. Known: "
            + ", ".join(sorted(_ROUTE_KEYS))
        )
    targets = table.get("receivers")
    if not isinstance(targets, list) or not targets or not all(isinstance(t, str) for t in targets):
        raise ConfigError(
            f"Config '{where}.receivers' is {targets!r}; expected a list of receiver names."
        )
    for target in targets:
        if target not in receivers:
            raise ConfigError(
                f"Config '{where}.receivers' names {target!r}, which is not a receiver. "
                "Known: " + (", ".join(receivers) or "none ([[notify.receivers]] is empty)")
            )
    severity = table.get("severity")
    if severity is not None and severity not in SEVERITIES:
        raise ConfigError(
            f"Config '{where}.severity' is {severity!r}; expected one of "
            + ", ".join(SEVERITIES)
            + " (the lowest severity sent)"
        )
    group_by = table.get("group_by", ["rule", "path"])
    group = _names(group_by, f"{where}.group_by", GROUP_LABELS) if group_by != [] else frozenset()
    name = table.get("name", f"route-{index}")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Config '{where}.name' is {name!r}; expected text.")
    return Route(
        name=name,
        receivers=tuple(dict.fromkeys(targets)),
        severity=severity,
        rules=_names(table.get("rule"), f"{where}.rule"),
        paths=_names(table.get("path"), f"{where}.path"),
        learners=_names(table.get("learner"), f"{where}.learner"),
        send=_names(table.get("send", ["fired", "resolved"]), f"{where}.send", SENDABLE_CHANGES)
        or frozenset(),
        # Keep the configured order: it is the order of the labels in messages.
        group_by=tuple(label for label in group_by if label in group) if group else (),
        # 0: send at once (Alertmanager, which groups by itself, is often routed so).
        group_wait_s=_duration(
            table.get("group_wait", "30s"), f"{where}.group_wait", allow_zero=True
        ),
        group_interval_s=_duration(
            table.get("group_interval", "5m"), f"{where}.group_interval", allow_zero=True
        ),
        repeat_interval_s=_duration(
            table.get("repeat_interval", "24h"), f"{where}.repeat_interval"
        ),
    )
