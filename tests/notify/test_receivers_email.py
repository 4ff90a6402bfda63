"""The email receiver against a real SMTP server (aiosmtpd): plain, and STARTTLS with login."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage

from notify_support import SMTP_LOGIN, free_port, make_alert, make_notification, silent_port

from jacmon.notify.model import ReceiverSpec
from jacmon.notify.receivers import build_receiver


def email_receiver(port: int, **settings: object):
    base = {
        "host": "127.0.0.1",
        "port": port,
        "security": "plain",
        "from": "jacmon <jacmon@school.example>",
        "to": ["teachers@school.example", "ops@school.example"],
    }
    return build_receiver(ReceiverSpec("mail", "email", {**base, **settings}), where="test")


def parsed(envelope) -> EmailMessage:
    return message_from_bytes(envelope.original_content, policy=policy.default)


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


async def test_digest_names_every_alert_of_the_group(smtp_receiver) -> None:
    alerts = [make_alert(n) for n in (1, 2, 3)]
    alerts.append(make_alert(4, state="resolved", resolved_at=1767610800.0))
    receiver = email_receiver(smtp_receiver.port)
    notification = make_notification(alerts, key="grp-42", dashboard_url="https://mon.example")
    try:
        delivery = await receiver.send(notification)
    finally:
        await receiver.close()

    assert (delivery.ok, delivery.status) == (True, "SMTP 250")
    assert "Message accepted" in delivery.detail
    [envelope] = smtp_receiver.messages
    assert envelope.mail_from == "jacmon@school.example"
    assert envelope.rcpt_tos == ["teachers@school.example", "ops@school.example"]
    message = parsed(envelope)
    assert message["Subject"] == (
        "[jacmon] 3 firing, 1 resolved: consecutive_low_scores on python-101"
    )
    assert message["Message-ID"] == "<jacmon.grp-42@school.example>"
    assert message.get_content_type() == "multipart/alternative"
    text, html = parts(message)
    for alert in alerts:
        assert alert["learner"] in text and alert["message"] in text
        assert alert["learner"] in html
    # The evidence and why the rule fired, readable.
    assert "low scores in a row: 3" in text
    assert "Why: The learner's newest scores" in text
    assert "resolved 2026-01-05 11:00 UTC" in text
    assert "https://mon.example" in text and 'href="https://mon.example"' in html


async def test_a_resend_has_the_same_message_id(smtp_receiver) -> None:
    receiver = email_receiver(smtp_receiver.port, subject_prefix="[school]")
    notification = make_notification([make_alert(1)], key="key with spaces/and:colons")
    try:
        assert (await receiver.send(notification)).ok
        assert (await receiver.send(notification)).ok
    finally:
        await receiver.close()
    first, second = (parsed(e) for e in smtp_receiver.messages)
    assert first["Message-ID"] == second["Message-ID"]
    assert first["Message-ID"].startswith("<jacmon.") and " " not in first["Message-ID"]
    assert first["Subject"].startswith("[school] 1 firing:")


async def test_html_escapes_everything(smtp_receiver) -> None:
    alert = make_alert(1, learner="<script>x</script>", message='5 < 6 & "q"')
    receiver = email_receiver(smtp_receiver.port)
    try:
        assert (await receiver.send(make_notification([alert]))).ok
    finally:
        await receiver.close()
    text, html = parts(parsed(smtp_receiver.messages[0]))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "5 &lt; 6 &amp; &quot;q&quot;" in html
    assert "<script>x</script>" in text  # the text part is plain text, as sent


async def test_temporary_refusal_is_retried_permanent_is_not(smtp_receiver) -> None:
    receiver = email_receiver(smtp_receiver.port)
    try:
        smtp_receiver.reply = "451 4.3.0 mailbox busy, try later"
        busy = await receiver.send(make_notification([make_alert(1)]))
        smtp_receiver.reply = "554 5.7.1 message rejected as spam"
        rejected = await receiver.send(make_notification([make_alert(1)]))
        smtp_receiver.reply = None
        smtp_receiver.rcpt_reply = "550 5.1.1 no such user"
        unknown = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (busy.ok, busy.retry, busy.status) == (False, True, "SMTP 451")
    assert "mailbox busy" in busy.detail
    assert (rejected.ok, rejected.retry, rejected.status) == (False, False, "SMTP 554")
    assert (unknown.ok, unknown.retry, unknown.status) == (False, False, "SMTP 550")
    assert "no such user" in unknown.detail
    assert smtp_receiver.messages == []


async def test_connection_refused_is_retried() -> None:
    receiver = email_receiver(free_port(), timeout_s=5)
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "connection refused")


async def test_starttls_with_login(starttls_receiver, tls_files, monkeypatch) -> None:
    monkeypatch.setenv("JACMON_TEST_SMTP_PASSWORD", SMTP_LOGIN[1])
    receiver = email_receiver(
        starttls_receiver.port,
        security="starttls",
        ca_file=str(tls_files.cert),
        username=SMTP_LOGIN[0],
        password_env="JACMON_TEST_SMTP_PASSWORD",
    )
    try:
        delivery = await receiver.send(make_notification([make_alert(1), make_alert(2)]))
    finally:
        await receiver.close()
    assert delivery.ok, delivery
    [envelope] = starttls_receiver.messages
    text, _ = parts(parsed(envelope))
    assert "u1" in text and "u2" in text
    assert SMTP_LOGIN[1] not in repr(receiver)


async def test_wrong_password_is_not_retried(starttls_receiver, tls_files) -> None:
    receiver = email_receiver(
        starttls_receiver.port,
        security="starttls",
        ca_file=str(tls_files.cert),
        username=SMTP_LOGIN[0],
        password="wrong-pass-XYZ",
    )
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, False, "SMTP 535")
    assert "wrong-pass-XYZ" not in delivery.detail
    assert starttls_receiver.messages == []


async def test_untrusted_certificate_is_retried_not_sent(starttls_receiver) -> None:
    """Without the private CA the certificate does not verify: nothing is sent in clear."""
    receiver = email_receiver(
        starttls_receiver.port,
        security="starttls",
        username=SMTP_LOGIN[0],
        password=SMTP_LOGIN[1],
    )
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "TLS error")
    assert "certificate" in delivery.detail.lower()
    assert starttls_receiver.messages == []


async def test_a_newline_in_a_group_label_still_sends_one_line_subject(smtp_receiver) -> None:
    receiver = email_receiver(smtp_receiver.port)
    notification = make_notification(
        [make_alert(1)], group={"rule": "consecutive_low_scores", "path": "py\r\nBcc: x@evil"}
    )
    try:
        assert (await receiver.send(notification)).ok
    finally:
        await receiver.close()
    message = parsed(smtp_receiver.messages[0])
    assert message["Subject"] == "[jacmon] 1 firing: consecutive_low_scores on py Bcc: x@evil"
    assert message["Bcc"] is None


async def test_starttls_not_offered_is_a_setting_to_fix_not_retried(smtp_receiver) -> None:
    receiver = email_receiver(smtp_receiver.port, security="starttls")
    try:
        delivery = await receiver.send(make_notification([make_alert(1)]))
    finally:
        await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, False, "SMTP not supported")
    assert "STARTTLS" in delivery.detail
    assert smtp_receiver.messages == []


async def test_a_server_that_never_answers_times_out_and_is_retried() -> None:
    with silent_port() as port:
        receiver = email_receiver(port, timeout_s=0.5)
        try:
            delivery = await receiver.send(make_notification([make_alert(1)]))
        finally:
            await receiver.close()
    assert (delivery.ok, delivery.retry, delivery.status) == (False, True, "timeout")
