"""The event store on each backend (a SQLite file, a PostgreSQL database): sequence
numbers, duplicates, progress rows, cursors.

Expected numbers are worked out by hand from the rules in jacmon/analytics/progress.py.
Every test runs on both backends (the ``store``/``store_location`` fixtures of
tests/store/conftest.py) except the few about SQLite's file itself, which say so.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from store_backends import elsewhere, ingest_projected, install_failing_cursor_trigger, one, rows

from jacmon.errors import StoreError
from jacmon.events import Event, validate_event
from jacmon.store import StorageUnavailable, Store
from jacmon.store.catalog import CatalogPath
from jacmon.store.sqlite.schema import latest_version

#: 2026-01-05T00:00:00Z in epoch seconds; its UTC day number is 20458.
DAY0 = 1767571200
DAY0_NUMBER = 20458


def ts(day: int = 0, hour: int = 10, minute: int = 0) -> float:
    return DAY0 + day * 86400 + hour * 3600 + minute * 60


def ev(
    event_id: str,
    kind: str,
    *,
    learner: str = "u1",
    day: int = 0,
    hour: int = 10,
    minute: int = 0,
    **fields: Any,
) -> Event:
    """A validated event at ``hour:minute`` UTC on 2026-01-05 + ``day``."""
    text = f"2026-01-{5 + day:02d}T{hour:02d}:{minute:02d}:00Z"
    return validate_event({"id": event_id, "type": kind, "ts": text, "learner": learner, **fields})


def progressed(event_id: str, module: str, progress: float, path: str = "p1", **kw: Any) -> Event:
    return ev(event_id, "module.progressed", path=path, module=module, progress=progress, **kw)


def completed(event_id: str, module: str, path: str = "p1", **kw: Any) -> Event:
    return ev(event_id, "module.completed", path=path, module=module, **kw)


async def path_row(store: Store, learner: str = "u1", path: str = "p1") -> dict[str, Any]:
    return await one(
        store, "SELECT * FROM path_progress WHERE learner = ? AND path = ?", learner, path
    )


async def module_row(store: Store, module: str, learner: str = "u1") -> dict[str, Any]:
    return await one(
        store,
        "SELECT * FROM module_progress WHERE learner = ? AND path = 'p1' AND module = ?",
        learner,
        module,
    )


async def learner_row(store: Store, learner: str = "u1") -> dict[str, Any]:
    return await one(store, "SELECT * FROM learners WHERE learner = ?", learner)


# Opening


async def test_open_creates_an_empty_store_with_a_stable_server_id(store_location):
    store = await Store.open(store_location)
    try:
        assert store.last_seq == 0
        assert await store.oldest_seq() == 0
        assert len(store.server_id) == 12
        int(store.server_id, 16)  # hex
        assert "secret" not in store.location  # never the password (PostgreSQL's DSN has one)
    finally:
        await store.close()
    again = await Store.open(store_location)
    try:
        assert again.server_id == store.server_id
    finally:
        await again.close()


async def test_sqlite_open_creates_wal_database_at_latest_schema(tmp_path):
    """SQLite only: the file, its directories, WAL mode and PRAGMA user_version."""
    path = tmp_path / "sub" / "dir" / "jacmon.db"
    store = await Store.open(path)
    try:
        assert path.exists()
        assert store.path == path
        async with store.db.reader.execute("PRAGMA journal_mode") as cursor:
            assert (await cursor.fetchone())[0] == "wal"
        async with store.db.reader.execute("PRAGMA user_version") as cursor:
            assert (await cursor.fetchone())[0] == latest_version()
        tables = {r["name"] for r in await rows(store, "SELECT name FROM sqlite_master")}
        assert {"events", "path_progress", "cursors", "alerts", "task_runs"} <= tables
    finally:
        await store.close()


async def test_sqlite_readonly_open_of_missing_file_errors_clearly_and_creates_nothing(tmp_path):
    """SQLite only: a missing file (PostgreSQL's counterpart, an empty database, is below)."""
    path = tmp_path / "absent.db"
    with pytest.raises(StoreError) as caught:
        await Store.open(path, readonly=True)
    assert str(caught.value) == (
        f"database {path} does not exist; check --db, or create it by starting "
        f"'jacmon serve --db {path}' once"
    )
    assert not path.exists()


async def test_postgres_readonly_open_of_an_empty_database_errors_clearly(pg_dsn):
    with pytest.raises(StoreError) as caught:
        await Store.open(pg_dsn, readonly=True)
    assert "has schema version 0, expected" in str(caught.value)
    assert "start jacmon serve on it once" in str(caught.value)
    assert await elsewhere(pg_dsn, "SELECT to_regclass('events')") == [(None,)]


async def test_readonly_store_reads_but_refuses_writes(store_location):
    store = await Store.open(store_location)
    await ingest_projected(store, [ev("a", "activity"), ev("b", "activity")])
    await store.close()
    readonly = await Store.open(store_location, readonly=True)
    try:
        assert readonly.last_seq == 2
        rows = await readonly.recent_event_rows(10)
        assert [json.loads(body)["id"] for _, body in rows] == ["a", "b"]
        with pytest.raises(StoreError, match="was opened read-only"):
            await readonly.ingest([ev("c", "activity")])
    finally:
        await readonly.close()


# Sequence numbers and duplicates


async def test_sequence_is_gap_free_across_batches_with_duplicates(store_location):
    store = await Store.open(store_location)
    first = await ingest_projected(
        store, [ev("a", "activity"), ev("b", "activity"), ev("a", "activity"), ev("c", "activity")]
    )
    assert [(s.seq, s.event.id) for s in first.stored] == [(1, "a"), (2, "b"), (3, "c")]
    assert first.duplicate_indexes == [2]
    assert first.last_seq == 3

    second = await ingest_projected(
        store, [ev("b", "activity"), ev("d", "activity"), ev("d", "activity"), ev("e", "activity")]
    )
    assert [(s.seq, s.event.id) for s in second.stored] == [(4, "d"), (5, "e")]
    assert second.duplicate_indexes == [0, 2]
    assert second.last_seq == 5

    only_duplicates = await ingest_projected(store, [ev("a", "activity"), ev("e", "activity")])
    assert only_duplicates.stored == []
    assert only_duplicates.duplicate_indexes == [0, 1]
    assert only_duplicates.last_seq == 5
    assert not only_duplicates.changes
    assert store.last_seq == 5

    stored = await rows(store, "SELECT seq, id FROM events ORDER BY seq")
    assert [(r["seq"], r["id"]) for r in stored] == [
        (1, "a"),
        (2, "b"),
        (3, "c"),
        (4, "d"),
        (5, "e"),
    ]
    await store.close()

    reopened = await Store.open(store_location)
    try:
        assert reopened.last_seq == 5
        outcome = await reopened.ingest([ev("f", "activity"), ev("c", "activity")])
        assert [s.seq for s in outcome.stored] == [6]
        assert outcome.duplicate_indexes == [1]
    finally:
        await reopened.close()


async def test_stored_body_is_the_contract_json_with_extras(store):
    event = validate_event(
        {
            "id": "x1",
            "type": "assessment.attempted",
            "ts": "2026-01-05T11:00:00+01:00",
            "learner": "u1",
            "item": "q1",
            "score": {"raw": 3, "max": 4},
            "platform": "moodle",
        }
    )
    await ingest_projected(store, [event])
    row = await one(store, "SELECT ts, score, item, body FROM events")
    assert row["ts"] == ts(0, 10)
    assert row["score"] == 75.0
    assert row["item"] == "q1"
    ((seq, body),) = await store.event_rows_since(0)
    replayed = json.loads(body)
    assert seq == 1
    assert replayed["platform"] == "moodle"
    assert replayed["ts"] == "2026-01-05T11:00:00+01:00"
    # min defaults to 0 (docs/protocol.md, the event contract): stored as 0, not null.
    assert replayed["score"] == {"scaled": None, "raw": 3.0, "min": 0.0, "max": 4.0}


async def test_last_seq_high_water_mark_survives_deleting_every_event(store_location):
    store = await Store.open(store_location)
    await ingest_projected(store, [ev("a", "activity"), ev("b", "activity"), ev("c", "activity")])
    await store.close()
    # Retention (or an operator) removes every event.
    await elsewhere(store_location, "DELETE FROM events")

    store = await Store.open(store_location)
    try:
        assert store.last_seq == 3
        assert await store.oldest_seq() == 0
        assert await store.event_rows_since(0) == []
        outcome = await ingest_projected(store, [ev("d", "activity")])
        assert [s.seq for s in outcome.stored] == [4]
        assert store.last_seq == 4
    finally:
        await store.close()


async def test_sqlite_keeps_the_high_water_mark_in_meta(tmp_path):
    """SQLite only: where the mark lives (PostgreSQL's is the seq_counters row)."""
    path = tmp_path / "jacmon.db"
    store = await Store.open(path)
    try:
        await ingest_projected(store, [ev("a", "activity"), ev("b", "activity")])
        assert (await one(store, "SELECT value FROM meta WHERE key = 'last_seq'"))["value"] == "2"
    finally:
        await store.close()


# Module and path progress


async def test_module_percent_is_the_highest_seen_then_100_on_completion(store):
    await ingest_projected(store, [progressed("a", "m1", 40)])
    row = await module_row(store, "m1")
    assert (row["status"], row["percent"], row["completed_at"]) == ("in_progress", 40.0, None)
    assert row["first_activity"] == row["last_activity"] == ts(0, 10)

    await ingest_projected(store, [progressed("b", "m1", 30, minute=5)])
    row = await module_row(store, "m1")
    assert row["percent"] == 40.0
    assert row["last_activity"] == ts(0, 10, 5)

    await ingest_projected(
        store, [progressed("c", "m1", 70, minute=6), progressed("d", "m1", 60, minute=7)]
    )
    assert (await module_row(store, "m1"))["percent"] == 70.0

    await ingest_projected(store, [completed("e", "m1", hour=11)])
    row = await module_row(store, "m1")
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, ts(0, 11))

    # Later, lower progress never reopens a completed module.
    await ingest_projected(store, [progressed("f", "m1", 20, hour=12)])
    row = await module_row(store, "m1")
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, ts(0, 11))
    assert row["last_activity"] == ts(0, 12)
    assert row["first_activity"] == ts(0, 10)


