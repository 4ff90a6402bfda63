"""The ``slack`` receiver: a readable message per group to an incoming webhook.

Slack's incoming-webhook JSON (``text`` plus legacy ``attachments``), which
Mattermost and Rocket.Chat accept as well: ``text`` is the summary (counts,
group, one line per alert with severity, learner, path and message) and each
alert gets an attachment coloured by severity with its evidence and, when
``notify.dashboard_url`` is set, a link to the dashboard. At most
:data:`~jacmon.notify.receivers.summary.MAX_LISTED` alerts are listed; the rest
are counted ("and 480 more").

The webhook URL is a credential (whoever has it can post): it is never shown in
errors or ``Delivery.detail``.
"""

from __future__ import annotations

import json
from typing import Any

from jacmon.analytics.alert_explain import evidence_lines, utc_time
from jacmon.notify.model import Delivery, Notification
from jacmon.notify.receivers.http import HttpPoster
from jacmon.notify.receivers.summary import (
    MAX_LISTED,
    alert_line,
    alert_status,
    headline,
    more_text,
)

#: Severity -> attachment colour (the bar beside it); resolved alerts are green.
SEVERITY_COLORS = {"critical": "#d0021b", "warning": "#f5a623", "info": "#4a90d9"}
RESOLVED_COLOR = "#2eb886"
ACKNOWLEDGED_COLOR = "#9b9b9b"


def escape(text: Any) -> str:
    """``text`` safe in Slack mrkdwn: ``&``, ``<`` and ``>`` are control characters there."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(
    notification: Notification,
    *,
    channel: str | None = None,
    username: str | None = None,
    icon_emoji: str | None = None,
) -> dict[str, Any]:
    """The incoming-webhook JSON for one notification."""
    alerts = notification.alerts
    status = alert_status(notification)
    link = notification.dashboard_url
    lines = [f"*jacmon: {escape(headline(notification))}*"]
    lines += ["• " + escape(alert_line(a, status.get(int(a["id"])))) for a in alerts[:MAX_LISTED]]
    more = more_text(len(alerts))
    if more:
        lines.append(f"… {more}")
    if link:
        lines.append(f"<{link}|Open the jacmon dashboard>")
    attachments = [
        _attachment(a, status.get(int(a["id"]), "firing"), link) for a in alerts[:MAX_LISTED]
    ]
    if more:
        attachments.append({"color": ACKNOWLEDGED_COLOR, "text": escape(f"… {more} in this group")})
    payload: dict[str, Any] = {"text": "\n".join(lines), "attachments": attachments}
    for key, value in (("channel", channel), ("username", username), ("icon_emoji", icon_emoji)):
        if value:
            payload[key] = value
    return payload


def _attachment(alert: dict[str, Any], status: str, link: str | None) -> dict[str, Any]:
    """One alert: coloured bar, title (with the dashboard link), message and evidence."""
    severity = str(alert.get("severity", "info"))
    if status == "resolved":
        color = RESOLVED_COLOR
    elif status == "acknowledged":
        color = ACKNOWLEDGED_COLOR
    else:
        color = SEVERITY_COLORS.get(severity, SEVERITY_COLORS["info"])
    title = f"[{status.upper()}] {severity.upper()} {alert.get('rule', '?')}"
    who = [f"learner {alert['learner']}" if alert.get("learner") else None]
    who.append(f"path {alert['path']}" if alert.get("path") else None)
    facts = " · ".join(w for w in who if w)
    body = [escape(alert.get("message", ""))]
    if facts:
        body.append(escape(facts))
    evidence = evidence_lines(alert)
    if evidence:
        body.append("*Evidence*")
        body.extend(escape(line) for line in evidence)
    body.append(escape(f"first fired {utc_time(alert.get('first_seen'))}"))
    if status == "resolved":
        body.append(escape(f"resolved {utc_time(alert.get('resolved_at'))}"))
    attachment: dict[str, Any] = {
        "color": color,
        "title": escape(title),
        "text": "\n".join(body),
        "fallback": escape(alert_line(alert, status)),
        "mrkdwn_in": ["text"],
    }
    if link:
        attachment["title_link"] = link
    return attachment


class SlackReceiver:
    """POSTs a Slack-format message per notification to an incoming-webhook ``url``.

    ``channel``, ``username``, ``icon_emoji``: optional overrides the webhook may
    honour (Slack's newer app webhooks ignore them). ``timeout_s``: per request.
    """

    type = "slack"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout_s: float,
        channel: str | None = None,
        username: str | None = None,
        icon_emoji: str | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self.options = {"channel": channel, "username": username, "icon_emoji": icon_emoji}
        self._http = HttpPoster(timeout_s=timeout_s)

    async def send(self, notification: Notification) -> Delivery:
        payload = slack_payload(notification, **self.options)
        body = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        # The key lets a proxy in front of the chat drop repeats; Slack ignores it.
        return await self._http.post(self._url, body, {"Idempotency-Key": notification.key})

    async def close(self) -> None:
        await self._http.close()

    def __repr__(self) -> str:
        return f"SlackReceiver(name={self.name!r})"  # the URL is a credential
