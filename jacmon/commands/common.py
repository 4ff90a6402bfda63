"""Helpers every command shares: running coroutines, printing errors, common options."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from jacmon.errors import JacmonError, UsageError

P = ParamSpec("P")
T = TypeVar("T")

err_console = Console(stderr=True)


#: Output width in columns when stdout is not a terminal: wide enough for any row.
PIPED_WIDTH = 1000


def out_console() -> Console:
    """A stdout console for a command's output.

    Made per call so the terminal width (COLUMNS) is read when the command runs.
    Piped into a file or ``grep`` (and no COLUMNS set), tables get whole rows
    instead of cells cut to an imagined 80 columns.
    """
    console = Console(soft_wrap=True, highlight=False)
    if not sys.stdout.isatty() and "COLUMNS" not in os.environ:
        console = Console(soft_wrap=True, highlight=False, width=PIPED_WIDTH)
    return console


ConfigOption = typer.Option(
    None, "--config", help="TOML config file (default: JACMON_CONFIG or the user config dir)."
)
DbOption = typer.Option(None, "--db", help="SQLite database file (default: the user data dir).")


def handle_errors(func: Callable[P, T]) -> Callable[P, T]:
    """Turn a :class:`JacmonError` into a red message on stderr and its exit code."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return func(*args, **kwargs)
        except JacmonError as exc:
            # escape: messages quote config tables like [server], which are not markup.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion; Ctrl-C exits with 130 and no traceback."""
    try:
        return asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130) from None


def print_json(value: Any) -> None:
    """Write ``value`` as JSON on stdout, for scripts."""
    sys.stdout.write(json.dumps(value, indent=2, default=str) + "\n")


async def with_store(
    db: Path, action: Callable[[Any], Awaitable[T]], *, readonly: bool = False
) -> T:
    """Open the store at ``db``, run ``action(store)``, close it whatever happens."""
    from jacmon.store import Store

    store = await Store.open(db, readonly=readonly)
    try:
        return await action(store)
    finally:
        await store.close()


def resolve_db(db: Path | None, config: Path | None) -> Path:
    """The database path from ``--db``, else config/env, else the default."""
    from jacmon.config import load_settings

    settings = load_settings(config, overrides={"server": {"db": db}})
    return settings.server.db


#: What a client's --server URL may start with, and what each wrong scheme should be.
_SCHEME_HINTS = {"http": "ws", "https": "wss"}


def check_server_url(url: str) -> str:
    """``url`` if it is a jacmon server URL (``ws://`` or ``wss://`` with a host); otherwise
    a UsageError saying what to write instead. Shared by ingest, sim and dashboard."""
    expected = "Expected a WebSocket URL like ws://127.0.0.1:8765 (wss:// with TLS)."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise UsageError(f"--server has value {url!r}, which is not a URL. {expected}") from None
    scheme = parts.scheme.lower()
    if scheme in _SCHEME_HINTS:
        fixed = url.replace(parts.scheme, _SCHEME_HINTS[scheme], 1)
        raise UsageError(
            f"--server has value {url!r}: jacmon speaks WebSocket; use {fixed!r} instead."
        )
    if scheme not in ("ws", "wss") or not parts.hostname:
        hint = f" Use 'ws://{url}'." if "://" not in url else ""
        raise UsageError(f"--server has value {url!r}. {expected}{hint}")
    return url
