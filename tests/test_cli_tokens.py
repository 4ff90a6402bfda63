"""``jacmon token create|list|revoke`` through the real CLI on a real database file."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app

runner = CliRunner()


pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "tokens.db")


def token(*args: str):
    return runner.invoke(app, ["token", *args])


def create_json(db: str, *args: str) -> dict:
    result = token("create", "--db", db, "--json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def stored_hash(db: str, token_id: str) -> str:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT hash FROM tokens WHERE id = ?", (token_id,)).fetchone()[0]
    finally:
        conn.close()


def test_create_json_returns_the_token_once_and_stores_only_its_hash(db):
    record = create_json(db, "--role", "ingest", "--name", "lms")
    assert record["role"] == "ingest"
    assert record["name"] == "lms"
    assert record["learner"] is None
    assert record["can_ack"] is False
    assert record["revoked"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record["created"])
    token_id = record["id"]
    assert len(token_id) == 8
    int(token_id, 16)
    prefix, tid, secret = record["token"].split("_", 2)
    assert (prefix, tid) == ("jm", token_id)
    assert stored_hash(db, token_id) == hashlib.sha256(secret.encode()).hexdigest()
    listed = token("list", "--db", db, "--json")
    assert secret not in listed.stdout


def test_create_plain_prints_the_token_on_stdout_and_the_note_on_stderr(db):
    result = token("create", "--db", db, "--role", "viewer", "--learner", "u7", "--can-ack")
    assert result.exit_code == 0, result.output
    printed = result.stdout.strip()
    assert printed.startswith("jm_")
    assert len(printed.splitlines()) == 1
    token_id = printed.split("_")[1]
    assert flat(result.stderr) == (
        f"created viewer token {token_id} scoped to learner u7; it is shown only now"
    )
    (record,) = json.loads(token("list", "--db", db, "--json").stdout)
    assert (record["id"], record["learner"], record["can_ack"]) == (token_id, "u7", True)


def test_bad_role_exits_2_and_creates_nothing(db):
    result = token("create", "--db", db, "--role", "root")
    assert result.exit_code == 2, result.output
    assert "error: role 'root' is unknown; expected one of viewer, ingest, admin" in flat(
        result.stderr
    )
    assert result.stdout == ""
    assert json.loads(token("list", "--db", db, "--json").stdout) == []


def test_can_ack_on_admin_exits_2(db):
    result = token("create", "--db", db, "--role", "admin", "--can-ack")
    assert result.exit_code == 2, result.output
    assert "--can-ack applies to viewer tokens" in flat(result.stderr)


def test_role_is_required(db):
    result = token("create", "--db", db)
    assert result.exit_code == 2
    assert "--role" in result.output


def test_list_json_newest_first_without_secrets(db):
    first = create_json(db, "--role", "viewer")
    second = create_json(db, "--role", "admin", "--name", "ops")
    result = token("list", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert [r["id"] for r in records] == [second["id"], first["id"]]
    for record in records:
        assert set(record) == {"id", "role", "learner", "can_ack", "name", "created", "revoked"}


def test_list_table_shows_ids_and_state(db):
    record = create_json(db, "--role", "viewer", "--name", "wall")
    result = token("list", "--db", db)
    assert result.exit_code == 0, result.output
    assert record["id"] in result.stdout
    assert "viewer" in result.stdout
    assert "active" in result.stdout
    assert record["token"] not in result.stdout


def test_list_on_empty_database(db):
    result = token("list", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == []


def test_revoke_by_id_then_again(db):
    record = create_json(db, "--role", "viewer")
    result = token("revoke", record["id"], "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"revoked {record['id']}"
    (listed,) = json.loads(token("list", "--db", db, "--json").stdout)
    assert listed["revoked"] is not None
    assert "revoked" in token("list", "--db", db).stdout

    again = token("revoke", record["id"], "--db", db)
    assert again.exit_code == 2, again.output
    assert f"no active token with id '{record['id']}'; 'jacmon token list' shows the ids" in flat(
        again.stderr
    )


def test_revoke_by_full_token(db):
    record = create_json(db, "--role", "ingest")
    result = token("revoke", record["token"], "--db", db)
    assert result.exit_code == 0, result.output
    (listed,) = json.loads(token("list", "--db", db, "--json").stdout)
    assert listed["revoked"] is not None


def test_revoke_unknown_id_exits_2(db):
    create_json(db, "--role", "viewer")
    result = token("revoke", "deadbeef", "--db", db)
    assert result.exit_code == 2, result.output
    assert "no active token with id 'deadbeef'" in flat(result.stderr)
    (listed,) = json.loads(token("list", "--db", db, "--json").stdout)
    assert listed["revoked"] is None


def test_db_from_env(tmp_path, monkeypatch):
    path = tmp_path / "env.db"
    monkeypatch.setenv("JACMON_DB", str(path))
    result = token("create", "--role", "viewer", "--json")
    assert result.exit_code == 0, result.output
    assert path.exists()
    assert len(json.loads(token("list", "--json").stdout)) == 1
