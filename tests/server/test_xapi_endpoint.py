"""The xAPI statements endpoint on jacmon's port: a real server, real HTTP clients.

httpx sends the hand-made requests (each rule the issue names); Rustici's
``tincan`` RemoteLRS is a real xAPI client saving statements as LMSs do.
"""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from typing import Any

import httpx
import pytest
from lrs_fixtures import check_event, mixed_statement, unmappable_statements
from support import collect_events, make_token, read_events, read_received
from websockets.asyncio.client import connect

from jacmon.server.auth import revoke_token
from jacmon.store import Store

V103 = {"X-Experience-API-Version": "1.0.3"}


def http_url(running: Any) -> str:
    return f"http://127.0.0.1:{running.port}"


async def post(
    running: Any,
    body: Any,
    *,
    headers: dict[str, str] | None = None,
    path: str = "/xAPI/statements",
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=http_url(running), timeout=30) as client:
        return await client.post(path, json=body, headers=V103 if headers is None else headers)


def statements(n: int, start: int = 0) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """``n`` mixed statements with timestamps, and the event each must become, by id."""
    sent, expected = [], {}
    for i in range(start, start + n):
        ts = f"2026-01-0{1 + i % 9}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        body, want = mixed_statement(i, timestamp=ts)
        sent.append(body)
        # The endpoint writes every timestamp in UTC with 'Z' (xAPI 2.0 asks for UTC).
        expected[body["id"]] = {**want, "ts": ts.replace("+00:00", "Z")}
    return sent, expected


async def test_post_stores_each_statement_as_its_event_and_answers_the_ids(running_server) -> None:
    sent, expected = statements(40)
    response = await post(running_server, sent)
    assert response.status_code == 200, response.text
    assert response.json() == [s["id"] for s in sent]
    assert response.headers["X-Experience-API-Version"] == "1.0.3"
    events = read_events(running_server.db_path)
    assert len(events) == 40
    assert [p for e in events for p in check_event(e, expected[e["id"]])] == []
    # The raw statement is kept with its event, as sent.
    kept = read_received(running_server.db_path)
    for statement in sent:
        record = kept[("xapi", statement["id"])]
        assert record["body"] == statement
        assert record["event_id"] == statement["id"] and record["reason"] is None


async def test_a_statement_without_id_gets_one_and_a_retry_is_stored_once(running_server) -> None:
    body, _ = mixed_statement(3, timestamp="2026-01-02T10:00:00Z")
    del body["id"]
    first = await post(running_server, body)
    again = await post(running_server, [body])
    assert first.status_code == again.status_code == 200
    (generated,) = first.json()
    assert uuid.UUID(generated) and again.json() == [generated]
    assert [e["id"] for e in read_events(running_server.db_path)] == [generated]


async def test_versions_1_0_x_and_2_0_0_are_accepted_and_echoed_others_refused(
    running_server,
) -> None:
    sent, _ = statements(3)
    for version, status in (("1.0.0", 200), ("1.0.3", 200), ("2.0.0", 200), ("0.95", 400)):
        response = await post(running_server, sent, headers={"X-Experience-API-Version": version})
        assert response.status_code == status, (version, response.text)
        assert response.headers["X-Experience-API-Version"] == (
            version if status == 200 else "1.0.3"
        )
    refused = await post(running_server, sent, headers={"X-Experience-API-Version": "0.95"})
    assert "'0.95' is not supported" in refused.json()["message"]
    # Ralph's forwarding sends no version header: read as 1.0.3, not refused.
    unnamed = await post(running_server, statements(1, start=10)[0], headers={})
    assert unnamed.status_code == 200, unnamed.text
    assert unnamed.headers["X-Experience-API-Version"] == "1.0.3"


