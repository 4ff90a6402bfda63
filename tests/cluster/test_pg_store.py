"""The PostgreSQL store as several nodes use it: concurrent ingest, failures, task locks.

Each "node" is a PgStore of its own (its own asyncpg pool) on one database, as
several ``jacmon serve`` processes would be. The behaviour both stores share is
tested once for both in tests/store; here is what only a shared database has.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from cluster_services import PostgresServer, free_port

from jacmon.events import Event, validate_event
from jacmon.store import (
    IngestOutcome,
    StorageUnavailable,
    Store,
    latest_schema_version,
    postgres_dsn,
    schema_version,
    serve_lock,
)
from jacmon.store.catalog import CatalogPath

NODES = 4
BATCHES_PER_NODE = 15


def event(event_id: str, *, learner: str = "u1", path: str = "p1", module: str = "m1",
          day: int = 0) -> Event:  # fmt: skip
    return validate_event(
        {
            "id": event_id,
            "type": "module.progressed",
            "ts": f"2026-01-{5 + day:02d}T10:00:00Z",
            "learner": learner,
            "path": path,
            "module": module,
            "progress": 10,
        }
    )


async def fetch(dsn: str, sql: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


FAIL_CURSOR_TRIGGER = (
    "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF NEW.value = 'boom' THEN RAISE EXCEPTION 'forced failure'; END IF;"
    " RETURN NEW; END $$;"
    " CREATE TRIGGER boom BEFORE INSERT OR UPDATE ON cursors"
    " FOR EACH ROW EXECUTE FUNCTION boom()"
)


async def test_concurrent_nodes_store_each_id_once_with_a_gap_free_sequence(pg_dsn: str) -> None:
    nodes = [await Store.open(pg_dsn) for _ in range(NODES)]
    conn = await asyncpg.connect(pg_dsn)
    await conn.execute(FAIL_CURSOR_TRIGGER)
    await conn.close()
    rng = random.Random(7)
    # 300 ids; every batch draws from all of them, so nodes keep sending the same ids
    # at the same time (a producer retrying through another node).
    ids = [f"e{i}" for i in range(300)]
    batches = [
        [
            [
                event(
                    event_id,
                    learner=f"u{int(event_id[1:]) % 7}",
                    path=f"p{int(event_id[1:]) % 3}",
                    module=f"m{int(event_id[1:]) % 5}",
                    day=int(event_id[1:]) % 4,
                )
                for event_id in rng.sample(ids, rng.randrange(1, 40))
            ]
            for _ in range(BATCHES_PER_NODE)
        ]
        for _ in range(NODES)
    ]

    # About one batch in five fails at its last statement (the cursor), after taking
    # its seqs and inserting its events: it must leave no hole and store nothing.
    fails = {(n, b) for n in range(NODES) for b in range(BATCHES_PER_NODE) if rng.random() < 0.2}
    done = asyncio.Event()
    holes: list[list[int]] = []

    async def run(number: int, mine: list[list[Event]]) -> list[tuple[list[Event], IngestOutcome]]:
        stored = []
        for index, batch in enumerate(mine):
            if (number, index) in fails:
                with pytest.raises(asyncpg.RaiseError, match="forced failure"):
                    await nodes[number].ingest(batch, cursor=(f"n{number}", "boom"))
            else:
                stored.append(
                    (batch, await nodes[number].ingest(batch, cursor=(f"n{number}", "ok")))
                )
            await asyncio.sleep(0)
        return stored

    async def watch() -> int:
        """A reader tailing by seq meanwhile: what it sees is always 1..k, never a hole."""
        conn = await asyncpg.connect(pg_dsn)
        looks = 0
        try:
            while not done.is_set():
                seen = [r[0] for r in await conn.fetch("SELECT seq FROM events ORDER BY seq")]
                if seen != list(range(1, len(seen) + 1)):
                    holes.append(seen)
                looks += 1
                await asyncio.sleep(0.005)
        finally:
            await conn.close()
        return looks

    watcher = asyncio.create_task(watch())
    try:
        results = await asyncio.gather(*(run(n, b) for n, b in enumerate(batches)))
    finally:
        done.set()
        looks = await watcher
        for node in nodes:
            await node.close()
    assert looks > 10 and holes == []
    assert 0 < len(fails) < NODES * BATCHES_PER_NODE

    stored = await fetch(pg_dsn, "SELECT seq, id, body FROM events ORDER BY seq")
    seqs = [seq for seq, _, _ in stored]
    assert seqs == list(range(1, len(stored) + 1))  # gap-free, from 1
    assert len({event_id for _, event_id, _ in stored}) == len(stored)  # each id once
    sent = {e.id for node in results for batch, _ in node for e in batch}
    assert {event_id for _, event_id, _ in stored} == sent
    by_seq = {seq: (event_id, body) for seq, event_id, body in stored}

    claimed: Counter[str] = Counter()
    for node in results:
        for batch, outcome in node:
            # Every event of the batch is either stored by it or a duplicate, never both.
            stored_ids = [s.event.id for s in outcome.stored]
            duplicates = [batch[i].id for i in outcome.duplicate_indexes]
            assert sorted(stored_ids + duplicates) == sorted(e.id for e in batch)
            # What the batch says it stored is what the table holds at those seqs.
            for item in outcome.stored:
                assert by_seq[item.seq] == (item.event.id, item.body)
            if outcome.stored:
                seqs_of_batch = [s.seq for s in outcome.stored]
                assert seqs_of_batch == list(range(seqs_of_batch[0], seqs_of_batch[-1] + 1))
                assert outcome.last_seq == seqs_of_batch[-1]
            claimed.update(stored_ids)
    assert claimed == Counter(sent)  # each id stored by exactly one batch

    # Progress counted every stored event once, whichever node stored it.
    assert await fetch(pg_dsn, "SELECT sum(events)::int FROM learners") == [(len(stored),)]
    # Modules discovered on different nodes got distinct positions 1..k per path.
    positions = await fetch(
        pg_dsn,
        "SELECT path, array_agg(position ORDER BY position) FROM catalog_modules GROUP BY path",
    )
    for _, numbers in positions:
        assert numbers == list(range(1, len(numbers) + 1))


async def test_a_node_sees_modules_another_node_discovered(pg_dsn: str) -> None:
    first, second = await Store.open(pg_dsn), await Store.open(pg_dsn)
    try:
        await first.ingest([event("a", module="m1")])
        # The second node's catalog is stale (it knows no module of p1): under the
        # sequence lock it reloads, so m2 is position 2 and both count 2 modules.
        outcome = await second.ingest([event("b", module="m2")])
        assert second.catalog.module_counts["p1"] == 2
        assert outcome.changes.recounted == {"p1"}
        assert await first.refresh_catalog() is False  # reloaded quietly: no catalog load
        assert first.catalog.module_counts["p1"] == 2
        assert await fetch(pg_dsn, "SELECT module, position FROM catalog_modules ORDER BY 2") == [
            ("m1", 1),
            ("m2", 2),
        ]
        row = await fetch(pg_dsn, "SELECT percent FROM path_progress WHERE learner = 'u1'")
        assert row == [(10.0,)]  # (10 + 10) / 2
        # A catalog loaded through one node holds for batches through the other.
        await first.load_catalog(
            [CatalogPath("p1", None, [("m1", None), ("m2", None), ("m3", None)])]
        )
        await second.ingest([event("c", module="m3")])
        row = await fetch(pg_dsn, "SELECT percent FROM path_progress WHERE learner = 'u1'")
        assert row == [(10.0,)]  # (10 + 10 + 10) / 3
        assert second.catalog.authoritative == {"p1"}
    finally:
        await first.close()
        await second.close()


async def test_stopped_server_is_storage_unavailable_then_ingest_resumes(
    own_postgres: PostgresServer,
) -> None:
    dsn = own_postgres.create_database("jacmon")
    store = await Store.open(dsn)
    try:
        first = await store.ingest([event("a"), event("b")])
        assert first.last_seq == 2
        own_postgres.stop()

        with pytest.raises(StorageUnavailable) as caught:
            await store.ingest([event("c")], cursor=("lrs", "v2"))
        message = str(caught.value)
        where = f"127.0.0.1:{own_postgres.port}/jacmon"
        assert where in message
        assert "the batch was not acknowledged (a resend is safe)" in message
        assert "check that the server is running" in message
        assert "secret" not in message and "jacmon-test" not in message.split(where)[0]
        assert store.write_problem == message
        assert store.last_seq == 2

        own_postgres.start()
        # The same store, not reopened: the pool replaces its dead connections.
        outcome = await store.ingest([event("c"), event("a")], cursor=("lrs", "v2"))
        assert [(s.seq, s.event.id) for s in outcome.stored] == [(3, "c")]
        assert outcome.duplicate_indexes == [1]
        assert store.write_problem is None
        assert await store.get_cursor("lrs") == "v2"
        assert [seq for seq, _ in await store.event_rows_since(0)] == [1, 2, 3]
    finally:
        own_postgres.start()
        await store.close()


async def test_a_failed_batch_leaves_no_hole_for_the_other_nodes(pg_dsn: str) -> None:
    first, second = await Store.open(pg_dsn), await Store.open(pg_dsn)
    try:
        await first.ingest([event("a")])
        conn = await asyncpg.connect(pg_dsn)
        await conn.execute(
            "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
            " IF NEW.value = 'boom' THEN RAISE EXCEPTION 'forced failure'; END IF;"
            " RETURN NEW; END $$;"
            " CREATE TRIGGER boom BEFORE INSERT ON cursors FOR EACH ROW EXECUTE FUNCTION boom()"
        )
        await conn.close()
        with pytest.raises(asyncpg.RaiseError, match="forced failure"):
            await first.ingest([event("b"), event("c")], cursor=("x", "boom"))
        outcome = await second.ingest([event("d")])
        assert [s.seq for s in outcome.stored] == [2]
    finally:
        await first.close()
        await second.close()


async def test_two_nodes_never_run_a_task_at_once(pg_dsn: str) -> None:
    first, second = await Store.open(pg_dsn), await Store.open(pg_dsn)
    try:
        run_id, started = await first.begin_run(
            "cleanup", trigger="schedule", scheduled=1.0, started=1.0, live_run_ids=set()
        )
        assert started
        skipped_id, started_too = await second.begin_run(
            "cleanup", trigger="schedule", scheduled=1.0, started=1.5, live_run_ids=set()
        )
        assert not started_too
        (skipped,) = [r for r in await second.recent_runs() if r["id"] == skipped_id]
        assert skipped["outcome"] == "skipped"
        assert skipped["summary"] == {"overlapped_run": run_id}
        # Another task is not in the way; the running one is live for both nodes.
        other_id, other_started = await second.begin_run(
            "velocity", trigger="manual", scheduled=None, started=2.0, live_run_ids=set()
        )
        assert other_started
        assert await second.abandon_stale_runs(now=3.0, live_run_ids=set()) == []

        await first.finish_run(run_id, outcome="success", finished=4.0, duration_s=3.0)
        again, started_again = await second.begin_run(
            "cleanup", trigger="schedule", scheduled=5.0, started=5.0, live_run_ids=set()
        )
        assert started_again
        await second.finish_run(again, outcome="success", finished=6.0, duration_s=1.0)

        # A node that dies mid-run: its connections drop, PostgreSQL frees the lock,
        # and another node marks the run abandoned and may run the task.
        crashed, _ = await first.begin_run(
            "daily", trigger="schedule", scheduled=7.0, started=7.0, live_run_ids=set()
        )
        first.db.pool.terminate()
        await asyncio.sleep(0.2)
        stale = await second.abandon_stale_runs(now=8.0, live_run_ids={other_id})
        assert stale == [crashed]
        _, started_after = await second.begin_run(
            "daily", trigger="schedule", scheduled=9.0, started=9.0, live_run_ids=set()
        )
        assert started_after
        totals = await second.run_totals()
        assert totals["cleanup"] == {"success": 2, "skipped": 1}
        assert totals["daily"] == {"abandoned": 1, "running": 1}
    finally:
        await first.close()
        await second.close()


async def test_alert_change_seqs_stay_gap_free_with_writers_on_two_nodes(pg_dsn: str) -> None:
    from jacmon.analytics.alert_rules import AlertCondition, PlannedChange

    first, second = await Store.open(pg_dsn), await Store.open(pg_dsn)

    async def fire(node: Store, prefix: str) -> None:
        for i in range(10):
            condition = AlertCondition(
                rule="inactivity",
                severity="warning",
                learner=f"{prefix}{i}",
                path=None,
                message="idle",
                numbers={"days": i},
            )
            async with node.transaction() as tx:
                await tx.apply_alert_changes([PlannedChange("fire", condition)], now=1.0)

    try:
        await asyncio.gather(fire(first, "a"), fire(second, "b"))
        changes = await first.alert_changes_since(0)
        assert [c["seq"] for c in changes] == list(range(1, 21))
        assert await second.last_alert_change_seq() == 20
        assert len(await first.open_alerts()) == 20
    finally:
        await first.close()
        await second.close()


async def test_serve_lock_and_schema_version_of_a_postgresql_location(pg_dsn: str) -> None:
    # Several nodes serve one database: there is no lock to hold and never a problem.
    lock = serve_lock(pg_dsn)
    lock.acquire()
    assert lock.problem() is None
    assert serve_lock(pg_dsn).problem() is None
    lock.release()
    assert schema_version(pg_dsn) is None  # an empty database: nothing yet
    store = await Store.open(pg_dsn)
    await store.close()
    assert schema_version(pg_dsn) == latest_schema_version(pg_dsn) == latest_schema_version()
    # A DSN that went through pathlib.Path (a --db option) lost a slash; it still works.
    mangled = Path(pg_dsn)
    assert str(mangled).startswith("postgresql:/") and "//" not in str(mangled)
    assert postgres_dsn(mangled) == pg_dsn
    assert schema_version(mangled) == latest_schema_version()
    store = await Store.open(mangled, readonly=True)
    try:
        assert store.location == "jacmon@" + pg_dsn.split("@", 1)[1]  # no password
    finally:
        await store.close()
    port = pg_dsn.split("@127.0.0.1:")[1].split("/")[0]
    unreachable = pg_dsn.replace(f"@127.0.0.1:{port}/", f"@127.0.0.1:{free_port()}/")
    text = schema_version(unreachable)
    assert isinstance(text, str) and "cannot reach PostgreSQL" in text


async def test_stored_bodies_and_rows_are_the_sqlite_stores(pg_dsn: str, tmp_path: Path) -> None:
    """The same batches give byte-identical stored JSON and equal rows in both stores."""
    events = [
        validate_event(
            {"id": "x1", "type": "assessment.attempted", "ts": "2026-01-05T11:00:00+01:00",
             "learner": "u1", "path": "p1", "item": "q1", "score": {"raw": 3, "max": 4},
             "duration_s": 12.5, "platform": "moodle", "success": True, "attempt": 2}
        ),
        event("x2"),
    ]  # fmt: skip
    answers = []
    for location in (tmp_path / "jacmon.db", pg_dsn):
        store = await Store.open(location)
        try:
            outcome = await store.ingest(events)
            answers.append(
                (
                    [(s.seq, s.body) for s in outcome.stored],
                    outcome.changes.paths,
                    outcome.changes.modules,
                    outcome.changes.learners,
                    await store.event_rows_since(0),
                    await store.progress_snapshot(now=1767607200.0),
                    [row async for row in store.recent_events(since=0)],
                )
            )
        finally:
            await store.close()
    sqlite, postgres = answers
    assert postgres == sqlite
    assert json.loads(postgres[0][0][1])["platform"] == "moodle"


async def test_a_read_only_database_is_storage_unavailable_with_what_to_do(pg_dsn: str) -> None:
    store = await Store.open(pg_dsn)
    name = pg_dsn.rsplit("/", 1)[1]
    try:
        await store.ingest([event("a")])
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute(f"ALTER DATABASE {name} SET default_transaction_read_only = on")
            # New sessions get the setting: drop the pool's open ones.
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid != pg_backend_pid()",
                name,
            )
        finally:
            await conn.close()
        problems = []
        for _ in range(3):  # the first attempt may meet a terminated connection
            with pytest.raises(StorageUnavailable) as caught:
                await store.ingest([event("b")])
            problems.append(str(caught.value))
        assert "accepts no writes" in problems[-1]
        assert "point the DSN at the primary" in problems[-1]
        assert f"/{name}" in problems[-1]
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("SET default_transaction_read_only = off")  # this session
            await conn.execute(f"ALTER DATABASE {name} RESET default_transaction_read_only")
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = $1 AND pid != pg_backend_pid()",
                name,
            )
        finally:
            await conn.close()
        for _ in range(3):
            try:
                outcome = await store.ingest([event("b")])
                break
            except StorageUnavailable:
                continue
        assert [s.seq for s in outcome.stored] == [2]
        assert store.write_problem is None
    finally:
        await store.close()


async def test_a_node_stuck_inside_a_batch_holds_up_the_others_only_for_a_while(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jacmon.store.postgres import database, sequence

    # 60 s in production; 1 s here.
    monkeypatch.setattr(database, "IDLE_IN_TRANSACTION_TIMEOUT_S", 1.0)
    stuck, other = await Store.open(pg_dsn), await Store.open(pg_dsn)
    try:
        await other.ingest([event("a")])

        async def freeze_mid_batch() -> None:
            async with stuck.db.transaction() as conn:
                await sequence.lock(conn)  # what a batch takes first
                await asyncio.sleep(2.5)  # frozen, without committing
                await conn.fetchval("SELECT 1")

        frozen = asyncio.create_task(freeze_mid_batch())
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        outcome = await asyncio.wait_for(other.ingest([event("b")]), timeout=4)
        waited = asyncio.get_running_loop().time() - started
        assert [s.seq for s in outcome.stored] == [2]
        assert 0.3 < waited < 3  # waited for the stuck session to be ended, not for ever
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError)):
            await frozen  # its transaction is gone: nothing of it commits
    finally:
        await stuck.close()
        await other.close()
