"""``jacmon notify log`` (the outbox) and ``jacmon notify test RECEIVER`` (send a sample)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import typer
from rich.table import Table

from jacmon.commands.common import (
    ConfigOption,
    DbOption,
    existing_db,
    handle_errors,
    out_console,
    print_json,
    run,
    utc_text,
    with_store,
)
from jacmon.errors import UsageError
from jacmon.notify.model import AlertChange, Notification
from jacmon.store.types import STATES

notify_app = typer.Typer(
    help="Notifications: what was sent, retried or failed (log), and a test send (test).",
    no_args_is_help=True,
)


@notify_app.command("log")
@handle_errors
def log_command(
    receiver: str | None = typer.Option(None, "--receiver", help="Only this receiver."),
    state: str | None = typer.Option(
        None, "--state", help="Only this state: " + ", ".join(STATES) + "."
    ),
    limit: int = typer.Option(50, "--limit", min=1, max=10000, help="Newest rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print the rows as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """The notification outbox, newest first: each alert change per receiver and its fate."""
    if state is not None and state not in STATES:
        raise UsageError(f"--state has value {state!r}. Expected one of " + ", ".join(STATES))
    path = existing_db(db, config)
    rows = run(
        with_store(
            path,
            lambda store: store.notification_log(receiver=receiver, state=state, limit=limit),
            readonly=True,
        )
    )
    if as_json:
        print_json(rows)
        return
    if not rows:
        out_console().print("no notifications" + (f" in state {state}" if state else ""))
        return
    columns = ("id", "receiver", "change", "alert", "learner", "state", "tries", "when", "answer")
    table = Table(*columns)
    for row in rows:
        when = row["sent_at"] or row["next_attempt_at"] or row["created_at"]
        answer = row["last_status"] or "-"
        if row["state"] == "failed" and row["last_detail"]:
            answer += f": {row['last_detail'][:120]}"
        table.add_row(
            str(row["id"]),
            row["receiver"],
            row["change"],
            f"{row['alert_id']} {row['rule']}",
            row["learner"] or "-",
            row["state"],
            str(row["attempts"]),
            utc_text(when, seconds=True),
            answer,
        )
    out_console().print(table)


def sample_notification(receiver: str, dashboard_url: str | None) -> Notification:
    """A realistic notification for ``notify test``: one low-scores alert with evidence."""
    now = time.time()
    alert = {
        "id": 0,
        "fingerprint": "test",
        "rule": "consecutive_low_scores",
        "severity": "warning",
        "state": "firing",
        "learner": "test-learner",
        "path": "test-path",
        "message": "test notification from jacmon: the latest 3 scores are below 50",
        "numbers": {"low_run": 3, "latest": [42, 38, 45]},
        "first_seen": now - 3600,
        "last_seen": now,
        "resolved_at": None,
        "acknowledged": None,
        "acknowledgements": [],
        "silenced": None,
    }
    return Notification(
        receiver=receiver,
        key=f"jm-test-{uuid.uuid4().hex[:16]}",
        group={"rule": alert["rule"], "path": alert["path"]},
        changes=(AlertChange("fired", 0, alert),),
        created_at=now,
        dashboard_url=dashboard_url,
    )


@notify_app.command("test")
@handle_errors
def test_command(
    receiver: str = typer.Argument(..., help="The receiver's name ([[notify.receivers]])."),
    config: Path | None = ConfigOption,
) -> None:
    """Send a sample notification to one receiver and print its answer (exit 1 if refused)."""
    from jacmon.config import load_settings
    from jacmon.notify.config import parse_notify
    from jacmon.notify.setup import build_receivers

    settings = parse_notify(load_settings(config).notify)
    names = settings.receiver_names()
    if receiver not in names:
        raise UsageError(
            f"receiver {receiver!r} is not configured. Configured: "
            + (", ".join(names) or "none (add [[notify.receivers]] to the config file)")
        )
    spec = next(s for s in settings.receivers if s.name == receiver)
    built = build_receivers(type(settings)(receivers=(spec,)))[receiver]

    async def send():
        try:
            return await built.send(sample_notification(receiver, settings.dashboard_url))
        finally:
            await built.close()

    delivery = run(send())
    verdict = "accepted" if delivery.ok else "refused"
    out_console().print(f"{receiver} ({spec.type}): {verdict}, {delivery.status}")
    if delivery.detail:
        out_console().print(delivery.detail)
    if not delivery.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.add_typer(notify_app, name="notify")
