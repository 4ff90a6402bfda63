"""The ``email`` receiver: one digest per notification (= per alert group) over SMTP.

A ``multipart/alternative`` message with a text/plain and an HTML part (every
value HTML-escaped), subject ``[jacmon] 3 firing, 1 resolved:
consecutive_low_scores on python-101``, and a ``Message-ID`` derived from the
notification key, so a resent digest is recognisable as the same message.

Security: ``plain`` (no TLS, port 25), ``starttls`` (the default; upgrade is
required, port 587) or ``tls`` (implicit TLS, port 465). Certificates are
verified, against ``ca_file`` when set (a private CA). Login only with both
``username`` and ``password`` (or ``password_env``).

Answers: SMTP 250 is done; a 4xx reply or a connection failure is retried; a
5xx reply (bad address, refused login, message rejected) is not.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import re
import ssl
from email.message import EmailMessage
from email.utils import formatdate, parseaddr
from typing import Any

import aiosmtplib

from jacmon.analytics.alert_explain import evidence_lines, rule_text, utc_time
from jacmon.notify.model import Delivery, Notification
from jacmon.notify.receivers.http import excerpt, is_refused
from jacmon.notify.receivers.summary import alert_line, alert_status, headline

#: Security mode -> the port used when none is configured.
DEFAULT_PORTS = {"plain": 25, "starttls": 587, "tls": 465}


def message_id(key: str, sender: str) -> str:
    """``<jacmon.KEY@DOMAIN>``: the same for every send of one notification.

    The key is used as is when it is safe in a Message-ID, else its SHA-256; the
    domain is the sender's.
    """
    safe = (
        key
        if re.fullmatch(r"[A-Za-z0-9._-]{1,100}", key)
        else hashlib.sha256(key.encode()).hexdigest()[:40]
    )
    domain = parseaddr(sender)[1].rpartition("@")[2] or "jacmon.invalid"
    return f"<jacmon.{safe}@{domain}>"


def digest_text(notification: Notification) -> str:
    """The plain-text body: the headline, then every alert with why it fired and its evidence."""
    status = alert_status(notification)
    lines = [f"jacmon: {headline(notification)}", ""]
    if notification.dashboard_url:
        lines += [f"Dashboard: {notification.dashboard_url}", ""]
    for alert in notification.alerts:
        state = status.get(int(alert["id"]), "firing")
        lines.append(f"* {alert_line(alert, state)}")
        lines.append(f"  alert {alert.get('id')}, first fired {utc_time(alert.get('first_seen'))}")
        if state == "resolved":
            lines.append(f"  resolved {utc_time(alert.get('resolved_at'))}")
        lines.append(f"  Why: {rule_text(alert.get('rule'))}")
        evidence = evidence_lines(alert)
        if evidence:
            lines.append("  Evidence:")
            lines.extend(f"    {line}" for line in evidence)
        lines.append("")
    lines.append(f"Notification {notification.key} for receiver {notification.receiver}.")
    return "\n".join(lines) + "\n"


def digest_html(notification: Notification) -> str:
    """The HTML body: the same content as :func:`digest_text`, every value escaped."""
    e = html.escape
    status = alert_status(notification)
    parts = [
        '<!DOCTYPE html><html><body style="font-family: sans-serif">',
        f"<h2>jacmon: {e(headline(notification))}</h2>",
    ]
    if notification.dashboard_url:
        url = e(notification.dashboard_url, quote=True)
        parts.append(f'<p><a href="{url}">Open the jacmon dashboard</a></p>')
    for alert in notification.alerts:
        state = status.get(int(alert["id"]), "firing")
        parts.append(f"<h3>{e(alert_line(alert, state))}</h3>")
        facts = [f"alert {alert.get('id')}", f"first fired {utc_time(alert.get('first_seen'))}"]
        if state == "resolved":
            facts.append(f"resolved {utc_time(alert.get('resolved_at'))}")
        parts.append(f"<p>{e(', '.join(facts))}</p>")
        parts.append(f"<p><em>Why: {e(rule_text(alert.get('rule')))}</em></p>")
        evidence = evidence_lines(alert)
        if evidence:
            items = "".join(f"<li>{e(line.strip())}</li>" for line in evidence)
            parts.append(f"<p>Evidence:</p><ul>{items}</ul>")
    parts.append(
        f'<p style="color: #777">Notification {e(notification.key)} '
        f"for receiver {e(notification.receiver)}.</p></body></html>"
    )
    return "\n".join(parts) + "\n"


def digest_message(
    notification: Notification, *, sender: str, to: list[str], subject_prefix: str
) -> EmailMessage:
    """The whole email for one notification."""
    message = EmailMessage()
    # One line whatever the labels hold: a newline in a header would make the message invalid.
    message["Subject"] = " ".join(f"{subject_prefix} {headline(notification)}".split())
    message["From"] = sender
    message["To"] = ", ".join(to)
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id(notification.key, sender)
    message["X-Jacmon-Key"] = notification.key
    message.set_content(digest_text(notification))
    message.add_alternative(digest_html(notification), subtype="html")
    return message


class EmailReceiver:
    """Sends each notification as one digest email over SMTP.

    ``security``: ``plain``, ``starttls`` or ``tls``. ``timeout_s``: for the
    connection and each SMTP reply, in seconds. ``ca_file``: PEM bundle to verify
    the server against (None: the system's CAs).
    """

    type = "email"

    def __init__(
        self,
        name: str,
        *,
        host: str,
        port: int,
        security: str,
        sender: str,
        to: list[str],
        timeout_s: float,
        username: str | None = None,
        password: str | None = None,
        subject_prefix: str = "[jacmon]",
        ca_file: str | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.security = security
        self.sender = sender
        self.to = to
        self.timeout_s = timeout_s
        self.username = username
        self._password = password
        self.subject_prefix = subject_prefix
        self.ca_file = ca_file

    def _tls_context(self) -> ssl.SSLContext | None:
        if self.security == "plain":
            return None
        return ssl.create_default_context(cafile=self.ca_file)

    def message(self, notification: Notification) -> EmailMessage:
        return digest_message(
            notification, sender=self.sender, to=self.to, subject_prefix=self.subject_prefix
        )

    async def send(self, notification: Notification) -> Delivery:
        # A digest of thousands of alerts takes a while to render: off the event loop.
        message = await asyncio.to_thread(self.message, notification)
        try:
            errors, reply = await aiosmtplib.send(
                message,
                sender=parseaddr(self.sender)[1],
                recipients=[parseaddr(t)[1] for t in self.to],
                hostname=self.host,
                port=self.port,
                use_tls=self.security == "tls",
                start_tls=self.security == "starttls",
                tls_context=self._tls_context(),
                username=self.username,
                password=self._password,
                timeout=self.timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return _refused_delivery(exc.recipients)
        except aiosmtplib.SMTPResponseException as exc:
            return smtp_reply_delivery(exc.code, exc.message)
        except (OSError, aiosmtplib.SMTPConnectError, aiosmtplib.SMTPServerDisconnected) as exc:
            # Connection refused, timeouts, dropped connections, TLS failures: try again later.
            return Delivery(
                ok=False, status=_connection_status(exc), detail=excerpt(str(exc)), retry=True
            )
        except aiosmtplib.SMTPException as exc:
            # The server lacks what the settings ask for (STARTTLS, AUTH): fix the settings.
            return Delivery(
                ok=False, status="SMTP not supported", detail=excerpt(str(exc)), retry=False
            )
        detail = excerpt(reply)
        if errors:
            # Some recipients refused, the rest accepted: done (resending would duplicate).
            refused = ", ".join(f"{addr}: {code} {text}" for addr, (code, text) in errors.items())
            detail = excerpt(f"{reply}; refused: {refused}")
        return Delivery(ok=True, status="SMTP 250", detail=detail, retry=False)

    async def close(self) -> None:
        """Nothing held: each send uses its own SMTP connection (servers drop idle ones)."""

    def __repr__(self) -> str:
        return (
            f"EmailReceiver(name={self.name!r}, host={self.host!r}, port={self.port}, "
            f"security={self.security!r})"
        )


def smtp_reply_delivery(code: int, text: Any) -> Delivery:
    """An SMTP error reply: 4xx is retried (try later), 5xx is not (permanent)."""
    return Delivery(
        ok=False, status=f"SMTP {code}", detail=excerpt(str(text)), retry=400 <= code < 500
    )


def _refused_delivery(refusals: list[Any]) -> Delivery:
    """Every recipient refused: retry if any refusal was temporary (4xx)."""
    codes = [getattr(r, "code", 550) for r in refusals]
    detail = "; ".join(f"{getattr(r, 'recipient', '?')}: {r.code} {r.message}" for r in refusals)
    temporary = any(400 <= c < 500 for c in codes)
    code = next((c for c in codes if 400 <= c < 500), codes[0] if codes else 550)
    return Delivery(ok=False, status=f"SMTP {code}", detail=excerpt(detail), retry=temporary)


def _connection_status(exc: BaseException) -> str:
    """``timeout``, ``connection refused``, ``TLS error`` or ``connection error``."""
    if isinstance(exc, TimeoutError | aiosmtplib.SMTPTimeoutError):
        return "timeout"
    if is_refused(exc):
        return "connection refused"
    cause: BaseException | None = exc
    for _ in range(5):  # aiosmtplib wraps the ssl error; look a few causes down
        if cause is None:
            break
        if isinstance(cause, ssl.SSLError):
            return "TLS error"
        cause = cause.__cause__ or cause.__context__
    return "connection error"
