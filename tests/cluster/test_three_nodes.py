"""Three ``jacmon serve`` nodes on one PostgreSQL and one Redis: every node streams
everything, in order, with no gap and no repeat; a client resumes on another node; a
node killed mid-ingest loses nothing acknowledged; the lease moves when its leader dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from datetime import UTC, datetime

import asyncpg
import httpx
import pytest
from lrs_fixtures import mixed_statement
from nodes import ActivityReader, Node
from support import event, recv_until, until
from test_pg_store import fetch
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.client.ingest import IngestClient
from jacmon.errors import JacmonError
from jacmon.server.auth import create_token, revoke_token
from jacmon.store import Store

pytestmark = pytest.mark.timeout(300)

#: Events in each run (the issue's figure) and per batch.
EVENTS = 20_000
BATCH = 500


@contextlib.asynccontextmanager
async def three_nodes(tmp_path, dsn: str, bus: str):
    """Three nodes, started one after the other (the first migrates the database)."""
    nodes = [Node(f"n{i}", dsn, bus, tmp_path) for i in (1, 2, 3)]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.stop()


@pytest.fixture
async def cluster(tmp_path, pg_dsn, redis_server):
    """Three nodes on the session's PostgreSQL and Redis."""
    async with three_nodes(tmp_path, pg_dsn, redis_server.url) as nodes:
        yield nodes


def batches(first: int, count: int, *, prefix: str = "e") -> list[list[dict]]:
    out = []
    for start in range(first, first + count, BATCH):
        out.append(
            [
                event(n, learner=f"u{n % 40}") | {"id": f"{prefix}{n}"}
                for n in range(start, min(first + count, start + BATCH))
            ]
        )
    return out


async def send_all(node: Node, work: list[list[dict]]) -> int:
    """Send every batch to ``node``; the last acknowledged seq."""
    last = 0
    async with IngestClient(node.url) as client:
        for batch in work:
            ack = await client.send_batch(batch)
            assert not ack.rejected, ack.rejected
            last = max(last, ack.last_seq)
    return last


async def test_ingest_into_one_node_reaches_clients_on_the_others_in_order(cluster):
    n1, n2, n3 = cluster
    async with ActivityReader(n2) as on2, ActivityReader(n3) as on3:
        last = await send_all(n1, batches(1, EVENTS))
        assert last == EVENTS
        await on2.until(last)
        await on3.until(last)
    assert on2.seqs == list(range(1, EVENTS + 1))
    assert on3.seqs == list(range(1, EVENTS + 1))


async def test_ingest_spread_over_three_nodes_at_once_streams_one_order_everywhere(cluster):
    readers = [ActivityReader(node) for node in cluster]
    async with contextlib.AsyncExitStack() as stack:
        for reader in readers:
            await stack.enter_async_context(reader)
        share = EVENTS // 3
        lasts = await asyncio.gather(
            *(
                send_all(node, batches(1 + i * share, share, prefix=f"n{i}-"))
                for i, node in enumerate(cluster)
            )
        )
        total = 3 * share
        assert max(lasts) == total
        for reader in readers:
            await reader.until(total)
    for reader in readers:
        assert reader.seqs == list(range(1, total + 1)), reader.node.name


async def test_a_client_resumes_on_another_node_with_exactly_the_missed_events(cluster):
    n1, n2, n3 = cluster
    async with ActivityReader(n2) as first:
        await send_all(n1, batches(1, 2000))
        await first.until(2000)
    seen = first.seqs[-1]
    await send_all(n1, batches(2001, 3000))
    async with ActivityReader(n3, since=seen) as resumed:
        await resumed.until(5000)
    assert resumed.seqs == list(range(seen + 1, 5001))
    hello = next(f for f in resumed.frames if f["type"] == "hello")
    assert hello["data"]["resumed"] is True


async def test_sigkill_of_a_node_during_ingest_loses_nothing_acknowledged(cluster, pg_dsn):
    n1, n2, n3 = cluster
    work = batches(1, EVENTS)
    acknowledged: list[str] = []
    unacked: list[list[dict]] = []

    async def produce() -> None:
        async with IngestClient(n1.url) as client:
            for index, batch in enumerate(work):
                try:
                    await client.send_batch(batch)
                except Exception:
                    unacked.extend(work[index:])
                    return
                acknowledged.extend(e["id"] for e in batch)

    async with ActivityReader(n2) as on2, ActivityReader(n3) as on3:
        producer = asyncio.create_task(produce())
        await until(lambda: len(acknowledged) >= 5000, "5,000 acknowledged events")
        n1.kill()
        await producer
        # The producer goes on with another node, resending what was not acknowledged.
        last = await send_all(n2, unacked)
        await on2.until(last)
        await on3.until(last)
    conn = await asyncpg.connect(pg_dsn)
    try:
        stored = {row["id"] for row in await conn.fetch("SELECT id FROM events")}
        count = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    assert set(acknowledged) <= stored, "an acknowledged event is not in PostgreSQL"
    assert count == len(stored) == EVENTS, "an event was stored twice or is missing"
    assert on2.seqs == list(range(1, last + 1))
    assert on3.seqs == list(range(1, last + 1))


