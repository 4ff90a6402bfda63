"""Notifications through a real server to real receivers: HTTP, SMTP and Alertmanager.

Alerts are fired the way tasks fire them (through the store the server uses);
the server's notifier routes, groups and delivers them. Nothing is mocked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import time
from email import message_from_bytes
from typing import Any

import httpx
import pytest
from support import recv_until, until
from test_tasks_fixtures import ago, ingest, run_task, score
from websockets.asyncio.client import connect

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.store import Store
from jacmon.store.sqlite.alerts import apply_alert_changes
from jacmon.store.sqlite.notify import notification_log
from jacmon.store.sqlite.silences import add_silence

SECRET = "s3cret-for-tests"
#: Fast timings so a test takes seconds; the semantics are the defaults'.
FAST = {"poll_interval": 0.1, "retry_backoff": 0.2, "max_retry_backoff": 0.5}


def notify_table(receivers: list[dict[str, Any]], **route: Any) -> dict[str, Any]:
    names = [r["name"] for r in receivers]
    return {**FAST, "receivers": receivers, "routes": [{"receivers": names, **route}]}


@pytest.fixture
async def start(tmp_path, server_factory):
    """``running = await start(notify_table)``: a real server on port 0 with that ``[notify]``."""
    async with contextlib.AsyncExitStack() as stack:

        async def started(notify: dict[str, Any]):
            db = tmp_path / "jacmon.db"
            return await stack.enter_async_context(server_factory(db, notify=notify))

        yield started


async def fire(running, learners, *, path="python-101", rule="inactivity"):
    planned = [
        PlannedChange(
            "fire",
            AlertCondition(
                rule=rule,
                severity="warning",
                learner=learner,
                path=path,
                message=f"{learner} has not been active for 4 days",
                numbers={"idle_days": 4, "last_activity": time.time() - 4 * 86400},
            ),
        )
        for learner in learners
    ]
    async with running.server.store.db.transaction() as conn:
        return await apply_alert_changes(conn, planned, now=time.time())


def verify(body: bytes, headers: dict[str, str]) -> bool:
    """The recipe in docs/notifications.md."""
    timestamp = headers["x-jacmon-timestamp"]
    expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(
        "sha256=" + expected.hexdigest(), headers["x-jacmon-signature"]
    )


async def test_webhook_and_slack_get_signed_grouped_messages_with_the_evidence(
    start, http_receiver
):
    receivers = [
        {"name": "hook", "type": "webhook", "url": http_receiver.url + "/hook", "secret": SECRET},
        {"name": "chat", "type": "slack", "url": http_receiver.url + "/slack"},
    ]
    running = await start(notify_table(receivers, group_wait="0.5s"))
    try:
        await fire(running, ["ann", "bob", "cat"], path="python-101")
        await fire(running, ["dan"], path="data-science")
        await until(lambda: len(http_receiver.requests) >= 4, "two groups x two receivers")
        await asyncio.sleep(0.5)
        hooks = [r for r in http_receiver.requests if r.path == "/hook"]
        slack = [r for r in http_receiver.requests if r.path == "/slack"]
        assert len(hooks) == 2 and len(slack) == 2
        by_path = {json.loads(r.body)["group"]["path"]: r for r in hooks}
        request = by_path["python-101"]
        assert verify(request.body, request.headers)
        payload = json.loads(request.body)
        assert sorted(a["learner"] for a in payload["alerts"]) == ["ann", "bob", "cat"]
        assert payload["alerts"][0]["numbers"]["idle_days"] == 4
        assert request.headers["idempotency-key"] == payload["key"]
        text = json.dumps(json.loads(slack[0].body))
        assert "idle" in text or "active" in text
    finally:
        await running.stop()


async def test_500_alerts_on_one_path_are_one_message_per_receiver(start, http_receiver):
    receivers = [
        {"name": "hook", "type": "webhook", "url": http_receiver.url + "/hook"},
        {"name": "chat", "type": "slack", "url": http_receiver.url + "/slack"},
    ]
    running = await start(notify_table(receivers, group_wait="1s"))
    try:
        await fire(running, [f"learner-{i:03d}" for i in range(500)])
        await until(lambda: len(http_receiver.requests) >= 2, "the grouped messages")
        await asyncio.sleep(1.5)  # anything more would have come by now
        assert sorted(r.path for r in http_receiver.requests) == ["/hook", "/slack"]
        hook = next(r for r in http_receiver.requests if r.path == "/hook")
        assert len(json.loads(hook.body)["alerts"]) == 500
    finally:
        await running.stop()


async def test_a_receiver_down_gets_everything_once_it_is_back(start, http_receiver):
    receivers = [{"name": "flaky", "type": "webhook", "url": http_receiver.url + "/flaky"}]
    for _ in range(3):
        http_receiver.answer(503, "maintenance", Retry_After="0")
    running = await start(notify_table(receivers, group_wait="0.2s"))
    try:
        await fire(running, ["ann", "bob"])
        log = await until(lambda: _settled(running, 2), "every notification sent", timeout=30)
        assert {row["state"] for row in log} == {"sent"}
        assert {row["attempts"] for row in log} == {4}
        requests = http_receiver.requests
        assert len(requests) == 4
        assert len({r.headers["idempotency-key"] for r in requests}) == 1
        delivered = json.loads(requests[-1].body)
        assert sorted(a["learner"] for a in delivered["alerts"]) == ["ann", "bob"]
        assert running.server.notifier.metrics.sent["flaky"] == 1
        async with httpx.AsyncClient() as http:
            page = (await http.get(f"http://127.0.0.1:{running.port}/metrics")).text
        node = f'node="{running.server.node}"'
        assert f'jacmon_notifications_sent_total{{{node},receiver="flaky"}} 1' in page
        assert f'jacmon_notifications_retries_total{{{node},receiver="flaky"}} 3' in page
        assert f'jacmon_notification_delivery_seconds_count{{{node},receiver="flaky"}} 1' in page
    finally:
        await running.stop()


async def _settled(running, rows: int):
    log = await notification_log(running.server.store.db.reader)
    done = [row for row in log if row["state"] in ("sent", "failed")]
    return log if len(done) >= rows else None


async def test_a_400_is_kept_with_its_body_and_not_retried(start, http_receiver):
    receivers = [{"name": "strict", "type": "webhook", "url": http_receiver.url + "/strict"}]
    http_receiver.answer(400, "unknown field 'alerts'")
    running = await start(notify_table(receivers, group_wait="0.2s"))
    try:
        await fire(running, ["ann"])
        (row,) = await until(lambda: _settled(running, 1), "the refusal")
        assert row["state"] == "failed" and "unknown field" in row["last_detail"]
        await asyncio.sleep(1.0)
        assert len(http_receiver.requests) == 1
        assert running.server.notifier.metrics.failed["strict"] == 1
    finally:
        await running.stop()


async def test_the_email_digest_names_every_alert_of_the_group(start, smtp_receiver):
    receivers = [
        {
            "name": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": smtp_receiver.port,
            "security": "plain",
            "from": "jacmon@example.com",
            "to": ["tutors@example.com"],
        }
    ]
    running = await start(notify_table(receivers, group_wait="0.3s"))
    try:
        await fire(running, ["ann", "bob", "cat"])
        await until(lambda: smtp_receiver.messages, "the digest")
        (message,) = smtp_receiver.messages
        parsed = message_from_bytes(message.content)
        text = "".join(
            part.get_payload(decode=True).decode()
            for part in parsed.walk()
            if part.get_content_type() == "text/plain"
        )
        for learner in ("ann", "bob", "cat"):
            assert learner in text
    finally:
        await running.stop()


async def test_alertmanager_shows_the_alert_active_then_resolved(start, alertmanager):
    receivers = [{"name": "am", "type": "alertmanager", "url": alertmanager.url}]
    # Alertmanager groups by itself: jacmon hands each change over at once.
    running = await start(notify_table(receivers, group_wait="0.1s", group_interval="0.1s"))
    store = running.server.store
    try:
        now = ago(0)
        await ingest(store, [score("ann", ago(2), 30), score("ann", ago(1), 35)])
        await run_task(store, "performance", now=now)
        ours = await until(
            lambda: [
                a
                for a in alertmanager.alerts()
                if a["labels"].get("learner") == "ann" and a["status"]["state"] == "active"
            ],
            "the alert active in Alertmanager",
        )
        assert ours[0]["labels"]["rule"] == "consecutive_low_scores"
        # The condition clears: a good score, the task runs again.
        await ingest(store, [score("ann", ago(0.5), 95)])
        await run_task(store, "performance", now=now)
        await until(
            lambda: (
                not [
                    a
                    for a in alertmanager.alerts(active="true")
                    if a["labels"].get("learner") == "ann"
                ]
            ),
            "the alert no longer active",
        )
    finally:
        await running.stop()


async def test_the_alerts_stream_carries_silence_state(start):
    running = await start({})
    fired = await fire(running, ["ann"])
    alert_id = fired[0]["alert"]["id"]
    async with connect(running.url + "/ws/alerts") as ws:
        snapshot = await recv_until(ws, lambda f: f["type"] == "snapshot")
        assert snapshot["data"]["alerts"][0]["silenced"] is None
        # Added by another process, as 'jacmon silence add' does.
        other = await Store.open(running.db_path)
        try:
            silence, _ = await add_silence(other.db, by="sam", learner="ann", duration_s=3600)
        finally:
            await other.close()
        frame = await recv_until(ws, lambda f: f["type"] == "alert")
        assert frame["data"]["change"] == "updated"
        assert frame["data"]["alert"]["id"] == alert_id
        assert frame["data"]["alert"]["silenced"]["id"] == silence["id"]
        assert frame["data"]["alert"]["silenced"]["by"] == "sam"
