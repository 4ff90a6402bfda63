"""Learner-scoped metrics: right from the first frame, the documented shape, no state kept."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from support import TIMEOUT_S, event, recv_until
from websockets.asyncio.client import connect

from jacmon.client.ingest import IngestClient


async def test_a_learners_first_snapshot_counts_their_stored_events(running_server):
    stamp = datetime.fromtimestamp(running_server.server.now() - 30, UTC).isoformat()
    async with IngestClient(running_server.url) as client:
        await client.send_batch(
            [
                event(
                    1,
                    learner="ana",
                    ts=stamp,
                    type="assessment.attempted",
                    item="q1",
                    score={"scaled": 0.8},
                    module=None,
                    progress=None,
                ),
                event(
                    2, learner="ana", ts=stamp, type="module.completed", module="m1", progress=None
                ),
                event(
                    3,
                    learner="ben",
                    ts=stamp,
                    score={"scaled": 0.1},
                    type="assessment.attempted",
                    item="q1",
                    module=None,
                    progress=None,
                ),
            ]
        )
    async with connect(running_server.url + "/ws/metrics") as ws:
        platform = await recv_until(ws, lambda m: m["type"] == "sample")
    async with connect(running_server.url + "/ws/metrics?learner=ana") as ws:
        snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
        first = snapshot["data"]["samples"][-1]
        sample = (await recv_until(ws, lambda m: m["type"] == "sample"))["data"]
    for mine in (first, sample):
        assert mine["avg_score"] == 80.0
        assert mine["completions_per_hour"] == 1
        assert mine["events_per_min"] == 2
        assert mine["active_learners_5m"] == 1
        assert mine["learner"] == "ana"
        assert set(mine) == set(platform["data"])
        assert mine["ingest_rate"] is None and mine["velocity"] is None
    assert platform["data"]["learner"] is None


async def test_watched_learners_are_forgotten_when_their_clients_leave(running_server):
    sampler = running_server.server.sampler
    for batch in range(4):
        learners = [f"learner-{batch}-{n}" for n in range(25)]
        clients = [
            await connect(f"{running_server.url}/ws/metrics?learner={name}") for name in learners
        ]
        for ws in clients:
            await recv_until(ws, lambda m: m["type"] == "snapshot")
        assert set(learners) <= set(sampler.watched)
        await asyncio.gather(*(ws.close() for ws in clients))
    # Two clients of one learner: it stays watched until the second leaves.
    async with connect(f"{running_server.url}/ws/metrics?learner=twice") as one:
        await recv_until(one, lambda m: m["type"] == "snapshot")
        async with connect(f"{running_server.url}/ws/metrics?learner=twice") as two:
            await recv_until(two, lambda m: m["type"] == "snapshot")
        await until(lambda: sampler.watched["twice"].clients == 1)
        assert "twice" in sampler.watched
    await until(lambda: not sampler.watched)


async def until(condition) -> None:
    async def loop():
        while not condition():  # noqa: ASYNC110 (server state, no event to await)
            await asyncio.sleep(0.02)

    await asyncio.wait_for(loop(), TIMEOUT_S)
