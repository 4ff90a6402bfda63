"""Every ``--json`` agrees: ISO 8601 UTC times, milliseconds durations, one rejection shape."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import pytest
from support import event
from test_cli_tasks import AT, make_db
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.commands.common import TIME_KEYS

pytestmark = pytest.mark.usefixtures("isolated_env", "restore_logging")


@pytest.fixture
def restore_logging():
    """``serve --check`` in this process points the root logger at CliRunner's stderr,
    closed once the command returns: put the handlers back for the tests after."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


#: The one timestamp format of every --json.
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
#: Anything else that looks like a moment: an offset, or epoch seconds of this century.
OTHER_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?([+-]\d\d:\d\d)")


def invoke(*args: str):
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})


def json_of(*args: str, exit_code: int = 0) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == exit_code, result.output
    return json.loads(result.stdout)


def times_and_durations(value: Any, key: str | None = None) -> list[tuple[str, Any]]:
    """(key, value) of every moment and duration in ``value``, walked recursively."""
    found = []
    if isinstance(value, dict):
        for k, v in value.items():
            found.extend(times_and_durations(v, k))
    elif isinstance(value, list):
        for v in value:
            found.extend(times_and_durations(v, key))
    elif key is not None and (key in TIME_KEYS or key.endswith(("_at", "_s"))):
        found.append((key, value))
    elif isinstance(value, str):
        assert not OTHER_TIME.search(value), (key, value)
    return found


def assert_agrees(value: Any) -> int:
    """Assert every time in ``value`` is ISO 8601 UTC and every duration has at most
    three decimals; returns how many times were checked."""
    checked = 0
    for key, item in times_and_durations(value):
        if item is None:
            continue
        if key.endswith("_s"):
            assert isinstance(item, (int, float)), (key, item)
            assert round(item, 3) == item, (key, item)
        else:
            assert isinstance(item, str) and UTC_TIME.fullmatch(item), (key, item)
            checked += 1
    return checked


def test_store_commands_share_one_time_format(tmp_path: Path):
    db = str(make_db(tmp_path / "jacmon.db"))
    run = json_of("run-task", "performance", "--db", db, *AT)
    alerts = json_of("alerts", "--state", "all", "--db", db)
    assert alerts, "the fixture raises alerts"
    ack = json_of("alerts", "ack", str(alerts[0]["id"]), "--expires-in", "1h", "--db", db)
    outputs = {
        "run-task": run,
        "alerts": json_of("alerts", "--state", "all", "--db", db),
        "alerts ack": ack,
        "tasks": json_of("tasks", "--db", db),
        "token create": json_of("token", "create", "--role", "viewer", "--db", db),
        "token list": json_of("token", "list", "--db", db),
        "serve --check": json_of("serve", "--check", "--db", db),
        "catalog show": json_of("catalog", "show", "--db", db),
        "silence add": json_of("silence", "add", "--learner", "a", "--for", "1h", "--db", db),
        "silence list": json_of("silence", "list", "--db", db),
        "notify log": json_of("notify", "log", "--db", db),
    }
    counts = {name: assert_agrees(value) for name, value in outputs.items()}
    # Each of these has times to check: started, first_seen/last_seen, ack at and
    # expires_at, next_run, created, next_run in the plan.
    timed = ("run-task", "alerts", "alerts ack", "tasks", "token create", "serve --check")
    for name in (*timed, "silence add", "silence list"):
        assert counts[name] > 0, name
    acked = ack["alert"]["acknowledged"]
    assert UTC_TIME.fullmatch(acked["at"]) and UTC_TIME.fullmatch(acked["expires_at"])


def test_serve_check_lists_tasks_as_objects_and_human_output_has_no_reprs(tmp_path: Path):
    db = str(tmp_path / "new.db")
    report = json_of("serve", "--check", "--db", db)
    tasks = report["plan"]["tasks"]
    assert {t["task"] for t in tasks} >= {"performance", "engagement", "velocity"}
    assert all(set(t) == {"task", "cron", "timezone", "enabled", "next_run"} for t in tasks)
    human = invoke("serve", "--check", "--db", db)
    assert human.exit_code == 0, human.output
    assert "streams: /ws/dashboard, /ws/alerts" in human.stdout
    assert "config_file: -" in human.stdout
    for repr_ in ("None", "['", "True", "False", "+00:00"):
        assert repr_ not in human.stdout, (repr_, human.stdout)


def test_run_task_human_output_has_no_reprs(tmp_path: Path):
    db = str(make_db(tmp_path / "jacmon.db"))
    result = invoke("run-task", "daily_analytics", "--db", db, *AT)
    assert result.exit_code == 0, result.output
    for repr_ in ("['", "{'", "(", "+00:00", "None"):
        assert repr_ not in result.stdout.replace("(dry run", ""), (repr_, result.stdout)


async def cli(*args: str):
    """The CLI in a thread: it runs its own event loop while the test loop hosts the server."""
    return await asyncio.to_thread(invoke, *args)


async def test_rejections_have_one_shape_in_ingest_sim_and_the_ack(
    running_server, server_factory, tmp_path
):
    lines = [json.dumps(event(1)), "{not json", json.dumps(event(2, type="nope"))]
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    ingest = await cli("ingest", str(source), "--server", running_server.url, "--json")
    assert ingest.exit_code == 1, ingest.output
    rejected = json.loads(ingest.stdout)["rejected"]
    # Local (bad JSON) and server-side (bad type) rejections alike: index in the input.
    assert [(r["index"], r["where"]) for r in rejected] == [
        (1, f"{source}:2"),
        (2, f"{source}:3"),
    ]
    assert all(set(r) == {"index", "where", "error"} for r in rejected)

    # Events dated before the server's earliest_event_ts are rejected: the same shape.
    strict = {"server_earliest_event_ts": "2026-01-01T00:00:00Z"}
    async with server_factory(tmp_path / "strict.db", **strict) as server:
        sim = await cli(
            "sim",
            "--server",
            server.url,
            "--start",
            "2020-01-01T00:00:00Z",
            "--events",
            "5",
            "--history-days",
            "0",
            "--speed",
            "100000",
            "--json",
        )
    assert sim.exit_code == 1, sim.output
    summary = json.loads(sim.stdout)
    assert [r["index"] for r in summary["rejected"]] == list(range(summary["sent"]))
    assert all(set(r) == {"index", "id", "error"} for r in summary["rejected"])
    assert assert_agrees(summary) == 2  # sim_from, sim_to
