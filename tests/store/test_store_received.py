"""The records platforms push (``received``), kept with their events, on both backends.

Every test runs on SQLite and PostgreSQL (the ``store`` fixture, tests/store/conftest.py).
"""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
from store_backends import install_failing_cursor_trigger, rows

from jacmon.events import Event, validate_event
from jacmon.store import ReceivedRecord, RecordConflict, Store


def event(ident: str) -> Event:
    return validate_event(
        {"id": ident, "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "u1"}
    )


def strict(ident: str, *, digest: str = "d1") -> ReceivedRecord:
    """A record that refuses other content under its id (as the xAPI endpoint's do)."""
    return dataclasses.replace(record(ident, digest=digest), refuse_other_content=True)


def record(ident: str, *, source: str = "xapi", digest: str = "d1", mapped: bool = True):
    return ReceivedRecord(
        source=source,
        id=ident,
        body=json.dumps({"id": ident, "verb": {"id": "http://example.com/v"}}),
        digest=digest,
        event_id=ident if mapped else None,
        reason=None if mapped else "the actor is an anonymous Group",
        token="t1",
    )


async def test_records_are_kept_with_their_events_and_a_kept_one_stays(
    store: Store, store_location
) -> None:
    await store.ingest([event("a"), event("b")], records=[record("a"), record("b")])
    # The same ids again with other content: the kept records are not overwritten.
    await store.ingest([], records=[record("a", digest="other"), record("c", mapped=False)])
    kept = await rows(store, "SELECT id, digest FROM received WHERE source = 'xapi' ORDER BY id")
    assert [(r["id"], r["digest"]) for r in kept] == [("a", "d1"), ("b", "d1"), ("c", "d1")]
    assert await store.received_totals() == {"xapi": {"mapped": 2, "unmapped": 1}}
    log = await store.received_log(limit=10, source=None, unmapped_only=True)
    assert [(r["id"], r["event_id"], r["reason"]) for r in log] == [
        ("c", None, "the actor is an anonymous Group")
    ]
    everything = await store.received_log(limit=10, source="xapi", unmapped_only=False)
    assert [r["id"] for r in everything] == ["c", "b", "a"]  # newest first
    assert json.loads(everything[-1]["body"])["id"] == "a" and everything[-1]["token"] == "t1"
    assert len(await store.received_log(limit=2, source=None, unmapped_only=False)) == 2
    assert await store.received_log(limit=10, source="caliper", unmapped_only=False) == []


async def test_a_record_refusing_other_content_refuses_its_whole_batch(store: Store) -> None:
    await store.ingest([event("a")], records=[strict("a")])
    # The same content again is fine (a retry); other content under the id refuses the
    # batch in its transaction: the new event and record are not stored either.
    await store.ingest([event("a")], records=[strict("a")])
    with pytest.raises(RecordConflict, match="xapi record a is already kept") as caught:
        await store.ingest([event("n")], records=[strict("n"), strict("a", digest="other")])
    assert caught.value.ids == ["a"]
    # Two records of one id with different content in one batch: refused too.
    with pytest.raises(RecordConflict):
        await store.ingest([], records=[strict("m"), strict("m", digest="other")])
    assert await store.received_totals() == {"xapi": {"mapped": 1, "unmapped": 0}}
    assert [r["id"] for r in await rows(store, "SELECT id FROM events")] == ["a"]


async def test_a_failed_batch_keeps_neither_its_events_nor_its_records(
    store: Store, store_location
) -> None:
    await install_failing_cursor_trigger(store_location)
    with pytest.raises(Exception, match="forced failure"):
        await store.ingest([event("a")], cursor=("lrs", "boom"), records=[record("a")])
    assert await store.received_totals() == {}
    await store.ingest([event("a")], cursor=("lrs", "v1"), records=[record("a")])
    assert await store.received_totals() == {"xapi": {"mapped": 1, "unmapped": 0}}


async def test_retention_removes_records_older_than_the_cutoff(store: Store) -> None:
    await store.ingest([event("a")], records=[record("a"), record("x", mapped=False)])
    await store.catch_up()
    async with store.transaction() as tx:
        await tx.delete_events_before(0.0)
    assert await store.received_totals() == {"xapi": {"mapped": 1, "unmapped": 1}}
    async with store.transaction() as tx:
        await tx.delete_events_before(time.time() + 60)
    assert await store.received_totals() == {}
