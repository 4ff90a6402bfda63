"""``jacmon sim`` as a producer: ``--out -`` piped into ``jacmon ingest -``, and its messages."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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
