"""With ``[lrs]`` configured, ``jacmon serve`` tails the LRS itself into the streams."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from lrs_fixtures import PASSWORD, USER, RalphLrs, mixed_statement, running_ralph
from support import collect_events, recv_until
from websockets.asyncio.client import connect


@pytest.fixture
def ralph(tmp_path: Path) -> Iterator[RalphLrs]:
    yield from running_ralph(tmp_path / "ralph")


async def test_server_tails_the_configured_lrs_into_the_activity_stream(
    ralph: RalphLrs, tmp_path: Path, server_factory
):
    statements = [mixed_statement(i)[0] for i in range(40)]
    ralph.post(statements)
    async with server_factory(tmp_path / "j.db") as server:
        server.settings.lrs.update(
            {
                "url": ralph.url,
                "user": USER,
                "password": PASSWORD,
                "poll_interval_s": 0.2,
                "retry_max_s": 1.0,
            }
        )
        await server.restart()  # pick up the [lrs] settings
        async with connect(server.url + "/ws/activity") as ws:
            first = await recv_until(ws, lambda m: m["type"] == "snapshot")
            seen = list(first["data"]["events"])
            if len(seen) < 40:
                seen += await collect_events(ws, 40 - len(seen))
            assert {e["id"] for e in seen} == {s["id"] for s in statements}
            # A statement posted while it runs arrives live.
            late = mixed_statement(1000)[0]
            ralph.post([late])
            frame = await recv_until(
                ws,
                lambda m: (
                    m["type"] == "events" and late["id"] in {e["id"] for e in m["data"]["events"]}
                ),
            )
            assert frame["data"]["events"][-1]["id"] == late["id"]
