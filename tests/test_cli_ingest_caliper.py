"""``jacmon ingest --format caliper``: Caliper 1.2 envelopes (the IMS spec's example
events) into a running server; what cannot be mapped is listed with the reason."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from test_lrs import read_events
from typer.testing import CliRunner

from jacmon.cli import app

pytestmark = pytest.mark.usefixtures("isolated_env")

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "caliper"
EVENTS = [
    "EventSessionLoggedIn",
    "EventNavigationNavigatedTo",
    "EventViewViewed",
    "EventAssessmentItemCompleted",
    "EventAssessmentSubmitted",
    "EventToolUseUsed",
    "EventSessionLoggedOut",
]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"caliper{name}.json").read_text())


def envelope(data: list) -> dict:
    return {
        "sensor": "https://example.edu/sensors/1",
        "sendTime": "2016-11-15T11:05:01.000Z",
        "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "data": data,
    }


async def ingest(args: list[str]):
    return await asyncio.to_thread(CliRunner().invoke, app, ["ingest", *args])


@pytest.mark.parametrize("layout", ["one envelope", "envelope per line"])
async def test_caliper_envelopes_are_ingested_and_the_rest_named(running_server, tmp_path, layout):
    events = [fixture(name) for name in EVENTS]
    graded = fixture("EventGradeGraded")  # the spec's example has no scoreGiven
    person = {"id": "https://example.edu/users/554433", "type": "Person"}
    source = tmp_path / "caliper.json"
    if layout == "one envelope":
        source.write_text(json.dumps(envelope([*events, graded, person]), indent=2))
    else:
        lines = [envelope(events[:4]), envelope([*events[4:], graded]), envelope([person])]
        source.write_text("".join(json.dumps(e) + "\n" for e in lines) + "{not json\n")
    result = await ingest(
        [str(source), "--format", "caliper", "--server", running_server.url, "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == len(EVENTS)
    reasons = [r["error"] for r in summary["rejected"]]
    assert any("GradeEvent without generated.scoreGiven" in r for r in reasons)
    assert any("is a Caliper entity ('Person'), not an event" in r for r in reasons)
    if layout == "envelope per line":
        assert any("not valid JSON" in r for r in reasons)
    stored = read_events(running_server.db_path)
    assert sorted(e["id"] for e in stored) == sorted(e["id"] for e in events)
    types = {e["caliper_type"]: e["type"] for e in stored}
    assert types["SessionEvent"] in ("session.started", "session.ended")
    assert types["ViewEvent"] == "activity"


async def test_a_file_that_is_no_envelope_is_one_clear_rejection(running_server, tmp_path):
    source = tmp_path / "events.json"
    source.write_text(json.dumps([fixture("EventViewViewed")]))
    result = await ingest(
        [str(source), "--format", "caliper", "--server", running_server.url, "--json"]
    )
    assert result.exit_code == 1, result.output
    (rejection,) = json.loads(result.stdout)["rejected"]
    assert "envelope is list; expected an object with sensor" in rejection["error"]
