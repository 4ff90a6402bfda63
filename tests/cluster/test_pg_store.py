"""The PostgreSQL store as several nodes use it: concurrent ingest and projection,
failures, task locks.

Each "node" is a PgStore of its own (its own asyncpg pool) on one database, as
several ``jacmon serve`` processes would be. The behaviour both stores share is
tested once for both in tests/store; here is what only a shared database has.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import random
from collections import Counter
from pathlib import Path

import asyncpg
import pytest
from cluster_services import PostgresServer, free_port

from jacmon.events import Event, validate_event
from jacmon.store import (
    IngestOutcome,
    Projection,
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
          day: int = 0, minute: int = 0, progress: int = 10) -> Event:  # fmt: skip
    return validate_event(
        {
            "id": event_id,
            "type": "module.progressed",
            "ts": f"2026-01-{5 + day:02d}T{10 + minute // 60:02d}:{minute % 60:02d}:00Z",
            "learner": learner,
            "path": path,
            "module": module,
            "progress": progress,
        }
    )


async def fetch(dsn: str, sql: str) -> list[tuple]:
    conn = await asyncpg.connect(dsn)
    try:
        return [tuple(r) for r in await conn.fetch(sql)]
    finally:
        await conn.close()


#: The projection's tables (progress and the discovered catalog), each in key order.
PROJECTED = {
    "learners": "SELECT * FROM learners ORDER BY learner",
    "path_progress": "SELECT * FROM path_progress ORDER BY learner, path",
    "module_progress": "SELECT * FROM module_progress ORDER BY learner, path, module",
    "catalog_paths": "SELECT * FROM catalog_paths ORDER BY path",
    "catalog_modules": "SELECT * FROM catalog_modules ORDER BY path, position",
}


async def projected(dsn: str) -> dict[str, list[tuple]]:
    """The projection's tables and the watermark, as committed now."""
    tables = {name: await fetch(dsn, sql) for name, sql in PROJECTED.items()}
    tables["watermark"] = await fetch(dsn, "SELECT value FROM meta WHERE key = 'progress_seq'")
    return tables


_database_numbers = itertools.count(1)


@pytest.fixture
def other_dsn(postgres_server: PostgresServer):
    """A second fresh database on the session's PostgreSQL (a reference to compare with)."""
    name = f"r{os.getpid()}_{next(_database_numbers)}"
    try:
        yield postgres_server.create_database(name)
    finally:
        postgres_server.drop_database(name)


