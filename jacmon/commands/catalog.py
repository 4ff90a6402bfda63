"""``jacmon catalog load|show``: the paths and ordered modules progress is measured against."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from jacmon.commands.common import (
    ConfigOption,
    DbOption,
    existing_db,
    handle_errors,
    print_json,
    resolve_db,
    run,
    with_store,
)
from jacmon.store import Store
from jacmon.store.catalog import CatalogPath, parse_catalog_file

err_console = Console(stderr=True, soft_wrap=True)


async def _load_and_check(store: Store, paths: list[CatalogPath]) -> dict[str, list[str]]:
    """Load ``paths`` and return the modules seen in events that they leave out."""
    # Progress trails ingest by the projector's lag (or a stopped server's backlog):
    # fold every committed event first, so no module with progress goes unnamed.
    await store.catch_up()
    left_out = await store.modules_left_out(paths)
    await store.load_catalog(paths)
    return left_out


def _warn_left_out(left_out: dict[str, list[str]]) -> None:
    for path, modules in left_out.items():
        err_console.print(
            f"[yellow]warning:[/] path {escape(path)}: learners have progress on "
            f"{len(modules)} module(s) this catalog leaves out ({escape(', '.join(modules))}); "
            "that progress is kept but no longer counts towards the path's percent",
            highlight=False,
        )


catalog_app = typer.Typer(
    help="Load or show the catalog of paths and modules.", no_args_is_help=True
)


@catalog_app.command("load")
@handle_errors
def load(
    file: Path = typer.Argument(..., help="TOML or JSON file with [[paths]] id, title, modules."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Load a catalog: its paths' module lists become the truth for progress %."""
    paths = parse_catalog_file(file)

    left_out = run(with_store(resolve_db(db, config), lambda store: _load_and_check(store, paths)))
    _warn_left_out(left_out)
    modules = sum(len(p.modules) for p in paths)
    typer.echo(f"loaded {len(paths)} paths with {modules} modules from {file}")


@catalog_app.command("show")
@handle_errors
def show(
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Show the catalog: each path's modules, in order, and where they came from."""

    rows = run(
        with_store(existing_db(db, config), lambda store: store.catalog_rows(), readonly=True)
    )
    if json_output:
        print_json(rows)
        return
    table = Table("path", "#", "module", "title", "source")
    for r in rows:
        table.add_row(r["path"], str(r["position"]), r["module"], r["title"] or "-", r["source"])
    Console().print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(catalog_app, name="catalog")
