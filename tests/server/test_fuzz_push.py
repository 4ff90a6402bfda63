"""Property-based fuzzing of the push endpoints (hypothesis), against one real server.

Bounded for CI (tests/fuzz_support.py: a fixed number of derandomized examples).
One server and one keep-alive HTTP client live across all examples of a test in one
event loop, driven from a synchronous test, as in test_fuzz_ingest.py.

Properties: every request gets a JSON answer with a 2xx or 4xx status, never a
5xx or a dropped connection; a 4xx names the problem in a bounded message; a 200
answers one id per statement (Caliper: counts that add up); what was answered is
what is stored; and after every fuzzed request the server still stores a valid
statement, on the same keep-alive connection.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fuzz_support import FUZZ_SETTINGS, LONE_SURROGATES, VALUES, encode
from hypothesis import given
from hypothesis import strategies as st
from lrs_fixtures import mixed_statement
from support import TIMEOUT_S
from test_caliper_mapping import fixture

STATEMENT_FIELDS = st.one_of(
    st.sampled_from(
        ["id", "actor", "verb", "object", "result", "context", "timestamp", "version", "stored"]
    ),
    st.text(max_size=8),
    LONE_SURROGATES,
)
CALIPER_FIELDS = st.one_of(
    st.sampled_from(
        ["id", "type", "action", "actor", "object", "eventTime", "group", "generated", "@context"]
    ),
    st.text(max_size=8),
)
CALIPER_EXAMPLES = [
    "EventSessionLoggedIn",
    "EventGradeGraded",
    "EventAssessmentSubmitted",
    "EventViewViewed",
    "EventToolUseUsed",
]
HEADERS = {"Content-Type": "application/json", "X-Experience-API-Version": "1.0.3"}


def valid_statement(draw: st.DrawFn) -> dict[str, Any]:
    body, _ = mixed_statement(draw(st.integers(0, 10**6)), timestamp="2026-01-05T10:00:00Z")
    return {**body, "id": str(draw(st.uuids()))}


def valid_caliper_event(draw: st.DrawFn) -> dict[str, Any]:
    return {
        **fixture(draw(st.sampled_from(CALIPER_EXAMPLES))),
        "id": f"urn:uuid:{draw(st.uuids())}",
    }


@st.composite
def records(draw: st.DrawFn, make_valid: Any, fields: st.SearchStrategy[str]) -> Any:
    """A valid record (``make_valid``), one with some ``fields`` replaced by arbitrary
    values, or any value at all."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(VALUES)
    body = make_valid(draw)
    if choice < 6:
        body.update(draw(st.dictionaries(fields, VALUES, min_size=1, max_size=3)))
    return body


def statements() -> st.SearchStrategy[Any]:
    return records(valid_statement, STATEMENT_FIELDS)


def caliper_events() -> st.SearchStrategy[Any]:
    return records(valid_caliper_event, CALIPER_FIELDS)


@dataclass
class Harness:
    loop: asyncio.AbstractEventLoop
    client: httpx.AsyncClient
    db_path: Path
    #: (source, id) of every record the endpoint answered 200 for.
    answered: set[tuple[str, str]] = field(default_factory=set)

    def caliper_answered(self, data: list[Any], answer: dict[str, Any]) -> None:
        """Note the records a Caliper 200 accepted: the unmapped by the ids it named, the
        mapped by their own ids (a mapped event has one)."""
        assert answer["received"] == len(data)
        assert answer["mapped"] + len(answer["unmapped"]) == answer["received"]
        unmapped = {entry["index"]: entry["id"] for entry in answer["unmapped"]}
        for index, item in enumerate(data):
            self.answered.add(("caliper", unmapped.get(index) or item["id"]))

    def post(self, path: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        request = self.client.post(path, content=body, headers=headers or HEADERS)
        response = self.loop.run_until_complete(asyncio.wait_for(request, TIMEOUT_S))
        assert response.status_code < 500, (response.status_code, response.text[:500])
        if response.status_code >= 400:
            message = response.json().get("message") or response.json().get("error")
            assert isinstance(message, str) and 0 < len(message) < 1000, response.text[:500]
        return response

    def still_stores(self) -> None:
        """A valid statement sent now is stored: the fuzzed request left the server whole."""
        body, _ = mixed_statement(1, timestamp="2026-01-05T11:00:00Z")
        body["id"] = str(uuid.uuid4())
        response = self.post("/xAPI/statements", json.dumps(body).encode())
        assert response.status_code == 200 and response.json() == [body["id"]]
        self.answered.add(("xapi", body["id"]))


@pytest.fixture
def harness(tmp_path: Path, server_factory) -> Iterator[Harness]:
    loop = asyncio.new_event_loop()
    server_cm = server_factory(tmp_path / "fuzz.db")
    running = loop.run_until_complete(server_cm.__aenter__())
    client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.port}", timeout=TIMEOUT_S)
    try:
        harness = Harness(loop, client, running.db_path)
        yield harness
        with sqlite3.connect(harness.db_path) as conn:
            kept = set(conn.execute("SELECT source, id FROM received"))
        # Every record answered with 200 is kept (mapped or not), and nothing else.
        assert kept == harness.answered
    finally:
        loop.run_until_complete(client.aclose())
        loop.run_until_complete(server_cm.__aexit__(None, None, None))
        loop.close()


