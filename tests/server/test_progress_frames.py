"""Dashboard frames: snapshot and progress rows have one type per field; totals stay current."""

from __future__ import annotations

from support import dashboard_snapshot, event, recv_until
from websockets.asyncio.client import connect

from jacmon.client.ingest import IngestClient

#: Events that give every kind of dashboard row whole-number values (0, 50, 100 ...):
#: the case where an int in one frame and a float in another slipped through.
BATCH = [
    event(1, type="path.enrolled", module=None, progress=None),
    event(2, module="m1", progress=50, duration_s=60),
    event(3, type="module.completed", module="m2", progress=None, duration_s=120),
    event(4, learner="u2", module="m1", progress=100),
]

#: kind -> the fields that identify a row of it.
KEYS = {
    "paths": ("path",),
    "modules": ("path", "module"),
    "learners": ("learner",),
    "learner_paths": ("learner", "path"),
}


def by_key(data: dict) -> dict[tuple, dict]:
    return {
        (kind, tuple(row[k] for k in keys)): row
        for kind, keys in KEYS.items()
        for row in data.get(kind, [])
    }


def field_types(row: dict) -> dict[str, str]:
    return {name: type(value).__name__ for name, value in row.items() if value is not None}


async def collect_progress_rows(ws, wanted: set[tuple]) -> dict[tuple, dict]:
    """Merge progress frames until every key in ``wanted`` has arrived."""
    rows: dict[tuple, dict] = {}

    def merge(message: dict) -> bool:
        if message["type"] == "progress":
            rows.update(by_key(message["data"]))
        return wanted <= rows.keys()

    await recv_until(ws, merge)
    return rows


async def snapshot_rows(url: str, through_seq: int) -> dict[tuple, dict]:
    """The rows of a snapshot whose progress includes the events up to ``through_seq``."""
    return by_key(await dashboard_snapshot(url, through_seq=through_seq))


async def test_snapshot_and_progress_rows_have_the_same_types(running_server):
    url = running_server.url + "/ws/dashboard"
    async with connect(url) as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        async with IngestClient(running_server.url) as client:
            ack = await client.send_batch(BATCH)
        snapshot = await snapshot_rows(url, ack.last_seq)
        assert {kind for kind, _ in snapshot} == set(KEYS)
        deltas = await collect_progress_rows(ws, set(snapshot))
    for key, row in snapshot.items():
        assert field_types(deltas[key]) == field_types(row), key
        assert deltas[key] == row, key


async def test_a_learners_snapshot_and_progress_rows_have_the_same_types(running_server):
    url = running_server.url + "/ws/dashboard?learner=u1"
    async with connect(url) as ws:
        await recv_until(ws, lambda m: m["type"] == "snapshot")
        async with IngestClient(running_server.url) as client:
            ack = await client.send_batch(BATCH)
        snapshot = await snapshot_rows(url, ack.last_seq)
        # A learner's progress frames carry no path summaries (their snapshot's are derived).
        wanted = {key for key in snapshot if key[0] != "paths"}
        assert {kind for kind, _ in wanted} == {"modules", "learners", "learner_paths"}
        deltas = await collect_progress_rows(ws, wanted)
    for key in wanted:
        assert field_types(deltas[key]) == field_types(snapshot[key]), key
        assert deltas[key] == snapshot[key], key
    for key, row in snapshot.items():
        if key[0] == "paths":
            assert isinstance(row["mean_percent"], float) and isinstance(row["enrolled"], int)


async def test_progress_frames_keep_total_learners_current(running_server):
    async with connect(running_server.url + "/ws/dashboard") as ws:
        snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
        assert snapshot["data"]["total_learners"] == 0
        async with IngestClient(running_server.url) as client:
            await client.send_batch([event(1, learner="a"), event(2, learner="b")])
            first = await recv_until(
                ws, lambda m: m["type"] == "progress" and len(m["data"]["learners"]) == 2
            )
            assert first["data"]["total_learners"] == 2
            await client.send_batch([event(3, learner="c")])
            second = await recv_until(
                ws,
                lambda m: (
                    m["type"] == "progress"
                    and any(r["learner"] == "c" for r in m["data"]["learners"])
                ),
            )
    assert second["data"]["total_learners"] == 3
