"""``jacmon alerts`` (list alerts), ``jacmon alerts ack ID`` and ``jacmon alerts unack ID``."""

from __future__ import annotations

import time
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
from jacmon.durations import parse_duration
from jacmon.errors import UsageError
from jacmon.store.types import ALERT_STATES

alerts_app = typer.Typer(
    help="List alerts, acknowledge one (jacmon alerts ack ID) or withdraw that (unack ID).",
    invoke_without_command=True,
    no_args_is_help=False,
)


def parse_expiry(value: str) -> float:
    """``--expires-in`` in seconds (``"90m"``, ``"2h"``, ``"1d"``, ``"30s"`` or seconds)."""
    try:
        return parse_duration(value, "--expires-in")
    except ValueError:
        raise UsageError(
            f"--expires-in has value {value!r}. Expected a duration such as 30m, 2h or 1d."
        ) from None


@alerts_app.callback()
@handle_errors
def alerts_command(
    ctx: typer.Context,
    state: str = typer.Option("firing", "--state", help="firing, resolved or all."),
    learner: str | None = typer.Option(None, "--learner", help="Only this learner's alerts."),
    as_json: bool = typer.Option(False, "--json", help="Print the alerts as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """List alerts (firing by default)."""
    if ctx.invoked_subcommand is not None:
        return
    if state not in (*ALERT_STATES, "all"):
        raise UsageError(f"--state has value {state!r}. Expected firing, resolved or all.")
    alerts = run(
        with_store(
            existing_db(db, config),
            lambda store: store.list_alerts(state=state, learner=learner),
            readonly=True,
        )
    )
    if as_json:
        print_json(alerts)
        return
    if not alerts:
        out_console().print(f"no {state if state != 'all' else ''} alerts".replace("  ", " "))
        return
    table = Table("id", "state", "severity", "rule", "learner", "path", "message", "since", "ack")
    for a in alerts:
        ack = a["acknowledged"]
        table.add_row(
            str(a["id"]),
            a["state"],
            a["severity"],
            a["rule"],
            a["learner"] or "-",
            a["path"] or "-",
            a["message"],
            utc_text(a["first_seen"]),
            _ack_text(ack, a["acknowledgements"]),
        )
    out_console().print(table)


def _ack_text(current: dict | None, history: list[dict]) -> str:
    """The ack column: who acknowledged (and the note), how many did before, or why none holds."""
    acks = [entry for entry in history if entry.get("action", "acknowledged") == "acknowledged"]
    earlier = len(acks) - (1 if current is not None else 0)
    if current is not None:
        text = current["by"] + (f": {current['note']}" if current["note"] else "")
        return text + (f" (+{earlier} earlier)" if earlier > 0 else "")
    if not history:
        return "-"
    last = history[-1]
    if last.get("action") == "unacknowledged":
        return f"withdrawn by {last.get('by') or 'unknown'} ({earlier} earlier)"
    return f"lapsed ({earlier})"


@alerts_app.command("ack")
@handle_errors
def ack_command(
    alert_id: int = typer.Argument(..., help="The alert's id (see jacmon alerts)."),
    note: str | None = typer.Option(None, "--note", help="Why, or what is being done."),
    by: str | None = typer.Option(
        None, "--by", help="Who acknowledges.", show_default="your login name"
    ),
    expires_in: str | None = typer.Option(
        None, "--expires-in", help="The acknowledgement lapses after this long (30m, 2h, 1d)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the change as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Acknowledge a firing alert: it stays firing, flagged with who, when and the note."""
    path = existing_db(db, config)
    expires_at = time.time() + parse_expiry(expires_in) if expires_in else None
    change = run(
        with_store(
            path,
            lambda store: store.acknowledge_alert(
                alert_id, by=by or os_login(), note=note, expires_at=expires_at
            ),
        )
    )
    if as_json:
        print_json(change)
        return
    alert = change["alert"]
    out_console().print(
        f"acknowledged alert {alert['id']} ({alert['rule']}, {alert['learner'] or '-'}) "
        f"as {alert['acknowledged']['by']}"
    )


@alerts_app.command("unack")
@handle_errors
def unack_command(
    alert_id: int = typer.Argument(..., help="The alert's id (see jacmon alerts)."),
    note: str | None = typer.Option(None, "--note", help="Why the acknowledgement is withdrawn."),
    by: str | None = typer.Option(
        None, "--by", help="Who withdraws it.", show_default="your login name"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the change as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Withdraw the acknowledgement of a firing alert (kept in its history, with who undid it)."""
    path = existing_db(db, config)
    change = run(
        with_store(
            path,
            lambda store: store.unacknowledge_alert(alert_id, by=by or os_login(), note=note),
        )
    )
    if as_json:
        print_json(change)
        return
    alert = change["alert"]
    out_console().print(
        f"withdrew the acknowledgement of alert {alert['id']} "
        f"({alert['rule']}, {alert['learner'] or '-'}); it is unacknowledged again"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(alerts_app, name="alerts")
