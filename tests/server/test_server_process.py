"""The server as a process: SIGKILL loses no acknowledged event; SIGTERM is graceful."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest
from support import event, recv_until, run_jacmon
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from jacmon.client.ingest import IngestClient
from jacmon.errors import JacmonError
from jacmon.server.auth import create_token
from jacmon.store import Store


async def start_process(db: Path, port: int = 0) -> tuple[asyncio.subprocess.Process, int]:
    """``jacmon serve`` in a child process; returns it and the port it listens on."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jacmon",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "JACMON_CONFIG": os.devnull},
    )
    assert process.stderr is not None
    while True:
        line = (await asyncio.wait_for(process.stderr.readline(), 30)).decode()
        assert line, "jacmon serve exited before listening"
        if "serving on" in line:
            return process, int(line.split("serving on ")[1].split()[0].rsplit(":", 1)[1])


@pytest.mark.timeout(180)
async def test_sigkill_during_ingest_loses_no_acknowledged_event(tmp_path):
    db = tmp_path / "j.db"
    process, port = await start_process(db)
    acknowledged: list[str] = []

    async def produce() -> None:
        async with IngestClient(f"ws://127.0.0.1:{port}") as client:
            for start in range(0, 200_000, 500):
                batch = [event(i, learner=f"u{i % 50}") for i in range(start, start + 500)]
                await client.send_batch(batch)
                acknowledged.extend(e["id"] for e in batch)

    producer = asyncio.create_task(produce())
    while len(acknowledged) < 5000:
        await asyncio.sleep(0.01)
        assert not producer.done(), producer.exception()
    process.send_signal(signal.SIGKILL)
    await process.wait()
    with pytest.raises(JacmonError):
        await producer
    with sqlite3.connect(db) as conn:
        stored = {row[0] for row in conn.execute("SELECT id FROM events")}
        seqs = [row[0] for row in conn.execute("SELECT seq FROM events ORDER BY seq")]
    assert set(acknowledged) <= stored
    assert seqs == list(range(1, len(seqs) + 1)), "sequence numbers stay gap-free"
    # And the server restarts on that database and continues the sequence.
    process, port = await start_process(db)
    try:
        async with IngestClient(f"ws://127.0.0.1:{port}") as client:
            ack = await client.send_batch([event(10**7)])
        assert ack.accepted == 1 and ack.last_seq == len(seqs) + 1
    finally:
        process.send_signal(signal.SIGTERM)
        await process.wait()


async def test_sigterm_closes_clients_with_1001_and_exits_0(tmp_path):
    process, port = await start_process(tmp_path / "j.db")
    async with connect(f"ws://127.0.0.1:{port}/ws/activity") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as info:
            await recv_until(ws, lambda m: False)
        assert info.value.rcvd is not None and info.value.rcvd.code == 1001
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def healthz(port: int) -> dict:
    """GET /healthz over plain HTTP (anonymous on loopback: admin)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    await writer.drain()
    raw = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return json.loads(raw.partition(b"\r\n\r\n")[2])


async def wait_for_health(port: int, predicate, deadline_s: float = 60) -> dict:
    """Poll /healthz until ``predicate(body)``; fail after ``deadline_s`` seconds."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline_s
    while True:
        body = await healthz(port)
        if predicate(body):
            return body
        assert loop.time() < end, f"/healthz never got there: {body}"
        await asyncio.sleep(0.2)


def break_tokens_table(db: Path, broken: bool) -> None:
    """What another process can do to the store: hide the tokens table (or bring it back),
    so the revocation watch fails on its next query."""
    names = ("tokens", "tokens_hidden") if broken else ("tokens_hidden", "tokens")
    with sqlite3.connect(db) as conn:
        conn.execute(f"ALTER TABLE {names[0]} RENAME TO {names[1]}")


@pytest.mark.timeout(120)
async def test_sigterm_exits_0_after_a_background_loop_died(tmp_path):
    db = tmp_path / "j.db"
    store = await Store.open(db)
    try:
        token, _ = await create_token(store, role="viewer")
    finally:
        await store.close()
    process, port = await start_process(db)
    try:
        async with connect(f"ws://127.0.0.1:{port}/ws/activity?token={token}") as ws:
            await recv_until(ws, lambda m: m["type"] == "snapshot")
            break_tokens_table(db, broken=True)
            health = await wait_for_health(
                port, lambda b: "revocation-watch" in b.get("loops_down", {})
            )
            assert health["status"] == "degraded"
            assert any("revocation-watch" in problem for problem in health["problems"])
            process.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed):
                await recv_until(ws, lambda m: False)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert "revocation-watch loop died" in log and "no such table: tokens" in log


async def test_a_loop_that_died_is_restarted_and_healthz_recovers(tmp_path, server_factory):
    db = tmp_path / "j.db"
    store = await Store.open(db)
    try:
        token, _ = await create_token(store, role="viewer")
    finally:
        await store.close()
    async with server_factory(db) as running:
        async with connect(f"{running.url}/ws/activity?token={token}") as ws:
            await recv_until(ws, lambda m: m["type"] == "snapshot")
            break_tokens_table(db, broken=True)
            await wait_for_health(running.port, lambda b: b["status"] == "degraded")
            break_tokens_table(db, broken=False)
            health = await wait_for_health(running.port, lambda b: b["status"] == "ok")
            assert "loops_down" not in health


jacmon_cli = run_jacmon


@pytest.mark.timeout(120)
async def test_a_second_server_on_one_database_is_refused_and_sigkill_leaves_no_lock(tmp_path):
    db = tmp_path / "j.db"
    process, _ = await start_process(db)
    try:
        second = await asyncio.to_thread(jacmon_cli, "serve", "--db", str(db), "--port", "0")
        assert second.returncode == 1 and "Traceback" not in second.stderr
        message = " ".join(second.stderr.split())
        assert f"database {db} is already served by another jacmon process (pid {process.pid})" in (
            message
        )
        checked = await asyncio.to_thread(jacmon_cli, "serve", "--check", "--db", str(db))
        assert checked.returncode == 1 and "already served" in checked.stderr
        # The one-shot commands share the store with the running server.
        for args in (
            ("token", "create", "--role", "viewer", "--db", str(db)),
            ("alerts", "--db", str(db)),
        ):
            beside = await asyncio.to_thread(jacmon_cli, *args)
            assert beside.returncode == 0, beside.stderr
    finally:
        process.kill()
        await process.wait()
    # The OS let go of the lock with the killed process: a new server starts at once.
    again, _ = await start_process(db)
    again.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(again.wait(), 30) == 0
