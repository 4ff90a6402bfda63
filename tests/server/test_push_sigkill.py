"""A statement batch cut by SIGKILL: the sender's retry after the restart stores nothing twice.

Each round starts ``jacmon serve`` on one SQLite file, sends one large batch (some
statements without an id, as LMSs send them) over a raw socket, and kills the
server with SIGKILL at a random point: while the body is still arriving, while it
is mapped, or around the commit. The sender never saw (or ignores) the answer and
does what an xAPI client does: sends the same request again, twice, to the
restarted server. Afterwards every statement is stored as exactly one event and
one kept record, and the retries answered the same ids.
"""

from __future__ import annotations

import asyncio
import json
import random
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from lrs_fixtures import mixed_statement
from support import read_events, read_received
from test_server_process import start_process

#: Rounds of send-kill-retry, and statements per batch (bounded: a few seconds each).
ROUNDS = 6
BATCH = 2000
CHUNK = 64 * 1024
START = datetime(2026, 1, 5, tzinfo=UTC)


def batch(round_number: int) -> list[dict]:
    """BATCH statements; every fifth has no id (the endpoint makes one from the content)."""
    statements = []
    for i in range(round_number * BATCH, (round_number + 1) * BATCH):
        # A timestamp of its own: id-less statements alike in every part are one statement.
        timestamp = (START + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        body, _ = mixed_statement(i, timestamp=timestamp)
        if i % 5 == 0:
            del body["id"]
        statements.append(body)
    return statements


async def send_and_kill(
    port: int,
    body: bytes,
    process: asyncio.subprocess.Process,
    rng: random.Random,
    *,
    whole_body: bool,
) -> str:
    """Send the POST in chunks and SIGKILL the server at a random point (after the whole
    body when ``whole_body``: while it is mapped or stored); the status line seen, or 'cut'."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /xAPI/statements HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\nX-Experience-API-Version: 1.0.3\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n"
    )
    chunks = [body[i : i + CHUNK] for i in range(0, len(body), CHUNK)]
    cut_after = len(chunks) if whole_body else rng.randrange(1, len(chunks))
    for chunk in chunks[:cut_after]:
        writer.write(chunk)
        await writer.drain()
    if whole_body:
        await asyncio.sleep(rng.uniform(0.0, 0.3))
    process.send_signal(signal.SIGKILL)
    await process.wait()
    try:
        status_line = await asyncio.wait_for(reader.readline(), 5)
    except (OSError, TimeoutError):
        status_line = b""
    writer.close()
    return status_line.decode().strip() or "cut"


@pytest.mark.timeout(300)
async def test_a_batch_cut_by_sigkill_is_stored_once_when_the_sender_retries(tmp_path: Path):
    db = tmp_path / "j.db"
    rng = random.Random(16)
    sent = 0
    outcomes = []
    for round_number in range(ROUNDS):
        statements = batch(round_number)
        sent += len(statements)
        body = json.dumps(statements).encode()
        process, port = await start_process(db)
        outcomes.append(
            await send_and_kill(port, body, process, rng, whole_body=round_number % 2 == 1)
        )

        process, port = await start_process(db)
        try:
            async with httpx.AsyncClient(timeout=60) as client:
                answers = [
                    await client.post(
                        f"http://127.0.0.1:{port}/xAPI/statements",
                        content=body,
                        headers={
                            "Content-Type": "application/json",
                            "X-Experience-API-Version": "1.0.3",
                        },
                    )
                    for _ in range(2)
                ]
        finally:
            process.terminate()
            await process.wait()
        assert [a.status_code for a in answers] == [200, 200], answers[0].text
        first, second = (a.json() for a in answers)
        assert first == second and len(set(first)) == len(statements)
        assert all(
            ident == s["id"] for ident, s in zip(first, statements, strict=True) if "id" in s
        )

    events = read_events(db)
    ids = [e["id"] for e in events]
    assert len(ids) == len(set(ids)) == sent, outcomes
    assert len(read_received(db)) == sent
    # Half the kills landed before the body was whole: no answer to those.
    assert outcomes[::2] == ["cut"] * (ROUNDS // 2), outcomes
