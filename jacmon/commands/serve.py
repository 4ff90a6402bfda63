"""``jacmon serve``: run the server until SIGINT/SIGTERM; ``--check`` validates and exits."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from jacmon.commands.common import ConfigOption, handle_errors, print_json
from jacmon.config import Settings, load_settings
from jacmon.errors import JacmonError
from jacmon.logs import setup_logging
from jacmon.protocol import Stream

log = logging.getLogger("jacmon.serve")


async def _serve(settings: Settings) -> None:
    from jacmon.server.app import JacmonServer

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with JacmonServer(settings) as server:
        print(f"jacmon serving on {server.url}  (db {settings.server.db})", file=sys.stderr)
        await stop.wait()
        log.info("shutting down")


def schema_version(path: Path) -> int | str | None:
    """Schema version of the database; None if there is no file, the error text if unreadable."""
    if not path.exists():
        return None
    try:
        with contextlib.closing(
            sqlite3.connect(f"file:{path.absolute()}?mode=ro", uri=True)
        ) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn.execute("PRAGMA user_version").fetchone()[0]
    except sqlite3.Error as exc:
        return str(exc)


async def _check(settings: Settings) -> tuple[dict, list[str]]:
    """Everything ``serve`` would do, checked without listening. Returns (plan, problems)."""
    from jacmon.server.auth import active_token_count, tokens_required
    from jacmon.server.scheduler import next_runs
    from jacmon.server.tasks.config import load_tasks_config
    from jacmon.store import Store
    from jacmon.store.schema import latest_version

    problems: list[str] = []
    server = settings.server
    plan: dict = {
        "listen": f"{'wss' if server.tls_cert else 'ws'}://{server.host}:{server.port}",
        "streams": [f"/ws/{stream.value}" for stream in Stream],
        "db": str(server.db),
        "config_file": str(settings.source) if settings.source else None,
    }
    for name, value in (("tls_cert", server.tls_cert), ("tls_key", server.tls_key)):
        if value is not None and not value.exists():
            problems.append(f"{name} file {value} does not exist")
    if bool(server.tls_cert) != bool(server.tls_key):
        problems.append("TLS needs both --tls-cert and --tls-key")
    # Read-only: a check creates and migrates nothing.
    tokens = 0
    plan["events_stored"] = 0
    version = schema_version(server.db)
    if version is None:
        plan["db_state"] = "does not exist yet; serve creates it"
    elif isinstance(version, str):
        problems.append(f"database {server.db} cannot be read: {version}")
    elif version > latest_version():
        problems.append(
            f"database {server.db} has schema version {version}, newer than this jacmon "
            f"({latest_version()}); upgrade jacmon"
        )
    elif version < latest_version():
        plan["db_state"] = f"schema {version}; serve migrates it to {latest_version()} at start"
    else:
        plan["db_state"] = f"schema {version}, current"
        try:
            store = await Store.open(server.db, readonly=True)
        except JacmonError as exc:
            problems.append(str(exc))
        else:
            try:
                tokens = await active_token_count(store.db)
                plan["events_stored"] = store.last_seq
            finally:
                await store.close()
    plan["active_tokens"] = tokens
    needs_tokens = tokens_required(server)
    plan["tokens_required"] = needs_tokens
    if needs_tokens and tokens == 0:
        problems.append(
            f"serving on {server.host} needs tokens and none exist: create one with "
            "'jacmon token create --role admin', or pass --insecure"
        )
    try:
        tasks = load_tasks_config(settings.tasks)
        upcoming = next_runs(tasks, datetime.now(UTC))
        plan["tasks"] = [
            f"{name}: {task.cron} ({tasks.timezone.key})"
            + (f", next {upcoming[name].isoformat()}" if upcoming[name] else ", disabled")
            for name, task in tasks.tasks.items()
        ]
    except JacmonError as exc:
        problems.append(str(exc))
    return plan, problems


@handle_errors
def serve(
    host: str | None = typer.Option(None, "--host", help="Address to listen on [127.0.0.1]."),
    port: int | None = typer.Option(None, "--port", help="TCP port [8765]; 0 picks a free one."),
    db: Path | None = typer.Option(None, "--db", help="SQLite database file."),
    config: Path | None = ConfigOption,
    insecure: bool | None = typer.Option(
        None, "--insecure", help="Serve off loopback without tokens (not recommended)."
    ),
    require_tokens: bool | None = typer.Option(
        None, "--require-tokens", help="Require a token even on loopback."
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate for wss://."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key for wss://."),
    log_level: str | None = typer.Option(None, "--log-level", help="debug|info|warning|error."),
    log_format: str | None = typer.Option(None, "--log-format", help="text or json."),
    check: bool = typer.Option(
        False, "--check", help="Validate config, database and tokens; print the plan and exit."
    ),
    json_output: bool = typer.Option(False, "--json", help="With --check: print JSON."),
) -> None:
    """Serve the four live streams and ingest, and run the monitoring tasks."""
    settings = load_settings(
        config,
        overrides={
            "server": {
                "host": host,
                "port": port,
                "db": db,
                "insecure": insecure,
                "require_tokens": require_tokens,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "log_level": log_level,
                "log_format": log_format,
            }
        },
    )
    setup_logging(settings.server.log_level, settings.server.log_format)
    if check:
        plan, problems = asyncio.run(_check(settings))
        if json_output:
            print_json({"ok": not problems, "plan": plan, "problems": problems})
        else:
            for key, value in plan.items():
                if key == "tasks":
                    typer.echo("tasks:")
                    for task in value:
                        typer.echo(f"  {task}")
                else:
                    typer.echo(f"{key}: {value}")
            for problem in problems:
                typer.echo(f"problem: {problem}", err=True)
            typer.echo("ok" if not problems else f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(0 if not problems else 1)
    asyncio.run(_serve(settings))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
