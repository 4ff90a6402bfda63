"""The web UI over real HTTP: routes, types, ETags, traversal, headers on every response."""

from __future__ import annotations

import importlib.resources
import re
import tomllib
from pathlib import Path

import pytest
from web_support import request, server_thread

from jacmon.server.web import default_static_root

#: The files of a test static directory and the Content-Type each must be served with.
SERVED = {
    "index.html": "text/html; charset=utf-8",
    "learner.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "data.json": "application/json",
    "app.js.map": "application/json",
    "icon.svg": "image/svg+xml",
    "pixel.png": "image/png",
    "notes.txt": "text/plain; charset=utf-8",
    "LICENSE-uplot": "text/plain; charset=utf-8",
}

#: Files in the directory that are never served: hidden, unknown type, in a subdirectory.
NOT_SERVED = (".hidden.js", "tool.exe", "sub/inner.js")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def make_static(root: Path, names=(*SERVED, *NOT_SERVED)) -> Path:
    """A static directory whose files each hold their own name (distinct bodies, ETags)."""
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"file {name}\n".encode())
    return root


@pytest.fixture
def static(tmp_path) -> Path:
    return make_static(tmp_path / "static")


@pytest.fixture
def web(tmp_path, static):
    with server_thread(tmp_path, web_root=static) as running:
        yield running


def test_pages_and_static_files_are_served_with_their_types(web, static):
    for path, name in [("/", "index.html"), ("/learner", "learner.html")] + [
        (f"/static/{name}", name) for name in SERVED
    ]:
        reply = request(web.port, path)
        assert reply.status == 200, (path, reply.text)
        assert reply.header("Content-Type") == SERVED[name], path
        assert reply.header("Cache-Control") == "no-cache", path
        assert re.fullmatch(r'"[0-9a-f]{16}"', reply.header("ETag") or ""), path
        assert reply.header("Content-Length") == str(len(reply.body))
        assert reply.body == (static / name).read_bytes(), path


def test_a_matching_if_none_match_answers_304_without_a_body(web):
    etag = request(web.port, "/static/app.js").header("ETag")
    for sent in (etag, f'"other", {etag}', f"W/{etag}", "*"):
        reply = request(web.port, "/static/app.js", {"If-None-Match": sent})
        assert reply.status == 304, sent
        assert reply.body == b""
        assert reply.header("ETag") == etag
        assert reply.header("Cache-Control") == "no-cache"
    stale = request(web.port, "/static/app.js", {"If-None-Match": '"0000000000000000"'})
    assert stale.status == 200
    assert stale.body == b"file app.js\n"


def test_files_are_read_once_at_start(web, static):
    before = request(web.port, "/static/app.js")
    (static / "app.js").write_text("changed on disk\n")
    (static / "late.js").write_text("added after start\n")
    after = request(web.port, "/static/app.js")
    assert after.body == before.body
    assert after.header("ETag") == before.header("ETag")
    assert request(web.port, "/static/late.js").status == 404
    web.restart()
    assert request(web.port, "/static/app.js").body == b"changed on disk\n"
    assert request(web.port, "/static/late.js").status == 200


def test_head_gets_the_headers_without_the_body(web):
    reply = request(web.port, "/static/style.css", method="HEAD")
    assert reply.status == 200
    assert reply.body == b""
    assert reply.header("Content-Length") == str(len(b"file style.css\n"))
    assert reply.header("Content-Type") == "text/css; charset=utf-8"


def test_favicon_is_204_so_browsers_log_no_404(web):
    reply = request(web.port, "/favicon.ico")
    assert reply.status == 204
    assert reply.body == b""


def test_other_methods_are_refused_with_405(web):
    reply = request(web.port, "/", method="DELETE")
    assert reply.status == 405
    assert reply.header("Allow") == "GET, HEAD"
    assert reply.text == "DELETE is not allowed; use GET\n"


@pytest.mark.parametrize(
    "path",
    [
        "/static/../jacmon.db",
        "/static/..%2fjacmon.db",
        "/static/%2e%2e/x",
        "/static/%2e%2e%2fjacmon.db",
        "/static/..\\jacmon.db",
        "/static/app.js%00",
        "/static/app%2ejs",
        "/static//etc/passwd",
        "/static/%2Fetc%2Fpasswd",
        "/static/",
        "/static",
        "/static/sub/inner.js",
        "/static/sub",
        "/static/.hidden.js",
        "/static/tool.exe",
        "/static/nope.js",
        "/learner.html",
        "/index.html",
    ],
)
def test_anything_but_a_listed_file_is_404(web, path):
    reply = request(web.port, path)
    assert reply.status == 404, reply.text
    assert "SQLite" not in reply.text
    assert reply.text.startswith(f"unknown path {path.rstrip('/') or '/'}"), reply.text
    assert reply.header("Content-Type") == "text/plain; charset=utf-8"


