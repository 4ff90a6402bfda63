"""Tailing a real LRS (Ralph, started by the ``ralph`` fixture) into a real jacmon store.

The tailer talks HTTP to Ralph and writes through the real ingest path: the
running server over WebSocket (``running_server``), or the store in-process as
``jacmon serve`` does with :func:`jacmon.sources.lrs.run_tailer`.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from lrs_fixtures import (
    PASSWORD,
    USER,
    RalphLrs,
    check_event,
    mixed_statement,
    running_ralph,
    unmappable_statements,
)
from support import read_events

from jacmon.client.ingest import Ack, IngestClient
from jacmon.errors import ConfigError
from jacmon.events import validate_event
from jacmon.sources.lrs import LrsTailer, TailerSettings, run_tailer
from jacmon.sources.lrs_client import LrsError, LrsUnavailable
from jacmon.store import Store

# Generous: a loaded 2-core box.
WAIT_S = 90.0


@pytest.fixture
def ralph(tmp_path: Path) -> Iterator[RalphLrs]:
    yield from running_ralph(tmp_path / "ralph")


def read_cursor(db_path: Path, name: str) -> str | None:
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after :data:`WAIT_S` seconds."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {WAIT_S:.0f}s waiting for {what}")
        await asyncio.sleep(0.1)


def settings_for(lrs: RalphLrs, **extra: Any) -> TailerSettings:
    values: dict[str, Any] = {"url": lrs.url, "user": USER, "password": PASSWORD}
    values.update(extra)
    return TailerSettings.from_mapping(values)


class StoreSink:
    """The in-process sink ``jacmon serve`` gives :func:`run_tailer`: validate, store, ack."""

    def __init__(self, store: Store):
        self.store = store

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        outcome = await self.store.ingest([validate_event(e) for e in events], cursor=cursor)
        return Ack(
            accepted=len(outcome.stored),
            duplicates=len(outcome.duplicate_indexes),
            last_seq=self.store.last_seq,
        )

    async def get_cursor(self, name: str) -> str | None:
        return await self.store.get_cursor(name)


async def test_mixed_statements_arrive_as_the_right_events(ralph: RalphLrs, running_server) -> None:
    statements, expected = [], {}
    for i in range(300):
        # Explicit timestamps, minutes apart, so the event time is checked too.
        ts = f"2026-01-0{1 + i % 9}T{i % 24:02d}:{i % 60:02d}:00+00:00"
        body, want = mixed_statement(i, timestamp=ts)
        statements.append(body)
        expected[body["id"]] = {**want, "ts": ts}
    bad = unmappable_statements(10_000)
    ralph.post(statements[:150] + bad + statements[150:])

    async with IngestClient(running_server.url) as client:
        tailer = LrsTailer(settings_for(ralph), client)
        assert await tailer.poll() == 303
    stats = tailer.stats
    assert (stats.fetched, stats.accepted, stats.duplicates, stats.unmappable) == (303, 300, 0, 3)
    assert stats.rejected == []
    assert {s.statement_id for s in stats.skipped} == {b["id"] for b in bad}
    reasons = " | ".join(s.reason for s in stats.skipped)
    assert "has no account, mbox" in reasons
    assert "is a StatementRef" in reasons
    assert "has no progress" in reasons

    events = read_events(running_server.db_path)
    assert len(events) == 300
    problems = [p for e in events for p in check_event(e, expected[e["id"]])]
    assert problems == []
    # The watermark is the newest 'stored' and lives in the jacmon database.
    newest = max(s["stored"] for s in ralph.all_statements())
    assert read_cursor(running_server.db_path, tailer.cursor_name) == newest == stats.watermark


async def test_lrs_restart_during_follow_loses_and_duplicates_nothing(
    ralph: RalphLrs, running_server
) -> None:
    posted: list[str] = []

    def wave(first: int, count: int) -> None:
        # No timestamp: Ralph's fs backend filters 'since' on the timestamp (see docs/ingest.md).
        batch = [mixed_statement(i)[0] for i in range(first, first + count)]
        posted.extend(ralph.post(batch))

    wave(0, 60)
    stop = asyncio.Event()
    async with IngestClient(running_server.url) as client:
        tailer = LrsTailer(settings_for(ralph, poll_interval_s=0.2, retry_max_s=0.5), client)
        task = asyncio.create_task(tailer.follow(stop))
        try:
            await wait_for(lambda: tailer.stats.accepted == 60, "the first 60 statements")
            ralph.stop()
            await wait_for(lambda: tailer.stats.outages >= 2, "the tailer to notice the outage")
            ralph.start()
            wave(60, 50)
            bad = unmappable_statements(20_000)
            posted.extend(ralph.post(bad))
            wave(110, 40)
            await wait_for(lambda: tailer.stats.accepted == 150, "all 150 statements")
            await wait_for(lambda: tailer.stats.unmappable == 3, "the 3 unmappable statements")
        finally:
            stop.set()
            await asyncio.wait_for(task, WAIT_S)
    assert task.exception() is None
    assert tailer.stats.duplicates == 0
    events = read_events(running_server.db_path)
    mappable = set(posted) - {b["id"] for b in bad}
    assert sorted(e["id"] for e in events) == sorted(mappable)


async def test_tailer_restart_continues_from_its_watermark(ralph: RalphLrs, running_server) -> None:
    first = ralph.post([mixed_statement(i)[0] for i in range(80)])
    async with IngestClient(running_server.url) as client:
        before = LrsTailer(settings_for(ralph, overlap_s=0), client)
        await before.poll()
    assert before.stats.accepted == 80
    watermark = read_cursor(running_server.db_path, before.cursor_name)
    assert watermark == before.stats.watermark

    second = ralph.post([mixed_statement(i)[0] for i in range(80, 130)])
    async with IngestClient(running_server.url) as client:
        after = LrsTailer(settings_for(ralph, overlap_s=0), client)
        await after.poll()
    # Only what came after the watermark was read again.
    assert (after.stats.fetched, after.stats.accepted, after.stats.duplicates) == (50, 50, 0)
    assert read_cursor(running_server.db_path, after.cursor_name) > watermark
    assert sorted(e["id"] for e in read_events(running_server.db_path)) == sorted(first + second)


async def test_overlap_rereads_are_harmless_after_a_restart(
    ralph: RalphLrs, running_server
) -> None:
    ids = ralph.post([mixed_statement(i)[0] for i in range(30)])
    async with IngestClient(running_server.url) as client:
        await LrsTailer(settings_for(ralph), client).poll()
        again = LrsTailer(settings_for(ralph, overlap_s=3600), client)
        await again.poll()
    # The default overlap re-reads them; the server stores each id once.
    assert (again.stats.fetched, again.stats.accepted, again.stats.duplicates) == (30, 0, 30)
    assert sorted(e["id"] for e in read_events(running_server.db_path)) == sorted(ids)


async def test_server_side_tailer_from_config(ralph: RalphLrs, tmp_path: Path) -> None:
    ids = ralph.post([mixed_statement(i)[0] for i in range(40)])
    store = await Store.open(tmp_path / "serve.db")
    stop = asyncio.Event()
    config = {"url": ralph.url, "user": USER, "password": PASSWORD, "poll_interval_s": 0.2}
    try:
        task = asyncio.create_task(run_tailer(config, StoreSink(store), stop))
        await wait_for(lambda: store.last_seq == 40, "40 events in the store")
        ids += ralph.post([mixed_statement(i)[0] for i in range(40, 55)])
        await wait_for(lambda: store.last_seq == 55, "55 events in the store")
        stop.set()
        stats = await asyncio.wait_for(task, WAIT_S)
        assert (stats.accepted, stats.duplicates) == (55, 0)
        assert await store.get_cursor(f"lrs:{ralph.url}") == stats.watermark
    finally:
        stop.set()
        await store.close()
    assert sorted(e["id"] for e in read_events(tmp_path / "serve.db")) == sorted(ids)


async def test_wrong_password_is_a_clear_error(ralph: RalphLrs, tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "x.db")
    try:
        tailer = LrsTailer(settings_for(ralph, password="wrong"), StoreSink(store))
        with pytest.raises(LrsError, match=r"HTTP 401.*--lrs-password") as caught:
            await tailer.poll()
        assert not isinstance(caught.value, LrsUnavailable)
    finally:
        await store.close()


async def test_unreachable_lrs_is_retryable(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "x.db")
    try:
        # Port 9 (discard) on loopback: nothing listens there.
        tailer = LrsTailer(TailerSettings(url="http://127.0.0.1:9/xAPI"), StoreSink(store))
        with pytest.raises(LrsUnavailable, match="cannot reach the LRS"):
            await tailer.poll()
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({}, "Config 'lrs.url' has value None"),
        ({"url": "lrs.example.com"}, "is not an http"),
        ({"url": "http://h/xAPI", "poll_interval_s": "soon"}, "lrs.poll_interval_s"),
        ({"url": "http://h/xAPI", "page_size": 0}, "lrs.page_size"),
        ({"url": "http://h/xAPI", "since": "2026-01-01"}, "with a zone"),
        ({"url": "http://h/xAPI", "pasword": "x"}, "'lrs.pasword' is not a setting"),
    ],
)
def test_bad_lrs_settings_name_the_key(values: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        TailerSettings.from_mapping(values)


def test_more_links_resolve_against_the_origin_only() -> None:
    from jacmon.sources.lrs_client import LrsClient

    client = LrsClient("http://127.0.0.1:8100/some/prefix/xAPI/")
    assert client.endpoint == "http://127.0.0.1:8100/some/prefix/xAPI"
    assert (
        client.resolve_more("/xAPI/statements?x=1") == "http://127.0.0.1:8100/xAPI/statements?x=1"
    )
    with pytest.raises(LrsError, match="another server"):
        client.resolve_more("http://evil.example.com/xAPI/statements")
