"""``jacmon run-task``, ``jacmon tasks`` and ``jacmon alerts`` through the real CLI app."""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
from pathlib import Path

from support import flat
from test_tasks_fixtures import NOW, ago, ingest, score
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.store import Store

runner = CliRunner()
AT = ["--at", NOW.isoformat()]


def make_db(path: Path) -> Path:
    async def build() -> None:
        store = await Store.open(path)
        try:
            await ingest(
                store,
                [
                    score("a", ago(2), 40),
                    score("a", ago(1), 45),
                    score("b", ago(2), 30),
                    score("b", ago(1), 35),
                    score("c", ago(1), 90),
                ],
            )
        finally:
            await store.close()

    asyncio.run(build())
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def invoke(*args: str, env: dict[str, str] | None = None):
    # A wide terminal: tables and messages on one line each.
    result = runner.invoke(app, list(args), env={"COLUMNS": "250", **(env or {})})
    result.text = " ".join(result.output.split())
    return result


def test_dry_run_leaves_the_database_unchanged_and_shows_what_a_real_run_does(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    before = digest(db)
    dry = invoke("run-task", "performance", "--dry-run", "--json", "--db", str(db), *AT)
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.stdout)
    assert planned["dry_run"] is True and planned["outcome"] == "success"
    assert planned["run_id"] is None
    assert digest(db) == before
    wal = db.with_name(db.name + "-wal")
    assert not wal.exists() or wal.stat().st_size == 0
    would = sorted((a["action"], a["rule"], a["learner"]) for a in planned["alerts"])
    assert would == [
        ("fire", "consecutive_low_scores", "a"),
        ("fire", "consecutive_low_scores", "b"),
    ]

    real = invoke("run-task", "performance", "--json", "--db", str(db), *AT)
    assert real.exit_code == 0, real.output
    done = json.loads(real.stdout)
    assert sorted((a["action"], a["rule"], a["learner"]) for a in done["alerts"]) == would
    assert all(isinstance(a["alert_id"], int) for a in done["alerts"])
    assert digest(db) != before or wal.stat().st_size > 0

    listed = invoke("alerts", "--json", "--db", str(db))
    assert listed.exit_code == 0, listed.output
    assert sorted(a["learner"] for a in json.loads(listed.stdout)) == ["a", "b"]


