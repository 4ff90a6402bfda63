"""Refusals before serving and hints that name the files used: run as written, they work.

Each case runs the real ``jacmon`` in its own process, as an operator would.
"""

from __future__ import annotations

import pytest
from support import flat, run_jacmon

pytestmark = pytest.mark.usefixtures("isolated_env")


jacmon = run_jacmon


def test_serve_on_a_busy_port_fails_before_creating_the_database(tmp_path, busy_port):
    db = tmp_path / "new.db"
    result = jacmon("serve", "--db", str(db), "--port", str(busy_port))
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{busy_port}: the port is in use" in flat(result.stderr)
    assert "Traceback" not in result.stderr
    assert not db.exists()
    assert list(tmp_path.iterdir()) == []


def test_the_no_tokens_refusal_names_the_database_and_following_it_works(tmp_path):
    db = tmp_path / "lab.db"
    refused = jacmon("serve", "--host", "0.0.0.0", "--port", "0", "--db", str(db))
    assert refused.returncode != 0
    hint = f"'jacmon token create --role admin --db {db}'"
    assert hint in flat(refused.stderr), refused.stderr
    # Run the hint as shown: then the check finds the token in the same database.
    created = jacmon(*hint.strip("'").split()[1:])
    assert created.returncode == 0, created.stderr
    check = jacmon("serve", "--check", "--host", "0.0.0.0", "--db", str(db))
    assert check.returncode == 0, check.stderr


def test_hints_repeat_the_config_file_that_named_the_database(tmp_path):
    db = tmp_path / "configured.db"
    config = tmp_path / "jacmon.toml"
    config.write_text(f'[server]\ndb = "{db}"\nhost = "0.0.0.0"\n')
    check = jacmon("serve", "--check", "--config", str(config))
    assert f"'jacmon token create --role admin --config {config} --db {db}'" in flat(check.stderr)
    for command in (("alerts",), ("catalog", "show"), ("tasks",), ("silence", "list")):
        missing = jacmon(*command, "--config", str(config))
        assert missing.returncode == 2, (command, missing.stderr)
        assert f"'jacmon serve --config {config}'" in flat(missing.stderr), command
    assert not db.exists()
