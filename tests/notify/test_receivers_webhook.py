"""The webhook receiver and the shared HTTP answer mapping, against a real local HTTP server."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from email.utils import formatdate

import pytest
from notify_support import free_port, make_alert, make_notification, silent_port

from jacmon.notify.model import ReceiverSpec
from jacmon.notify.receivers import build_receiver
from jacmon.notify.receivers.http import parse_retry_after

SECRET = "whsec-test-123"


def verify(secret: bytes, body: bytes, timestamp: str, signature: str) -> bool:
    """The recipe from jacmon/notify/receivers/webhook.py's docstring, copied verbatim."""
    if abs(time.time() - int(timestamp)) > 300:
        return False
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + expected.hexdigest(), signature)


def webhook(url: str, **settings: object):
    return build_receiver(
        ReceiverSpec("ops-hook", "webhook", {"url": url, **settings}), where="test"
    )


async def test_signature_verifies_and_payload_has_alert_evidence_and_key(http_receiver) -> None:
    receiver = webhook(http_receiver.url + "/hook", secret=SECRET)
    alert = make_alert(7)
    notification = make_notification([alert], key="grp-7-1", dashboard_url="https://mon.example")
    try:
        delivery = await receiver.send(notification)
    finally:
        await receiver.close()

    assert delivery.ok and delivery.status == "HTTP 200" and not delivery.retry
    [request] = http_receiver.requests
    assert request.path == "/hook"
    assert request.headers["content-type"].startswith("application/json")
    assert request.headers["idempotency-key"] == "grp-7-1"
    assert verify(
        SECRET.encode(),
        request.body,
        request.headers["x-jacmon-timestamp"],
        request.headers["x-jacmon-signature"],
    )
    # One flipped byte of the body and the signature no longer holds.
    tampered = request.body.replace(b'"u7"', b'"u8"')
    assert tampered != request.body
    assert not verify(
        SECRET.encode(),
        tampered,
        request.headers["x-jacmon-timestamp"],
        request.headers["x-jacmon-signature"],
    )
    payload = json.loads(request.body)
    assert payload["version"] == 1
    assert payload["key"] == "grp-7-1"
    assert payload["receiver"] == "ops"
    assert payload["group"] == {"rule": "consecutive_low_scores", "path": "python-101"}
    assert payload["changes"] == [{"change": "fired", "seq": 1, "alert": alert}]
    assert payload["alerts"] == [alert]
    assert payload["alerts"][0]["numbers"] == {"low_run": 3, "latest": [35.0, 40.0, 20.0]}
    assert payload["dashboard_url"] == "https://mon.example"
    # Compact: no spaces after separators.
    assert b'", "' not in request.body and b'": ' not in request.body


async def test_a_retried_send_carries_the_same_key(http_receiver) -> None:
    http_receiver.answer(503, "down for maintenance")
    receiver = webhook(http_receiver.url, secret=SECRET)
    notification = make_notification([make_alert(1)], key="same-key")
    try:
        first = await receiver.send(notification)
        second = await receiver.send(notification)
    finally:
        await receiver.close()
    assert (first.ok, first.retry, first.status) == (False, True, "HTTP 503")
    assert second.ok
    keys = [r.headers["idempotency-key"] for r in http_receiver.requests]
    assert keys == ["same-key", "same-key"]
    bodies = {r.body for r in http_receiver.requests}
    assert len(bodies) == 1


async def test_no_secret_no_signature_header(http_receiver) -> None:
    receiver = webhook(http_receiver.url)
    try:
        assert (await receiver.send(make_notification([make_alert(1)]))).ok
    finally:
        await receiver.close()
    [request] = http_receiver.requests
    assert "x-jacmon-signature" not in request.headers
    assert request.headers["idempotency-key"] == "n-1"


async def test_secret_from_environment(http_receiver, monkeypatch) -> None:
    monkeypatch.setenv("JACMON_TEST_HOOK_SECRET", "from-env")
    receiver = webhook(http_receiver.url, secret_env="JACMON_TEST_HOOK_SECRET")
    try:
        assert (await receiver.send(make_notification([make_alert(1)]))).ok
    finally:
        await receiver.close()
    [request] = http_receiver.requests
    assert verify(
        b"from-env",
        request.body,
        request.headers["x-jacmon-timestamp"],
        request.headers["x-jacmon-signature"],
    )
    assert "from-env" not in repr(receiver)


async def test_400_is_not_retried_and_detail_has_the_body(http_receiver) -> None:
    http_receiver.answer(400, '{"error": "field alerts is required"}' + "x" * 3000)
    receiver = webhook(http_receiver.url, secret=SECRET)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, False, "HTTP 400")
    assert delivery.detail.startswith('{"error": "field alerts is required"}')
    assert len(delivery.detail) <= 1000
    assert SECRET not in delivery.detail


@pytest.mark.parametrize("status", [408, 429, 500, 502])
async def test_busy_or_broken_statuses_are_retried(http_receiver, status: int) -> None:
    http_receiver.answer(status, "busy")
    receiver = webhook(http_receiver.url)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, f"HTTP {status}")
    assert delivery.retry_after_s is None


@pytest.mark.parametrize("status", [401, 403, 404, 410, 301])
async def test_refusals_are_not_retried(http_receiver, status: int) -> None:
    http_receiver.answer(status, "no", Location="http://elsewhere.invalid/")
    receiver = webhook(http_receiver.url)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry) == (False, False)
    assert len(http_receiver.requests) == 1  # a redirect is not followed


async def test_503_with_retry_after_seconds(http_receiver) -> None:
    http_receiver.answer(503, "later", Retry_After="7")
    receiver = webhook(http_receiver.url)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.retry_after_s) == (False, True, 7.0)


async def test_429_with_retry_after_date(http_receiver) -> None:
    http_receiver.answer(429, "slow down", Retry_After=formatdate(time.time() + 120, usegmt=True))
    receiver = webhook(http_receiver.url)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert delivery.retry and delivery.retry_after_s is not None
    assert 60 < delivery.retry_after_s <= 120


def test_parse_retry_after_forms() -> None:
    now = 1_800_000_000.0
    assert parse_retry_after("7", now=now) == 7.0
    assert parse_retry_after(" 0 ", now=now) == 0.0
    assert parse_retry_after(formatdate(now + 30, usegmt=True), now=now) == 30.0
    assert parse_retry_after(formatdate(now - 30, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None, now=now) is None


async def test_connection_refused_is_retried() -> None:
    receiver = webhook(f"http://127.0.0.1:{free_port()}/hook", secret=SECRET)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "connection refused")
    assert SECRET not in delivery.detail


async def test_a_receiver_that_never_answers_times_out_and_is_retried() -> None:
    with silent_port() as port:
        receiver = webhook(f"http://127.0.0.1:{port}/hook", timeout_s=0.5)
        try:
            delivery = await receiver.send(make_notification([make_alert(1)]))
        finally:
            await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "timeout")


async def test_one_client_per_receiver_reused_and_closed(http_receiver) -> None:
    receiver = webhook(http_receiver.url)
    for n in range(3):
        assert (await receiver.send(make_notification([make_alert(n)], key=f"k{n}"))).ok
    client = receiver._http.client
    assert client is not None and not client.is_closed
    await receiver.close()
    assert client.is_closed
    assert len(http_receiver.requests) == 3