def test_human_output_lists_the_alert_changes(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    result = invoke("run-task", "performance", "--dry-run", "--db", str(db), *AT)
    assert result.exit_code == 0, result.output
    assert "dry run: nothing written" in result.stdout
    assert "alerts would: fire 2" in result.stdout
    assert "consecutive_low_scores warning a: the latest 2 scores are below 60" in result.stdout


def test_unknown_task_and_bad_usage_exit_2(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    result = invoke("run-task", "reports", "--db", str(db))
    assert result.exit_code == 2
    assert "unknown task 'reports'" in result.text
    assert "performance, engagement, daily_analytics, alert_cleanup, velocity" in result.text
    result = invoke("run-task", "performance", "--db", str(db), "--at", "yesterday")
    assert result.exit_code == 2 and "--at has value 'yesterday'" in result.text
    result = invoke(
        "run-task", "performance", "--db", str(db), env={"JACMON_TASKS__TIMEZONE": "Nowhere/City"}
    )
    assert result.exit_code == 2 and "'tasks.timezone' has value 'Nowhere/City'" in result.text


def test_a_failing_task_exits_1_and_is_recorded(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    with sqlite3.connect(db) as conn:
        conn.execute("DROP TABLE path_velocity")
    result = invoke("run-task", "velocity", "--json", "--db", str(db), *AT)
    assert result.exit_code == 1
    out = json.loads(result.stdout)
    assert out["outcome"] == "error" and "path_velocity" in out["error"]
    listed = json.loads(invoke("tasks", "--json", "--db", str(db)).stdout)
    velocity = next(t for t in listed if t["task"] == "velocity")
    assert velocity["last_run"]["outcome"] == "error"


def test_tasks_lists_schedule_zone_last_and_next_run(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    assert invoke("run-task", "engagement", "--db", str(db), *AT).exit_code == 0
    env = {"JACMON_TASKS__TIMEZONE": "Europe/Berlin", "JACMON_TASKS__VELOCITY__ENABLED": "false"}
    result = invoke("tasks", "--json", "--db", str(db), env=env)
    assert result.exit_code == 0, result.output
    rows = {row["task"]: row for row in json.loads(result.stdout)}
    assert list(rows) == [
        "performance",
        "engagement",
        "daily_analytics",
        "alert_cleanup",
        "velocity",
    ]
    assert rows["daily_analytics"]["cron"] == "0 2 * * *"
    assert rows["daily_analytics"]["timezone"] == "Europe/Berlin"
    # 02:00 in Berlin, in UTC like every --json time: 01:00Z in winter, 00:00Z in summer.
    assert rows["daily_analytics"]["next_run"].endswith(("T01:00:00Z", "T00:00:00Z"))
    assert rows["engagement"]["last_run"]["outcome"] == "success"
    assert rows["engagement"]["last_run"]["trigger"] == "manual"
    assert rows["performance"]["last_run"] is None
    assert rows["velocity"]["enabled"] is False and rows["velocity"]["next_run"] is None
    human = invoke("tasks", "--db", str(db), env=env)
    assert human.exit_code == 0 and "Europe/Berlin" in human.stdout


def test_alerts_list_and_acknowledge(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    assert invoke("run-task", "performance", "--db", str(db), *AT).exit_code == 0
    alerts = json.loads(invoke("alerts", "--json", "--db", str(db)).stdout)
    target = next(a for a in alerts if a["learner"] == "a")

    acked = invoke(
        "alerts", "ack", str(target["id"]), "--note", "on it", "--by", "maria",
        "--expires-in", "2h", "--db", str(db), "--json",
    )  # fmt: skip
    assert acked.exit_code == 0, acked.output
    change = json.loads(acked.stdout)
    assert change["change"] == "acknowledged"
    assert change["alert"]["acknowledged"]["by"] == "maria"
    assert change["alert"]["acknowledged"]["note"] == "on it"
    assert change["alert"]["acknowledged"]["expires_at"] is not None

    shown = invoke("alerts", "--db", str(db))
    assert shown.exit_code == 0 and "maria: on it" in shown.stdout

    # A second acknowledgement keeps the first: its note is in the history.
    again = invoke(
        "alerts", "ack", str(target["id"]), "--note", "called", "--by", "li", "--db", str(db),
        "--json",
    )  # fmt: skip
    history = json.loads(again.stdout)["alert"]["acknowledgements"]
    assert [(a["by"], a["note"]) for a in history] == [("maria", "on it"), ("li", "called")]
    shown = invoke("alerts", "--db", str(db))
    assert "li: called (+1 earlier)" in flat(shown.stdout)
    assert (
        json.loads(invoke("alerts", "--state", "resolved", "--json", "--db", str(db)).stdout) == []
    )

    missing = invoke("alerts", "ack", "999", "--by", "maria", "--db", str(db))
    assert missing.exit_code == 1 and "alert 999 does not exist" in missing.text
    bad = invoke("alerts", "--state", "open", "--db", str(db))
    assert bad.exit_code == 2 and "--state has value 'open'" in bad.text
    bad = invoke("alerts", "ack", str(target["id"]), "--expires-in", "soon", "--db", str(db))
    assert bad.exit_code == 2 and "--expires-in has value 'soon'" in bad.text


def test_a_misspelt_task_gets_the_closest_name(tmp_path):
    db = make_db(tmp_path / "jacmon.db")
    result = invoke("run-task", "daily_analytic", "--db", str(db))
    assert result.exit_code == 2
    assert "Did you mean daily_analytics?" in result.text
    assert "Valid tasks: performance, engagement" in result.text


def test_tasks_and_run_task_refuse_a_missing_database_and_create_nothing(tmp_path):
    missing = tmp_path / "nowhere.db"
    for args in (("tasks",), ("tasks", "--json"), ("run-task", "engagement")):
        result = invoke(*args, "--db", str(missing))
        assert result.exit_code == 2, (args, result.output)
        assert f"database {missing} does not exist" in result.text
        assert f"'jacmon serve --db {missing}'" in result.text
    assert not missing.exists()


def test_the_missing_database_hint_repeats_the_config_that_named_it(tmp_path):
    missing = tmp_path / "configured.db"
    config = tmp_path / "jacmon.toml"
    config.write_text(f'[server]\ndb = "{missing}"\n')
    result = invoke("tasks", "--config", str(config))
    assert result.exit_code == 2
    assert f"'jacmon serve --config {config}'" in result.text
