"""Ralph's xAPI statement forwarding, pointed at jacmon's statements endpoint.

Ralph (the LRS Open edX Aspects runs) forwards every statement it accepts to the
URLs in ``RALPH_XAPI_FORWARDINGS``, with HTTP Basic auth and no xAPI version
header: a POST of the whole batch, or a PUT (without ``statementId``) for one.
Pushed statements reach jacmon whatever their ``timestamp``: the statements
older than ones jacmon already holds are exactly what tailing an LRS can miss.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from lrs_fixtures import RalphLrs, check_event, mixed_statement, require_ralph
from support import collect_events, make_token, read_events, read_received, recv_until
from websockets.asyncio.client import connect


def _batch(first: int, count: int, day: int) -> tuple[list[dict], dict[str, dict]]:
    """``count`` mixed statements timestamped on 2026-01-``day``, and their events by id."""
    sent, expected = [], {}
    for i in range(first, first + count):
        body, want = mixed_statement(i, timestamp=f"2026-01-{day:02d}T{i % 24:02d}:00:00Z")
        sent.append(body)
        expected[body["id"]] = {**want, "ts": body["timestamp"]}
    return sent, expected


async def test_ralph_forwards_what_it_stores_older_timestamps_included(
    tmp_path: Path, server_factory
) -> None:
    require_ralph()
    db = tmp_path / "jacmon.db"
    ingest = await make_token(db, role="ingest")
    viewer = await make_token(db, role="viewer")
    _, token_id, secret = ingest.split("_", 2)
    async with server_factory(db, server_require_tokens=True) as server:
        forwarding = {
            "is_active": True,
            "url": f"http://127.0.0.1:{server.port}/xAPI/statements",
            "basic_username": token_id,
            "basic_password": secret,
            "max_retries": 1,
            "timeout": 30,
        }
        lrs = RalphLrs(
            tmp_path / "ralph", extra_env={"RALPH_XAPI_FORWARDINGS": json.dumps([forwarding])}
        )
        await asyncio.to_thread(lrs.start)
        try:
            async with connect(
                server.url + "/ws/activity",
                additional_headers={"Authorization": f"Bearer {viewer}"},
            ) as ws:
                await recv_until(ws, lambda m: m["type"] == "snapshot")
                recent, expected = _batch(0, 30, day=20)
                await asyncio.to_thread(lrs.post, recent, chunk=len(recent))
                live = await collect_events(ws, len(recent))
                # Later, Ralph takes statements from days before the ones jacmon holds.
                older, expected_older = _batch(100, 20, day=3)
                await asyncio.to_thread(lrs.post, older, chunk=len(older))
                live += await collect_events(ws, len(older))
                # One statement by PUT: Ralph forwards it by PUT, without statementId.
                single, want = mixed_statement(500, timestamp="2026-01-02T08:00:00Z")
                await asyncio.to_thread(
                    lrs._request, "PUT", f"/statements?statementId={single['id']}", single
                )
                live += await collect_events(ws, 1)
        finally:
            await asyncio.to_thread(lrs.stop)
    expected.update(expected_older)
    expected[single["id"]] = {**want, "ts": single["timestamp"]}
    assert sorted(e["id"] for e in live) == sorted(expected)
    stored = {e["id"]: e for e in read_events(db)}
    assert len(stored) == len(read_events(db)) == len(expected)
    problems = [p for ident, want in expected.items() for p in check_event(stored[ident], want)]
    assert problems == [], problems[:5]
    kept = read_received(db)
    assert {ident for source, ident in kept if source == "xapi"} == set(expected)
    assert {row["token"] for row in kept.values()} == {token_id}
    assert all(row["reason"] is None for row in kept.values())
