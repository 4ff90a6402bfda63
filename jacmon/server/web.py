"""HTTP for the browser dashboard: the pages, their static files and the security headers.

The files are read once when the server starts (:meth:`WebUI.load`) and served
from memory with an ETag; :func:`security_headers` go on every HTTP response
the server sends (``JacmonServer`` adds them in ``process_response``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import re
from dataclasses import dataclass
from http import HTTPStatus
from importlib.resources.abc import Traversable
from pathlib import Path

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

log = logging.getLogger("jacmon.server.web")

#: Pages by path; each is a file in the static directory.
PAGES = {"/": "index.html", "/learner": "learner.html"}

#: Where a static file is served: ``/static/<name>``.
STATIC_PREFIX = "/static/"

#: Browsers ask for it unless a page names its icon; answered 204 so no 404 is logged.
FAVICON = "/favicon.ico"

#: Content types by file extension; a file with another extension is not served
#: (``LICENSE*`` files without one are served as text).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}

#: Names a static file may have: no path separators, no ``%``, not hidden.
_SERVABLE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")

#: Hex digits of the SHA-256 kept in an ETag.
ETAG_HEX_DIGITS = 16


def page_url(host: str, port: int, *, tls: bool) -> str:
    """The browser address of the dashboard on ``host:port``: ``http://host:port/``."""
    if ":" in host:
        host = f"[{host}]"
    return f"{'https' if tls else 'http'}://{host}:{port}/"


def default_static_root() -> Traversable:
    """The packaged files: ``jacmon/web/static`` (works from a wheel, an sdist or a checkout)."""
    return importlib.resources.files("jacmon.web") / "static"


def content_security_policy(frame_ancestors: list[str]) -> str:
    """The CSP of every response: only this origin's scripts, styles, images, fonts and
    connections (``connect-src 'self'`` covers ws:// and wss:// to the same host in CSP3
    browsers); no inline script or style; framing as ``web.frame_ancestors`` says."""
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
        f"frame-ancestors {' '.join(frame_ancestors)}"
    )


def security_headers(frame_ancestors: list[str]) -> list[tuple[str, str]]:
    """The headers every HTTP response of the server carries, pages or not."""
    return [
        ("Content-Security-Policy", content_security_policy(frame_ancestors)),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Cross-Origin-Opener-Policy", "same-origin"),
    ]


@dataclass(frozen=True, slots=True)
class StaticFile:
    """One file of the web UI, held in memory."""

    body: bytes
    content_type: str
    #: A quoted strong ETag: the first ETAG_HEX_DIGITS hex digits of the body's SHA-256.
    etag: str


def content_type_for(name: str) -> str | None:
    """The Content-Type a file called ``name`` is served with; None if it is not served."""
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    if name.startswith("LICENSE") and not suffix:
        return CONTENT_TYPES[".txt"]
    return None


def load_static(root: Traversable | Path) -> dict[str, StaticFile]:
    """Every servable regular file directly in ``root``, by name (no subdirectories).

    A missing ``root`` gives no files (the pages then answer 404 saying so).
    """
    if not root.is_dir():
        log.warning("no web files: %s is not a directory", root)
        return {}
    files: dict[str, StaticFile] = {}
    for entry in sorted(root.iterdir(), key=lambda e: e.name):
        content_type = content_type_for(entry.name)
        if not entry.is_file() or content_type is None or not _SERVABLE_NAME.fullmatch(entry.name):
            log.debug("web: not serving %s", entry.name)
            continue
        body = entry.read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:ETAG_HEX_DIGITS]
        files[entry.name] = StaticFile(body, content_type, f'"{digest}"')
    return files