async def test_xapi_2_context_agents_and_a_space_in_the_timestamp(running_server) -> None:
    body, want = mixed_statement(4, timestamp="2026-01-05 12:30:00+02:00")
    body["context"]["contextAgents"] = [
        {"objectType": "contextAgent", "agent": {"mbox": "mailto:coach@example.com"}}
    ]
    body["context"]["contextGroups"] = [
        {
            "objectType": "contextGroup",
            "group": {"objectType": "Group", "member": [{"mbox": "mailto:x@example.com"}]},
        }
    ]
    response = await post(running_server, body, headers={"X-Experience-API-Version": "2.0.0"})
    assert response.status_code == 200, response.text
    (event,) = read_events(running_server.db_path)
    assert event["ts"] == "2026-01-05T10:30:00Z"  # converted to UTC
    assert check_event(event, {k: v for k, v in want.items() if k != "ts"}) == []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s["verb"].update(id="completed"), "statement 1: 'verb.id' is 'completed'"),
        (lambda s: s.update(actor={"name": "no id"}), "statement 1: 'actor' is"),
        (lambda s: s.update(id="not-a-uuid"), "statement 1: 'id' is 'not-a-uuid'"),
        (lambda s: s.update(timestamp="yesterday"), "statement 1: 'timestamp' is 'yesterday'"),
        (
            lambda s: s.update(result={"score": {"scaled": 1.5}}),
            "statement 1: 'result.score.scaled' is 1.5",
        ),
        (lambda s: s["actor"].update(mbox="a@b.c"), "statement 1: 'actor' is"),
    ],
)
async def test_an_invalid_statement_refuses_the_request_naming_statement_and_field(
    running_server, change, named
) -> None:
    sent, _ = statements(3)
    change(sent[1])
    response = await post(running_server, sent)
    assert response.status_code == 400
    assert named in response.json()["message"]
    assert read_events(running_server.db_path) == []  # xAPI: all or nothing


async def test_unmappable_statements_are_accepted_kept_logged_and_counted(running_server) -> None:
    sent, _ = statements(2)
    odd = unmappable_statements(500)
    response = await post(running_server, sent + odd)
    assert response.status_code == 200
    assert response.json() == [s["id"] for s in sent + odd]
    assert response.headers["X-Jacmon-Unmapped"] == "3"
    assert len(read_events(running_server.db_path)) == 2
    kept = read_received(running_server.db_path)
    for statement in odd:
        record = kept[("xapi", statement["id"])]
        assert record["body"] == statement and record["event_id"] is None
        assert record["reason"]
    store = await Store.open(running_server.db_path, readonly=True)
    try:
        log = await store.received_log(limit=10)
        assert await store.received_totals() == {"xapi": {"mapped": 2, "unmapped": 3}}
    finally:
        await store.close()
    reasons = {row["id"]: row["reason"] for row in log}
    assert "is a StatementRef" in reasons[odd[1]["id"]]
    assert "has no progress" in reasons[odd[2]["id"]]
    async with httpx.AsyncClient(base_url=http_url(running_server)) as client:
        metrics = (await client.get("/metrics")).text
    assert 'source="xapi",outcome="unmapped"} 3' in metrics
    assert 'source="xapi",outcome="mapped"} 2' in metrics


async def test_put_stores_once_and_a_different_statement_under_the_id_is_a_conflict(
    running_server,
) -> None:
    body, _ = mixed_statement(7, timestamp="2026-01-03T09:00:00Z")
    ident = body["id"]
    async with httpx.AsyncClient(base_url=http_url(running_server), headers=V103) as client:
        put = await client.put("/xAPI/statements", params={"statementId": ident}, json=body)
        again = await client.put("/xAPI/statements", params={"statementId": ident}, json=body)
        other = {**body, "result": {"score": {"scaled": 0.1}}}
        conflict = await client.put("/xAPI/statements", params={"statementId": ident}, json=other)
        posted = await client.post("/xAPI/statements", json=[other])
        missing = await client.put("/xAPI/statements", json={k: body[k] for k in body if k != "id"})
        # Ralph's forwarding PUTs without the parameter: the statement's id stands in.
        own_id = await client.put("/xAPI/statements", json=body)
        mismatch = await client.put(
            "/xAPI/statements", params={"statementId": str(uuid.uuid4())}, json=body
        )
    assert (put.status_code, again.status_code) == (204, 204)
    assert conflict.status_code == posted.status_code == 409
    assert ident in conflict.json()["message"]
    assert missing.status_code == 400 and "statementId" in missing.json()["message"]
    assert own_id.status_code == 204, own_id.text
    assert mismatch.status_code == 400 and "differs from statementId" in mismatch.json()["message"]
    assert [e["id"] for e in read_events(running_server.db_path)] == [ident]


