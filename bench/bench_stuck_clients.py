"""Memory pinned by dashboard clients that never read, and how long they stay connected.

Starts a server in this process on a temporary database (loopback, port 0),
opens ``--clients`` raw WebSocket connections to ``/ws/dashboard`` that never
read after the handshake, ingests events for ``--seconds`` (every batch touches
new learners, so every progress frame is new data), and every second prints the
stuck connections still open and the bytes the server holds for them: the
kernel send queues (``TIOCOUTQ``) plus the connections' write buffers, and the
process RSS. Bounded in clients (<= 1000) and time (<= 600 s).

    .venv/bin/python bench/bench_stuck_clients.py --clients 200 --seconds 60
"""

from __future__ import annotations

import argparse
import array
import asyncio
import base64
import contextlib
import fcntl
import os
import resource
import tempfile
import termios
import time
from pathlib import Path

from jacmon.client.ingest import IngestClient
from jacmon.config import Settings
from jacmon.protocol import Stream
from jacmon.server.app import JacmonServer


async def stuck_dashboard_client(port: int) -> asyncio.StreamWriter:
    """Open /ws/dashboard, read the 101 response, then never read again."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws/dashboard HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")
    return writer


def held_bytes(server: JacmonServer) -> tuple[int, int]:
    """(dashboard connections open, bytes unsent to them: kernel queues + write buffers)."""
    total = 0
    subs = list(server.hub.subscribers[Stream.DASHBOARD])
    for sub in subs:
        transport = sub.ws.transport
        if transport is None or transport.is_closing():
            continue
        total += transport.get_write_buffer_size()
        sock = transport.get_extra_info("socket")
        if sock is not None:
            queued = array.array("i", [0])
            with contextlib.suppress(OSError):
                fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, queued, True)
                total += queued[0]
    return len(subs), total


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def ingest(url: str, deadline: float) -> None:
    pad = "x" * 500
    n = 0
    async with IngestClient(url) as client:
        while time.monotonic() < deadline:
            batch = [
                {
                    "id": f"e-{n + i}",
                    "type": "module.progressed",
                    "ts": "2026-01-05T10:00:00Z",
                    "learner": f"learner-{n + i}",
                    "path": "python-101",
                    "module": "m1",
                    "progress": 50,
                    "pad": pad,
                }
                for i in range(100)
            ]
            n += 100
            await client.send_batch(batch)
            await asyncio.sleep(0.05)


async def main(clients: int, seconds: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings()
        settings.server.db = Path(tmp) / "bench.db"
        settings.server.port = 0
        async with JacmonServer(settings, run_scheduler=False) as server:
            url = f"ws://127.0.0.1:{server.port}"
            writers = [await stuck_dashboard_client(server.port) for _ in range(clients)]
            print(f"{clients} stuck clients; rss {rss_mb():.0f} MB")
            start = time.monotonic()
            feeding = asyncio.create_task(ingest(url, start + seconds))
            peak = 0
            while time.monotonic() < start + seconds + 5:
                await asyncio.sleep(1)
                open_count, held = held_bytes(server)
                peak = max(peak, held)
                print(
                    f"t={time.monotonic() - start:5.1f}s open={open_count:4d} "
                    f"held={held / 2**20:7.1f} MB rss={rss_mb():6.0f} MB"
                )
            await feeding
            print(f"peak held {peak / 2**20:.1f} MB")
            for writer in writers:
                writer.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    asyncio.run(main(min(args.clients, 1000), min(args.seconds, 600.0)))
