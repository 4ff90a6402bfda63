"""build_receiver: each type's settings checked; errors name where, key, value and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from jacmon.errors import ConfigError
from jacmon.notify.model import ReceiverSpec
from jacmon.notify.receivers import (
    AlertmanagerReceiver,
    EmailReceiver,
    SlackReceiver,
    WebhookReceiver,
    build_receiver,
)

WHERE = 'notify.receivers[2] (name "ops")'
EMAIL = {"host": "smtp.example.org", "from": "jacmon@example.org", "to": ["ops@example.org"]}


def build(type_: str, settings: dict[str, Any]):
    return build_receiver(ReceiverSpec("ops", type_, settings), where=WHERE)


@pytest.mark.parametrize(
    ("type_", "settings", "expected"),
    [
        ("pager", {}, ["'type' has value 'pager'", "'webhook', 'slack', 'email', 'alertmanager'"]),
        ("webhook", {}, ["'url' is missing"]),
        ("webhook", {"url": "ftp://x.example/h"}, ["'url'", "'ftp://x.example/h'", "http://"]),
        ("webhook", {"url": "hooks.example.com/x"}, ["'url'", "'hooks.example.com/x'"]),
        ("webhook", {"url": "http://h:99999/"}, ["'url'", "port"]),
        ("webhook", {"url": "https://h/x", "urll": "y"}, ["'urll' is not a setting", "Known:"]),
        ("webhook", {"url": "https://h/x", "timeout_s": 0}, ["'timeout_s' has value 0"]),
        ("webhook", {"url": "https://h/x", "timeout_s": "soon"}, ["'timeout_s'", "'soon'", "5m"]),
        ("webhook", {"url": "https://h/x", "secret_env": "1BAD"}, ["'secret_env'", "'1BAD'"]),
        ("slack", {"url": "https://h/x", "channel": 5}, ["'channel' has value 5", "string"]),
        ("alertmanager", {"url": "http://am:9093", "resync_interval_s": -5}, ["resync_interval_s"]),
        ("email", {**EMAIL, "port": "25"}, ["'port' has value '25'", "1 to 65535"]),
        ("email", {**EMAIL, "port": 0}, ["'port' has value 0"]),
        ("email", {**EMAIL, "security": "ssl"}, ["'security' has value 'ssl'", "'starttls'"]),
        ("email", {**EMAIL, "to": "not-an-address"}, ["'to'", "'not-an-address'", "email"]),
        ("email", {**EMAIL, "to": []}, ["'to' has value []"]),
        ("email", {**EMAIL, "from": "jacmon"}, ["'from' has value 'jacmon'"]),
        ("email", {**EMAIL, "username": "me"}, ["'password (or password_env)' is missing"]),
        ("email", {"from": "a@b", "to": ["c@d"]}, ["'host' is missing", "email receiver"]),
    ],
)
def test_errors_name_where_key_value(type_: str, settings: dict, expected: list[str]) -> None:
    with pytest.raises(ConfigError) as caught:
        build(type_, settings)
    message = str(caught.value)
    assert message.startswith(f"Config {WHERE}")
    for part in expected:
        assert part in message, message


def test_missing_secret_variable_is_named(monkeypatch) -> None:
    monkeypatch.delenv("JACMON_TEST_NO_SUCH_SECRET", raising=False)
    with pytest.raises(ConfigError, match="JACMON_TEST_NO_SUCH_SECRET, which is not set"):
        build("webhook", {"url": "https://h/x", "secret_env": "JACMON_TEST_NO_SUCH_SECRET"})
    with pytest.raises(ConfigError, match="JACMON_TEST_NO_SUCH_SECRET"):
        build("email", {**EMAIL, "username": "u", "password_env": "JACMON_TEST_NO_SUCH_SECRET"})


def test_secrets_never_appear_in_errors(monkeypatch) -> None:
    monkeypatch.setenv("JACMON_TEST_SECRET", "hunter2-env")
    cases = [
        (
            "webhook",
            {"url": "https://h/x", "secret": "hunter2", "secret_env": "JACMON_TEST_SECRET"},
        ),
        ("webhook", {"url": "https://h/x", "secret": "hunter2", "nope": 1}),
        ("email", {**EMAIL, "username": "u", "password": "hunter2", "port": -1}),
        ("slack", {"url": "http//hooks.slack.com/services/T0/B0/hunter2"}),
        ("slack", {"url": "ftp://hooks.slack.com/services/T0/B0/hunter2"}),
        ("alertmanager", {"url": "ftp://admin:hunter2@am:9093"}),
    ]
    for type_, settings in cases:
        with pytest.raises(ConfigError) as caught:
            build(type_, settings)
        assert "hunter2" not in str(caught.value), str(caught.value)


def test_valid_settings_build_each_type(monkeypatch) -> None:
    monkeypatch.setenv("JACMON_TEST_SMTP_PASS", "pw")
    hook = build("webhook", {"url": "https://h/x", "secret": "s", "timeout_s": "5s"})
    assert isinstance(hook, WebhookReceiver) and hook.name == "ops" and hook.type == "webhook"
    assert hook._http.timeout_s == 5.0
    slack = build("slack", {"url": "https://hooks.example/T/B/X", "username": "jacmon"})
    assert isinstance(slack, SlackReceiver)
    mail = build(
        "email",
        {**EMAIL, "security": "tls", "username": "u", "password_env": "JACMON_TEST_SMTP_PASS"},
    )
    assert isinstance(mail, EmailReceiver)
    assert (mail.port, mail.timeout_s, mail.subject_prefix) == (465, 10.0, "[jacmon]")
    am = build("alertmanager", {"url": "http://127.0.0.1:9093", "resync_interval_s": "2m"})
    assert isinstance(am, AlertmanagerReceiver)
    assert (am.url, am.resync_interval_s) == ("http://127.0.0.1:9093/api/v2/alerts", 120.0)


def test_email_default_ports_follow_security() -> None:
    ports = {s: build("email", {**EMAIL, "security": s}).port for s in ("plain", "starttls", "tls")}
    assert ports == {"plain": 25, "starttls": 587, "tls": 465}


def test_name_and_type_in_settings_are_tolerated() -> None:
    """A config loader may pass the whole table; name and type are the spec's own."""
    hook = build("webhook", {"name": "ops", "type": "webhook", "url": "https://h/x"})
    assert hook.name == "ops"


def test_empty_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="'name' has value ''"):
        build_receiver(ReceiverSpec("", "webhook", {"url": "https://h/x"}), where=WHERE)


def test_reprs_hide_credentials_in_urls() -> None:
    hook = build("webhook", {"url": "https://user:hunter2@h.example:8443/x?token=hunter3"})
    am = build("alertmanager", {"url": "http://admin:hunter2@am.example:9093"})
    for receiver in (hook, am):
        assert "hunter" not in repr(receiver), repr(receiver)
    assert "h.example:8443/x" in repr(hook) and "am.example:9093/api/v2/alerts" in repr(am)