def test_fuzzed_statements_get_ids_or_a_named_refusal(harness: Harness) -> None:
    @FUZZ_SETTINGS
    @given(batch=st.one_of(statements(), st.lists(statements(), max_size=6)))
    def check(batch: Any) -> None:
        response = harness.post("/xAPI/statements", encode(batch).encode())
        if response.status_code == 200:
            ids = response.json()
            assert len(ids) == (len(batch) if isinstance(batch, list) else 1)
            harness.answered.update(("xapi", ident) for ident in ids)
        else:
            assert response.status_code in (400, 409), response.text[:500]
        harness.still_stores()

    check()


def test_fuzzed_caliper_envelopes_get_counts_or_a_named_refusal(harness: Harness) -> None:
    envelopes = st.one_of(
        VALUES,
        st.fixed_dictionaries(
            {
                "sensor": st.one_of(st.just("https://lms.example.com/sensor"), VALUES),
                "sendTime": st.one_of(st.just("2026-01-05T10:00:00.000Z"), VALUES),
                "dataVersion": st.one_of(
                    st.just("http://purl.imsglobal.org/ctx/caliper/v1p2"), VALUES
                ),
                "data": st.one_of(st.lists(caliper_events(), max_size=5), VALUES),
            }
        ),
    )

    @FUZZ_SETTINGS
    @given(envelope=envelopes)
    def check(envelope: Any) -> None:
        response = harness.post("/caliper", encode(envelope).encode())
        if response.status_code == 200:
            harness.caliper_answered(envelope["data"], response.json())
        else:
            assert response.status_code == 400, response.text[:500]
        harness.still_stores()

    check()


#: The push paths, one as a careless configuration writes it, and paths that take no body.
FUZZED_PATHS = [
    "/xAPI/statements",
    "/caliper",
    "/xAPI/about",
    "/xAPI/other",
    "/xapi//statements/",
    "/healthz",
    "/nothing",
    "/ws/ingest",
]


def test_fuzzed_headers_and_bodies_never_break_the_connection(harness: Harness) -> None:
    # Printable ASCII without edge spaces: what an HTTP client library lets through.
    header_values = st.text(
        alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40
    ).map(str.strip)

    @FUZZ_SETTINGS
    @given(
        version=st.one_of(st.just("1.0.3"), header_values),
        content_type=st.one_of(st.just("application/json"), header_values),
        authorization=st.one_of(st.none(), header_values.map(lambda v: f"Basic {v}".strip())),
        body=st.one_of(
            st.binary(max_size=64),
            st.text(max_size=64).map(str.encode),
            st.binary(max_size=64).map(gzip.compress),
        ),
        path=st.sampled_from(FUZZED_PATHS),
        coding=st.one_of(
            st.none(),
            st.sampled_from(["gzip", "deflate", "gzip, gzip", "identity", "br"]),
            header_values,
        ),
    )
    def check(
        version: str,
        content_type: str,
        authorization: str | None,
        body: bytes,
        path: str,
        coding: str | None,
    ) -> None:
        headers = {"X-Experience-API-Version": version, "Content-Type": content_type}
        if authorization is not None:
            headers["Authorization"] = authorization
        if coding is not None:
            headers["Content-Encoding"] = coding
        response = harness.post(path, body, headers)
        if response.status_code == 200:
            answer = response.json()
            assert isinstance(answer, list) and path.strip("/").lower() in (
                "xapi/statements",
                "xapi//statements",
            ), answer
            harness.answered.update(("xapi", ident) for ident in answer)
        harness.still_stores()

    check()
