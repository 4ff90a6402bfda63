"""The Slack receiver: the incoming-webhook payload a real local HTTP server receives."""

from __future__ import annotations

import json

from notify_support import make_alert, make_notification

from jacmon.notify.model import AlertChange, Notification, ReceiverSpec
from jacmon.notify.receivers import build_receiver
from jacmon.notify.receivers.slack import RESOLVED_COLOR, SEVERITY_COLORS


def slack(url: str, **settings: object):
    return build_receiver(ReceiverSpec("chat", "slack", {"url": url, **settings}), where="test")


async def send(url: str, notification: Notification, **settings: object) -> dict:
    receiver = slack(url, **settings)
    try:
        delivery = await receiver.send(notification)
    finally:
        await receiver.close()
    assert delivery.ok, delivery
    return delivery


async def test_payload_shape_with_dashboard_link(http_receiver) -> None:
    alerts = [
        make_alert(1, severity="critical"),
        make_alert(2, severity="warning", numbers={"last_activity": 1767607200.0}),
    ]
    notification = make_notification(alerts, dashboard_url="https://mon.example/dash")
    await send(
        http_receiver.url + "/services/T/B/X",
        notification,
        channel="#teachers",
        username="jacmon",
        icon_emoji=":rotating_light:",
    )
    [request] = http_receiver.requests
    assert request.path == "/services/T/B/X"
    payload = json.loads(request.body)
    text = payload["text"]
    assert text.splitlines()[0] == "*jacmon: 2 firing: consecutive_low_scores on python-101*"
    for alert in alerts:
        assert alert["learner"] in text and alert["message"] in text
    assert "CRITICAL" in text and "WARNING" in text and "python-101" in text
    assert "<https://mon.example/dash|Open the jacmon dashboard>" in text
    assert (payload["channel"], payload["username"], payload["icon_emoji"]) == (
        "#teachers",
        "jacmon",
        ":rotating_light:",
    )
    first, second = payload["attachments"]
    assert first["color"] == SEVERITY_COLORS["critical"]
    assert second["color"] == SEVERITY_COLORS["warning"]
    assert first["title_link"] == "https://mon.example/dash"
    assert "CRITICAL consecutive_low_scores" in first["title"]
    # The evidence, readable: labels and one score per line.
    assert "low scores in a row: 3" in first["text"]
    assert "newest scores:\n  • 35\n  • 40\n  • 20" in first["text"]
    assert "last activity: 2026-01-05 10:00 UTC" in second["text"]


async def test_no_link_without_dashboard_url_and_no_optional_keys(http_receiver) -> None:
    await send(http_receiver.url, make_notification([make_alert(1)]))
    payload = json.loads(http_receiver.requests[0].body)
    assert "title_link" not in payload["attachments"][0]
    assert "dashboard" not in payload["text"]
    assert not {"channel", "username", "icon_emoji"} & set(payload)


async def test_many_alerts_are_capped_with_a_count(http_receiver) -> None:
    alerts = [make_alert(n) for n in range(1, 501)]
    await send(http_receiver.url, make_notification(alerts))
    payload = json.loads(http_receiver.requests[0].body)
    assert payload["text"].startswith("*jacmon: 500 firing:")
    assert "… and 480 more" in payload["text"]
    assert len(payload["attachments"]) == 21  # 20 alerts and the count
    assert "and 480 more" in payload["attachments"][-1]["text"]
    assert len(http_receiver.requests[0].body) < 40_000


async def test_resolved_and_acknowledged_read_as_such(http_receiver) -> None:
    resolved = make_alert(1, state="resolved", resolved_at=1767610800.0)
    acked = make_alert(2, acknowledged={"by": "ana", "at": 1767609000.0})
    notification = Notification(
        receiver="chat",
        key="k",
        group={"rule": "consecutive_low_scores", "path": "python-101"},
        changes=(
            AlertChange("resolved", 1, resolved),
            AlertChange("acknowledged", 2, acked),
        ),
        created_at=0.0,
    )
    await send(http_receiver.url, notification)
    payload = json.loads(http_receiver.requests[0].body)
    assert payload["text"].startswith("*jacmon: 1 acknowledged, 1 resolved:")
    first, second = payload["attachments"]
    assert first["color"] == RESOLVED_COLOR and "[RESOLVED]" in first["title"]
    assert "resolved 2026-01-05 11:00 UTC" in first["text"]
    assert "[ACKNOWLEDGED]" in second["title"]


async def test_markup_in_alert_text_is_escaped(http_receiver) -> None:
    alert = make_alert(1, learner="<!channel>", message="a & b <@U123>")
    await send(http_receiver.url, make_notification([alert]))
    payload = json.loads(http_receiver.requests[0].body)
    assert "<!channel>" not in payload["text"] and "&lt;!channel&gt;" in payload["text"]
    assert "a &amp; b &lt;@U123&gt;" in payload["attachments"][0]["text"]


async def test_a_refused_webhook_url_is_not_retried(http_receiver) -> None:
    http_receiver.answer(404, "no_service")
    receiver = slack(http_receiver.url + "/services/secret-token")
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.detail) == (False, False, "no_service")
    assert "secret-token" not in repr(receiver)