async def test_path_percent_follows_the_discovered_module_count(store):
    outcome = await ingest_projected(store, [progressed("a", "m1", 40), progressed("b", "m2", 80)])
    # (40 + 80) / 2 modules
    row = await path_row(store)
    assert (row["percent"], row["status"], row["modules_completed"]) == (60.0, "in_progress", 0)
    assert {(c["learner"], c["path"]) for c in outcome.changes.paths} == {("u1", "p1")}
    assert {c["module"] for c in outcome.changes.modules} == {"m1", "m2"}

    await ingest_projected(store, [progressed("c", "m1", 90, learner="u2")])
    assert (await path_row(store, "u2"))["percent"] == 45.0  # 90 / 2

    # A third module appears: every learner on p1 is measured against 3 now.
    await ingest_projected(store, [progressed("d", "m3", 30)])
    assert (await path_row(store))["percent"] == 50.0  # (40 + 80 + 30) / 3
    assert (await path_row(store, "u2"))["percent"] == 30.0  # 90 / 3, recomputed

    modules = await rows(
        store, "SELECT module, position, source FROM catalog_modules WHERE path = 'p1'"
    )
    assert sorted(m["module"] for m in modules) == ["m1", "m2", "m3"]
    assert sorted(m["position"] for m in modules) == [1, 2, 3]
    assert {m["source"] for m in modules} == {"seen"}
    assert store.catalog.module_counts["p1"] == 3
    assert "p1" not in store.catalog.authoritative