async def test_about_and_the_other_resources(running_server) -> None:
    async with httpx.AsyncClient(base_url=http_url(running_server)) as client:
        about = await client.get("/xAPI/about")
        about_2 = await client.get("/xAPI/about", headers={"X-Experience-API-Version": "2.0.0"})
        listing = await client.get("/xAPI/statements", headers=V103)
        state = await client.get("/xAPI/activities/state", headers=V103)
        health = await client.get("/healthz")
    assert about.status_code == 200 and about.json()["version"][-1] == "1.0.3"
    assert "2.0.0" in about_2.json()["version"]
    assert listing.status_code == 405 and listing.headers["Allow"] == "POST, PUT"
    assert state.status_code == 404 and "/xAPI/statements" in state.json()["message"]
    assert health.status_code == 200  # websockets still answers the rest of the port


async def test_limits_answer_413_with_the_reason(server_factory, tmp_path) -> None:
    async with server_factory(
        tmp_path / "j.db", server_push_max_body_bytes=8192, server_push_max_records=5
    ) as running:
        many, _ = statements(6)
        too_many = await post(running, many)
        big, _ = mixed_statement(1, timestamp="2026-01-02T10:00:00Z")
        big["context"]["extensions"]["https://example.com/pad"] = "x" * 9000
        too_big = await post(running, big)
        fits, _ = statements(5)
        ok = await post(running, fits)
    assert too_many.status_code == 413
    assert "6 statements; send at most 5" in too_many.json()["message"]
    assert too_big.status_code == 413 and "send at most 8192" in too_big.json()["message"]
    assert ok.status_code == 200


async def test_tokens_basic_or_bearer_roles_and_origins(server_factory, tmp_path) -> None:
    db = tmp_path / "j.db"
    ingest_token = await make_token(db, role="ingest")
    viewer_token = await make_token(db, role="viewer")
    revoked = await make_token(db, role="ingest")
    store = await Store.open(db)
    try:
        await revoke_token(store, revoked)
    finally:
        await store.close()
    _, token_id, secret = ingest_token.split("_", 2)
    sent, _ = statements(2)

    def basic(user: str, password: str) -> str:
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    async with server_factory(db, server_require_tokens=True) as running:

        async def status(authorization: str | None, **extra: str) -> httpx.Response:
            headers = {**V103, **extra}
            if authorization:
                headers["Authorization"] = authorization
            return await post(running, sent, headers=headers)

        anonymous = await status(None)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert "token is required" in anonymous.json()["message"]
        assert (await status(basic(token_id, secret))).status_code == 200
        assert (await status(f"Bearer {ingest_token}")).status_code == 200
        assert (await status(basic(token_id, "wrong"))).status_code == 401
        viewer = await status(f"Bearer {viewer_token}")
        assert viewer.status_code == 403 and "needs ingest or admin" in viewer.json()["message"]
        gone = await status(f"Bearer {revoked}")
        assert gone.status_code == 401 and "revoked" in gone.json()["message"]
        foreign = await status(f"Bearer {ingest_token}", Origin="https://evil.example")
        assert foreign.status_code == 403 and "evil.example" in foreign.json()["message"]
    kept = read_received(db)
    assert {record["token"] for record in kept.values()} == {token_id}


async def test_keep_alive_requests_and_websockets_share_the_port(running_server) -> None:
    async with connect(f"{running_server.url}/ws/activity") as ws:
        json.loads(await ws.recv())  # the snapshot
        async with httpx.AsyncClient(base_url=http_url(running_server), headers=V103) as client:
            for start in (0, 10, 20):
                sent, _ = statements(10, start)
                response = await client.post("/xAPI/statements", json=sent)
                assert response.status_code == 200
                assert response.headers["Connection"] == "keep-alive"
        events = await collect_events(ws, 30)
    assert len({e["id"] for e in events}) == 30


