"""Tokens at the handshake: roles, learner scope, refusal with a reason."""

from __future__ import annotations

import pytest
from support import dashboard_snapshot, event, make_token, recv_until
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jacmon.client.ingest import IngestClient
from jacmon.errors import JacmonError
from jacmon.server.auth import revoke_token
from jacmon.store import Store


async def refused(url: str, **kwargs) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as info:
        async with connect(url, **kwargs):
            pass
    return info.value


async def test_tokens_required_refuse_missing_and_bad_tokens(tmp_path, server_factory):
    db = tmp_path / "j.db"
    viewer = await make_token(db, role="viewer")
    async with server_factory(db, server_require_tokens=True) as server:
        missing = await refused(server.url + "/ws/activity")
        assert missing.response.status_code == 401
        assert b"token is required" in missing.response.body
        bad = await refused(server.url + "/ws/activity?token=jm_nope_secret")
        assert bad.response.status_code == 401 and b"not valid" in bad.response.body
        wrong_secret = viewer[: viewer.rindex("_") + 1] + "guess"
        assert (
            await refused(server.url + f"/ws/activity?token={wrong_secret}")
        ).response.status_code == 401
        # The right token works, as a header and as a query parameter.
        async with connect(
            server.url + "/ws/activity", additional_headers={"Authorization": f"Bearer {viewer}"}
        ) as ws:
            await recv_until(ws, lambda m: m["type"] == "snapshot")
        async with connect(server.url + f"/ws/alerts?token={viewer}") as ws:
            await recv_until(ws, lambda m: m["type"] == "snapshot")


async def test_roles_limit_what_a_token_reaches(tmp_path, server_factory):
    db = tmp_path / "j.db"
    viewer = await make_token(db, role="viewer")
    producer = await make_token(db, role="ingest")
    async with server_factory(db, server_require_tokens=True) as server:
        no_ingest = await refused(server.url + f"/ws/ingest?token={viewer}")
        assert no_ingest.response.status_code == 403 and b"ingest" in no_ingest.response.body
        no_view = await refused(server.url + f"/ws/activity?token={producer}")
        assert no_view.response.status_code == 403
        async with IngestClient(server.url, token=producer) as client:
            assert (await client.send_batch([event(1)])).accepted == 1
        with pytest.raises(JacmonError, match="401"):
            async with IngestClient(server.url):
                pass


async def test_revoked_token_is_refused(tmp_path, server_factory):
    db = tmp_path / "j.db"
    token = await make_token(db, role="viewer")
    await make_token(db, role="admin")  # tokens stay configured after the revocation
    store = await Store.open(db)
    await revoke_token(store, token.split("_")[1])
    await store.close()
    async with server_factory(db, server_require_tokens=True) as server:
        response = (await refused(server.url + f"/ws/activity?token={token}")).response
        assert response.status_code == 401 and b"revoked" in response.body


async def test_revoking_a_token_closes_its_open_connections_with_4001(
    tmp_path, server_factory, monkeypatch
):
    from jacmon.server import loops

    monkeypatch.setattr(loops, "STORE_WATCH_S", 0.1)
    db = tmp_path / "j.db"
    token = await make_token(db, role="viewer")
    async with server_factory(db) as server:
        async with connect(f"{server.url}/ws/activity?token={token}") as ws:
            await recv_until(ws, lambda m: m["type"] == "snapshot")
            await revoke_token(server.server.store, token.split("_")[1])
            with pytest.raises(ConnectionClosed) as info:
                await recv_until(ws, lambda m: False)
            assert info.value.rcvd is not None and info.value.rcvd.code == 4001


async def test_learner_scoped_token_sees_only_that_learner(tmp_path, server_factory):
    db = tmp_path / "j.db"
    ana = await make_token(db, role="viewer", learner="ana")
    async with server_factory(db) as server:
        async with IngestClient(server.url) as client:
            await client.send_batch(
                [event(i, learner="ana" if i % 2 else "ben", module=f"m{i % 3}") for i in range(30)]
            )
        # Asking for someone else is refused outright.
        other = await refused(server.url + f"/ws/activity?learner=ben&token={ana}")
        assert other.response.status_code == 403 and b"'ben'" in other.response.body
        async with connect(server.url + f"/ws/activity?token={ana}") as ws:
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
            assert {e["learner"] for e in snapshot["data"]["events"]} == {"ana"}
            async with IngestClient(server.url) as client:
                ack = await client.send_batch(
                    [event(100, learner="ben"), event(101, learner="ana")]
                )
            frame = await recv_until(ws, lambda m: m["type"] == "events")
            assert [e["id"] for e in frame["data"]["events"]] == ["e-101"]
        # A resume cannot reach other learners' events either (a replay from the store).
        async with connect(server.url + f"/ws/activity?token={ana}&since=0") as ws:
            frame = await recv_until(ws, lambda m: m["type"] == "events")
            assert {e["learner"] for e in frame["data"]["events"]} == {"ana"}
            assert len(frame["data"]["events"]) == 16
        # Progress follows ingest within the projector's lag.
        await dashboard_snapshot(
            server.url + f"/ws/dashboard?token={ana}", through_seq=ack.last_seq
        )
        async with connect(server.url + f"/ws/dashboard?token={ana}") as ws:
            snapshot = await recv_until(ws, lambda m: m["type"] == "snapshot")
            data = snapshot["data"]
            assert {r["learner"] for r in data["learners"]} == {"ana"}
            assert {r["learner"] for r in data["learner_paths"]} == {"ana"}
            assert all(m["learner"] == "ana" for m in data["modules"])
            async with IngestClient(server.url) as client:
                await client.send_batch([event(200, learner="ben"), event(201, learner="ana")])
            delta = await recv_until(ws, lambda m: m["type"] == "progress")
            # The row lists; progress frames also carry total_learners (the learner's own: 1).
            rows = [r for kind in delta["data"].values() if isinstance(kind, list) for r in kind]
            assert rows and all(r.get("learner") == "ana" for r in rows)
            assert delta["data"]["total_learners"] == 1


async def test_off_loopback_without_tokens_refuses_to_start(tmp_path, server_factory):
    with pytest.raises(JacmonError, match="without tokens"):
        async with server_factory(tmp_path / "j.db", server_host="0.0.0.0"):
            pass