async def test_discovered_path_completes_only_with_path_completed(store):
    await ingest_projected(store, [completed("a", "m1"), completed("b", "m2", hour=11)])
    row = await path_row(store)
    assert (row["percent"], row["status"], row["modules_completed"]) == (100.0, "in_progress", 2)
    assert row["completed_at"] is None

    await ingest_projected(store, [ev("c", "path.completed", path="p1", hour=12)])
    row = await path_row(store)
    assert (row["status"], row["percent"], row["completed_at"]) == ("completed", 100.0, ts(0, 12))


async def test_authoritative_catalog_completes_the_path_when_every_module_is_done(store):
    await store.load_catalog([CatalogPath("p1", "Python", [("m1", "Intro"), ("m2", None)])])
    await ingest_projected(store, [completed("a", "m1")])
    row = await path_row(store)
    assert (row["percent"], row["status"], row["modules_completed"]) == (50.0, "in_progress", 1)

    # A module the file does not list counts for nothing and does not join the catalog.
    await ingest_projected(store, [completed("b", "m9", hour=10, minute=30)])
    row = await path_row(store)
    assert (row["percent"], row["modules_completed"]) == (50.0, 1)
    assert store.catalog.module_counts["p1"] == 2

    await ingest_projected(store, [completed("c", "m2", hour=11)])
    row = await path_row(store)
    assert (row["status"], row["percent"], row["modules_completed"]) == ("completed", 100.0, 2)
    assert row["completed_at"] == ts(0, 11)


