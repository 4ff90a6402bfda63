"""Stream sessions against hostile or careless clients: acks, scope, seq, resume, exactly once.

Each test here failed on the code before issue 10: a client message could stop
the alerts stream for everyone, a scoped token could act outside its scope, and
a client that resumed from the seq of a frame it had been sent could lose or
repeat data.
"""

from __future__ import annotations

import json
import sqlite3
from urllib.parse import quote

import pytest
from support import event, recv_json, recv_until
from test_tasks_fixtures import ago, open_store, run_task, score
from websockets.asyncio.client import connect

from jacmon.client.ingest import IngestClient
from jacmon.server.auth import create_token
from jacmon.store import Store
from jacmon.store.sqlite.alerts import acknowledge_alert, get_alert

#: Two learners whose latest scores are low: one consecutive_low_scores alert each.
LOW_SCORES = [
    score("a", ago(2), 40),
    score("a", ago(1), 45),
    score("b", ago(2), 30),
    score("b", ago(1), 35),
]


def is_type(kind: str):
    return lambda frame: frame.get("type") == kind


async def alerts_db(tmp_path):
    """A database with one firing consecutive_low_scores alert for learners a and b, and
    a viewer token scoped to a that may acknowledge; returns (path, {learner: id}, token)."""
    store = await open_store(tmp_path, LOW_SCORES)
    try:
        await run_task(store, "performance")
        async with store.db.reader.execute("SELECT learner, id FROM alerts") as cursor:
            ids = {learner: alert_id for learner, alert_id in await cursor.fetchall()}
        token, _ = await create_token(store, role="viewer", learner="a", can_ack=True)
    finally:
        await store.close()
    return tmp_path / "jacmon.db", ids, token


async def snapshot_of(ws) -> dict:
    return await recv_until(ws, is_type("snapshot"))


@pytest.mark.parametrize(
    ("raw", "named"),
    [
        ('{"type": "ack", "alert_id": %d, "expires_at": 1e999}', "'expires_at' is inf"),
        ('{"type": "ack", "alert_id": %d, "expires_at": Infinity}', "Infinity is not JSON"),
        ('{"type": "ack", "alert_id": %d, "expires_at": NaN}', "NaN is not JSON"),
        ('{"type": "ack", "alert_id": %d, "expires_at": "tomorrow"}', "'tomorrow'"),
        ('{"type": "ack", "alert_id": %d, "expires_at": 1}', "'expires_at' is 1;"),
        ('{"type": "ack", "alert_id": %d, "note": ["not", "text"]}', "'note' is ['not'"),
    ],
)
async def test_a_bad_ack_value_is_refused_and_the_alerts_stream_keeps_serving(
    tmp_path, server_factory, raw, named
):
    db, ids, _ = await alerts_db(tmp_path)
    async with server_factory(db) as running:
        async with connect(running.url + "/ws/alerts") as ws:
            await snapshot_of(ws)
            await ws.send(raw % ids["a"])
            error = await recv_until(ws, is_type("error"))
            assert error["data"]["code"] == "bad_message"
            assert named in error["data"]["message"]
            # The stream still works: a good ack reaches this client ...
            await ws.send(json.dumps({"type": "ack", "alert_id": ids["a"], "note": "ok"}))
            acked = await recv_until(ws, is_type("alert"))
            assert acked["data"]["alert"]["acknowledged"]["note"] == "ok"
        # ... and a new client gets its hello and snapshot.
        async with connect(running.url + "/ws/alerts") as ws:
            assert (await recv_json(ws))["type"] == "hello"
            assert len((await snapshot_of(ws))["data"]["alerts"]) == 2
        assert (await get_alert(running.server.store.db.reader, ids["a"]))["acknowledged"][
            "expires_at"
        ] is None


async def test_rows_an_older_version_stored_with_infinity_do_not_stop_the_stream(
    tmp_path, server_factory
):
    db, ids, _ = await alerts_db(tmp_path)
    # What the old code stored for {"expires_at": 1e999}: inf in the row and in the log.
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alerts SET ack_by='x', ack_at=1, ack_expires_at=? ", (float("inf"),))
        body = conn.execute("SELECT body FROM alert_changes ORDER BY seq LIMIT 1").fetchone()[0]
        bad = json.loads(body) | {"acknowledged": {"by": "x", "at": 1, "expires_at": 1e999}}
        conn.execute(
            "INSERT INTO alert_changes (alert_id, change, ts, learner, body) VALUES (?,?,?,?,?)",
            (ids["a"], "acknowledged", 1.0, "a", json.dumps(bad)),
        )
    async with server_factory(db) as running:
        async with connect(running.url + "/ws/alerts?since=0") as ws:
            assert (await recv_json(ws))["type"] == "hello"
            changes = []
            while len(changes) < 3:
                changes.append(await recv_until(ws, is_type("alert")))
            assert changes[-1]["data"]["alert"]["acknowledged"]["expires_at"] is None
            # Live changes still arrive after the bad row.
            await ws.send(json.dumps({"type": "ack", "alert_id": ids["b"]}))
            live = await recv_until(ws, is_type("alert"))
            assert live["data"]["alert"]["id"] == ids["b"]
        async with connect(running.url + "/ws/alerts") as ws:
            snapshot = await snapshot_of(ws)
            assert {a["acknowledged"]["expires_at"] for a in snapshot["data"]["alerts"]} == {None}


