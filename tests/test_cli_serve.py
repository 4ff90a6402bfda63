"""``jacmon serve --check``: the plan, the problems and the exit codes, through the real CLI."""

from __future__ import annotations

import asyncio
import json

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.events import validate_event
from jacmon.store import Store

TASKS = ("performance", "engagement", "daily_analytics", "alert_cleanup", "velocity")

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_env", "restore_logging")


def check(*args: str):
    return runner.invoke(app, ["serve", "--check", *args])


def test_check_on_a_fresh_database(tmp_path):
    db = tmp_path / "fresh.db"
    result = check("--db", str(db))
    assert result.exit_code == 0, result.output
    assert not db.exists()  # a check creates nothing
    out = result.stdout
    assert "db_state: does not exist yet; serve creates it" in out
    assert "listen: ws://127.0.0.1:8765" in out
    assert f"db: {db}" in out
    assert "events_stored: 0" in out
    assert "tokens_required: no" in out
    assert "tasks:" in out
    lines = out.splitlines()
    task_lines = [line.strip() for line in lines[lines.index("tasks:") + 1 :]]
    assert [line.split(":")[0] for line in task_lines] == list(TASKS)
    assert "performance: */15 * * * * (UTC), next " in out
    assert result.stderr.strip().endswith("ok")