async def test_bad_bodies_get_400_and_the_connection_serves_the_next(running_server) -> None:
    async with httpx.AsyncClient(base_url=http_url(running_server), headers=V103) as client:
        for body in (b"{not json", b"42", b"[1, 2]", b'"text"', b"[" * 5000 + b"]" * 5000):
            response = await client.post("/xAPI/statements", content=body)
            assert response.status_code == 400, body[:20]
            assert response.json()["message"]
        empty = await client.post("/xAPI/statements", content=b" ")
        assert empty.status_code == 400
        assert "the body is empty; send a statement or an array" in empty.json()["message"]
        # Statements with attachments come as multipart/mixed: named, not "not JSON".
        sent, _ = statements(1)
        part = b"--b\r\nContent-Type: application/json\r\n\r\n" + json.dumps(sent).encode()
        attached = await client.post(
            "/xAPI/statements",
            content=part + b"\r\n--b--\r\n",
            headers={"Content-Type": "multipart/mixed; boundary=b"},
        )
        assert attached.status_code == 415
        assert "'multipart/mixed' is not accepted" in attached.json()["message"]
        assert (await client.post("/xAPI/statements", json=sent)).status_code == 200


async def test_paths_as_senders_write_them_reach_the_endpoints(running_server) -> None:
    # An endpoint configured as '.../xAPI/' that a client joins with '/statements'.
    sent, _ = statements(3)
    async with httpx.AsyncClient(base_url=http_url(running_server), headers=V103) as client:
        answers = [
            await client.post(path, json=[statement])
            for path, statement in zip(
                ["/xAPI//statements", "/xAPI/statements/", "/xapi/statements"], sent, strict=True
            )
        ]
        about = await client.get("/XAPI/about/")
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert [a.json() for a in answers] == [[s["id"]] for s in sent]
    assert about.status_code == 200 and "1.0.3" in about.json()["version"]


async def test_a_body_sent_to_another_path_is_answered_and_the_connection_kept(
    running_server,
) -> None:
    # websockets closes the connection without a word on a request with a body.
    async with httpx.AsyncClient(base_url=http_url(running_server), headers=V103) as client:
        stray = await client.post("/healthz", json={"x": 1})
        unknown = await client.put("/nothing", content=b"data")
        health = await client.get("/healthz")  # the same keep-alive connection
        metrics = await client.get("/metrics")
    assert stray.status_code == unknown.status_code == 405
    assert stray.headers["Allow"] == "GET, HEAD"
    assert stray.json()["message"].startswith("POST /healthz: only the push endpoints take POST")
    assert "/xAPI/statements: POST, PUT; /caliper: POST" in unknown.json()["message"]
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert 'source="other",status="405"} 2' in metrics.text


async def test_a_raw_socket_with_a_chunked_body_is_told_to_send_a_length(running_server) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", running_server.port)
    writer.write(
        b"POST /xAPI/statements HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"X-Experience-API-Version: 1.0.3\r\n\r\n0\r\n\r\n"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 411 ")
    assert b"Content-Length" in answer


# A real xAPI client: Rustici's TinCanPython (what many LMS integrations are built on).


