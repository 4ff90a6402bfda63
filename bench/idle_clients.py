"""One load-generator process of idle stream clients: open N, hold them, report.

    python bench/idle_clients.py --url ws://127.0.0.1:P/ws/metrics --count 4750 [--source 127.0.0.2]

Used by bench_idle.py. Prints ``{"open": N, "failed": F, "errors": [...]}`` once
every connection got its first frame (or failed); holds them until a line
arrives on stdin (or ``--max-hold-s``), then prints how many are still open
and closes them all. Clients send no pings (the server's keepalive pings are
answered automatically), so what the server spends is its own idle cost.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import contextlib

from common import raise_fd_limit
from websockets.asyncio.client import ClientConnection, connect


async def open_one(url: str, source: str | None) -> ClientConnection:
    ws = await connect(
        url,
        compression=None,
        open_timeout=120,
        ping_interval=None,
        close_timeout=2,
        local_addr=(source, 0) if source else None,
    )
    await asyncio.wait_for(ws.recv(decode=False), 60)  # hello: the server has it registered
    return ws


async def main(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    sources = args.source or [None]
    opened: list[ClientConnection] = []
    errors: Counter[str] = Counter()
    for start in range(0, args.count, args.concurrency):
        n = min(args.concurrency, args.count - start)
        results = await asyncio.gather(
            *(open_one(args.url, sources[(start + i) % len(sources)]) for i in range(n)),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                errors[f"{type(result).__name__}: {result}"[:120]] += 1
            else:
                opened.append(result)
    print(json.dumps({"open": len(opened), "failed": sum(errors.values()),
                      "errors": errors.most_common(3)}), flush=True)  # fmt: skip
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(loop.run_in_executor(None, sys.stdin.readline), args.max_hold_s)
    still = sum(ws.state.name == "OPEN" for ws in opened)
    print(json.dumps({"still_open": still}), flush=True)
    for start in range(0, len(opened), 500):
        await asyncio.gather(*(ws.close() for ws in opened[start : start + 500]))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--source", action="append", help="local address(es) to connect from")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight")
    parser.add_argument("--max-hold-s", type=float, default=600.0)
    arguments = parser.parse_args()
    raise_fd_limit()
    asyncio.run(main(arguments))