def test_a_nul_byte_in_the_path_is_404(web):
    reply = request(web.port, "/static/app.js\x00.png")
    assert reply.status == 404


def test_unknown_paths_name_the_web_routes(web):
    reply = request(web.port, "/dashboard")
    assert reply.status == 404
    assert reply.text == (
        "unknown path /dashboard; known: /, /learner, /static/<file>, /ws/dashboard, "
        "/ws/alerts, /ws/metrics, /ws/activity, /ws/ingest, /whoami, /healthz, /metrics, "
        "/xAPI/statements, /xAPI/about, /caliper\n"
    )


def test_a_missing_page_is_404_naming_the_file(tmp_path):
    static = make_static(tmp_path / "static", names=("index.html",))
    with server_thread(tmp_path, web_root=static) as web:
        assert request(web.port, "/").status == 200
        reply = request(web.port, "/learner")
    assert reply.status == 404
    assert reply.text == "/learner: the page learner.html is missing from the server's web files\n"


@pytest.mark.parametrize(
    ("path", "headers", "method", "status"),
    [
        ("/", {}, "GET", 200),
        ("/static/app.js", {}, "GET", 200),
        ("/static/app.js", {"If-None-Match": "*"}, "GET", 304),
        ("/static/../jacmon.db", {}, "GET", 404),
        ("/nowhere", {}, "GET", 404),
        ("/", {}, "POST", 405),
        ("/favicon.ico", {}, "GET", 204),
        ("/healthz", {}, "GET", 200),
        ("/metrics", {}, "GET", 200),
        ("/whoami", {}, "GET", 200),
        ("/whoami", {"Origin": "https://evil.example"}, "GET", 200),
        ("/ws/metrics", {"Origin": "https://evil.example"}, "GET", 403),
        # Not a WebSocket upgrade: websockets' own 426 refusal gets them too.
        ("/ws/metrics", {}, "GET", 426),
        ("/ws/metrics?since=x", {}, "GET", 400),
    ],
)
def test_every_response_carries_the_security_headers(web, path, headers, method, status):
    reply = request(web.port, path, headers, method=method)
    assert reply.status == status, reply.text
    for name, value in SECURITY_HEADERS.items():
        assert reply.header(name) == value, (name, path)


def test_frame_ancestors_come_from_the_config(tmp_path, static):
    ancestors = ["'self'", "https://lms.example.com", "https://*.example.org:8443"]
    with server_thread(tmp_path, web_root=static, web={"frame_ancestors": ancestors}) as web:
        for path in ("/", "/healthz", "/nowhere"):
            csp = request(web.port, path).header("Content-Security-Policy")
            assert csp.endswith(
                "; frame-ancestors 'self' https://lms.example.com https://*.example.org:8443"
            ), path
            assert "unsafe-inline" not in csp


def test_with_the_web_ui_off_its_routes_404_naming_the_setting(tmp_path, static):
    with server_thread(tmp_path, web_root=static, web={"enabled": False}) as web:
        assert web.server.web_url is None
        for path in ("/", "/learner", "/static/app.js"):
            reply = request(web.port, path)
            assert reply.status == 404, path
            assert reply.text == (
                f"{path} is off: the web dashboard is disabled on this server "
                "(web.enabled = false or --no-web)\n"
            )
            assert reply.header("Content-Security-Policy") == CSP
        assert request(web.port, "/healthz").status == 200
        assert request(web.port, "/whoami").status == 200
        listing = request(web.port, "/nowhere").text
        assert "/learner" not in listing
        assert "/whoami" in listing


def test_the_server_reads_the_packaged_static_directory_by_default(tmp_path):
    root = default_static_root()
    assert root == importlib.resources.files("jacmon.web") / "static"
    with server_thread(tmp_path) as web:
        assert web.server.web_url == f"http://127.0.0.1:{web.port}/"
        assert {"index.html", "learner.html"} <= set(web.server.web.files)
        assert all((root / name).is_file() for name in web.server.web.files)
        reply = request(web.port, "/")
    assert reply.status == 200
    assert reply.header("Content-Type") == "text/html; charset=utf-8"
    assert reply.body == (root / "index.html").read_bytes()


def test_the_package_ships_the_static_directory():
    # A wheel built from pyproject.toml includes what package-data lists.
    project = Path(__file__).resolve().parents[2] / "pyproject.toml"
    package_data = tomllib.loads(project.read_text())["tool"]["setuptools"]["package-data"]
    assert "web/static/*" in package_data["jacmon"]
