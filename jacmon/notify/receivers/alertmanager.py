"""The ``alertmanager`` receiver: hands alerts to a Prometheus Alertmanager's v2 API.

Each alert becomes one Alertmanager alert, POSTed as a list to
``<url>/api/v2/alerts``::

    {"labels": {"alertname": <rule>, "rule", "severity", "learner", "path", "alert_id"},
     "annotations": {"message", "evidence", "dashboard"},
     "startsAt": <first_seen, RFC 3339 UTC>, "endsAt": <resolved_at, only when resolved>,
     "generatorURL": <notify.dashboard_url, when set>}

Empty labels and annotations are left out (an alert may have no learner or path).
The labels identify the alert to Alertmanager, so a resolved post (with
``endsAt``) ends the same alert a firing post started.

Alertmanager considers a firing alert resolved once it has not been posted for
its ``resolve_timeout`` (5 minutes by default), so the worker calls
:meth:`AlertmanagerReceiver.resync` every ``resync_interval_s`` (60 s by
default) with the whole firing set. Routing, grouping, repeats and silences
are then Alertmanager's.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from jacmon.analytics.alert_explain import evidence_lines
from jacmon.notify.model import Delivery, Notification
from jacmon.notify.receivers.http import HttpPoster, shown_url


def rfc3339(ts: Any) -> str | None:
    """``2026-01-05T10:00:00Z`` from epoch seconds (or ISO 8601 text); None when unreadable."""
    if isinstance(ts, int | float) and not isinstance(ts, bool):
        when = datetime.fromtimestamp(float(ts), UTC)
    elif isinstance(ts, str):
        try:
            when = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            return None
        when = when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)
    else:
        return None
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def am_alert(alert: dict[str, Any], *, dashboard_url: str | None = None) -> dict[str, Any]:
    """One jacmon alert as an Alertmanager v2 ``postableAlert``."""
    labels = {
        "alertname": alert.get("rule"),
        "rule": alert.get("rule"),
        "severity": alert.get("severity"),
        "learner": alert.get("learner"),
        "path": alert.get("path"),
        "alert_id": alert.get("id"),
    }
    annotations = {
        "message": alert.get("message"),
        "evidence": "\n".join(evidence_lines(alert)),
        "dashboard": dashboard_url,
    }
    body: dict[str, Any] = {
        # Alertmanager refuses empty label values; an absent learner or path is no label.
        "labels": {k: str(v) for k, v in labels.items() if v not in (None, "")},
        "annotations": {k: str(v) for k, v in annotations.items() if v not in (None, "")},
    }
    starts = rfc3339(alert.get("first_seen"))
    if starts:
        body["startsAt"] = starts
    if alert.get("state") == "resolved":
        # No resolved_at (an old row): the last time it was seen firing ends it.
        ends = rfc3339(alert.get("resolved_at")) or rfc3339(alert.get("last_seen"))
        if ends:
            body["endsAt"] = ends
    if dashboard_url:
        body["generatorURL"] = dashboard_url
    return body


class AlertmanagerReceiver:
    """POSTs alerts to ``<url>/api/v2/alerts``; re-posts the firing set on :meth:`resync`.

    ``timeout_s``: per request, in seconds. ``resync_interval_s``: how often the
    worker should call :meth:`resync`, in seconds; keep it well under the
    Alertmanager's ``resolve_timeout``. ``dashboard_url``: the link for resyncs
    (a notification carries its own).
    """

    type = "alertmanager"

    def __init__(
        self,
        name: str,
        *,
        url: str,
        timeout_s: float,
        resync_interval_s: float = 60.0,
        dashboard_url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.resync_interval_s = resync_interval_s
        self.dashboard_url = dashboard_url
        self._http = HttpPoster(timeout_s=timeout_s)

    async def send(self, notification: Notification) -> Delivery:
        if notification.dashboard_url:
            self.dashboard_url = notification.dashboard_url
        return await self._post(notification.alerts, notification.dashboard_url)

    async def resync(self, alerts: list[dict[str, Any]]) -> Delivery:
        """Post every alert of ``alerts`` (the firing set) again, so none times out."""
        if not alerts:
            return Delivery(ok=True, status="nothing to resync", retry=False)
        return await self._post(alerts, self.dashboard_url)

    async def _post(self, alerts: list[dict[str, Any]], dashboard_url: str | None) -> Delivery:
        body = [am_alert(a, dashboard_url=dashboard_url) for a in alerts]
        return await self._http.post(self.url, json.dumps(body, separators=(",", ":")).encode())

    async def close(self) -> None:
        await self._http.close()

    def __repr__(self) -> str:
        return f"AlertmanagerReceiver(name={self.name!r}, url={shown_url(self.url)!r})"