async def test_a_scoped_token_cannot_ack_another_learners_alert_nor_learn_it_exists(
    tmp_path, server_factory
):
    db, ids, token = await alerts_db(tmp_path)
    async with server_factory(db) as running:
        async with connect(running.url + f"/ws/alerts?token={token}") as ws:
            await snapshot_of(ws)
            await ws.send(json.dumps({"type": "ack", "alert_id": ids["b"]}))
            other = (await recv_until(ws, is_type("error")))["data"]
            missing_id = max(ids.values()) + 1000
            await ws.send(json.dumps({"type": "ack", "alert_id": missing_id}))
            missing = (await recv_until(ws, is_type("error")))["data"]
            assert other["code"] == missing["code"] == "ack_failed"
            assert other["message"].replace(str(ids["b"]), "N") == missing["message"].replace(
                str(missing_id), "N"
            )
            await ws.send(json.dumps({"type": "ack", "alert_id": ids["a"], "note": "mine"}))
            mine = await recv_until(ws, is_type("alert"))
            assert mine["data"]["alert"]["learner"] == "a"
        stored = await get_alert(running.server.store.db.reader, ids["b"])
        assert stored["acknowledged"] is None


@pytest.mark.parametrize(
    "message",
    [
        {"type": "ack", "alert_id": 2**63},
        {"type": "ack", "alert_id": -1},
        {"type": "ack", "alert_id": True},
        {"type": "unack", "alert_id": 2**63},
        {"type": "unack", "alert_id": "one"},
        {"type": "unack", "alert_id": 1, "note": {"a": 1}},
        {"type": "ping", "id": {"a": [1]}},
        {"type": "resume", "since": 2**64},
    ],
)
async def test_out_of_range_values_get_an_error_frame(tmp_path, server_factory, message):
    db, _, _ = await alerts_db(tmp_path)
    async with server_factory(db) as running:
        async with connect(running.url + "/ws/alerts") as ws:
            await snapshot_of(ws)
            await ws.send(json.dumps(message))
            assert (await recv_until(ws, is_type("error")))["data"]["code"] == "bad_message"


@pytest.mark.parametrize("depth", [20, 990, 5000])
async def test_deeply_nested_messages_get_an_error_frame(running_server, depth):
    async with connect(running_server.url + "/ws/activity") as ws:
        await snapshot_of(ws)
        await ws.send('{"type": "ping", "id": ' + "[" * depth + "]" * depth + "}")
        error = await recv_until(ws, is_type("error"))
        assert "nests too deeply" in error["data"]["message"]
        await ws.send(json.dumps({"type": "ping", "id": 1}))
        assert (await recv_until(ws, is_type("pong")))["data"]["id"] == 1


@pytest.mark.parametrize("since", ["-1", "+3", "1_000", "\u0663", "", " 3", "3.0", "9" * 30])
async def test_since_accepts_ascii_digits_only(running_server, since):
    with pytest.raises(Exception) as refused:
        async with connect(running_server.url + "/ws/activity?since=" + quote(since, safe="")):
            pass
    assert getattr(getattr(refused.value, "response", None), "status_code", None) == 400
    async with connect(running_server.url + "/ws/activity") as ws:
        await snapshot_of(ws)
        await ws.send(json.dumps({"type": "resume", "since": since}))
        assert (await recv_until(ws, is_type("error")))["data"]["code"] == "bad_message"


