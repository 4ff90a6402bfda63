"""An alert raised by a scheduled run reaches a connected alerts-stream client; an
acknowledgement from that client is persisted and published."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from support import TIMEOUT_S, recv_json, recv_until
from test_scheduler import wait_until
from test_tasks_fixtures import ingest, score
from websockets.asyncio.client import connect

from jacmon.monitoring.scheduler import ManualClock
from jacmon.store import Store
from jacmon.store.sqlite.alerts import get_alert

START = datetime(2026, 3, 2, 10, 0, 30, tzinfo=UTC)


def is_alert(change: str):
    return lambda frame: frame.get("type") == "alert" and frame["data"]["change"] == change


async def test_scheduled_alert_reaches_the_stream_and_an_ack_comes_back(tmp_path, server_factory):
    db = tmp_path / "jacmon.db"
    store = await Store.open(db)
    await ingest(
        store,
        [score("a", START - timedelta(days=2), 40), score("a", START - timedelta(days=1), 45)],
    )
    await store.close()

    clock = ManualClock(START)
    async with server_factory(db, run_scheduler=True, scheduler_clock=clock) as running:
        async with connect(running.url + "/ws/alerts") as ws:
            hello = await recv_json(ws)
            assert hello["type"] == "hello"
            snapshot = await recv_until(ws, lambda f: f.get("type") == "snapshot")
            assert snapshot["data"]["alerts"] == []

            # The scheduler sleeps until 10:15; move the clock there: performance runs.
            await wait_until(lambda: clock.sleepers(), "the scheduler to sleep")
            clock.set(START.replace(minute=15))
            fired = await recv_until(ws, is_alert("fired"), TIMEOUT_S * 3)
            alert = fired["data"]["alert"]
            assert (alert["rule"], alert["learner"], alert["state"]) == (
                "consecutive_low_scores",
                "a",
                "firing",
            )
            assert "the latest 2 scores are below 60" in alert["message"]

            await ws.send(
                json.dumps({"type": "ack", "alert_id": alert["id"], "note": "talking to them"})
            )
            acked = await recv_until(ws, is_alert("acknowledged"))
            assert acked["data"]["alert"]["id"] == alert["id"]
            assert acked["data"]["alert"]["acknowledged"]["note"] == "talking to them"
            assert acked["seq"] > fired["seq"]

            stored = await get_alert(running.server.store.db.reader, alert["id"])
            assert stored["acknowledged"]["note"] == "talking to them"
            assert stored["state"] == "firing"
