"""The notification receivers (``[[notify.receivers]]``) and :func:`build_receiver`.

Types: ``webhook`` (signed JSON), ``slack`` (Slack/Mattermost/Rocket.Chat
incoming webhook), ``email`` (SMTP digest) and ``alertmanager`` (Prometheus
Alertmanager v2 API). Every type has ``timeout_s`` (seconds or ``"10s"``,
default 10).
"""

from __future__ import annotations

from collections.abc import Callable

from jacmon.errors import ConfigError
from jacmon.notify.model import Receiver, ReceiverSpec
from jacmon.notify.receivers.alertmanager import AlertmanagerReceiver
from jacmon.notify.receivers.email import DEFAULT_PORTS, EmailReceiver
from jacmon.notify.receivers.settings import ReceiverSettings
from jacmon.notify.receivers.slack import SlackReceiver
from jacmon.notify.receivers.webhook import WebhookReceiver

__all__ = [
    "RECEIVER_TYPES",
    "AlertmanagerReceiver",
    "EmailReceiver",
    "SlackReceiver",
    "WebhookReceiver",
    "build_receiver",
]

#: Default per-request timeout of every receiver, in seconds.
DEFAULT_TIMEOUT_S = 10.0


def _webhook(name: str, s: ReceiverSettings, dashboard_url: str | None) -> Receiver:
    return WebhookReceiver(
        name,
        url=s.url("url"),
        secret=s.secret("secret", "secret_env"),
        timeout_s=s.seconds("timeout_s", DEFAULT_TIMEOUT_S),
    )


def _slack(name: str, s: ReceiverSettings, dashboard_url: str | None) -> Receiver:
    return SlackReceiver(
        name,
        url=s.url("url", hide_path=True),
        timeout_s=s.seconds("timeout_s", DEFAULT_TIMEOUT_S),
        channel=s.text("channel", None),
        username=s.text("username", None),
        icon_emoji=s.text("icon_emoji", None),
    )


def _email(name: str, s: ReceiverSettings, dashboard_url: str | None) -> Receiver:
    security = s.choice("security", DEFAULT_PORTS, "starttls")
    username = s.text("username", None)
    password = s.secret("password", "password_env")
    if (username is None) != (password is None):
        missing = "password (or password_env)" if password is None else "username"
        raise ConfigError(
            f"Config {s.where}: login needs both 'username' and 'password'; '{missing}' "
            "is missing. Set both, or neither to send without logging in."
        )
    return EmailReceiver(
        name,
        host=s.text("host"),
        port=s.port("port", DEFAULT_PORTS[security]),
        security=security,
        sender=s.address("from"),
        to=s.addresses("to"),
        timeout_s=s.seconds("timeout_s", DEFAULT_TIMEOUT_S),
        username=username,
        password=password,
        subject_prefix=s.text("subject_prefix", "[jacmon]"),
        ca_file=s.text("ca_file", None),
    )


def _alertmanager(name: str, s: ReceiverSettings, dashboard_url: str | None) -> Receiver:
    return AlertmanagerReceiver(
        name,
        url=s.url("url"),
        timeout_s=s.seconds("timeout_s", DEFAULT_TIMEOUT_S),
        resync_interval_s=s.seconds("resync_interval_s", 60.0),
        dashboard_url=dashboard_url,
    )


#: Receiver type -> builder from its checked settings.
RECEIVER_TYPES: dict[str, Callable[[str, ReceiverSettings, str | None], Receiver]] = {
    "webhook": _webhook,
    "slack": _slack,
    "email": _email,
    "alertmanager": _alertmanager,
}


def build_receiver(spec: ReceiverSpec, *, where: str, dashboard_url: str | None = None) -> Receiver:
    """The receiver ``spec`` describes, its settings checked.

    ``where`` names the table in errors (``notify.receivers[2] (name "ops")``).
    ``dashboard_url`` is ``notify.dashboard_url``, for messages that are not
    built from a notification (Alertmanager resyncs). Environment variables
    named by ``*_env`` settings are read now.

    Raises:
        ConfigError: unknown type or key, a value of the wrong kind, a missing
            required setting or secret variable. The message names ``where``,
            the key, the value (never a secret's) and what was expected.
    """
    if not isinstance(spec.name, str) or not spec.name.strip():
        raise ConfigError(
            f"Config {where}: 'name' has value {spec.name!r}. Expected a non-empty name."
        )
    builder = RECEIVER_TYPES.get(spec.type)
    if builder is None:
        raise ConfigError(
            f"Config {where}: 'type' has value {spec.type!r}. Expected one of "
            + ", ".join(repr(t) for t in RECEIVER_TYPES)
            + "."
        )
    settings = ReceiverSettings(spec.settings, where=where, type_=spec.type)
    receiver = builder(spec.name, settings, dashboard_url)
    # Nothing is opened yet (HTTP clients are made on first send), so failing here leaks nothing.
    settings.finish()
    return receiver
