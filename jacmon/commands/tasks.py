"""``jacmon run-task NAME`` (run one monitoring task once) and ``jacmon tasks`` (list them)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from jacmon.commands.common import (
    ConfigOption,
    DbOption,
    existing_db,
    handle_errors,
    out_console,
    plain,
    print_json,
    run,
    with_store,
)
from jacmon.config import load_settings
from jacmon.errors import UsageError
from jacmon.monitoring.scheduler import RunResult, Scheduler, next_runs
from jacmon.monitoring.tasks import TASKS, get_task
from jacmon.monitoring.tasks.config import load_tasks_config
from jacmon.store import Store


def parse_at(value: str | None) -> datetime | None:
    """``--at`` as an aware datetime (ISO 8601 with a zone; a bare date/time is UTC)."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--at has value {value!r}. Expected an ISO 8601 time such as 2026-01-05T02:00:00Z."
        ) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _print_result(result: RunResult) -> None:
    console = out_console()
    verb = "would" if result.dry_run else "did"
    head = f"[bold]{result.task}[/]: {result.outcome}"
    if result.dry_run:
        head += " (dry run: nothing written)"
    console.print(f"{head} in {result.duration_s:.3f}s at {plain(result.started)}")
    if result.error:
        console.print(f"[red]error:[/] {result.error}")
    if result.progress_seq is not None:
        trail = (
            f" ({result.unprojected} newer events not folded in yet)" if result.unprojected else ""
        )
        console.print(f"  progress as of event {result.progress_seq}{trail}", markup=False)
    detail = result.outcome_detail
    for key, value in detail.summary.items():
        if key != "alerts":
            console.print(f"  {key}: {plain(value)}", markup=False)
    counts = detail.summary.get("alerts")
    if counts:
        console.print(
            f"  alerts {verb}: fire {counts['fire']}, update {counts['update']}, "
            f"resolve {counts['resolve']} (unchanged {counts['touch']})"
        )
    for change in detail.alerts:
        where = change["learner"] or "-"
        if change["path"]:
            where += f" / {change['path']}"
        number = f"#{change['alert_id']} " if change.get("alert_id") else ""
        reason = f" [{change['reason']}]" if change.get("reason") else ""
        console.print(
            f"  {change['action']:<8} {number}{change['rule']} {change['severity']} "
            f"{where}: {change['message']}{reason}"
        )
    rows = {table: n for table, n in detail.writes.items() if n}
    if rows:
        console.print(f"  rows {verb} write: " + ", ".join(f"{t} {n}" for t, n in rows.items()))
    if detail.velocity:
        for path, v in detail.velocity.items():
            change = "n/a" if v["change_pct"] is None else f"{v['change_pct']:+.1f}%"
            console.print(f"  velocity {path}: {v['this_week']} vs {v['last_week']} ({change})")


async def _run_task(
    name: str, *, db: Path | str, tasks: dict[str, Any], dry_run: bool, at: datetime | None
) -> RunResult:
    clock = (lambda: at) if at is not None else None

    async def run_once(store: Store) -> RunResult:
        return await Scheduler(store, tasks, clock).run_once(
            name, trigger="manual", dry_run=dry_run
        )

    # A dry run opens the file read-only: it cannot write, whatever a task does.
    return await with_store(db, run_once, readonly=dry_run)


@handle_errors
def run_task_command(
    name: str = typer.Argument(..., help=f"Task to run: {', '.join(TASKS)}."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Read and report what the run would do; write nothing."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    at: str | None = typer.Option(
        None, "--at", help="Run as if now were this time (ISO 8601).", show_default="now"
    ),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Run one monitoring task once, the way the scheduler does (exit 1 if it fails)."""
    get_task(name)
    settings = load_settings(config, overrides={"server": {"db": db}})
    load_tasks_config(settings.tasks)
    # Not created here: a run against a mistyped path would report on an empty database.
    location = existing_db(db, config)
    result = run(
        _run_task(
            name,
            db=location,
            tasks=settings.tasks,
            dry_run=dry_run,
            at=parse_at(at),
        )
    )
    if as_json:
        print_json(result.as_dict())
    else:
        _print_result(result)
    if result.outcome != "success":
        raise typer.Exit(1)


async def _task_rows(db: Path | str, tasks: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    config = load_tasks_config(tasks)
    store = await Store.open(db, readonly=True)
    try:
        previous = await store.last_runs()
    finally:
        await store.close()
    upcoming = next_runs(config, now)
    rows = []
    for name, task in config.tasks.items():
        last = previous.get(name)
        nxt = upcoming[name]
        rows.append(
            {
                "task": name,
                "description": task.spec.description,
                "cron": task.cron,
                "timezone": config.timezone.key,
                "enabled": task.enabled,
                "grace_s": task.grace_s,
                "timeout_s": task.timeout_s,
                "last_run": None
                if last is None
                else {
                    "outcome": last["outcome"],
                    "trigger": last["trigger"],
                    "started": _iso(last["started"]),
                    "duration_s": last["duration_s"],
                    "error": last["error"],
                },
                "next_run": nxt.astimezone(config.timezone).isoformat() if nxt else None,
            }
        )
    return rows


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC).isoformat()


@handle_errors
def tasks_command(
    as_json: bool = typer.Option(False, "--json", help="Print the list as JSON."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """List the monitoring tasks: schedule, time zone, last run and next run."""
    settings = load_settings(config, overrides={"server": {"db": db}})
    location = existing_db(db, config)
    rows = run(_task_rows(location, settings.tasks, datetime.now(UTC)))
    if as_json:
        print_json(rows)
        return
    table = Table("task", "schedule", "last run", "duration", "next run")

    def short(iso: str | None) -> str:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M %Z") if iso else "-"

    for row in rows:
        last = row["last_run"]
        schedule = f"{row['cron']} ({row['timezone']})"
        if not row["enabled"]:
            schedule += " disabled"
        table.add_row(
            row["task"],
            schedule,
            "never" if last is None else f"{last['outcome']} {short(last['started'])}",
            "" if last is None or last["duration_s"] is None else f"{last['duration_s']:.3f}s",
            short(row["next_run"]),
        )
    out_console().print(table)


def register(app: typer.Typer) -> None:
    app.command("run-task")(run_task_command)
    app.command("tasks")(tasks_command)
