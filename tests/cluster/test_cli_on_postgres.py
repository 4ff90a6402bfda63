"""The commands that open the store work on a shared PostgreSQL store (``JACMON_STORE``
or ``[server] store``), and never show its password."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from support import run_jacmon


def test_token_alerts_and_tasks_commands_use_the_postgresql_store(pg_dsn, tmp_path):
    env = {"JACMON_STORE": pg_dsn}
    password = urlsplit(pg_dsn).password
    created = run_jacmon("token", "create", "--role", "admin", "--json", env=env)
    assert created.returncode == 0, created.stderr
    token = json.loads(created.stdout)
    listed = run_jacmon("token", "list", "--json", env=env)
    assert [t["id"] for t in json.loads(listed.stdout)] == [token["id"]]
    task = run_jacmon("run-task", "velocity", "--dry-run", "--json", env=env)
    assert task.returncode == 0 and json.loads(task.stdout)["outcome"] == "success"
    assert run_jacmon("alerts", env=env).stdout.strip() == "no firing alerts"
    check = run_jacmon("serve", "--check", env=env)
    assert check.returncode == 0, check.stderr
    assert "active_tokens: 1" in check.stdout
    for result in (created, listed, task, check):
        assert password not in result.stdout + result.stderr
    # An explicit --db is the SQLite file, whatever the environment says.
    local = run_jacmon("token", "list", "--json", "--db", str(tmp_path / "j.db"), env=env)
    assert json.loads(local.stdout) == []
