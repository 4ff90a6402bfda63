"""The ``jacmon`` command line: parse, call, print. Each command lives in jacmon/commands/."""

from __future__ import annotations

import typer

from jacmon import __version__
from jacmon.commands import register_all
from jacmon.commands.help import CONTEXT_SETTINGS, JacmonGroup

app = typer.Typer(
    name="jacmon",
    help="Live monitor for learning platforms: serve streams, watch them, feed them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: brackets in help text ([[paths]], [lrs]) are text, not Rich markup.
    rich_markup_mode=None,
    cls=JacmonGroup,
    context_settings=CONTEXT_SETTINGS,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"jacmon {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Live monitor for learning platforms."""


register_all(app)


def main() -> None:
    """Console-script entry point."""
    app()