async def test_the_lease_moves_to_another_node_when_its_leader_dies(cluster):
    healths = [await node.health() for node in cluster]
    leaders = [node for node, health in zip(cluster, healths, strict=True) if health["leader"]]
    assert len(leaders) == 1, healths
    leader = leaders[0]
    leader.kill()
    others = [node for node in cluster if node is not leader]

    async def new_leader():
        found = [node for node in others if (await node.health())["leader"]]
        return found if len(found) == 1 else None

    found = await until(new_leader, "another node to take the lease", timeout=30)
    assert found[0] is not leader


async def test_a_redis_restart_during_ingest_leaves_no_gap_on_any_node(tmp_path, pg_dsn, own_redis):
    async with three_nodes(tmp_path, pg_dsn, own_redis.url) as (n1, n2, n3):
        work = batches(1, EVENTS)
        async with ActivityReader(n2) as on2, ActivityReader(n3) as on3:
            sent = asyncio.create_task(send_all(n1, work))
            await on2.until(4000)
            own_redis.restart()  # no persistence: the stream comes back empty
            last = await sent
            await on2.until(last)
            await on3.until(last)
        assert on2.seqs == list(range(1, EVENTS + 1))
        assert on3.seqs == list(range(1, EVENTS + 1))
        health = await until(lambda: _healthy(n2), "node 2 to report the bus up again", timeout=30)
        assert health["bus"] == {"ok": True, "kind": "redis"}


async def _healthy(node: Node):
    health = await node.health()
    return health if health["status"] == "ok" else None


async def test_with_postgresql_stopped_ingest_is_refused_then_resumes(
    tmp_path, own_postgres, redis_server
):
    dsn = own_postgres.create_database("cluster")
    async with three_nodes(tmp_path, dsn, redis_server.url) as (n1, n2, n3):
        async with ActivityReader(n3) as on3:
            last = await send_all(n1, batches(1, 1000))
            await on3.until(last)
            own_postgres.stop()
            async with IngestClient(n2.url) as client:
                with pytest.raises(JacmonError, match=r"not acknowledged.*PostgreSQL"):
                    await client.send_batch(batches(1001, 100)[0])
            health = await n2.health()
            assert health["status"] == "degraded"
            assert any("database" in problem for problem in health["problems"])
            own_postgres.start()

            # The same nodes take batches again once the database is back.
            async def resumed():
                try:
                    return await send_all(n2, batches(1001, 1000))
                except JacmonError:
                    return None

            last = await until(resumed, "ingest to work again", timeout=60)
            await on3.until(last)
        assert on3.seqs == list(range(1, 2001)), "nothing acknowledged may be missing"


@pytest.mark.timeout(400)
async def test_the_next_fire_runs_on_the_new_leader_and_no_fire_time_runs_twice(
    tmp_path, pg_dsn, redis_server
):
    every_minute = {"tasks__performance__cron": "* * * * *"}
    nodes = [Node(f"n{i}", pg_dsn, redis_server.url, tmp_path, **every_minute) for i in (1, 2, 3)]
    conn = await asyncpg.connect(pg_dsn)
    try:
        for node in nodes:
            await node.start()

        async def scheduled_runs():
            return await conn.fetch(
                "SELECT scheduled, outcome, pid FROM task_runs"
                " WHERE task = 'performance' AND trigger = 'schedule' AND scheduled IS NOT NULL"
                " AND outcome NOT IN ('skipped', 'missed') ORDER BY scheduled"
            )

        first = await until(scheduled_runs, "the leader's first scheduled run", timeout=150)
        leaders = [node for node in nodes if (await node.health())["leader"]]
        assert len(leaders) == 1
        leader = leaders[0]
        assert {row["pid"] for row in first} == {leader.process.pid}
        leader.kill()
        after = first[-1]["scheduled"]

        async def next_fire():
            rows = [r for r in await scheduled_runs() if r["scheduled"] > after]
            return rows if rows and rows[0]["outcome"] != "running" else None

        later = await until(next_fire, "the next fire on another node", timeout=150)
        assert later[0]["pid"] != leader.process.pid
        runs = await scheduled_runs()
        fire_times = [row["scheduled"] for row in runs]
        assert len(fire_times) == len(set(fire_times)), f"a fire time ran twice: {runs}"
    finally:
        await conn.close()
        for node in nodes:
            await node.stop()