async def test_catalog_load_recomputes_percents_of_learners_already_there(store):
    await ingest_projected(store, [progressed("a", "m1", 50), completed("b", "m2")])
    assert (await path_row(store))["percent"] == 75.0  # (50 + 100) / 2 discovered
    await ingest_projected(store, [progressed("c", "m1", 20, learner="u2")])
    assert (await path_row(store, "u2"))["percent"] == 10.0

    await store.load_catalog(
        [CatalogPath("p1", None, [("m1", None), ("m2", None), ("m3", None), ("m4", None)])]
    )
    assert (await path_row(store))["percent"] == 37.5  # 150 / 4
    assert (await path_row(store, "u2"))["percent"] == 5.0  # 20 / 4
    assert store.catalog.module_counts["p1"] == 4
    assert "p1" in store.catalog.authoritative


async def test_catalog_load_completes_a_path_whose_modules_are_all_done(store):
    await ingest_projected(store, [completed("a", "m1"), progressed("b", "m2", 10)])
    await store.load_catalog([CatalogPath("p1", None, [("m1", None)])])
    row = await path_row(store)
    assert row["percent"] == 100.0
    assert row["status"] == "completed"


async def test_unenroll_and_coming_back(store):
    await ingest_projected(store, [ev("a", "path.enrolled", path="p1", hour=9)])
    row = await path_row(store)
    assert (row["status"], row["percent"], row["enrolled_at"]) == ("enrolled", 0.0, ts(0, 9))

    await ingest_projected(store, [progressed("b", "m1", 20)])
    assert (await path_row(store))["status"] == "in_progress"

    await ingest_projected(store, [ev("c", "path.unenrolled", path="p1", hour=11)])
    row = await path_row(store)
    assert (row["status"], row["percent"]) == ("unenrolled", 20.0)

    await ingest_projected(store, [progressed("d", "m1", 30, hour=12)])
    row = await path_row(store)
    assert (row["status"], row["percent"]) == ("in_progress", 30.0)

    # In one batch the later of the two decides, whatever the order they arrive in.
    await ingest_projected(
        store, [ev("e", "path.unenrolled", path="p1", hour=14), progressed("f", "m1", 40, hour=13)]
    )
    assert (await path_row(store))["status"] == "unenrolled"
    await ingest_projected(
        store, [progressed("g", "m1", 50, hour=16), ev("h", "path.unenrolled", path="p1", hour=15)]
    )
    assert (await path_row(store))["status"] == "in_progress"

    await ingest_projected(store, [ev("i", "path.unenrolled", path="p1", hour=17)])
    await ingest_projected(store, [ev("j", "path.enrolled", path="p1", hour=18)])
    row = await path_row(store)
    assert row["status"] == "in_progress"  # re-enrolled with progress on record
    assert row["enrolled_at"] == ts(0, 9)  # the first enrolment is kept


async def test_re_enrolling_without_progress_is_enrolled(store):
    await ingest_projected(store, [ev("a", "path.enrolled", path="p1")])
    await ingest_projected(store, [ev("b", "path.unenrolled", path="p1", hour=11)])
    assert (await path_row(store))["status"] == "unenrolled"
    await ingest_projected(store, [ev("c", "path.enrolled", path="p1", hour=12)])
    assert (await path_row(store))["status"] == "enrolled"


# Streaks, XP, time


