"""``jacmon catalog load|show`` through the real CLI: TOML and JSON files, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app

runner = CliRunner()

TOML = """
[[paths]]
id = "python-101"
title = "Python basics"
modules = [{ id = "m1", title = "Variables" }, "m2", "m3"]

[[paths]]
id = "sql-101"
modules = ["s1"]
"""


pytestmark = pytest.mark.usefixtures("isolated_env")


@pytest.fixture
def db(tmp_path) -> str:
    return str(tmp_path / "catalog.db")


def catalog(*args: str):
    return runner.invoke(app, ["catalog", *args])


def show_json(db: str) -> list[dict]:
    result = catalog("show", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_load_toml_then_show(tmp_path, db):
    file = tmp_path / "catalog.toml"
    file.write_text(TOML)
    result = catalog("load", str(file), "--db", db)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"loaded 2 paths with 4 modules from {file}"
    assert show_json(db) == [
        {
            "path": "python-101",
            "path_title": "Python basics",
            "source": "file",
            "position": 1,
            "module": "m1",
            "title": "Variables",
        },
        {
            "path": "python-101",
            "path_title": "Python basics",
            "source": "file",
            "position": 2,
            "module": "m2",
            "title": None,
        },
        {
            "path": "python-101",
            "path_title": "Python basics",
            "source": "file",
            "position": 3,
            "module": "m3",
            "title": None,
        },
        {
            "path": "sql-101",
            "path_title": None,
            "source": "file",
            "position": 1,
            "module": "s1",
            "title": None,
        },
    ]


def test_load_json_and_reload_replaces_modules(tmp_path, db):
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps({"paths": [{"id": "p", "modules": ["a", "b"]}]}))
    result = catalog("load", str(file), "--db", db)
    assert result.exit_code == 0, result.output
    assert "loaded 1 paths with 2 modules" in result.stdout
    assert [(r["module"], r["position"]) for r in show_json(db)] == [("a", 1), ("b", 2)]

    file.write_text(json.dumps({"paths": [{"id": "p", "title": "P", "modules": ["c"]}]}))
    assert catalog("load", str(file), "--db", db).exit_code == 0
    assert [(r["path_title"], r["module"]) for r in show_json(db)] == [("P", "c")]


def test_show_table(tmp_path, db):
    file = tmp_path / "catalog.toml"
    file.write_text(TOML)
    assert catalog("load", str(file), "--db", db).exit_code == 0
    result = catalog("show", "--db", db)
    assert result.exit_code == 0, result.output
    for text in ("python-101", "Variables", "m2", "sql-101", "s1", "file"):
        assert text in result.stdout


def test_show_on_a_missing_database_exits_2(tmp_path):
    missing = tmp_path / "none.db"
    result = catalog("show", "--db", str(missing), "--json")
    # The same refusal as tasks, run-task and alerts: a usage error with the fix.
    assert result.exit_code == 2, result.output
    assert f"error: database {missing} does not exist; check --db" in flat(result.stderr)
    assert f"'jacmon serve --db {missing}'" in flat(result.stderr)
    assert not missing.exists()


def test_load_missing_file_exits_1(tmp_path, db):
    file = tmp_path / "absent.toml"
    result = catalog("load", str(file), "--db", db)
    assert result.exit_code == 1, result.output
    assert f"cannot read catalog file {file}: No such file or directory" in flat(result.stderr)


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.toml", "[[paths]\n", "cannot be parsed"),
        ("bad.json", "{", "cannot be parsed"),
        ("empty.json", '{"paths": []}', "has no 'paths' list"),
        ("nomods.json", '{"paths": [{"id": "p", "modules": []}]}', "('p') has no 'modules' list"),
        ("dup.json", '{"paths": [{"id": "p", "modules": ["a", "a"]}]}', "lists module 'a' twice"),
    ],
)
def test_bad_files_exit_1_and_load_nothing(tmp_path, db, name, text, message):
    file = tmp_path / name
    file.write_text(text)
    result = catalog("load", str(file), "--db", db)
    assert result.exit_code == 1, result.output
    assert message in flat(result.stderr)
    assert f"catalog file {file}" in flat(result.stderr)
    assert result.stdout == ""


def test_bad_file_leaves_the_loaded_catalog_alone(tmp_path, db):
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"paths": [{"id": "p", "modules": ["a"]}]}))
    assert catalog("load", str(good), "--db", db).exit_code == 0
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"paths": [{"id": "p", "modules": ["a", 5]}]}))
    result = catalog("load", str(bad), "--db", db)
    assert result.exit_code == 1
    assert "paths[0].modules[1] is 5" in flat(result.stderr)
    assert [r["module"] for r in show_json(db)] == ["a"]


def test_load_warns_about_modules_with_progress_the_catalog_leaves_out(tmp_path, db):
    import asyncio

    from jacmon.events import validate_event
    from jacmon.store import Store

    def progressed(i: int, module: str) -> dict:
        return {
            "id": f"e{i}",
            "type": "module.progressed",
            "ts": "2026-03-01T10:00:00Z",
            "learner": "ada",
            "path": "p",
            "module": module,
            "progress": 50,
        }

    async def fill() -> None:
        store = await Store.open(Path(db))
        try:
            events = [progressed(1, "a"), progressed(2, "b"), progressed(3, "z")]
            await store.ingest([validate_event(e) for e in events])
        finally:
            await store.close()

    asyncio.run(fill())
    file = tmp_path / "catalog.json"
    file.write_text(json.dumps({"paths": [{"id": "p", "modules": ["a"]}]}))
    result = catalog("load", str(file), "--db", db)
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert "path p: learners have progress on 2 module(s) this catalog leaves out (b, z)" in warning
    assert "no longer counts towards the path's percent" in warning
    # A catalog listing every module seen warns about nothing.
    file.write_text(json.dumps({"paths": [{"id": "p", "modules": ["a", "b", "z"]}]}))
    again = catalog("load", str(file), "--db", db)
    assert again.exit_code == 0 and again.stderr == ""