async def test_a_scoped_token_cannot_unack_another_learners_alert_nor_learn_it_exists(
    tmp_path, server_factory
):
    db, ids, token = await alerts_db(tmp_path)
    store = await Store.open(db)
    try:
        for learner in ("a", "b"):
            await acknowledge_alert(store.db, ids[learner], by="teacher", note="seen")
    finally:
        await store.close()
    async with server_factory(db) as running:
        async with connect(running.url + f"/ws/alerts?token={token}") as ws:
            await snapshot_of(ws)
            await ws.send(json.dumps({"type": "unack", "alert_id": ids["b"]}))
            other = (await recv_until(ws, is_type("error")))["data"]
            missing_id = max(ids.values()) + 1000
            await ws.send(json.dumps({"type": "unack", "alert_id": missing_id}))
            missing = (await recv_until(ws, is_type("error")))["data"]
            assert other["code"] == missing["code"] == "unack_failed"
            assert other["message"].replace(str(ids["b"]), "N") == missing["message"].replace(
                str(missing_id), "N"
            )
            await ws.send(json.dumps({"type": "unack", "alert_id": ids["a"], "note": "mistake"}))
            mine = await recv_until(ws, is_type("alert"))
            assert mine["data"]["change"] == "unacknowledged"
            assert mine["data"]["alert"]["acknowledged"] is None
            history = mine["data"]["alert"]["acknowledgements"]
            assert [(e["action"], e["note"]) for e in history] == [
                ("acknowledged", "seen"),
                ("unacknowledged", "mistake"),
            ]
        stored = await get_alert(running.server.store.db.reader, ids["b"])
        assert stored["acknowledged"]["note"] == "seen"


async def test_a_viewer_without_can_ack_may_not_unack(tmp_path, server_factory):
    db, ids, _ = await alerts_db(tmp_path)
    store = await Store.open(db)
    try:
        await acknowledge_alert(store.db, ids["a"], by="teacher")
        viewer, _ = await create_token(store, role="viewer", name="wall screen")
    finally:
        await store.close()
    async with server_factory(db) as running:
        async with connect(running.url + f"/ws/alerts?token={viewer}") as ws:
            await snapshot_of(ws)
            await ws.send(json.dumps({"type": "unack", "alert_id": ids["a"]}))
            error = (await recv_until(ws, is_type("error")))["data"]
            assert error["code"] == "forbidden"
            assert "may not un-acknowledge" in error["message"]
        stored = await get_alert(running.server.store.db.reader, ids["a"])
        assert stored["acknowledged"]["by"] == "teacher"


async def test_reacknowledging_keeps_every_note(tmp_path, server_factory):
    db, ids, _ = await alerts_db(tmp_path)
    async with server_factory(db) as running:
        async with connect(running.url + "/ws/alerts") as ws:
            await snapshot_of(ws)
            for note in ("called them", "they replied"):
                await ws.send(json.dumps({"type": "ack", "alert_id": ids["a"], "note": note}))
                acked = await recv_until(ws, is_type("alert"))
        alert = acked["data"]["alert"]
        assert alert["acknowledged"]["note"] == "they replied"
        assert [a["note"] for a in alert["acknowledgements"]] == ["called them", "they replied"]


async def test_a_change_written_by_another_process_arrives_exactly_once(tmp_path, server_factory):
    db, ids, _ = await alerts_db(tmp_path)
    async with server_factory(db) as running:
        for trial in range(3):
            # Written the way 'jacmon alerts ack' does, from its own connection: the
            # feed sees it within its 1 s poll; a client connecting now reads it first.
            other = await Store.open(db)
            try:
                await acknowledge_alert(other.db, ids["a"], by="cli", note=f"trial {trial}")
            finally:
                await other.close()
            async with connect(running.url + "/ws/alerts") as ws:
                snapshot = await snapshot_of(ws)
                await ws.send(json.dumps({"type": "ack", "alert_id": ids["b"]}))
                # The own ack's change comes after any re-delivery of the CLI's change.
                frames = []
                while True:
                    frame = await recv_until(ws, lambda f: f["type"] in ("alert", "error"))
                    frames.append(frame)
                    if frame["data"].get("alert", {}).get("id") == ids["b"]:
                        break
                seqs = [f["seq"] for f in frames]
                assert all(s > snapshot["seq"] for s in seqs), (snapshot["seq"], seqs)
                assert seqs == sorted(set(seqs))


async def test_resume_and_refresh_are_answered_with_hello(running_server):
    async with IngestClient(running_server.url) as client:
        await client.send_batch([event(i) for i in range(5)])
    async with connect(running_server.url + "/ws/activity") as ws:
        await snapshot_of(ws)
        await ws.send(json.dumps({"type": "resume", "since": 2}))
        hello = await recv_until(ws, is_type("hello"))
        assert hello["data"]["resumed"] is True and hello["seq"] == 5
        await ws.send(json.dumps({"type": "refresh"}))
        hello = await recv_until(ws, is_type("hello"))
        assert hello["data"]["resumed"] is False
        assert hello["data"]["head_seq"] == 5
