"""The ``webhook`` receiver: the notification as signed JSON, POSTed to a URL.

Body (compact UTF-8 JSON)::

    {"version": 1, "key": "...", "receiver": "ops", "group": {"rule": ..., "path": ...},
     "changes": [{"change": "fired", "seq": 42, "alert": {...}}, ...],
     "alerts": [{...latest state of each alert...}], "dashboard_url": null}

Headers:

- ``Idempotency-Key: <key>``: the same on every retry of one notification;
  store the keys you have handled and drop a request whose key you have seen.
- ``X-Jacmon-Timestamp: <unix seconds>``: when this attempt was sent.
- ``X-Jacmon-Signature: sha256=<hex>``: HMAC-SHA256, keyed with the receiver's
  ``secret``, over ``"<timestamp>.<body bytes>"``. Absent when no secret is set.

Verifying a request (the timestamp is signed too, so a captured request cannot
be replayed later)::

    import hashlib, hmac, time

    def verify(secret: bytes, body: bytes, timestamp: str, signature: str) -> bool:
        if abs(time.time() - int(timestamp)) > 300:  # older than 5 minutes: a replay
            return False
        expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
        return hmac.compare_digest("sha256=" + expected.hexdigest(), signature)

Use the raw body bytes as received, before any JSON parsing.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from typing import Any

from jacmon.notify.model import AlertChange, Delivery, Notification
from jacmon.notify.receivers.http import HttpPoster, shown_url

#: Bump when the body changes incompatibly; receivers may check it.
PAYLOAD_VERSION = 1


def webhook_body(notification: Notification) -> bytes:
    """The notification as compact UTF-8 JSON (the bytes that are signed).

    Alerts whose stored JSON text is at hand are spliced in as they are: a group of
    thousands of alerts is not decoded and re-encoded for every webhook.
    """

    def dumps(value: Any) -> str:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def alert_json(change: AlertChange) -> str:
        return change.raw if change.raw is not None else dumps(change.alert)

    changes = ",".join(
        f'{{"change":{dumps(c.change)},"seq":{int(c.seq)},"alert":{alert_json(c)}}}'
        for c in notification.changes
    )
    alerts = ",".join(alert_json(c) for c in notification.latest_changes())
    text = (
        f'{{"version":{PAYLOAD_VERSION},"key":{dumps(notification.key)},'
        f'"receiver":{dumps(notification.receiver)},"group":{dumps(notification.group)},'
        f'"changes":[{changes}],"alerts":[{alerts}],'
        f'"dashboard_url":{dumps(notification.dashboard_url)}}}'
    )
    return text.encode("utf-8")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 of ``"<timestamp>.<body>"`` keyed with ``secret``."""
    digest = hmac.new(
        secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256
    )
    return "sha256=" + digest.hexdigest()


class WebhookReceiver:
    """POSTs each notification to ``url``, signed when a ``secret`` is configured.

    ``timeout_s``: per request, in seconds.
    """

    type = "webhook"

    def __init__(self, name: str, *, url: str, secret: str | None, timeout_s: float) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._http = HttpPoster(timeout_s=timeout_s)

    def headers(
        self, notification: Notification, body: bytes, *, now: float | None = None
    ) -> dict[str, str]:
        """The idempotency and (with a secret) signature headers for one attempt."""
        timestamp = str(int(time.time() if now is None else now))
        headers = {"Idempotency-Key": notification.key, "X-Jacmon-Timestamp": timestamp}
        if self._secret:
            headers["X-Jacmon-Signature"] = signature(self._secret, timestamp, body)
        return headers

    async def send(self, notification: Notification) -> Delivery:
        # A group of thousands of alerts is megabytes of JSON: encode it off the event loop.
        body = await asyncio.to_thread(webhook_body, notification)
        return await self._http.post(self.url, body, self.headers(notification, body))

    async def close(self) -> None:
        await self._http.close()

    def __repr__(self) -> str:
        # The secret stays out of reprs, and so out of logs and tracebacks.
        url = shown_url(self.url)
        return f"WebhookReceiver(name={self.name!r}, url={url!r}, signed={bool(self._secret)})"
