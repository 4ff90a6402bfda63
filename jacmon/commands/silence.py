"""``jacmon silence add|list|expire``: stop notifications for matching alerts for a while."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from jacmon.commands.common import (
    ConfigOption,
    DbOption,
    existing_db,
    handle_errors,
    os_login,
    out_console,
    print_json,
    run,
    utc_text,
    with_store,
)
from jacmon.durations import format_duration, parse_duration
from jacmon.errors import UsageError

silence_app = typer.Typer(
    help=(
        "Silence notifications for matching alerts (they still fire and show, marked "
        "silenced): add, list, expire."
    ),
    no_args_is_help=True,
)


@silence_app.command("add")
@handle_errors
def add_command(
    rule: str | None = typer.Option(None, "--rule", help="Only alerts of this rule."),
    learner: str | None = typer.Option(None, "--learner", help="Only this learner's alerts."),
    path: str | None = typer.Option(None, "--path", help="Only alerts on this path."),
    duration: str = typer.Option(
        ..., "--for", metavar="DURATION", help="How long: 30m, 8h, 7d or seconds."
    ),
    note: str | None = typer.Option(None, "--note", help="Why (shown with the silence)."),
    by: str | None = typer.Option(
        None, "--by", help="Who silences.", show_default="your login name"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the silence as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Silence alerts matching every given matcher (at least one) for a while."""
    try:
        seconds = parse_duration(duration, "--for")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    silence, changes = run(
        with_store(
            existing_db(db, config),
            lambda store: store.add_silence(
                by=by or os_login(),
                rule=rule,
                learner=learner,
                path=path,
                duration_s=seconds,
                note=note,
            ),
        )
    )
    if as_json:
        print_json({"silence": silence, "alerts_silenced": len(changes)})
        return
    out_console().print(
        f"silence {silence['id']} added until {utc_text(silence['ends_at'])} "
        f"({format_duration(seconds)}); {len(changes)} firing alert(s) silenced now"
    )


@silence_app.command("list")
@handle_errors
def list_command(
    include_expired: bool = typer.Option(False, "--all", help="Include expired silences."),
    as_json: bool = typer.Option(False, "--json", help="Print the silences as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """List silences (active and starting later; --all for expired ones too)."""
    silences = run(
        with_store(
            existing_db(db, config),
            lambda store: store.list_silences(include_expired=include_expired),
            readonly=True,
        )
    )
    if as_json:
        print_json(silences)
        return
    if not silences:
        out_console().print("no silences" if include_expired else "no active silences")
        return
    table = Table("id", "state", "rule", "learner", "path", "until", "by", "note")
    for s in silences:
        table.add_row(
            str(s["id"]),
            s["state"],
            s["rule"] or "any",
            s["learner"] or "any",
            s["path"] or "any",
            utc_text(s["expired_at"] or s["ends_at"]),
            s["created_by"],
            s["note"] or "-",
        )
    out_console().print(table)


@silence_app.command("expire")
@handle_errors
def expire_command(
    silence_id: int = typer.Argument(..., help="The silence's id (see jacmon silence list)."),
    by: str | None = typer.Option(
        None, "--by", help="Who ends it.", show_default="your login name"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the silence as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """End a silence now: its alerts are notified again from their next repeat."""
    silence, changes = run(
        with_store(
            existing_db(db, config),
            lambda store: store.expire_silence(silence_id, by=by or os_login()),
        )
    )
    if as_json:
        print_json({"silence": silence, "alerts_unsilenced": len(changes)})
        return
    out_console().print(
        f"silence {silence['id']} expired; {len(changes)} firing alert(s) no longer silenced"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(silence_app, name="silence")
