"""``POST /caliper`` on a real server: the IMS caliper-spec example events, posted as
envelopes, become the events written down by hand in tests/test_caliper_mapping.py."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from support import collect_events, make_token, read_events, read_received
from test_caliper_mapping import EXPECTED, fixture
from websockets.asyncio.client import connect


def envelope(*events: Any) -> dict[str, Any]:
    return {
        "sensor": "https://example.edu/sensors/1",
        "sendTime": "2016-11-15T11:05:01.000Z",
        "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "data": list(events),
    }


@pytest.fixture
async def caliper_server(server_factory, tmp_path):
    db = tmp_path / "j.db"
    tokens = {
        "ingest": await make_token(db, role="ingest"),
        "viewer": await make_token(db, role="viewer"),
    }
    async with server_factory(db, server_require_tokens=True) as running:
        running.tokens = tokens
        yield running


async def post(running, body: Any, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}") as client:
        if isinstance(body, bytes):
            return await client.post("/caliper", content=body, headers=headers)
        return await client.post("/caliper", json=body, headers=headers)


async def test_the_spec_examples_become_the_expected_events_live(caliper_server) -> None:
    viewer = caliper_server.tokens["viewer"]
    events = [fixture(name) for name in sorted(EXPECTED)]
    graded = fixture("EventGradeGraded")  # the spec's example has no score: unmapped
    async with connect(f"{caliper_server.url}/ws/activity?token={viewer}") as ws:
        json.loads(await ws.recv())  # the snapshot
        response = await post(
            caliper_server, envelope(*events, graded), caliper_server.tokens["ingest"]
        )
        live = await collect_events(ws, len(events))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["received"], answer["mapped"]) == (len(events) + 1, len(events))
    ((skipped),) = answer["unmapped"]
    assert skipped["id"] == graded["id"] and "without generated.scoreGiven" in skipped["reason"]
    assert {e["id"] for e in live} == {e["id"] for e in EXPECTED.values()}
    stored = {e["id"]: e for e in read_events(caliper_server.db_path)}
    for name, want in EXPECTED.items():
        assert {k: v for k, v in stored[want["id"]].items() if v is not None} == want, name
    kept = read_received(caliper_server.db_path)
    assert kept[("caliper", graded["id"])]["body"] == graded
    assert kept[("caliper", graded["id"])]["event_id"] is None
    assert kept[("caliper", events[0]["id"])]["body"] == events[0]


async def test_the_spec_envelope_as_sent_and_a_resend_stores_once(caliper_server) -> None:
    token = caliper_server.tokens["ingest"]
    first = await post(caliper_server, fixture("EnvelopeEventSingle"), token)
    again = await post(caliper_server, fixture("EnvelopeEventSingle"), token)
    assert first.status_code == again.status_code == 200
    (event,) = read_events(caliper_server.db_path)
    assert event["id"] == "urn:uuid:c51570e4-f8ed-4c18-bb3a-dfe51b2cc594"
    assert (event["type"], event["attempt"]) == ("activity", 1)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{oops", "the body is not JSON"),
        (b"", "the body is empty; send a Caliper envelope as JSON"),
        ({"sendTime": "2016-11-15T11:05:01.000Z"}, "envelope field 'sensor' is missing"),
        ([1, 2], "envelope is list; expected an object with sensor"),
        ({**envelope(), "sensor": None}, "envelope field 'sensor' is None"),
        ({**envelope(), "data": {"id": 1}}, "envelope field 'data' is dict"),
        ({**envelope(), "sendTime": ""}, "envelope field 'sendTime' is ''"),
        # A huge bad value is named in a short reason, not echoed whole.
        ({**envelope(), "sensor": [10**300] * 3}, "envelope field 'sensor' is [1000000"),
    ],
)
async def test_an_invalid_envelope_gets_400_with_the_reason(caliper_server, body, reason) -> None:
    response = await post(caliper_server, body, caliper_server.tokens["ingest"])
    assert response.status_code == 400
    assert response.json() == {"error": True, "message": response.json()["message"], "code": 400}
    assert reason in response.json()["message"] and len(response.json()["message"]) < 300
    assert read_events(caliper_server.db_path) == []


async def test_bearer_token_roles(caliper_server) -> None:
    body = envelope(fixture("EventViewViewed"))
    missing = await post(caliper_server, body, None)
    viewer = await post(caliper_server, body, caliper_server.tokens["viewer"])
    wrong = await post(caliper_server, body, "jm_0000_nope")
    assert missing.status_code == 401 and "token is required" in missing.text
    assert viewer.status_code == 403 and "Caliper endpoint needs ingest or admin" in viewer.text
    assert wrong.status_code == 401
    assert read_events(caliper_server.db_path) == []