class Stall:
    """Holds every projector span at its last progress statement (learners upserted,
    watermark not moved, nothing committed) until released; ``stalling = False`` lets
    later spans through."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from jacmon.store.postgres import projection

        self._real = projection.update_learners
        #: The server pid of each stalled span's connection, as it stalls.
        self.reached: asyncio.Queue[int] = asyncio.Queue()
        self.gate = asyncio.Event()
        self.stalling = True
        monkeypatch.setattr(projection, "update_learners", self._stalled)

    async def _stalled(self, conn: asyncpg.Connection, first: int, last: int) -> list:
        rows = await self._real(conn, first, last)
        if self.stalling:
            await self.reached.put(conn.get_server_pid())
            await self.gate.wait()
        return rows

    async def next(self) -> int:
        """Wait for a span to stall; its connection's server pid."""
        return await asyncio.wait_for(self.reached.get(), timeout=5)


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
    store = await Store.open(pg_dsn)
    try:
        spans = await store.catch_up(max_events=50)
    finally:
        await store.close()
    assert spans[0].first_seq == 1 and spans[-1].last_seq == len(stored)
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
        await first.catch_up()
        # Ingest discovers nothing: the catalog is the projector's.
        await second.ingest([event("b", module="m2")])
        assert await fetch(pg_dsn, "SELECT module FROM catalog_modules") == [("m1",)]
        # The second node's catalog is stale (it knows no module of p1): under the
        # watermark lock it reloads, so m2 is position 2 and both count 2 modules.
        (span,) = await second.catch_up()
        assert second.catalog.module_counts["p1"] == 2
        assert span.changes.recounted == {"p1"}
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
        await second.catch_up()
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
            (span,) = await store.catch_up()
            answers.append(
                (
                    [(s.seq, s.body) for s in outcome.stored],
                    (span.first_seq, span.last_seq),
                    span.changes.paths,
                    span.changes.modules,
                    span.changes.learners,
                    await store.progress_rows_since(0),
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


async def test_nodes_projecting_at_once_fold_each_span_once(pg_dsn: str, other_dsn: str) -> None:
    """Two nodes project while a third ingests: the spans tile the log exactly once, and
    the result is what one span over the whole log gives."""
    ingester = await Store.open(pg_dsn)
    projectors = [await Store.open(pg_dsn) for _ in range(2)]
    rng = random.Random(15)
    # Days out of order (late events), so streaks depend on the whole day sets.
    sent = [
        event(f"e{n}", learner=f"u{n % 5}", path=f"p{n % 3}", module=f"m{n * 7 % 6}",
              day=n % 4, minute=n % 100, progress=10 * (n % 11))
        for n in range(400)
    ]  # fmt: skip
    batches = []
    for start in range(0, len(sent), 8):
        batch = sent[start : start + 8]
        # Some resends of ids already sent (duplicates, stored once).
        batch += rng.sample(sent[: start + 1], rng.randrange(0, 3))
        batches.append(batch)
    done = asyncio.Event()
    spans: list[list[Projection]] = [[], []]

    async def ingest() -> None:
        try:
            for batch in batches:
                await ingester.ingest(batch)
                await asyncio.sleep(rng.random() * 0.002)
        finally:
            done.set()

    async def project(number: int) -> None:
        node = projectors[number]
        while True:
            span = await node.project(max_events=rng.randrange(1, 12))
            if span is not None:
                spans[number].append(span)
            elif done.is_set():
                return  # the ingest is over and the watermark is at its head
            else:
                await asyncio.sleep(0.001)

    try:
        await asyncio.gather(ingest(), project(0), project(1))
        head = await ingester.committed_seq()
        assert head == len(sent)
        assert await projectors[0].progress_seq() == await projectors[1].progress_seq() == head
    finally:
        for node in (ingester, *projectors):
            await node.close()
    assert spans[0] and spans[1], "both nodes folded spans"
    # Every seq folded by exactly one span: the spans, in order, tile 1..head.
    ordered = sorted(spans[0] + spans[1], key=lambda span: span.first_seq)
    assert [(s.first_seq, s.last_seq) for s in ordered] == list(
        zip(
            [1] + [s.last_seq + 1 for s in ordered[:-1]],
            [s.last_seq for s in ordered],
            strict=True,
        )
    )
    assert ordered[-1].last_seq == head
    # The rows each span reported are the table's rows as they end up (the last span
    # touching a learner reports its final row).
    latest = {row["learner"]: row for span in ordered for row in span.changes.learners}
    final = {row[0]: row for row in await fetch(pg_dsn, PROJECTED["learners"])}
    assert latest.keys() == final.keys()
    conn = await asyncpg.connect(pg_dsn)
    try:
        for name, row in latest.items():
            stored = dict(await conn.fetchrow("SELECT * FROM learners WHERE learner = $1", name))
            assert {key: stored[key] for key in row} == row
        bodies = [r[0] for r in await conn.fetch("SELECT body FROM events ORDER BY seq")]
    finally:
        await conn.close()

    # The same log, in the same order, in a fresh database folded in one span.
    reference = await Store.open(other_dsn)
    try:
        await reference.ingest([validate_event(json.loads(body)) for body in bodies])
        assert len(await reference.catch_up(max_events=10 * head)) == 1
    finally:
        await reference.close()
    assert await projected(pg_dsn) == await projected(other_dsn)


async def test_a_span_that_fails_midway_changes_nothing_and_the_next_call_folds_it(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = await Store.open(pg_dsn), await Store.open(pg_dsn)
    stall = Stall(monkeypatch)
    try:
        await store.ingest([event("a", module="m1"), event("b", learner="u2", module="m2")])
        before = await projected(pg_dsn)
        assert before["watermark"] == [("0",)] and before["learners"] == []

        # 1. Cancelled mid-span (a node stopping): ...
        first = asyncio.create_task(store.project())
        await stall.next()
        # ... meanwhile ingest goes on (the projector never holds the counter lock) ...
        outcome = await asyncio.wait_for(other.ingest([event("c", learner="u3")]), timeout=5)
        assert [s.seq for s in outcome.stored] == [3]
        # ... and another node's projector waits for its turn.
        second = asyncio.create_task(other.project())
        await asyncio.sleep(0.3)
        assert not second.done()
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        # The other node now holds the watermark: it starts where the failed span did.
        pid = await stall.next()
        assert await projected(pg_dsn) == before  # nothing of the cancelled span committed
        assert "p1" not in store.catalog.module_counts  # nor did the cache follow it

        # 2. The connection lost mid-span (the server ended the session): ...
        conn = await asyncpg.connect(pg_dsn)
        try:
            await conn.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await conn.close()
        stall.gate.set()
        with pytest.raises(StorageUnavailable, match="connection to PostgreSQL"):
            await second
        assert other.write_problem is not None
        assert await projected(pg_dsn) == before

        # 3. ... and the next call folds the whole span.
        stall.stalling = False
        (span,) = await other.catch_up()
        assert (span.first_seq, span.last_seq) == (1, 3)
        assert [row["learner"] for row in span.changes.learners] == ["u1", "u2", "u3"]
        assert other.write_problem is None
        assert await store.project() is None
        assert await fetch(pg_dsn, "SELECT sum(events)::int FROM learners") == [(3,)]
        assert await fetch(pg_dsn, "SELECT module, position FROM catalog_modules ORDER BY 2") == [
            ("m1", 1),
            ("m2", 2),
        ]
        assert await store.progress_seq() == 3
    finally:
        stall.gate.set()
        await store.close()
        await other.close()


async def test_retention_keeps_the_events_the_projection_has_not_folded(pg_dsn: str) -> None:
    store = await Store.open(pg_dsn)
    try:
        await store.ingest([event(f"e{i}", learner=f"u{i}") for i in range(5)])
        await store.project(max_events=2)
        future = 4e9  # every event is older than this
        async with store.transaction(write=False) as tx:
            assert await tx.delete_events_before(future, dry_run=True) == 2
        async with store.transaction() as tx:
            assert await tx.delete_events_before(future) == 2
        assert [seq for seq, _ in await store.event_rows_since(0)] == [3, 4, 5]
        # The events left fold in as if nothing had been deleted.
        (span,) = await store.catch_up()
        assert (span.first_seq, span.last_seq) == (3, 5)
        assert await fetch(pg_dsn, "SELECT count(*)::int FROM learners") == [(5,)]
        async with store.transaction() as tx:
            assert await tx.delete_events_before(future) == 3
        assert await store.event_rows_since(0) == []
        # The high-water mark and the watermark survive the events.
        assert await store.committed_seq() == await store.progress_seq() == 5
        assert await store.project() is None
    finally:
        await store.close()


async def test_migration_5_starts_the_watermark_at_the_head(pg_dsn: str) -> None:
    """A database of schema 4 had progress kept current by ingest: nothing to fold."""
    store = await Store.open(pg_dsn)
    try:
        await store.ingest([event("a"), event("b", day=1)])
        await store.catch_up()
    finally:
        await store.close()
    conn = await asyncpg.connect(pg_dsn)
    try:  # back to schema 4: no watermark, no day sets, no unenrolment columns, no received
        await conn.execute(
            "DELETE FROM schema_migrations WHERE version >= 5;"
            " DELETE FROM meta WHERE key = 'progress_seq';"
            " DROP TABLE learner_days, path_days, received;"
            " ALTER TABLE path_progress DROP COLUMN unenrolled_at, DROP COLUMN last_engaged"
        )
    finally:
        await conn.close()
    store = await Store.open(pg_dsn)
    try:
        assert await store.progress_seq() == 2
        assert await store.project() is None
        snapshot = await store.progress_snapshot(now=1767607200.0)
        assert snapshot["progress_seq"] == 2 and snapshot["total_learners"] == 1
    finally:
        await store.close()
    # The day sets and the latest engagement come from the events still stored.
    assert await fetch(pg_dsn, "SELECT learner, day FROM learner_days ORDER BY day") == [
        ("u1", 20458),
        ("u1", 20459),
    ]
    assert await fetch(pg_dsn, "SELECT count(*)::int FROM path_days") == [(2,)]
    assert await fetch(pg_dsn, "SELECT unenrolled_at, last_engaged FROM path_progress") == [
        (None, 1767693600.0)
    ]


async def test_reads_see_the_progress_of_their_watermark(pg_dsn: str) -> None:
    """Snapshot, view and rows-since are read with the watermark they reflect."""
    store = await Store.open(pg_dsn)
    try:
        await store.ingest([event("a"), event("b", learner="u2"), event("c", learner="u3")])
        assert await store.progress_rows_since(0) is None  # nothing folded yet
        await store.project(max_events=2)
        snapshot = await store.progress_snapshot(now=1767607200.0)
        assert snapshot["progress_seq"] == 2 and snapshot["total_learners"] == 2
        view = await store.progress_view(["p1"], [("p1", "m1")], now=1767607200.0)
        assert (view.progress_seq, view.total_learners) == (2, 2)
        assert view.paths[0]["enrolled"] == 2 and view.modules[0]["learners"] == 2
        rows = await store.progress_rows_since(1)
        assert rows is not None and (rows.first_seq, rows.last_seq) == (2, 2)
        assert [row["learner"] for row in rows.changes.learners] == ["u2"]
        assert await store.progress_rows_since(2) is None
    finally:
        await store.close()
