"""Bounded fuzzing of the web's HTTP surface: the page and static routes and /whoami.

Random paths, queries and the headers a page or an attacker controls (Origin,
Authorization, If-None-Match): every answer is a known status with the security
headers, never a 5xx; nothing outside the static directory is served; the
server keeps serving afterwards.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from fuzz_support import FUZZ_SETTINGS
from hypothesis import given
from hypothesis import strategies as st
from web_support import request, server_thread

#: Path pieces that probe routing, decoding and traversal.
PIECES = st.sampled_from(
    [
        "",
        "/",
        "static",
        "learner",
        "whoami",
        "index.html",
        "jacmon.js",
        "..",
        "%2e%2e",
        "%2f",
        "%00",
        "\\",
        "jacmon.db",
        ".hidden",
        "LICENSE-uPlot.txt",
        "ws",
        "metrics",
    ]
)
TEXT = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF, exclude_characters="?#"),
    max_size=12,
)
PATHS = st.lists(st.one_of(PIECES, TEXT), min_size=1, max_size=5).map(
    lambda parts: "/" + "/".join(quote(p, safe="%/\\.") for p in parts)
)
QUERIES = st.dictionaries(
    st.sampled_from(["learner", "token", "since", "x"]), TEXT, max_size=3
).map(lambda q: "&".join(f"{k}={quote(v)}" for k, v in q.items()))
HEADER_VALUES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Origin": st.one_of(HEADER_VALUES, st.just("https://evil.example")),
        "Authorization": st.one_of(HEADER_VALUES.map(lambda v: "Bearer " + v), HEADER_VALUES),
        "If-None-Match": HEADER_VALUES,
    },
)

KNOWN = {200, 204, 304, 400, 401, 403, 404, 405, 426}


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    with server_thread(tmp_path_factory.mktemp("fuzz-web"), require_tokens=False) as server:
        yield server


@FUZZ_SETTINGS
@given(path=PATHS, query=QUERIES, headers=HEADERS)
def test_any_request_gets_a_known_answer_with_the_security_headers(web, path, query, headers):
    target = f"{path}?{query}" if query else path
    reply = request(web.port, target, headers)
    assert reply.status in KNOWN, (target, headers, reply.status, reply.body[:200])
    assert reply.header("Content-Security-Policy"), target
    assert reply.header("X-Content-Type-Options") == "nosniff"
    if reply.status == 200 and path.rstrip("/").startswith("/static/"):
        name = path.rstrip("/").removeprefix("/static/")
        assert "/" not in name and ".." not in name and "%" not in name, target
    if path.rstrip("/") == "/whoami":
        body = json.loads(reply.body)
        assert body["accepted"] is (body["status"] == 200)
        assert "Bearer" not in json.dumps(body)


def test_the_server_still_serves_after_the_fuzzing(web):
    assert request(web.port, "/healthz").status == 200
    assert request(web.port, "/").status == 200
