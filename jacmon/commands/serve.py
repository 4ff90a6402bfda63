"""``jacmon serve``: run the server until SIGINT/SIGTERM; ``--check`` validates and exits."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import typer

from jacmon.commands.common import ConfigOption, DbOption, handle_errors, plain, print_json
from jacmon.config import Settings, load_settings
from jacmon.errors import JacmonError, StoreError, UsageError
from jacmon.hints import suggest_command
from jacmon.logs import setup_logging
from jacmon.protocol import Stream
from jacmon.server.listen import check_port

log = logging.getLogger("jacmon.serve")


async def _serve(settings: Settings) -> None:
    from jacmon.server.app import JacmonServer
    from jacmon.server.gc_tuning import tune_for_serving
    from jacmon.store import display_location, serve_lock

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host, port = settings.server.host, settings.server.port
    # The server opens (creates, migrates) the database before it binds: a busy port
    # found only then would leave a new empty database behind. Say why first.
    held = serve_lock(settings.server.store_location).problem()
    if held is not None:
        raise StoreError(held)  # as the server's own lock refusal: exit 1
    if port != 0 and (busy := check_port(host, port)) is not None:
        raise UsageError(busy)
    server = JacmonServer(settings)
    await server.start()  # a port it cannot listen on is a UsageError naming it
    tune_for_serving()
    try:
        where = display_location(settings.server.store_location)
        print(f"jacmon serving on {server.url}  (db {where})", file=sys.stderr)
        if server.web_url is not None:
            print(f"web dashboard: {server.web_url}", file=sys.stderr)
        else:
            print("web dashboard: off (web.enabled = false or --no-web)", file=sys.stderr)
        await stop.wait()
        log.info("shutting down")
    finally:
        await server.shutdown()


async def _check(settings: Settings) -> tuple[dict, list[str]]:
    """Everything ``serve`` would do, checked without listening (the port is bound for a
    moment). Returns (plan, problems)."""
    from jacmon.monitoring.scheduler import next_runs
    from jacmon.monitoring.tasks.config import load_tasks_config
    from jacmon.notify.check import check_notify
    from jacmon.server.auth import tokens_required
    from jacmon.server.tls import load_tls
    from jacmon.server.web import default_static_root, page_url
    from jacmon.sources.lrs import check_lrs_table
    from jacmon.store import (
        Store,
        display_location,
        latest_schema_version,
        schema_version,
        serve_lock,
    )

    problems: list[str] = []
    server = settings.server
    page = page_url(server.host, server.port, tls=server.tls_cert is not None)
    plan: dict = {
        "listen": f"{'wss' if server.tls_cert else 'ws'}://{server.host}:{server.port}",
        "streams": [f"/ws/{stream.value}" for stream in Stream],
        # Where platforms push (docs/ingest.md): the URLs to give senders, and limits.
        "push": {
            "xapi": f"{page}xAPI/",
            "caliper": f"{page}caliper",
            "max_body_bytes": server.push_max_body_bytes,
            "max_records": server.push_max_records,
        },
        "db": display_location(server.store_location),
        "web": (page if settings.web.enabled else "off (web.enabled = false or --no-web)"),
        "allowed_origins": server.allowed_origins,
        "frame_ancestors": settings.web.frame_ancestors,
        "config_file": str(settings.source) if settings.source else None,
    }
    for check in (
        lambda: load_tls(server.tls_cert, server.tls_key),
        lambda: check_lrs_table(settings.lrs),
    ):
        try:
            check()
        except JacmonError as exc:
            problems.append(str(exc))
    if settings.web.enabled and not (default_static_root() / "index.html").is_file():
        problems.append(
            f"the web dashboard's files are missing ({default_static_root()} has no "
            "index.html); reinstall jacmon, or pass --no-web"
        )
    held = serve_lock(server.store_location).problem()
    if held is not None:
        problems.append(held)
    elif server.port != 0 and (busy := check_port(server.host, server.port)) is not None:
        problems.append(busy)
    # Read-only: a check creates and migrates nothing.
    tokens = 0
    firing: list[dict] = []
    plan["events_stored"] = 0
    location = server.store_location
    shown = display_location(location)
    version = schema_version(location)
    latest = latest_schema_version()
    if version is None:
        plan["db_state"] = "does not exist yet; serve creates it"
    elif isinstance(version, str):
        problems.append(f"database {shown} cannot be read: {version}")
    elif version > latest:
        problems.append(
            f"database {shown} has schema version {version}, newer than this jacmon "
            f"({latest}); upgrade jacmon"
        )
    elif version < latest:
        plan["db_state"] = f"schema {version}; serve migrates it to {latest} at start"
    else:
        plan["db_state"] = f"schema {version}, current"
        try:
            store = await Store.open(location, readonly=True)
        except JacmonError as exc:
            problems.append(str(exc))
        else:
            try:
                tokens = await store.active_token_count()
                plan["events_stored"] = store.last_seq
                firing = await store.open_alerts()
            finally:
                await store.close()
    plan["active_tokens"] = tokens
    needs_tokens = tokens_required(server)
    plan["tokens_required"] = needs_tokens
    if needs_tokens and tokens == 0:
        create = suggest_command("token create --role admin", db=server.db, config=settings.source)
        problems.append(
            f"serving on {server.host} needs tokens and none exist: create one with "
            f"{create}, or pass --insecure"
        )
    try:
        tasks = load_tasks_config(settings.tasks)
        upcoming = next_runs(tasks, datetime.now(UTC))
        plan["tasks"] = [
            {
                "task": name,
                "cron": task.cron,
                "timezone": tasks.timezone.key,
                "enabled": task.enabled,
                "next_run": upcoming[name],
            }
            for name, task in tasks.tasks.items()
        ]
    except JacmonError as exc:
        problems.append(str(exc))
    plan["notify"], notify_problems = await check_notify(settings.notify, firing)
    problems += notify_problems
    return plan, problems


def _print_plan(plan: dict) -> None:
    for key, value in plan.items():
        if key not in ("tasks", "notify"):
            typer.echo(f"{key}: {plain(value)}")
    _print_notify(plan.get("notify") or {})
    typer.echo("tasks:")
    for task in plan.get("tasks", []):
        when = f"next {plain(task['next_run'])}" if task["next_run"] else "disabled"
        typer.echo(f"  {task['task']}: {task['cron']} ({task['timezone']}), {when}")


def _print_notify(notify: dict) -> None:
    """The [notify] plan as an indented block: receivers, then each route and what it
    would send of the firing alerts now."""
    if not notify.get("enabled"):
        typer.echo(f"notify: off ({notify.get('why', 'see the problems below')})")
        return
    receivers = ", ".join(f"{r['name']} ({r['type']})" for r in notify["receivers"])
    typer.echo(f"notify: receivers {receivers}")
    for route in notify["routes"]:
        matchers = "; ".join(f"{k} {plain(v)}" for k, v in route["matchers"].items())
        timing = ", ".join(f"{k} {v}" for k, v in route["timing"].items())
        typer.echo(
            f"  {route['name']} -> {', '.join(route['receivers'])}: "
            f"{matchers or 'every alert'}; sends {', '.join(route['send'])}; "
            f"groups by {', '.join(route['group_by']) or 'nothing'}; {timing}"
        )
        typer.echo(
            f"    now: {route['firing_alerts_matched']} firing alert(s) in "
            f"{route['groups_now']} group(s)"
        )
    if notify.get("silenced_firing_alerts"):
        typer.echo(f"  silenced firing alerts: {notify['silenced_firing_alerts']}")


@handle_errors
def serve(
    host: str | None = typer.Option(
        None, "--host", help="Address to listen on.", show_default="127.0.0.1"
    ),
    port: int | None = typer.Option(
        None, "--port", help="TCP port; 0 picks a free one.", show_default="8765"
    ),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    store: str | None = typer.Option(
        None,
        "--store",
        metavar="URL",
        help="A store shared by several nodes: postgresql://user:password@host:port/db.",
        show_default="the SQLite file at --db",
    ),
    bus: str | None = typer.Option(
        None,
        "--bus",
        metavar="URL",
        help="The bus between nodes: redis://host:port/0.",
        show_default="none (one node)",
    ),
    node: str | None = typer.Option(
        None, "--node", help="This node's name in /metrics and on the bus.", show_default="host-pid"
    ),
    insecure: bool | None = typer.Option(
        None, "--insecure", help="Serve off loopback without tokens (not recommended)."
    ),
    require_tokens: bool | None = typer.Option(
        None, "--require-tokens", help="Require a token even on loopback."
    ),
    tls_cert: Path | None = typer.Option(None, "--tls-cert", help="PEM certificate for wss://."),
    tls_key: Path | None = typer.Option(None, "--tls-key", help="PEM private key for wss://."),
    allowed_origin: list[str] | None = typer.Option(
        None,
        "--allowed-origin",
        metavar="ORIGIN",
        help="A browser origin (https://host[:port]) whose pages may connect, with a token; "
        "repeat for more.",
        show_default="server.allowed_origins in the config",
    ),
    log_level: str | None = typer.Option(
        None, "--log-level", help="debug, info, warning or error.", show_default="info"
    ),
    log_format: str | None = typer.Option(
        None, "--log-format", help="text or json.", show_default="text"
    ),
    check: bool = typer.Option(
        False, "--check", help="Validate config, database and tokens; print the plan and exit."
    ),
    no_web: bool = typer.Option(
        False,
        "--no-web",
        help="Do not serve the browser dashboard (/, /learner, /static/); web.enabled = false.",
    ),
    json_output: bool = typer.Option(False, "--json", help="With --check: print JSON."),
) -> None:
    """Serve the four live streams, ingest and the browser dashboard; run the monitoring
    tasks."""
    settings = load_settings(
        config,
        overrides={
            "server": {
                "host": host,
                "port": port,
                "db": db,
                "store": store,
                "bus": bus,
                "node": node,
                "insecure": insecure,
                "require_tokens": require_tokens,
                "tls_cert": tls_cert,
                "tls_key": tls_key,
                "allowed_origins": allowed_origin or None,
                "log_level": log_level,
                "log_format": log_format,
            },
            "web": {"enabled": False if no_web else None},
        },
    )
    setup_logging(settings.server.log_level, settings.server.log_format)
    if check:
        plan, problems = asyncio.run(_check(settings))
        if json_output:
            print_json({"ok": not problems, "plan": plan, "problems": problems})
        else:
            _print_plan(plan)
            for problem in problems:
                typer.echo(f"problem: {problem}", err=True)
            typer.echo("ok" if not problems else f"{len(problems)} problem(s)", err=True)
        raise typer.Exit(0 if not problems else 1)
    asyncio.run(_serve(settings))


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
