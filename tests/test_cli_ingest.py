"""``jacmon ingest``: files, stdin, xAPI and a real LRS, into a real running server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from lrs_fixtures import (
    PASSWORD,
    USER,
    RalphLrs,
    mixed_statement,
    running_ralph,
    unmappable_statements,
)
from test_lrs import read_cursor, read_events, wait_for
from typer.testing import CliRunner

from jacmon.cli import app as cli_app

TS = "2026-01-05T10:00:00Z"
# The real CLI, as the console script runs it.
CLI_SNIPPET = "from jacmon.cli import main; main()"


@pytest.fixture
def ralph(tmp_path: Path) -> Iterator[RalphLrs]:
    yield from running_ralph(tmp_path / "ralph")


@pytest.fixture
def app() -> typer.Typer:
    """The real ``jacmon`` app."""
    return cli_app


async def invoke(app: typer.Typer, args: list[str], stdin: str | None = None):
    """Run the command in a thread: it calls asyncio.run and the test loop hosts the server."""
    runner = CliRunner()
    return await asyncio.to_thread(runner.invoke, app, ["ingest", *args], input=stdin)


def lrs_ingest_command(ralph: RalphLrs, server_url: str) -> tuple[list[str], dict[str, str]]:
    """(argv, environment) of ``jacmon ingest --lrs`` as its own process.

    The password comes from the environment, with no overlap window and no
    user config file.
    """
    env = {**os.environ, "JACMON_LRS__PASSWORD": PASSWORD, "JACMON_LRS__OVERLAP_S": "0"}
    env.pop("JACMON_CONFIG", None)
    cmd = [sys.executable, "-c", CLI_SNIPPET, "ingest", "--lrs", ralph.url]
    return [*cmd, "--lrs-user", USER, "--server", server_url], env


async def start_follower(
    cmd: list[str], env: dict[str, str], cwd: Path, *, poll_interval_s: float
) -> asyncio.subprocess.Process:
    """``cmd --follow --json``, its stdout and stderr piped."""
    return await asyncio.create_subprocess_exec(
        *cmd,
        "--follow",
        "--poll-interval",
        str(poll_interval_s),
        "--json",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
    )


def event(i: int, **extra) -> dict:
    return {"id": f"e{i}", "type": "activity", "ts": TS, "learner": f"l{i % 3}", **extra}


async def test_jsonl_file_ingests_good_lines_and_names_bad_ones(
    app, running_server, tmp_path: Path
) -> None:
    lines = [json.dumps(event(i)) for i in range(25)]
    lines.insert(5, "{not json")
    lines.insert(
        9, json.dumps({"id": "bad", "type": "activity", "ts": "yesterday", "learner": "x"})
    )
    lines.insert(12, "")
    source = tmp_path / "events.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = await invoke(app, [str(source), "--server", running_server.url, "--batch-size", "7"])
    assert result.exit_code == 1, result.output
    assert "accepted 25" in result.stderr
    assert f"{source}:6: not valid JSON" in result.stderr
    assert f"{source}:10: field 'ts' has value 'yesterday'" in result.stderr
    assert "[red]" not in result.stderr  # markup is rendered, not printed
    assert sorted(e["id"] for e in read_events(running_server.db_path)) == sorted(
        f"e{i}" for i in range(25)
    )
    again = await invoke(app, [str(source), "--server", running_server.url, "--json"])
    summary = json.loads(again.stdout)
    assert (summary["accepted"], summary["duplicates"], len(summary["rejected"])) == (0, 25, 2)


async def test_stdin_and_clean_exit(app, running_server) -> None:
    text = "".join(json.dumps(event(i)) + "\n" for i in range(10))
    result = await invoke(app, ["-", "--server", running_server.url, "--json"], stdin=text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["accepted"] == 10


@pytest.mark.parametrize("layout", ["array", "jsonl"])
async def test_xapi_file_maps_statements_and_reports_unmappable(
    app, running_server, tmp_path: Path, layout: str
) -> None:
    statements = [mixed_statement(i, timestamp=TS)[0] for i in range(40)]
    bad = [{**b, "timestamp": TS} for b in unmappable_statements(500)]
    every = statements[:20] + bad + statements[20:]
    source = tmp_path / f"statements.{layout}"
    if layout == "array":
        source.write_text(json.dumps(every, indent=2))
    else:
        source.write_text("".join(json.dumps(s) + "\n" for s in every))
    result = await invoke(
        app, [str(source), "--format", "xapi", "--server", running_server.url, "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert (summary["read"], summary["accepted"], len(summary["rejected"])) == (43, 40, 3)
    reasons = " ".join(r["error"] for r in summary["rejected"])
    assert bad[0]["id"] in reasons and "has no account, mbox" in reasons
    stored = read_events(running_server.db_path)
    assert sorted(e["id"] for e in stored) == sorted(s["id"] for s in statements)
    assert {e["verb"] for e in stored} >= {"http://adlnet.gov/expapi/verbs/registered"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one input"),
        (["x.jsonl", "--lrs", "http://h/xAPI"], "give exactly one input"),
        (["x.jsonl", "--follow"], "--follow only apply with --lrs"),
        (["x.jsonl", "--format", "csv"], "--format has value 'csv'"),
        (["missing.jsonl"], "cannot read 'missing.jsonl'"),
        (["--lrs", "ftp://h/xAPI"], "is not an http"),
        (
            ["--lrs", "http://h/xAPI", "--since", "yesterday"],
            "'lrs.since' (--since) has value 'yesterday'. Expected an ISO 8601",
        ),
    ],
)
async def test_usage_errors_name_the_problem(app, args: list[str], message: str) -> None:
    result = await invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.stderr.split())


async def test_unreachable_server_is_a_clear_error(app, tmp_path: Path) -> None:
    source = tmp_path / "e.jsonl"
    source.write_text(json.dumps(event(1)) + "\n")
    result = await invoke(app, [str(source), "--server", "ws://127.0.0.1:9"])
    assert result.exit_code == 1
    assert "cannot reach a jacmon server" in " ".join(result.stderr.split())


async def test_lrs_once_then_follow_then_restart_from_watermark(
    app, ralph: RalphLrs, running_server, tmp_path: Path
) -> None:
    lrs_args = ["--lrs", ralph.url, "--lrs-user", USER, "--server", running_server.url]
    first = ralph.post([mixed_statement(i)[0] for i in range(30)] + unmappable_statements(900))
    once = await invoke(app, [*lrs_args, "--lrs-password", PASSWORD, "--json"])
    assert once.exit_code == 1, once.output  # 3 unmappable: reported, the rest went in
    summary = json.loads(once.stdout)
    assert (summary["accepted"], summary["unmappable"], summary["rejected"]) == (30, 3, [])
    assert {s["statement"] for s in summary["skipped"]} == set(first[30:])

    # --follow in its own process, password from the environment, stopped by SIGINT.
    cmd, env = lrs_ingest_command(ralph, running_server.url)
    follower = await start_follower(cmd, env, tmp_path, poll_interval_s=0.2)
    try:
        second = ralph.post([mixed_statement(i)[0] for i in range(30, 70)])
        await wait_for(
            lambda: (
                follower.returncode is not None or len(read_events(running_server.db_path)) == 70
            ),
            "70 events",
        )
        assert follower.returncode is None, (await follower.stderr.read()).decode()
        follower.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(follower.communicate(), 60)
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
    assert follower.returncode == 0, err.decode()
    followed = json.loads(out)
    # The follower started from the stored watermark: only the 40 new statements.
    assert (followed["read"], followed["accepted"], followed["duplicates"]) == (40, 40, 0)
    watermark = read_cursor(running_server.db_path, f"lrs:{ralph.url}")
    assert watermark == followed["watermark"]

    third = ralph.post([mixed_statement(i)[0] for i in range(70, 85)])
    rerun = await asyncio.to_thread(
        subprocess.run, [*cmd, "--json"], env=env, capture_output=True, timeout=120, cwd=tmp_path
    )
    assert rerun.returncode == 0, rerun.stderr.decode()
    assert json.loads(rerun.stdout)["accepted"] == 15 == json.loads(rerun.stdout)["read"]
    ids = sorted(e["id"] for e in read_events(running_server.db_path))
    assert ids == sorted(first[:30] + second + third)


async def test_follow_rides_out_server_outages_backing_off_afresh_each_time(
    ralph: RalphLrs, running_server, tmp_path: Path
) -> None:
    """Each outage of the jacmon server starts its retry delay at the poll interval again."""
    cmd, env = lrs_ingest_command(ralph, running_server.url)
    follower = await start_follower(cmd, env, tmp_path, poll_interval_s=1)
    notices: list[str] = []

    async def read_notices() -> None:
        while line := await follower.stderr.readline():
            notices.append(line.decode())

    reader = asyncio.create_task(read_notices())
    posted: list[str] = []
    try:
        for outage in range(2):
            posted.extend(ralph.post([mixed_statement(100 + outage)[0]]))
            await wait_for(
                lambda posted=posted: len(read_events(running_server.db_path)) == len(posted),
                "the follower to deliver what the LRS has",
            )
            seen = len(notices)
            await running_server.stop()
            # A new statement makes the follower send, and find the server gone.
            posted.extend(ralph.post([mixed_statement(200 + outage)[0]]))
            await wait_for(
                lambda seen=seen: any("server away" in n for n in notices[seen:]),
                "the follower to notice the outage",
            )
            first = next(n for n in notices[seen:] if "server away" in n)
            assert "retrying in 1s" in first, notices
            await running_server.start()
        await wait_for(
            lambda: len(read_events(running_server.db_path)) == len(posted),
            "the follower to deliver what arrived during the outage",
        )
        follower.send_signal(signal.SIGINT)
        out = await asyncio.wait_for(follower.stdout.read(), 60)
        await asyncio.wait_for(follower.wait(), 60)
    finally:
        if follower.returncode is None:
            follower.kill()
            await follower.wait()
        reader.cancel()
    assert follower.returncode == 0, notices
    assert json.loads(out)["outages"] == 2


async def test_poison_lines_are_reported_by_line_and_the_rest_is_sent(
    app, running_server, tmp_path: Path
) -> None:
    poison = [
        '{"id": "p1", "type": [], "ts": "2026-01-05T10:00:00Z", "learner": "x"}',
        '{"id": "p2", "type": {"a": 1}, "ts": "2026-01-05T10:00:00Z", "learner": "x"}',
        '{"id": "p3", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "\\ud800"}',
        '{"id": "p4", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "x", "n": NaN}',
        '{"id": "p5", "type": "activity", "ts": "2026-01-05T10:00:00Z", "learner": "x", '
        '"duration_s": 1' + "0" * 400 + "}",
        "[" * 100_000 + "]" * 100_000,
        "not json",
        '["an", "array"]',
        '{"id": "p9", "type": "activity", "ts": "2099-01-01T00:00:00Z", "learner": "x"}',
    ]
    lines: list[str] = []
    for i, bad in enumerate(poison):
        lines += [json.dumps(event(i)), bad]
    lines.append(json.dumps(event(99)))
    source = tmp_path / "poison.jsonl"
    source.write_text("\n".join(lines) + "\n")
    result = await invoke(app, [str(source), "--server", running_server.url, "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == len(poison) + 1
    wheres = [r["where"] for r in summary["rejected"]]
    assert wheres == [f"{source}:{2 * (i + 1)}" for i in range(len(poison))]
    errors = [r["error"] for r in summary["rejected"]]
    assert "field 'type'" in errors[0] and "field 'type'" in errors[1]
    assert "field 'learner'" in errors[2] and "field 'n'" in errors[3]
    assert "field 'duration_s'" in errors[4] and "nested too deeply" in errors[5]
    assert "not valid JSON" in errors[6] and "expected a JSON object" in errors[7]
    assert "field 'ts'" in errors[8] and "ahead of the server's clock" in errors[8]
    assert sorted(e["id"] for e in read_events(running_server.db_path)) == sorted(
        [f"e{i}" for i in range(len(poison))] + ["e99"]
    )


@pytest.mark.parametrize("layout", ["array", "jsonl"])
async def test_xapi_statements_without_format_xapi_get_the_hint(
    app, running_server, tmp_path: Path, layout: str
) -> None:
    statements = [mixed_statement(i, timestamp=TS)[0] for i in range(3)]
    source = tmp_path / f"statements.{layout}"
    if layout == "array":
        source.write_text(json.dumps(statements, indent=2))
    else:
        source.write_text("".join(json.dumps(s) + "\n" for s in statements))
    result = await invoke(app, [str(source), "--server", running_server.url, "--json"])
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["accepted"] == 0
    reasons = [r["error"] for r in summary["rejected"]]
    expected = "array; add --format xapi" if layout == "array" else "statement; add --format xapi"
    assert reasons and all(expected in reason for reason in reasons), reasons
    # A pretty-printed array is one rejection, not one per line.
    assert len(summary["rejected"]) == (1 if layout == "array" else 3)
    assert read_events(running_server.db_path) == []


async def test_native_events_given_with_format_xapi_get_the_hint(
    app, running_server, tmp_path: Path
) -> None:
    source = tmp_path / "events.jsonl"
    source.write_text("".join(json.dumps(event(i)) + "\n" for i in range(3)))
    result = await invoke(
        app, [str(source), "--format", "xapi", "--server", running_server.url, "--json"]
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert len(summary["rejected"]) == 3
    for rejection in summary["rejected"]:
        assert "looks like a native jacmon event; leave out --format xapi" in rejection["error"]