async def test_streaks_across_days_and_late_events(store):
    async def learner() -> tuple[int, int, int]:
        row = await learner_row(store)
        return row["streak_days"], row["longest_streak"], row["active_day"] - DAY0_NUMBER

    await ingest_projected(store, [ev("a", "activity", day=0)])
    assert await learner() == (1, 1, 0)
    await ingest_projected(store, [ev("b", "activity", day=1)])
    assert await learner() == (2, 2, 1)
    await ingest_projected(store, [ev("c", "activity", day=1, hour=20)])
    assert await learner() == (2, 2, 1)
    await ingest_projected(store, [ev("d", "activity", day=2, hour=0)])
    assert await learner() == (3, 3, 2)
    # Two quiet days break the streak; the longest is remembered.
    await ingest_projected(store, [ev("e", "activity", day=5)])
    assert await learner() == (1, 3, 5)
    # A late event from day 4 counts as if it had come on time: days 4 and 5 in a row.
    await ingest_projected(store, [ev("f", "activity", day=4)])
    assert await learner() == (2, 3, 5)
    # One batch spanning days 6..9 in shuffled order extends the run 4..9.
    await ingest_projected(store, [ev(f"g{d}", "activity", day=d) for d in (8, 6, 9, 7)])
    assert await learner() == (6, 6, 9)
    # One batch with a gap inside: the current streak is the run ending at day 15.
    await ingest_projected(
        store,
        [ev("h1", "activity", day=12), ev("h2", "activity", day=14), ev("h3", "activity", day=15)],
    )
    assert await learner() == (2, 6, 15)
    # A late day 13 joins 12 and 14-15 into one run of four, whatever batch it comes in.
    await ingest_projected(store, [ev("i", "activity", day=13)])
    assert await learner() == (4, 6, 15)


async def test_first_batch_of_consecutive_days_starts_the_streak_at_their_count(store):
    await ingest_projected(store, [ev(f"a{d}", "activity", learner="u2", day=d) for d in (2, 0, 1)])
    row = await learner_row(store, "u2")
    assert (row["streak_days"], row["longest_streak"], row["active_day"]) == (
        3,
        3,
        DAY0_NUMBER + 2,
    )


async def test_path_streak_counts_days_active_on_that_path(store):
    await ingest_projected(store, [progressed("a", "m1", 10, day=0)])
    await ingest_projected(store, [progressed("b", "m1", 20, day=1)])
    await ingest_projected(
        store, [ev("c", "activity", day=2)]
    )  # no path: the path streak is not touched
    assert (await path_row(store))["streak_days"] == 2
    assert (await learner_row(store))["streak_days"] == 3
    await ingest_projected(store, [progressed("d", "m1", 30, day=3)])
    assert (await path_row(store))["streak_days"] == 1


async def test_a_late_event_in_the_same_batch_does_not_break_the_streak(store):
    for day in (0, 1, 2):
        await ingest_projected(store, [ev(f"a{day}", "activity", day=day)])
    assert (await learner_row(store))["streak_days"] == 3
    await ingest_projected(
        store, [ev("late", "activity", day=1, hour=23), ev("new", "activity", day=3)]
    )
    assert (await learner_row(store))["streak_days"] == 4


async def test_xp_and_levels(store):
    await ingest_projected(
        store,
        [
            ev("l1", "lesson.completed", path="p1", module="m1", item="l1"),  # 10
            ev("l2", "lesson.completed", path="p1", module="m1", item="l2"),  # 10
            completed("m1", "m1"),  # 50
            ev("q1", "assessment.attempted", path="p1", item="q1", score={"scaled": 0.85}),  # 8
            ev("q2", "assessment.passed", path="p1", item="q1"),  # 25
            ev("x1", "activity"),  # 1, no path
            ev("s1", "session.started"),  # 1, no path
        ],
    )
    learner = await learner_row(store)
    assert (learner["xp"], learner["level"], learner["events"]) == (105, 2, 7)
    path = await path_row(store)
    assert (path["xp"], path["level"]) == (103, 2)

    await ingest_projected(store, [ev("pc", "path.completed", path="p1", hour=11)])  # 200
    assert ((await learner_row(store))["xp"], (await path_row(store))["xp"]) == (305, 303)
    assert (await learner_row(store))["level"] == 2  # 1 + isqrt(3)

    await ingest_projected(
        store, [completed("m2", "m2", hour=12), completed("m3", "m3", hour=12)]
    )  # 100
    learner = await learner_row(store)
    path = await path_row(store)
    assert (learner["xp"], learner["level"], learner["events"]) == (405, 3, 10)
    assert (path["xp"], path["level"]) == (403, 3)


