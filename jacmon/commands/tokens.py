"""``jacmon token create|list|revoke``: manage access tokens (stored hashed)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from jacmon.commands.common import (
    ConfigOption,
    DbOption,
    handle_errors,
    print_json,
    resolve_db,
    run,
    with_store,
)
from jacmon.server.auth import ROLES, create_token, list_tokens, revoke_token

token_app = typer.Typer(help="Create, list and revoke access tokens.", no_args_is_help=True)


@token_app.command("create")
@handle_errors
def create(
    role: str = typer.Option(..., "--role", help=f"One of: {', '.join(ROLES)}."),
    learner: str | None = typer.Option(None, "--learner", help="Scope the token to one learner."),
    can_ack: bool = typer.Option(False, "--can-ack", help="Let a viewer acknowledge alerts."),
    name: str | None = typer.Option(None, "--name", help="A label to recognise it by."),
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Create a token and print it once (only its hash is stored)."""
    path = resolve_db(db, config)
    token, record = run(
        with_store(
            path,
            lambda s: create_token(s, role=role, learner=learner, can_ack=can_ack, name=name),
        )
    )
    if json_output:
        print_json(record | {"token": token})
        return
    typer.echo(token)
    typer.echo(
        f"created {role} token {record['id']}"
        + (f" scoped to learner {learner}" if learner else "")
        + "; it is shown only now",
        err=True,
    )


@token_app.command("list")
@handle_errors
def list_(
    json_output: bool = typer.Option(False, "--json", help="Print JSON for scripts."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """List tokens (ids, roles, scope; never the secrets)."""
    records = run(with_store(resolve_db(db, config), lambda s: list_tokens(s)))
    if json_output:
        print_json(records)
        return
    table = Table("id", "role", "learner", "can ack", "name", "state")
    for r in records:
        state = "revoked" if r["revoked"] else "active"
        table.add_row(
            r["id"],
            r["role"],
            r["learner"] or "-",
            "yes" if r["can_ack"] else "-",
            r["name"] or "-",
            state,
        )
    Console().print(table)


@token_app.command("revoke")
@handle_errors
def revoke(
    token_id: str = typer.Argument(..., help="The token's id (from 'jacmon token list')."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Revoke a token: new connections with it are refused."""
    run(with_store(resolve_db(db, config), lambda s: revoke_token(s, token_id)))
    typer.echo(f"revoked {token_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(token_app, name="token")
