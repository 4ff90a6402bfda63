"""``GET /whoami``: who a token is on the streams, or why a handshake would be refused."""

from __future__ import annotations

import asyncio
import json

import pytest
from support import make_token
from web_support import request, server_thread
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from jacmon import __version__
from jacmon.server.auth import revoke_token
from jacmon.store import Store


@pytest.fixture(scope="module")
def tokens(tmp_path_factory) -> dict:
    """A server requiring tokens, and one token of each kind (module-scoped: one start)."""
    tmp_path = tmp_path_factory.mktemp("whoami")
    db = tmp_path / "jacmon.db"
    made = {
        "admin": asyncio.run(make_token(db, role="admin")),
        "viewer": asyncio.run(make_token(db, role="viewer")),
        "acker": asyncio.run(make_token(db, role="viewer", can_ack=True)),
        "learner": asyncio.run(make_token(db, role="viewer", learner="u1")),
        "ingest": asyncio.run(make_token(db, role="ingest")),
        "revoked": asyncio.run(make_token(db, role="viewer")),
    }
    asyncio.run(_revoke(db, made["revoked"]))
    with server_thread(
        tmp_path, require_tokens=True, allowed_origins=["https://lms.example.com"]
    ) as web:
        yield {"web": web, **made}


async def _revoke(db, token: str) -> None:
    store = await Store.open(db)
    try:
        await revoke_token(store, token)
    finally:
        await store.close()


def token_id(token: str) -> str:
    return token.split("_")[1]


def whoami(port: int, token: str | None = None, query: str = "", **headers: str):
    """GET /whoami with ``token`` as a Bearer header; the status and the JSON body."""
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    reply = request(port, f"/whoami{query}", headers)
    assert reply.header("Content-Type") == "application/json; charset=utf-8"
    assert reply.header("Cache-Control") == "no-store"
    # The verdict is in the body; the request itself always succeeds.
    assert reply.status == 200
    body = json.loads(reply.body)
    assert body["accepted"] is (body["status"] == 200)
    return body["status"], body


def test_a_viewer_token_is_described(tokens):
    web = tokens["web"]
    status, body = whoami(web.port, tokens["viewer"])
    assert status == 200
    assert body == {
        "accepted": True,
        "status": 200,
        "token": token_id(tokens["viewer"]),
        "role": "viewer",
        "learner": None,
        "can_ack": False,
        "tokens_required": True,
        "server_id": web.server.store.server_id,
        "version": __version__,
    }


@pytest.mark.parametrize(("kind", "can_ack"), [("acker", True), ("admin", True)])
def test_can_ack_follows_the_permission(tokens, kind, can_ack):
    status, body = whoami(tokens["web"].port, tokens[kind])
    assert status == 200
    assert body["can_ack"] is can_ack
    assert body["role"] == ("admin" if kind == "admin" else "viewer")


def test_the_token_may_come_in_the_query(tokens):
    status, body = whoami(tokens["web"].port, query=f"?token={tokens['acker']}")
    assert status == 200
    assert body["token"] == token_id(tokens["acker"])


def test_a_learner_scoped_token_names_its_learner(tokens):
    port = tokens["web"].port
    for query in ("", "?learner=u1"):
        status, body = whoami(port, tokens["learner"], query)
        assert status == 200
        assert body["learner"] == "u1"
        assert body["role"] == "viewer"
    status, body = whoami(port, tokens["learner"], "?learner=u2")
    assert status == 403
    assert body == {
        "accepted": False,
        "error": f"token {token_id(tokens['learner'])!r} is scoped to one learner and cannot "
        "see learner 'u2'",
        "status": 403,
    }


def test_an_unscoped_token_with_a_learner_query_is_scoped_to_it(tokens):
    status, body = whoami(tokens["web"].port, tokens["viewer"], "?learner=u7")
    assert status == 200
    assert body["learner"] == "u7"


def test_an_ingest_token_may_not_view(tokens):
    status, body = whoami(tokens["web"].port, tokens["ingest"])
    assert status == 403
    assert body == {
        "accepted": False,
        "error": f"token {token_id(tokens['ingest'])!r} has role ingest; streams need viewer "
        "or admin",
        "status": 403,
    }


def test_no_token_where_required_is_401(tokens):
    status, body = whoami(tokens["web"].port)
    assert status == 401
    assert body["status"] == 401
    assert body["error"].startswith("a token is required")


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        ("jm_deadbeef_SECRETSECRET", "token 'deadbeef' is not valid"),
        ("not-a-token-SECRETSECRET", "token is malformed; expected jm_<id>_<secret>"),
    ],
)
def test_a_bad_token_is_401_and_never_echoed(tokens, token, reason):
    port = tokens["web"].port
    for headers, query in (({"Authorization": f"Bearer {token}"}, ""), ({}, f"?token={token}")):
        reply = request(port, f"/whoami{query}", headers)
        assert reply.status == 200
        assert json.loads(reply.body) == {"accepted": False, "error": reason, "status": 401}
        assert "SECRET" not in reply.text


def test_a_revoked_token_is_401(tokens):
    status, body = whoami(tokens["web"].port, tokens["revoked"])
    assert status == 401
    assert body["error"] == f"token {token_id(tokens['revoked'])!r} was revoked"


def test_a_foreign_origin_is_403_even_with_a_good_token(tokens):
    status, body = whoami(tokens["web"].port, tokens["admin"], Origin="https://evil.example")
    assert status == 403
    assert body["error"].startswith("origin 'https://evil.example' may not open WebSockets")
    assert "--allowed-origin https://evil.example" in body["error"]


def test_an_allowed_origin_with_a_token_is_described(tokens):
    status, body = whoami(tokens["web"].port, tokens["viewer"], Origin="https://lms.example.com")
    assert status == 200
    assert body["role"] == "viewer"


@pytest.mark.parametrize(
    ("kind", "query", "origin"),
    [
        (None, "", None),
        ("ingest", "", None),
        ("learner", "?learner=u2", None),
        ("revoked", "", None),
        ("viewer", "", "https://evil.example"),
    ],
)
def test_whoami_gives_the_handshakes_status_and_reason(tokens, kind, query, origin):
    port = tokens["web"].port
    headers = {"Origin": origin} if origin else {}
    if kind is not None:
        headers["Authorization"] = f"Bearer {tokens[kind]}"
    status, body = whoami(port, query=query, **headers)
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{port}/ws/metrics{query}", additional_headers=headers, open_timeout=5
        )
    assert refused.value.response.status_code == status == body["status"]
    assert refused.value.response.body.decode() == body["error"] + "\n"


def test_where_tokens_are_optional_a_tokenless_local_request_is_the_anonymous_admin(tmp_path):
    with server_thread(tmp_path) as web:
        for headers in ({}, {"Origin": f"http://127.0.0.1:{web.port}"}):
            status, body = whoami(web.port, **headers)
            assert status == 200
            assert body["token"] is None
            assert body["role"] == "admin"
            assert body["can_ack"] is True
            assert body["tokens_required"] is False