def test_check_json(tmp_path):
    db = tmp_path / "fresh.db"
    result = check("--db", str(db), "--port", "9100", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["problems"] == []
    plan = report["plan"]
    assert plan["listen"] == "ws://127.0.0.1:9100"
    assert plan["db"] == str(db)
    assert plan["events_stored"] == 0
    assert plan["db_state"] == "does not exist yet; serve creates it"
    assert plan["active_tokens"] == 0
    assert plan["tokens_required"] is False
    assert plan["config_file"] is None
    assert plan["streams"] == [
        "/ws/dashboard",
        "/ws/alerts",
        "/ws/metrics",
        "/ws/activity",
        "/ws/ingest",
    ]
    assert plan["push"] == {
        "xapi": "http://127.0.0.1:9100/xAPI/",
        "caliper": "http://127.0.0.1:9100/caliper",
        "max_body_bytes": 32 * 1024 * 1024,
        "max_records": 25_000,
    }
    assert [t["task"] for t in plan["tasks"]] == list(TASKS)


def test_off_loopback_without_tokens_is_a_problem(tmp_path):
    result = check("--db", str(tmp_path / "j.db"), "--host", "0.0.0.0")
    assert result.exit_code == 1, result.output
    assert "listen: ws://0.0.0.0:8765" in result.stdout
    assert "tokens_required: yes" in result.stdout
    # The hint names the database that was used, so running it as shown works.
    assert (
        "problem: serving on 0.0.0.0 needs tokens and none exist: create one with "
        f"'jacmon token create --role admin --db {tmp_path / 'j.db'}', or pass --insecure"
    ) in result.stderr
    assert "1 problem(s)" in result.stderr


def test_off_loopback_json_lists_the_problem(tmp_path):
    result = check("--db", str(tmp_path / "j.db"), "--host", "0.0.0.0", "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["ok"] is False
    assert len(report["problems"]) == 1
    assert report["problems"][0].startswith("serving on 0.0.0.0 needs tokens and none exist")


def test_off_loopback_is_fine_with_insecure_or_a_token(tmp_path):
    db = str(tmp_path / "j.db")
    insecure = check("--db", db, "--host", "0.0.0.0", "--insecure", "--json")
    assert insecure.exit_code == 0, insecure.output
    assert json.loads(insecure.stdout)["plan"]["tokens_required"] is False

    created = runner.invoke(app, ["token", "create", "--role", "admin", "--db", db])
    assert created.exit_code == 0, created.output
    with_token = check("--db", db, "--host", "0.0.0.0", "--json")
    assert with_token.exit_code == 0, with_token.output
    plan = json.loads(with_token.stdout)["plan"]
    assert (plan["tokens_required"], plan["active_tokens"]) == (True, 1)


def test_require_tokens_on_loopback(tmp_path):
    result = check("--db", str(tmp_path / "j.db"), "--require-tokens")
    assert result.exit_code == 1, result.output
    assert "problem: serving on 127.0.0.1 needs tokens and none exist" in result.stderr


def test_config_file_values_are_used(tmp_path):
    config = tmp_path / "jacmon.toml"
    db = tmp_path / "from-config.db"
    config.write_text(f'[server]\nport = 9300\ndb = "{db}"\n')
    result = check("--config", str(config), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["listen"] == "ws://127.0.0.1:9300"
    assert plan["db"] == str(db)
    assert plan["config_file"] == str(config)
    # A flag beats the file.
    flagged = check("--config", str(config), "--port", "9400", "--json")
    assert json.loads(flagged.stdout)["plan"]["listen"] == "ws://127.0.0.1:9400"


def test_env_values_are_used(tmp_path, monkeypatch):
    monkeypatch.setenv("JACMON_PORT", "9500")
    monkeypatch.setenv("JACMON_DB", str(tmp_path / "env.db"))
    result = check("--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["listen"] == "ws://127.0.0.1:9500"
    assert plan["db"] == str(tmp_path / "env.db")


def test_bad_config_value_exits_2_with_the_message(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text('[server]\nport = "abc"\n')
    result = check("--config", str(config), "--db", str(tmp_path / "j.db"))
    assert result.exit_code == 2, result.output
    assert "error: Config 'server.port' has value 'abc'. Expected an integer." in flat(
        result.stderr
    )
    assert result.stdout == ""


def test_bad_env_value_exits_2(tmp_path, monkeypatch):
    monkeypatch.setenv("JACMON_SERVER__REPLAY_WINDOW", "lots")
    result = check("--db", str(tmp_path / "j.db"))
    assert result.exit_code == 2, result.output
    assert "Config 'server.replay_window' has value 'lots'. Expected an integer." in flat(
        result.stderr
    )


def test_missing_config_file_exits_2(tmp_path):
    missing = tmp_path / "nope.toml"
    result = check("--config", str(missing))
    assert result.exit_code == 2, result.output
    assert f"Config file {missing} does not exist; check the --config path." in flat(result.stderr)


def test_bad_log_level_exits_2(tmp_path):
    result = check("--db", str(tmp_path / "j.db"), "--log-level", "loud")
    assert result.exit_code == 2, result.output
    assert "Config 'server.log_level' has value 'loud'." in flat(result.stderr)


def test_missing_tls_key_is_a_problem(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("not checked here")
    result = check("--db", str(tmp_path / "j.db"), "--tls-cert", str(cert), "--json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["plan"]["listen"].startswith("wss://")
    assert report["problems"] == ["TLS needs both --tls-cert and --tls-key"]


def test_check_counts_stored_events(tmp_path):
    db = tmp_path / "j.db"

    async def fill() -> None:
        store = await Store.open(db)
        try:
            await store.ingest(
                [
                    validate_event(
                        {
                            "id": f"e{n}",
                            "type": "activity",
                            "ts": "2026-01-05T10:00:00Z",
                            "learner": "u1",
                        }
                    )
                    for n in range(3)
                ]
            )
        finally:
            await store.close()

    asyncio.run(fill())
    result = check("--db", str(db), "--json")
    assert json.loads(result.stdout)["plan"]["events_stored"] == 3


def test_unknown_table_error_shows_the_table_name(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text("[servre]\nport = 1\n")
    result = check("--config", str(config), "--db", str(tmp_path / "j.db"))
    assert result.exit_code == 2, result.output
    assert "unknown table [servre]" in flat(result.stderr)
    assert "Known: [server], [client], [web], [tasks], [lrs], [notify]." in flat(result.stderr)


def test_unknown_key_error_names_the_key(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text("[server]\nprot = 1\n")
    result = check("--config", str(config), "--db", str(tmp_path / "j.db"))
    assert result.exit_code == 2, result.output
    assert "Config 'server.prot' is not a setting." in flat(result.stderr)


def test_check_reads_an_existing_database_and_writes_nothing(tmp_path):
    db = tmp_path / "j.db"
    assert (
        CliRunner().invoke(app, ["token", "create", "--role", "admin", "--db", str(db)]).exit_code
        == 0
    )
    before = db.read_bytes()
    result = check("--db", str(db), "--host", "0.0.0.0", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["db_state"].startswith("schema ") and plan["db_state"].endswith(", current")
    assert plan["active_tokens"] == 1 and plan["tokens_required"] is True
    assert db.read_bytes() == before


def test_check_reports_a_file_that_is_not_a_database(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database, just text that is long enough to have a header" * 10)
    result = check("--db", str(notes))
    assert result.exit_code == 1
    assert f"database {notes} cannot be read" in " ".join(result.stderr.split())


def test_check_rejects_an_unknown_lrs_key_naming_the_known_ones(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text('[lrs]\nurl = "http://127.0.0.1:9/xAPI"\npasword = "x"\n')
    result = check("--config", str(config), "--db", str(tmp_path / "j.db"), "--json")
    assert result.exit_code == 1, result.output
    (problem,) = json.loads(result.stdout)["problems"]
    assert "'lrs.pasword' is not a setting" in problem and "password" in problem


def test_check_rejects_an_unknown_lrs_key_even_without_a_url(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text("[lrs]\nenabeld = false\n")
    result = check("--config", str(config), "--db", str(tmp_path / "j.db"), "--json")
    assert result.exit_code == 1, result.output
    assert "'lrs.enabeld' is not a setting" in json.loads(result.stdout)["problems"][0]


def test_allowed_origin_flag_repeats_and_is_checked(tmp_path):
    db = str(tmp_path / "j.db")
    result = check(
        "--db",
        db,
        "--allowed-origin",
        "https://a.example",
        "--allowed-origin",
        "http://b.example:8080",
        "--json",
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["allowed_origins"] == ["https://a.example", "http://b.example:8080"]
    bad = check("--db", db, "--allowed-origin", "https://a.example/app")
    assert bad.exit_code == 2 and "server.allowed_origins" in flat(bad.stderr)
