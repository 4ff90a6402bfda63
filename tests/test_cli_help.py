"""``jacmon ... --help``: every command's help renders as written, with readable placeholders."""

from __future__ import annotations

import re

import pytest
import typer
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app

pytestmark = pytest.mark.usefixtures("isolated_env")


def command_paths(command, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and sub-command of the real app, as argv prefixes."""
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths.extend(command_paths(sub, (*prefix, name)))
    return paths


ALL_COMMANDS = command_paths(typer.main.get_command(app))


def help_text(*argv: str) -> str:
    result = CliRunner().invoke(app, list(argv), env={"COLUMNS": "100"})
    assert result.exit_code == 0, (argv, result.output)
    return result.output


def test_the_walk_finds_every_command():
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert {"serve", "alerts ack", "catalog load", "token create", "sim", "demo"} <= names


@pytest.mark.parametrize("argv", ALL_COMMANDS, ids=lambda p: " ".join(p) or "jacmon")
def test_help_and_h_render_without_python_types_or_slips(argv):
    text = help_text(*argv, "--help")
    assert help_text(*argv, "-h") == text
    assert "Usage: jacmon" in text
    # Typer's Python-type metavars and reprs.
    for wrong in ("<bool>", "<str>", "<int", "<float", "<path>", "<list", "None", "[]"):
        assert wrong not in text, (argv, wrong, text)
    assert "[default: None]" not in text
    assert " ;" not in text and " ." not in text and " ," not in text
    # Defaults shown one way: "[default: X]", never "(default X)" or "(default: X)".
    assert not re.search(r"\(default\b", text), text
    # "{file}": Typer's own usage style for a required argument; ours is FILE.
    assert not re.search(r"\{\w+\}", text), text


def test_square_brackets_in_help_are_text_not_markup():
    assert "[[paths]]" in help_text("catalog", "load", "--help")
    assert "[lrs]" in help_text("ingest", "--help")
    assert "[client] server" in help_text("dashboard", "--help")


def test_values_have_named_placeholders_and_one_default_style():
    serve = help_text("serve", "-h")
    assert "--db FILE" in serve and "--port PORT" in serve
    assert "[default: 8765]" in serve
    sim = flat(help_text("sim", "-h"))
    # A float default reads as typed, a config default like a known one, both with the range.
    assert "[default: 600; x>=0.001]" in sim
    assert "[default: 60; x>=0.001]" in sim
    assert "Usage: jacmon catalog load [OPTIONS] FILE" in help_text("catalog", "load", "-h")
    assert "Usage: jacmon ingest [OPTIONS] [SOURCE]" in help_text("ingest", "-h")
