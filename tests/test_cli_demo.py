"""``jacmon demo``: one headless run end to end, and the usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app

TASKS = ("performance", "engagement", "daily_analytics", "alert_cleanup", "velocity")

runner = CliRunner()


def test_headless_demo_stores_events_raises_alerts_and_runs_every_task(tmp_path):
    db = tmp_path / "demo.db"
    # Takes ~25 s: a 20 s run plus start and summary.
    result = runner.invoke(
        app, ["demo", "--headless", "--duration", "20", "--json", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["events_stored"] > 0
    assert summary["alerts_raised"] >= 1
    assert summary["db"] == str(db)
    assert summary["url"].startswith("ws://127.0.0.1:")
    assert summary["wall_s"] >= 20
    assert summary["simulated_days"] > 0
    for task in TASKS:
        outcomes = summary["task_runs"].get(task, {})
        assert outcomes.get("success", 0) >= 1, (task, summary["task_runs"])
    assert db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--headless"], "--headless needs --duration SECONDS, so the demo ends by itself"),
        (["--headless", "--duration", "0"], "--duration has value 0.0; expected seconds above 0"),
        (["--headless", "--duration", "-3"], "--duration has value -3.0; expected seconds above 0"),
        (["--learners", "0"], "--learners has value 0; expected at least 1"),
        (["--speed", "0"], "--speed has value 0.0; expected a number above 0"),
    ],
)
def test_usage_errors_exit_2(tmp_path, args, message):
    result = runner.invoke(app, ["demo", *args, "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 2, result.output
    assert f"error: {message}" in flat(result.stderr)
    assert not (tmp_path / "demo.db").exists()


def test_without_a_terminal_the_dashboard_demo_says_to_use_headless(tmp_path):
    # CliRunner's stdin and stdout are not a terminal.
    result = runner.invoke(app, ["demo", "--db", str(tmp_path / "demo.db")])
    assert result.exit_code == 2, result.output
    assert "needs a terminal" in flat(result.stderr)
    assert "use 'jacmon demo --headless --duration SECONDS'" in flat(result.stderr)
    assert not (tmp_path / "demo.db").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_a_stop_signal_removes_the_temporary_database(tmp_path, signum):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "jacmon", "demo", "--headless", "--duration", "120"]
    cmd += ["--learners", "5"]
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path
    ) as proc:
        try:
            # Wait (bounded) until the demo's database exists in its temporary directory.
            deadline = time.monotonic() + 60
            while not list(tmp.glob("jacmon-demo-*/demo.db")):
                assert proc.poll() is None, proc.stderr.read().decode()
                assert time.monotonic() < deadline, "the demo never created its database"
                time.sleep(0.1)
            proc.send_signal(signum)
            _out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 128 + signum, err.decode()
    assert list(tmp.iterdir()) == []
