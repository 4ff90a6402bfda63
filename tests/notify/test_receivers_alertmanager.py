"""The Alertmanager receiver against Debian's real prometheus-alertmanager on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from notify_support import HOUR_AGO, free_port, make_alert, make_notification

from jacmon.notify.model import ReceiverSpec
from jacmon.notify.receivers import build_receiver
from jacmon.notify.receivers.alertmanager import am_alert, rfc3339

#: How long Alertmanager may take to show a posted alert (it ingests asynchronously).
SHOW_TIMEOUT_S = 20.0


def am_receiver(url: str, **settings: object):
    return build_receiver(
        ReceiverSpec("am", "alertmanager", {"url": url, **settings}),
        where="test",
        dashboard_url="https://mon.example/dash",
    )


async def until(
    read: Callable[[], list[dict[str, Any]]], predicate: Callable[[list], bool]
) -> list[dict[str, Any]]:
    """Read Alertmanager's alerts until ``predicate`` holds; fail after SHOW_TIMEOUT_S."""
    deadline = time.monotonic() + SHOW_TIMEOUT_S
    while True:
        alerts = await asyncio.to_thread(read)
        if predicate(alerts):
            return alerts
        assert time.monotonic() < deadline, f"alertmanager never showed it; it has {alerts}"
        await asyncio.sleep(0.1)


def ours(alerts: list[dict[str, Any]], alert_id: int) -> list[dict[str, Any]]:
    return [a for a in alerts if a["labels"].get("alert_id") == str(alert_id)]


async def test_firing_alert_is_active_then_resolved(alertmanager) -> None:
    alert = make_alert(101, numbers={"low_run": 3, "latest": [35.0, 40.0, 20.0]})
    receiver = am_receiver(alertmanager.url + "/")
    try:
        fired = await receiver.send(make_notification([alert], dashboard_url="https://mon.example"))
        assert (fired.ok, fired.status) == (True, "HTTP 200"), fired

        shown = await until(alertmanager.alerts, lambda a: len(ours(a, 101)) == 1)
        [am] = ours(shown, 101)
        assert am["status"]["state"] == "active"
        assert am["labels"] == {
            "alertname": "consecutive_low_scores",
            "rule": "consecutive_low_scores",
            "severity": "critical",
            "learner": "u101",
            "path": "python-101",
            "alert_id": "101",
        }
        assert am["annotations"]["message"] == alert["message"]
        assert "low scores in a row: 3" in am["annotations"]["evidence"]
        assert am["annotations"]["dashboard"] == "https://mon.example"
        assert am["generatorURL"] == "https://mon.example"
        assert am["startsAt"].startswith(rfc3339(HOUR_AGO)[:19])

        resolved = dict(alert, state="resolved", resolved_at=time.time() - 1)
        ended = await receiver.send(make_notification([resolved], key="n-2"))
        assert ended.ok, ended
        # Resolved: Alertmanager no longer lists it (its API shows unresolved alerts only).
        await until(alertmanager.alerts, lambda a: ours(a, 101) == [])
    finally:
        await receiver.close()


async def test_alert_without_learner_or_path_has_no_empty_labels(alertmanager) -> None:
    alert = make_alert(102, learner=None, path="", rule="engagement_drop", severity="warning")
    receiver = am_receiver(alertmanager.url)
    try:
        assert (await receiver.send(make_notification([alert]))).ok
        shown = await until(alertmanager.alerts, lambda a: len(ours(a, 102)) == 1)
    finally:
        await receiver.close()
    labels = ours(shown, 102)[0]["labels"]
    assert "learner" not in labels and "path" not in labels
    assert labels["alertname"] == "engagement_drop" and labels["severity"] == "warning"


async def test_resync_reposts_the_whole_firing_set(alertmanager) -> None:
    receiver = am_receiver(alertmanager.url, resync_interval_s="30s")
    assert receiver.resync_interval_s == 30.0
    try:
        nothing = await receiver.resync([])
        assert nothing.ok
        answer = await receiver.resync([make_alert(103), make_alert(104)])
        assert answer.ok, answer
        shown = await until(
            alertmanager.alerts, lambda a: len(ours(a, 103)) == 1 and len(ours(a, 104)) == 1
        )
    finally:
        await receiver.close()
    # A resync carries the configured dashboard link like a send does.
    assert ours(shown, 103)[0]["annotations"]["dashboard"] == "https://mon.example/dash"


async def test_a_bad_alert_is_refused_and_not_retried(alertmanager) -> None:
    """Alertmanager answers 400 with its reason: endsAt before startsAt."""
    receiver = am_receiver(alertmanager.url)
    bad = make_alert(105, state="resolved", resolved_at=HOUR_AGO - 3600)
    try:
        delivery = await receiver.send(make_notification([bad]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, False, "HTTP 400")
    assert "start time must be before end time" in delivery.detail


async def test_alertmanager_down_is_retried() -> None:
    receiver = am_receiver(f"http://127.0.0.1:{free_port()}")
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "connection refused")


def test_postable_alert_shape() -> None:
    resolved = make_alert(7, state="resolved", resolved_at=1767610800.0, first_seen=1767607200)
    body = am_alert(resolved, dashboard_url=None)
    assert body["startsAt"] == "2026-01-05T10:00:00.000Z"
    assert body["endsAt"] == "2026-01-05T11:00:00.000Z"
    assert "generatorURL" not in body and "dashboard" not in body["annotations"]
    firing = am_alert(make_alert(8))
    assert "endsAt" not in firing
