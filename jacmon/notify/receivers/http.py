"""HTTP delivery shared by the webhook, Slack and Alertmanager receivers: one POST, one answer.

The one place that maps an HTTP outcome to a :class:`~jacmon.notify.model.Delivery`:

- 2xx: accepted (done).
- 408, 429, 5xx: retry, honouring ``Retry-After`` (seconds or an HTTP date).
- any other status (3xx, 4xx): refused for good, ``detail`` holds the body so the
  log says why (a wrong URL, a bad token, a payload the receiver rejects).
- connection refused, DNS failure, timeouts, a dropped connection: retry.
"""

from __future__ import annotations

import asyncio
import time
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from jacmon import __version__
from jacmon.notify.model import Delivery

#: ``Delivery.detail`` is at most this many characters (a receiver may answer a whole page).
DETAIL_CHARS = 1000

#: Statuses worth sending again: the receiver is busy or broken, not refusing the message.
RETRY_STATUSES = frozenset({408, 429})


class HttpPoster:
    """POSTs bodies to a receiver over one pooled ``httpx.AsyncClient``.

    ``timeout_s`` bounds connecting, each read and each write, in seconds.
    Redirects are not followed: a POST that is redirected is a configuration
    mistake to report, not to guess around.
    """

    def __init__(self, *, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        # Made on first use: building a receiver (config checks, serve --check) opens nothing.
        self.client: httpx.AsyncClient | None = None

    async def post(self, url: str, body: bytes, headers: dict[str, str] | None = None) -> Delivery:
        """Send ``body`` (already encoded) to ``url``; never raises for a delivery failure."""
        all_headers = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
        if self.client is None:
            # Loading the CA bundle takes ~0.25 s of CPU: do it off the event loop, and
            # not at all for a plain http:// receiver.
            self.client = await asyncio.to_thread(
                httpx.AsyncClient,
                timeout=httpx.Timeout(self.timeout_s),
                follow_redirects=False,
                headers={"User-Agent": f"jacmon/{__version__}"},
                verify=url.startswith("https:"),
            )
        try:
            response = await self.client.post(url, content=body, headers=all_headers)
        except httpx.TransportError as exc:
            return transport_delivery(exc)
        return response_delivery(response.status_code, response.text, response.headers)

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None


def response_delivery(status: int, body: str, headers: Any) -> Delivery:
    """The :class:`Delivery` for an HTTP answer (``headers``: a mapping, case as httpx gives)."""
    detail = excerpt(body)
    label = f"HTTP {status}"
    if 200 <= status < 300:
        return Delivery(ok=True, status=label, detail=detail, retry=False)
    if status in RETRY_STATUSES or status >= 500:
        return Delivery(
            ok=False,
            status=label,
            detail=detail,
            retry=True,
            retry_after_s=parse_retry_after(headers.get("retry-after")),
        )
    return Delivery(ok=False, status=label, detail=detail, retry=False)


def transport_delivery(exc: httpx.TransportError) -> Delivery:
    """A failure before any answer: always worth retrying, with a status that says which.

    The detail is the exception's text, never the URL (a Slack URL is a credential).
    """
    if isinstance(exc, httpx.ConnectTimeout):
        status = "connect timeout"
    elif isinstance(exc, httpx.TimeoutException):
        status = "timeout"
    elif isinstance(exc, httpx.ConnectError):
        status = "connection refused" if is_refused(exc) else "cannot connect"
    else:
        status = "connection error"
    detail = excerpt(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    return Delivery(ok=False, status=status, detail=detail, retry=True)


def is_refused(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens), looking through the causes.

    httpx says "All connection attempts failed"; the OS error underneath says why.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or "refused" in str(current).lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay seconds or an HTTP date.

    ``now`` is epoch seconds (default: the clock). A date in the past is 0;
    a missing or unreadable header is None.
    """
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a delay
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def shown_url(url: str) -> str:
    """``url`` fit for logs and reprs: no ``user:password@``, no query (either may hold a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def excerpt(text: str, limit: int = DETAIL_CHARS) -> str:
    """``text`` stripped, cut to ``limit`` characters with an ellipsis when longer."""
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
