"""Dashboard frames carry the projection watermark, and nothing in them is from after it.

While random batches stream in, a dashboard client merges every frame; after each
one, every learner row it holds must be exactly the fold of that learner's events
up to the frame's ``progress_seq`` (here: its event count), the watermark never
goes back, and once ingest stops a frame reaches the last acknowledged seq within
the lag bound (2 s).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter

from support import event, recv_until
from websockets.asyncio.client import connect

from jacmon.client.ingest import IngestClient


async def test_frames_never_show_progress_from_after_their_watermark(running_server):
    rng = random.Random(7)
    learner_of: dict[int, str] = {}  # seq -> learner, from the acks' order
    frames: list[dict] = []
    url = running_server.url

    async def watch(ws) -> None:
        async for raw in ws:
            message = json.loads(raw)
            if message["type"] in ("snapshot", "progress"):
                frames.append(message["data"])

    async with connect(url + "/ws/dashboard") as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        watcher = asyncio.create_task(watch(ws))
        async with IngestClient(url) as client:
            n = 0
            for _ in range(60):
                size = rng.randrange(1, 200)
                batch = [event(n + i, learner=f"u{rng.randrange(30)}") for i in range(size)]
                ack = await client.send_batch(batch)
                assert ack.accepted == size
                for offset, body in enumerate(batch):
                    learner_of[ack.last_seq - size + 1 + offset] = body["learner"]
                n += size
                if rng.random() < 0.3:
                    await asyncio.sleep(rng.uniform(0, 0.1))
        last_seq = ack.last_seq
        stopped = time.monotonic()
        while not frames or frames[-1]["progress_seq"] < last_seq:
            assert time.monotonic() - stopped < 2.0 + 0.6, (
                f"progress_seq {frames[-1]['progress_seq'] if frames else None} has not reached "
                f"{last_seq} 2 s after ingest stopped"
            )
            await asyncio.sleep(0.02)
        watcher.cancel()

    held: dict[str, dict] = {}
    previous = 0
    for data in frames:
        watermark = data["progress_seq"]
        assert watermark >= previous, "progress_seq never goes back"
        previous = watermark
        for row in data["learners"]:
            held[row["learner"]] = row
        counts = Counter(learner_of[seq] for seq in range(1, watermark + 1))
        for learner, row in held.items():
            assert row["events"] == counts[learner], (learner, watermark)
    assert previous == last_seq
    assert {learner: row["events"] for learner, row in held.items()} == Counter(learner_of.values())
