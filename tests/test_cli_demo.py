"""``jacmon demo``: one headless run end to end, and the usage errors."""

from __future__ import annotations

import json

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