async def test_every_nodes_metrics_count_every_nodes_events(cluster):
    n1, n2, _ = cluster
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    work = [[e | {"ts": now} for e in batch] for batch in batches(1, 3000)]
    # Ingest spread over two nodes; the third ingests nothing.
    await asyncio.gather(send_all(n1, work[::2]), send_all(n2, work[1::2]))

    async def latest_sample(node: Node) -> dict | None:
        async with connect(f"{node.url}/ws/metrics") as ws:
            snapshot = json.loads(await ws.recv())
            while snapshot["type"] != "snapshot":
                snapshot = json.loads(await ws.recv())
        samples = snapshot["data"]["samples"]
        return samples[-1] if samples and samples[-1]["events_per_min"] >= 3000 else None

    counted = [
        await until(lambda node=node: latest_sample(node), f"{node.name} to count 3,000", 30)
        for node in cluster
    ]
    keys = (
        "events_per_min",
        "active_learners_5m",
        "active_learners_24h",
        "avg_score",
        "completions_per_hour",
    )
    assert [{k: c[k] for k in keys} for c in counted] == [{k: counted[0][k] for k in keys}] * 3


async def test_alert_changes_and_revocations_reach_every_node(cluster, pg_dsn):
    _, n2, n3 = cluster
    store = await Store.open(pg_dsn)
    try:
        viewer, record = await create_token(store, role="viewer", can_ack=True)
        async with connect(f"{n3.url}/ws/alerts?token={viewer}") as on3:
            await recv_until(on3, lambda m: m["type"] == "snapshot")
            # An alert fired by whichever process (a task on the leader, run-task): every
            # node's alert feed reads the shared change log.
            fired = PlannedChange(
                "fire",
                AlertCondition("inactivity", "warning", "ann", "python-101", "ann is idle"),
            )
            async with store.transaction() as tx:
                await tx.apply_alert_changes([fired], now=time.time())
            alert = await recv_until(on3, lambda m: m["type"] == "alert", timeout=10)
            assert alert["data"]["change"] == "fired"
            # An ack on node 2 reaches the client on node 3.
            async with connect(f"{n2.url}/ws/alerts?token={viewer}") as on2:
                await recv_until(on2, lambda m: m["type"] == "snapshot")
                await on2.send(
                    json.dumps({"type": "ack", "alert_id": alert["data"]["alert"]["id"]})
                )
                acked = await recv_until(on3, lambda m: m["type"] == "alert", timeout=10)
                assert acked["data"]["change"] == "acknowledged"
            # Revoked in the store: node 3 closes the token's connection (4001).
            await revoke_token(store, record["id"])
            with pytest.raises(ConnectionClosed) as closed:
                await recv_until(on3, lambda m: False, timeout=15)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
    finally:
        await store.close()


async def push_at_once(sends: list[tuple[Node, list[dict]]]) -> list[httpx.Response]:
    """POST each statement list to its node's xAPI endpoint, all at the same time."""
    async with httpx.AsyncClient(timeout=120) as client:
        return await asyncio.gather(
            *(
                client.post(
                    f"{node.http}/xAPI/statements",
                    json=body,
                    headers={"X-Experience-API-Version": "1.0.3"},
                )
                for node, body in sends
            )
        )


async def test_one_statement_batch_pushed_to_two_nodes_at_once_is_stored_once(cluster, pg_dsn):
    """A sender retrying through another node while the first is still working: the
    same xAPI request to two nodes at once stores each statement once (ids made for
    statements sent without one included), and every node streams them."""
    n1, n2, n3 = cluster
    statements = []
    for i in range(3000):
        body, _ = mixed_statement(
            i, timestamp=f"2026-01-05T{i // 3600:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z"
        )
        if i % 3 == 0:
            del body["id"]
        statements.append(body)
    async with ActivityReader(n3) as on3:
        answers = await push_at_once([(n1, statements), (n2, statements)])
        assert [a.status_code for a in answers] == [200, 200], [a.text[:300] for a in answers]
        assert answers[0].json() == answers[1].json()
        await on3.until(len(statements))
    assert on3.seqs == list(range(1, len(statements) + 1))
    sent = [(len(statements),)]
    assert await fetch(pg_dsn, "SELECT count(DISTINCT id) FROM events") == sent
    assert await fetch(pg_dsn, "SELECT count(*) FROM received WHERE source = 'xapi'") == sent


async def test_other_content_under_the_same_ids_on_two_nodes_at_once_is_one_409(cluster, pg_dsn):
    """Two senders racing with different statements under the same ids: one is stored,
    the other told 409 (the check runs in the transaction, not before it)."""
    n1, n2, _ = cluster
    first = [mixed_statement(i, timestamp="2026-01-05T10:00:00Z")[0] for i in range(3000)]
    other = [{**s, "timestamp": "2026-01-05T11:00:00Z"} for s in first]
    answers = await push_at_once([(n1, first), (n2, other)])
    assert sorted(a.status_code for a in answers) == [200, 409], [a.text[:300] for a in answers]
    winner = first if answers[0].status_code == 200 else other
    stamps = await fetch(pg_dsn, "SELECT DISTINCT body::json->>'timestamp' FROM received")
    assert stamps == [(winner[0]["timestamp"],)]
    assert await fetch(pg_dsn, "SELECT count(*) FROM events") == [(len(first),)]
