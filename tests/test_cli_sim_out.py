"""``jacmon sim`` as a producer: ``--out -`` piped into ``jacmon ingest -``, and its messages."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.sim.stream import is_behind

pytestmark = pytest.mark.usefixtures("isolated_env")

# The real CLI, as the console script runs it.
CLI = [sys.executable, "-c", "from jacmon.cli import main; main()"]


async def run_pipeline(server_url: str, cwd: Path, *sim_args: str) -> tuple[dict, dict]:
    """``jacmon sim --out - ARGS --json | jacmon ingest - --json``: (sim, ingest) summaries."""
    read_fd, write_fd = os.pipe()
    sim = await asyncio.create_subprocess_exec(
        *CLI, "sim", "--out", "-", *sim_args, "--json",
        stdout=write_fd, stderr=subprocess.PIPE, cwd=cwd,
    )  # fmt: skip
    ingest = await asyncio.create_subprocess_exec(
        *CLI, "ingest", "-", "--server", server_url, "--json",
        stdin=read_fd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd,
    )  # fmt: skip
    os.close(read_fd)
    os.close(write_fd)
    sim_err = (await sim.communicate())[1]
    ingest_out, ingest_err = await ingest.communicate()
    assert sim.returncode == 0, sim_err.decode()
    assert ingest.returncode == 0, ingest_err.decode()
    return json.loads(sim_err), json.loads(ingest_out)


async def test_sim_out_dash_json_pipes_into_ingest_with_the_summary_on_stderr(
    running_server, tmp_path
):
    args = ("--learners", "5", "--days", "1", "--seed", "1")
    written, ingested = await run_pipeline(running_server.url, tmp_path, *args)
    assert written["written"] > 0 and written["file"] == "-"
    # Every line was an event: nothing like a JSON summary reached ingest.
    assert ingested["read"] == written["written"]
    assert (ingested["accepted"], ingested["rejected"]) == (written["written"], [])


async def test_the_same_seed_and_start_give_the_same_events_so_reingesting_is_harmless(
    running_server, tmp_path
):
    args = ("--learners", "5", "--days", "1", "--seed", "4", "--start", "2026-11-01T00:00:00Z")
    _, first = await run_pipeline(running_server.url, tmp_path, *args)
    _, second = await run_pipeline(running_server.url, tmp_path, *args)
    assert first["accepted"] > 0 and first["duplicates"] == 0
    assert (second["accepted"], second["duplicates"]) == (0, first["accepted"])


async def sim_json(*args: str) -> tuple[int, dict, str]:
    """``jacmon sim ARGS --json`` in a thread: (exit code, summary, stderr)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, ["sim", *args, "--json"])
    return result.exit_code, json.loads(result.stdout), result.stderr


async def test_an_events_bounded_fast_run_sends_nothing_dated_after_now(running_server):
    # 200 sparse events at 36,000x: from a start of "now minus 200 / rate seconds"
    # the simulated clock ran hours past the present and the server rejected them.
    before = datetime.now(UTC)
    code, summary, _ = await sim_json(
        "--server", running_server.url, "--learners", "50", "--seed", "21",
        "--speed", "36000", "--rate", "2000", "--events", "200", "--history-days", "0.5",
    )  # fmt: skip
    assert code == 0, summary
    assert (summary["sent"], summary["accepted"], summary["rejected"]) == (200, 200, [])
    assert datetime.fromisoformat(summary["sim_to"]) <= datetime.now(UTC)
    assert datetime.fromisoformat(summary["sim_from"]) < before
    # The events bound stopped it; nothing was held back by the rate.
    assert (summary["stopped"], summary["behind"]) == ("events", False)


async def test_a_start_in_the_future_is_refused_before_sending(running_server):
    result = await asyncio.to_thread(
        CliRunner().invoke,
        app,
        ["sim", "--server", running_server.url, "--start", "2100-01-01T00:00:00Z"],
    )
    assert result.exit_code == 2, result.output
    assert "--start has value '2100-01-01T00:00:00Z', which is in the future" in flat(result.stderr)


def test_pacing_lag_is_not_behind_the_clock_but_a_rate_that_cannot_keep_up_is():
    # The README's run: 600x, 300 events/s in batches of 75 (4 a second). A burst
    # due at the end leaves it up to a batch interval (150 simulated s) behind.
    pacing = {"speed": 600.0, "rate": 300.0, "batch_size": 75}
    assert not is_behind(150.0, **pacing)
    assert not is_behind(400.0, **pacing)
    assert is_behind(20 * 60.0, **pacing)
    # A fast clock's lag of a few simulated minutes is milliseconds of wall time.
    assert not is_behind(180.0, speed=36000.0, rate=2000.0, batch_size=200)


async def test_the_readme_run_shape_keeps_up_without_the_behind_warning(running_server):
    # The README's 'jacmon sim --learners 500 --rate 300 --speed 600 --duration 120',
    # scaled to a short test: the same speed and rate per learner of history.
    args = ["sim", "--server", running_server.url, "--learners", "100", "--rate", "300"]
    args += ["--speed", "600", "--duration", "8"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    assert "behind the clock" not in result.stderr
    assert "0 rejected" in flat(result.stderr)


async def test_progress_is_not_printed_without_a_terminal(running_server):
    args = ["sim", "--server", running_server.url, "--learners", "20", "--duration", "3"]
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 0, result.output
    # The summary alone: two lines, whatever the number of batches.
    lines = result.stderr.strip().splitlines()
    assert len(lines) <= 4, lines
    assert flat(result.stderr).startswith("sent ")
