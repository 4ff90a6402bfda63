"""``jacmon ingest-log``: what platforms pushed and jacmon could not map, from the real CLI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.events import validate_event
from jacmon.store import ReceivedRecord, Store

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("isolated_env")

REASON = "statement 0: the actor is a Group without members jacmon can name"


def kept(source: str, ident: str, reason: str | None) -> ReceivedRecord:
    return ReceivedRecord(
        source=source,
        id=ident,
        body=json.dumps({"id": ident, "note": f"as sent by {source}"}),
        digest="d",
        event_id=None if reason else ident,
        reason=reason,
        token=None,
    )


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "jacmon.db"

    async def fill() -> None:
        store = await Store.open(path)
        try:
            event = validate_event(
                {"id": "x-mapped", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "u"}
            )
            await store.ingest(
                [event],
                records=[kept("xapi", "x-mapped", None), kept("xapi", "x-group", REASON)],
            )
            await store.ingest([], records=[kept("caliper", "urn:uuid:c1", "no actor id")])
        finally:
            await store.close()

    asyncio.run(fill())
    return str(path)


def ingest_log(*args: str):
    return runner.invoke(app, ["ingest-log", *args])


def test_lists_the_unmapped_with_the_reason_and_the_totals(db: str) -> None:
    result = ingest_log("--db", db)
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert "records kept: caliper: 0 mapped, 1 unmapped, xapi: 1 mapped, 1 unmapped" in text
    assert "x-group" in text and "urn:uuid:c1" in text and "no actor id" in text
    assert "x-mapped" not in text


def test_all_source_body_and_json(db: str) -> None:
    everything = flat(ingest_log("--db", db, "--all", "--source", "xapi", "--body").output)
    assert "x-mapped" in everything and "x-group" in everything and "urn:uuid:c1" not in everything
    assert '"note": "as sent by xapi"' in everything
    result = ingest_log("--db", db, "--json", "--limit", "1")
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["totals"]["xapi"] == {"mapped": 1, "unmapped": 1}
    assert [row["id"] for row in found["rows"]] == ["urn:uuid:c1"]
    assert found["rows"][0]["body"] == {"id": "urn:uuid:c1", "note": "as sent by caliper"}


def test_ordinary_mistakes_are_one_clear_line(db: str, tmp_path: Path) -> None:
    bad = ingest_log("--db", db, "--source", "moodle")
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "--source has value 'moodle'" in flat(bad.output)
    missing = ingest_log("--db", str(tmp_path / "nope.db"))
    assert missing.exit_code != 0 and "Traceback" not in missing.output
    assert "nope.db" in flat(missing.output)


def test_nothing_is_cut_at_80_columns(tmp_path: Path) -> None:
    path = tmp_path / "narrow.db"
    ident = "25da00b3-7220-4f0d-b9df-2c9e911431c6"
    reason = "statement 0: " + "the actor is a Group without members jacmon can name; " * 3

    async def fill() -> None:
        store = await Store.open(path)
        try:
            await store.ingest([], records=[kept("xapi", ident, reason.strip())])
        finally:
            await store.close()

    asyncio.run(fill())
    result = runner.invoke(app, ["ingest-log", "--db", str(path)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert all(len(line) <= 80 for line in result.output.splitlines()), result.output
    assert ident in result.output  # whole, on one line
    assert reason.strip() in flat(result.output)
