"""Ingest when the storage fails: disk full, read-only, the database directory removed.

Real conditions, no mocks: SQLite's own SQLITE_FULL from ``PRAGMA max_page_count``
on the server's writer connection, SQLITE_READONLY from ``PRAGMA query_only``,
and ``shutil.rmtree`` of the directory while the server runs.
"""

from __future__ import annotations

import json
import logging
import shutil
import sqlite3

from support import event, recv_json
from websockets.asyncio.client import connect

from jacmon.client.ingest import IngestClient


async def send(ws, batch: list[dict]) -> dict:
    await ws.send(json.dumps(batch))
    return await recv_json(ws)


def big_events(first: int, count: int) -> list[dict]:
    """Events with a 2 KB extra each: a batch that needs new database pages."""
    return [event(i, note="x" * 2000) for i in range(first, first + count)]


async def writer_pragma(running, pragma: str) -> None:
    await running.server.store.db.writer.execute(pragma)


async def test_disk_full_gets_an_error_naming_it_then_recovers(running_server, caplog):
    store = running_server.server.store
    async with connect(running_server.url + "/ws/ingest") as ws:
        assert (await send(ws, big_events(0, 5)))["data"]["accepted"] == 5
        async with store.db.writer.execute("PRAGMA page_count") as cursor:
            (pages,) = await cursor.fetchone()
        await writer_pragma(running_server, f"PRAGMA max_page_count = {pages}")
        with caplog.at_level(logging.ERROR, logger="jacmon.store"):
            for _ in range(3):
                reply = await send(ws, big_events(100, 50))
                assert reply["type"] == "error", reply
                assert reply["data"]["code"] == "storage_unavailable"
                assert "full" in reply["data"]["message"]
        assert "full" in (store.write_problem or "")
        # Logged once for the change of state, not once per batch.
        assert caplog.text.count("writes failing") == 1
        # The space comes back: the same connection stores the batch, the problem clears.
        await writer_pragma(running_server, "PRAGMA max_page_count = 1073741823")
        reply = await send(ws, big_events(100, 50))
        assert reply["type"] == "ack" and reply["data"]["accepted"] == 50
        assert reply["data"]["last_seq"] == 55
        assert store.write_problem is None
    with sqlite3.connect(running_server.db_path) as conn:
        assert conn.execute("SELECT count(*), max(seq) FROM events").fetchone() == (55, 55)


async def test_read_only_database_gets_an_error_naming_it(running_server):
    async with IngestClient(running_server.url) as client:
        assert (await client.send_batch([event(1)])).accepted == 1
    await writer_pragma(running_server, "PRAGMA query_only = ON")
    async with connect(running_server.url + "/ws/ingest") as ws:
        reply = await send(ws, [event(2)])
        assert reply["data"]["code"] == "storage_unavailable"
        assert "read-only" in reply["data"]["message"]
        await writer_pragma(running_server, "PRAGMA query_only = OFF")
        assert (await send(ws, [event(2)]))["data"]["last_seq"] == 2


async def test_removed_database_directory_stops_acknowledging(server_factory, tmp_path, caplog):
    directory = tmp_path / "data"
    async with server_factory(directory / "jacmon.db") as running:
        async with connect(running.url + "/ws/ingest") as ws:
            assert (await send(ws, [event(1)]))["data"]["accepted"] == 1
            shutil.rmtree(directory)
            with caplog.at_level(logging.ERROR, logger="jacmon.store"):
                for n in (2, 3):
                    reply = await send(ws, [event(n)])
                    assert reply["type"] == "error", reply
                    assert reply["data"]["code"] == "storage_unavailable"
                    assert "removed or replaced" in reply["data"]["message"]
            assert "removed or replaced" in (running.server.store.write_problem or "")
            assert caplog.text.count("writes failing") == 1
            # The directory coming back empty does not make the lost file writable again.
            directory.mkdir()
            reply = await send(ws, [event(4)])
            assert reply["data"]["code"] == "storage_unavailable"
            # The connection stays open for pings.
            await ws.send(json.dumps({"type": "ping", "id": 1}))
            assert (await recv_json(ws))["type"] == "pong"