async def test_time_spent_sessions_count_for_the_learner_only(store):
    await ingest_projected(
        store,
        [
            ev("s1", "session.started", path="p1", hour=9),
            progressed("a", "m1", 10, duration_s=120, hour=9, minute=10),
            ev("b", "lesson.completed", path="p1", module="m1", item="l1", duration_s=30),
            ev("c", "assessment.attempted", item="q", score={"scaled": 0.5}, duration_s=45),
            ev("s2", "session.ended", path="p1", duration_s=600, hour=11),
        ],
    )
    assert (await learner_row(store))["time_spent_s"] == 600.0
    assert (await path_row(store))["time_spent_s"] == 150.0
    assert (await module_row(store, "m1"))["time_spent_s"] == 150.0
    await ingest_projected(store, [ev("s3", "session.ended", duration_s=60.5, day=1)])
    assert (await learner_row(store))["time_spent_s"] == 660.5


# Cursors and transactions


async def test_cursor_is_saved_with_the_batch_even_when_every_event_is_a_duplicate(store):
    assert await store.get_cursor("lrs:main") is None
    await ingest_projected(
        store, [ev("a", "activity")], cursor=("lrs:main", "2026-01-05T10:00:00Z")
    )
    assert await store.get_cursor("lrs:main") == "2026-01-05T10:00:00Z"
    outcome = await ingest_projected(store, [ev("a", "activity")], cursor=("lrs:main", "v2"))
    assert outcome.stored == []
    assert await store.get_cursor("lrs:main") == "v2"
    assert store.last_seq == 1


async def table_counts(location) -> dict[str, int]:
    tables = [
        "events",
        "module_progress",
        "path_progress",
        "learners",
        "catalog_paths",
        "catalog_modules",
        "cursors",
    ]
    return {t: (await elsewhere(location, f"SELECT count(*) FROM {t}"))[0][0] for t in tables}


async def test_failing_batch_rolls_back_everything_including_the_cursor(store, store_location):
    await ingest_projected(store, [progressed("a", "m1", 10)], cursor=("lrs", "v1"))
    before = await table_counts(store_location)
    assert before == {
        "events": 1,
        "module_progress": 1,
        "path_progress": 1,
        "learners": 1,
        "catalog_paths": 1,
        "catalog_modules": 1,
        "cursors": 1,
    }
    await install_failing_cursor_trigger(store_location)

    # The trigger's own error (sqlite3.IntegrityError, asyncpg's RaiseError), not a
    # StorageUnavailable: the batch, not the storage, failed.
    with pytest.raises(Exception, match="forced failure") as caught:
        await ingest_projected(
            store,
            [progressed("b", "m1", 90), progressed("c", "m2", 50, path="p2", learner="u2")],
            cursor=("lrs", "boom"),
        )
    assert not isinstance(caught.value, StorageUnavailable)
    assert await table_counts(store_location) == before
    assert store.last_seq == 1
    assert await store.get_cursor("lrs") == "v1"
    assert (await module_row(store, "m1"))["percent"] == 10.0
    assert store.write_problem is None

    # The store stays usable: the next batch gets the next sequence number.
    outcome = await ingest_projected(store, [progressed("b", "m1", 90)], cursor=("lrs", "v2"))
    assert [s.seq for s in outcome.stored] == [2]
    assert await store.get_cursor("lrs") == "v2"


async def test_retrying_a_failed_batch_gives_the_same_progress(store, store_location):
    await install_failing_cursor_trigger(store_location)
    batch = [progressed("a", "m1", 50)]
    with pytest.raises(Exception, match="forced failure"):
        await ingest_projected(store, batch, cursor=("lrs", "boom"))
    await ingest_projected(store, batch, cursor=("lrs", "v1"))
    row = await path_row(store)
    assert (row["percent"], row["status"]) == (50.0, "in_progress")
