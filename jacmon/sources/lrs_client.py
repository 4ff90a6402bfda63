"""A small read-only client for an xAPI 1.0.3 Learning Record Store: ``GET /statements``.

Only what the tailer needs: one page of statements at a time, ``since`` and
``more`` paging, HTTP basic auth and the ``X-Experience-API-Version`` header.
Requests run in a worker thread (the standard library's ``urllib``), so the
event loop never blocks on the LRS. Failures are sorted into
:class:`LrsUnavailable` (worth retrying: the LRS is down, slow or overloaded)
and :class:`LrsError` (not worth retrying: bad URL, credentials, answer).
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from jacmon.errors import JacmonError
from jacmon.sources.pump import Unavailable

XAPI_VERSION = "1.0.3"


class LrsError(JacmonError):
    """The LRS refused the request or answered something that is not xAPI; retrying won't help."""


class LrsUnavailable(LrsError, Unavailable):
    """The LRS cannot be reached right now (down, timing out, 5xx, 429); retry later."""


@dataclass(slots=True)
class StatementPage:
    """One answer of ``GET /statements``: the statements and the ``more`` URL (None at the end)."""

    statements: list[dict[str, Any]]
    more: str | None


def check_endpoint(url: str) -> str:
    """Check an LRS endpoint URL (``http://host:port/xAPI``); return it without a trailing /."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LrsError(
            f"LRS URL {url!r} is not an http(s) URL; expected the xAPI endpoint, "
            "like 'http://lrs.example.com/xAPI' (jacmon adds '/statements')"
        )
    return url.rstrip("/")


class LrsClient:
    """Reads statements from the LRS whose xAPI endpoint is ``endpoint``.

    ``user``/``password`` are sent as HTTP basic auth (None sends none).
    """

    def __init__(
        self,
        endpoint: str,
        *,
        user: str | None = None,
        password: str | None = None,
        # Timeouts
        timeout: float = 30.0,
    ) -> None:
        self.endpoint = check_endpoint(endpoint)
        parts = urlsplit(self.endpoint)
        self.origin = f"{parts.scheme}://{parts.netloc}"
        #: Seconds one request may take, connect included.
        self.timeout = timeout
        self._headers = {
            "X-Experience-API-Version": XAPI_VERSION,
            "Accept": "application/json",
        }
        if user is not None or password is not None:
            token = base64.b64encode(f"{user or ''}:{password or ''}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"

    def statements_url(self, *, since: str | None = None, limit: int | None = None) -> str:
        """The first page: ``{endpoint}/statements`` with ``since``, ``limit``, oldest first."""
        params: dict[str, str] = {"ascending": "true"}
        if since is not None:
            params["since"] = since
        if limit is not None:
            params["limit"] = str(limit)
        return f"{self.endpoint}/statements?{urlencode(params)}"

    def resolve_more(self, more: str) -> str:
        """Resolve a ``more`` link against the LRS origin (xAPI makes it relative to the host).

        A link to another origin is refused: it would receive our credentials.
        """
        url = urljoin(self.origin + "/", more)
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" != self.origin:
            raise LrsError(
                f"LRS 'more' link {more!r} points to another server than {self.origin}; "
                "refusing to send credentials there"
            )
        return url

    async def fetch(self, url: str) -> StatementPage:
        """GET one page of statements from ``url`` (from :meth:`statements_url` or a ``more``)."""
        return await asyncio.to_thread(self._fetch_blocking, url)

    def _fetch_blocking(self, url: str) -> StatementPage:
        request = urllib.request.Request(url, headers=self._headers, method="GET")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(300).decode(errors="replace").strip()
            if exc.code in (408, 429) or exc.code >= 500:
                raise LrsUnavailable(f"LRS answered HTTP {exc.code} for {url}: {detail}") from None
            hint = ""
            if exc.code in (401, 403):
                hint = "; check --lrs-user and --lrs-password (and the account's read scope)"
            elif exc.code == 404:
                hint = "; check that the LRS URL is the xAPI endpoint (like http://host/xAPI)"
            raise LrsError(f"LRS answered HTTP {exc.code} for {url}: {detail}{hint}") from None
        except urllib.error.URLError as exc:
            raise LrsUnavailable(f"cannot reach the LRS at {url}: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            # Connection reset, timeout, truncated answer: the LRS went away mid-request.
            raise LrsUnavailable(f"LRS request {url} failed: {exc!r}") from None
        try:
            body = json.loads(raw)
        except ValueError:
            raise LrsError(
                f"LRS answer for {url} is not JSON (starts {raw[:60]!r}); "
                "check that the URL is an xAPI endpoint"
            ) from None
        if not isinstance(body, dict) or not isinstance(body.get("statements"), list):
            raise LrsError(
                f"LRS answer for {url} has no 'statements' list; expected an xAPI StatementResult"
            )
        more = body.get("more")
        return StatementPage(statements=body["statements"], more=more or None)