class WebUI:
    """Answers the web routes from files loaded once.

    ``enabled`` False (``web.enabled = false``, ``--no-web``) answers every web
    route 404 naming the setting.
    """

    def __init__(self, files: dict[str, StaticFile], *, enabled: bool = True):
        self.files = files
        self.enabled = enabled

    @classmethod
    def load(cls, root: Traversable | Path | None = None, *, enabled: bool = True) -> WebUI:
        """Read the files under ``root`` (None: the packaged ones) unless disabled."""
        if not enabled:
            return cls({}, enabled=False)
        return cls(load_static(default_static_root() if root is None else root))

    @staticmethod
    def is_route(path: str) -> bool:
        """Whether ``path`` (no query, trailing ``/`` removed) is one of the web routes."""
        return (
            path in PAGES
            or path == FAVICON
            or path == STATIC_PREFIX.rstrip("/")
            or path.startswith(STATIC_PREFIX)
        )

    def answer(self, request: Request, path: str) -> Response:
        """The response to ``request`` for the web route ``path`` (see :meth:`is_route`)."""
        if not self.enabled:
            return text_response(
                HTTPStatus.NOT_FOUND,
                f"{path} is off: the web dashboard is disabled on this server "
                "(web.enabled = false or --no-web)\n",
            )
        if request.method not in ("GET", "HEAD"):
            response = text_response(
                HTTPStatus.METHOD_NOT_ALLOWED, f"{request.method} is not allowed; use GET\n"
            )
            response.headers["Allow"] = "GET, HEAD"
            return response
        if path == FAVICON:
            return _no_icon()
        name = PAGES.get(path) or path.removeprefix(STATIC_PREFIX)
        static = self.files.get(name)
        if static is None:
            return text_response(HTTPStatus.NOT_FOUND, self._missing(path, name))
        return _file_response(request, static)

    def _missing(self, path: str, name: str) -> str:
        if path in PAGES:
            return f"{path}: the page {name} is missing from the server's web files\n"
        shown = ", ".join(self.files) or "none"
        return f"unknown path {path[:200]}; static files: {shown}\n"


def _file_response(request: Request, static: StaticFile) -> Response:
    """200 with the file, or 304 when ``If-None-Match`` names its ETag; HEAD gets no body."""
    headers = Headers(
        [
            ("Content-Type", static.content_type),
            # Revalidate every time: cheap with the ETag, and a restart with new files shows.
            ("Cache-Control", "no-cache"),
            ("ETag", static.etag),
        ]
    )
    if _etag_matches(request.headers.get("If-None-Match"), static.etag):
        return Response(HTTPStatus.NOT_MODIFIED.value, HTTPStatus.NOT_MODIFIED.phrase, headers, b"")
    headers["Content-Length"] = str(len(static.body))
    body = b"" if request.method == "HEAD" else static.body
    return Response(HTTPStatus.OK.value, HTTPStatus.OK.phrase, headers, body)


def _no_icon() -> Response:
    """204 for ``/favicon.ico``: no icon here (pages name theirs with ``<link rel="icon">``)."""
    headers = Headers([("Cache-Control", "max-age=86400"), ("Content-Length", "0")])
    return Response(HTTPStatus.NO_CONTENT.value, HTTPStatus.NO_CONTENT.phrase, headers, b"")


def _etag_matches(header: str | None, etag: str) -> bool:
    """Whether an ``If-None-Match`` value names ``etag`` (weak comparison, ``*`` matches)."""
    if header is None:
        return False
    candidates = {part.strip().removeprefix("W/") for part in header.split(",")}
    return "*" in candidates or etag in candidates


def text_response(status: HTTPStatus, body: str, content_type: str = "text/plain") -> Response:
    """A UTF-8 text response (plain by default) that no cache keeps: every HTTP answer the
    server writes itself, pages and files aside."""
    data = body.encode()
    headers = Headers(
        [
            ("Content-Type", f"{content_type}; charset=utf-8"),
            ("Cache-Control", "no-store"),
            ("Content-Length", str(len(data))),
        ]
    )
    return Response(status.value, status.phrase, headers, data)


__all__ = [
    "PAGES",
    "StaticFile",
    "WebUI",
    "content_security_policy",
    "default_static_root",
    "load_static",
    "page_url",
    "security_headers",
]
