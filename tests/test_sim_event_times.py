"""``jacmon sim`` into a server on the wall clock: its events stay within the server's time bounds.

The server rejects events dated more than ``server.max_clock_skew_s`` ahead of
its clock; a simulation at 36,000x that started now would be hours ahead
within a second.
"""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from jacmon.cli import app


async def test_fast_simulation_into_a_wall_clock_server_is_not_rejected(running_server) -> None:
    args = ["sim", "--server", running_server.url, "--learners", "10", "--seed", "3"]
    args += ["--speed", "36000", "--history-days", "0.05", "--rate", "2000", "--duration", "2"]
    # The command runs its own event loop: give it a thread.
    result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index("{") :])
    assert summary["sent"] > 0
    assert (summary["accepted"], summary["rejected"]) == (summary["sent"], [])
