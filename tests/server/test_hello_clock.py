"""hello carries the server's clock and its rate, so a browser can show ages and set ack
expiries on it (the demo's clock is simulated and runs faster than the wall's)."""

from __future__ import annotations

import time

from support import recv_json
from websockets.asyncio.client import connect

SIMULATED_START = 1_900_000_000.0


async def test_hello_gives_the_servers_clock_and_rate(tmp_path, server_factory):
    started = time.time()

    def simulated() -> float:
        return SIMULATED_START + (time.time() - started) * 1800

    async with server_factory(
        tmp_path / "jacmon.db", clock=simulated, clock_rate=1800.0
    ) as running:
        async with connect(running.url + "/ws/alerts") as ws:
            hello = await recv_json(ws)
    clock = hello["data"]["clock"]
    assert clock["rate"] == 1800.0
    assert SIMULATED_START <= clock["now"] < SIMULATED_START + 1800 * 30


async def test_a_real_server_says_rate_1_and_the_wall_clock(running_server):
    async with connect(running_server.url + "/ws/metrics") as ws:
        hello = await recv_json(ws)
    clock = hello["data"]["clock"]
    assert clock["rate"] == 1.0
    assert abs(clock["now"] - time.time()) < 5