async def test_tincan_remote_lrs_saves_statements_and_gets_the_ids(server_factory, tmp_path):
    from tincan import Activity, Agent, RemoteLRS, Statement, StatementList, Verb

    db = tmp_path / "j.db"
    token = await make_token(db, role="ingest")
    _, token_id, secret = token.split("_", 2)

    def statement(n: int, *, with_id: bool) -> Statement:
        made = Statement(
            actor=Agent(name=f"Learner {n}", mbox=f"mailto:learner{n}@example.com"),
            verb=Verb(id="http://adlnet.gov/expapi/verbs/experienced"),
            object=Activity(id=f"https://lms.example.com/lesson/{n}"),
            timestamp="2026-01-05T10:00:00Z",
        )
        if with_id:
            made.id = str(uuid.uuid4())
        return made

    def use_lrs(port: int) -> dict[str, Any]:
        lrs = RemoteLRS(
            endpoint=f"http://127.0.0.1:{port}/xAPI/",
            version="1.0.3",
            username=token_id,
            password=secret,
        )
        about = lrs.about()
        single = lrs.save_statement(statement(1, with_id=False))
        put = lrs.save_statement(statement(2, with_id=True))
        listed = StatementList([statement(n, with_id=n % 2 == 0) for n in range(3, 9)])
        many = lrs.save_statements(listed)
        conflicting = statement(99, with_id=False)
        conflicting.id = put.content.id
        conflict = lrs.save_statement(conflicting)
        return {
            "about": (about.success, about.content.version if about.success else None),
            "single": (single.success, str(single.content.id)),
            "put": (put.success, put.response.status, str(put.content.id)),
            "many": (many.success, [str(s.id) for s in many.content]),
            "conflict": (conflict.success, conflict.response.status),
        }

    async with server_factory(db, server_require_tokens=True) as running:
        seen = await asyncio.to_thread(use_lrs, running.port)
    assert seen["about"][0] and "1.0.3" in seen["about"][1]
    assert seen["single"][0] and uuid.UUID(seen["single"][1])
    assert seen["put"][:2] == (True, 204)
    assert seen["many"][0] and len(seen["many"][1]) == 6 and all(seen["many"][1])
    assert seen["conflict"] == (False, 409)
    stored = {e["id"] for e in read_events(db)}
    assert stored == {seen["single"][1], seen["put"][2], *seen["many"][1]}


# The HTTP connection itself: what a raw client (or an attacker) can do to it.


async def raw_exchange(port: int, data: bytes, *, timeout: float = 10) -> bytes:
    """Send ``data`` on a fresh connection; everything the server answers until it closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


async def test_a_huge_request_head_gets_431(running_server) -> None:
    answer = await raw_exchange(
        running_server.port,
        b"POST /xAPI/statements HTTP/1.1\r\nHost: x\r\nX-Padding: "
        + b"a" * 20_000
        + b"\r\nContent-Length: 2\r\n\r\n[]",
    )
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["message"].startswith("the request head")


async def test_a_request_that_stalls_gets_408(running_server, monkeypatch) -> None:
    from jacmon.server import connection

    monkeypatch.setattr(connection, "REQUEST_TIMEOUT_S", 0.5)
    answer = await raw_exchange(
        running_server.port,
        b"POST /xAPI/statements HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[",
    )
    assert answer.startswith(b"HTTP/1.1 408 ")
    # The server still serves others.
    sent, _ = statements(1)
    assert (await post(running_server, sent)).status_code == 200


async def test_expect_100_continue_is_answered_before_the_body(running_server) -> None:
    body = json.dumps(statements(1, start=30)[0]).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", running_server.port)
    writer.write(
        b"POST /xAPI/statements HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        b"X-Experience-API-Version: 1.0.3\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
    )
    await writer.drain()
    interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(body)
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200 ")


async def test_an_idle_keep_alive_connection_does_not_hold_up_shutdown(server_factory, tmp_path):
    async with server_factory(tmp_path / "j.db") as running:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        body = json.dumps(statements(1)[0]).encode()
        writer.write(
            b"POST /xAPI/statements HTTP/1.1\r\nHost: x\r\nX-Experience-API-Version: 1.0.3\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        assert head.startswith(b"HTTP/1.1 200 ") and b"Connection: keep-alive" in head
        from jacmon.server.connection import KEEP_ALIVE_S

        # With the connection open and idle: shutdown closes it rather than waiting out
        # its keep-alive (a hang here fails as a TimeoutError).
        await asyncio.wait_for(running.stop(), KEEP_ALIVE_S / 2)
        await asyncio.wait_for(reader.read(), 10)
        assert reader.at_eof()
        writer.close()
