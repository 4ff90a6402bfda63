"""Helpers every command shares: running coroutines, printing errors, common options."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import typer
from rich.console import Console
from rich.markup import escape

from jacmon.errors import JacmonError, UsageError
from jacmon.hints import suggest_command

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


#: A default that comes from the config or the environment is given as ``show_default``
#: text, so help shows it as ``[default: X]`` like every other default (see help.py).
ConfigOption = typer.Option(
    None,
    "--config",
    help="TOML config file.",
    show_default="$JACMON_CONFIG, else config.toml in the user config dir",
)
DbOption = typer.Option(
    None,
    "--db",
    help="SQLite database file.",
    show_default="[server] db in the config, else the user data dir",
)


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


#: Keys whose values are moments, besides any key ending in ``_at``. The store keeps them
#: as epoch seconds and some records as ISO strings with an offset; ``--json`` shows
#: every one the same way (:func:`utc_iso`).
TIME_KEYS = frozenset(
    {
        "at",
        "created",
        "revoked",
        "first_seen",
        "last_seen",
        "last_activity",
        "started",
        "scheduled",
        "next_run",
        "sim_from",
        "sim_to",
    }
)

#: Decimal places of every duration (a key ending in ``_s``) in ``--json``: milliseconds.
DURATION_DIGITS = 3


def utc_iso(moment: float | datetime) -> str:
    """``moment`` (epoch seconds or an aware datetime) as ``2026-12-05T07:00:00Z``.

    Whole seconds, UTC, ``Z``: the one timestamp format of every ``--json``.
    """
    if isinstance(moment, datetime):
        moment = moment.timestamp()
    return datetime.fromtimestamp(int(moment // 1), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _is_time_key(key: str | None) -> bool:
    return key is not None and (key in TIME_KEYS or key.endswith("_at"))


def json_ready(value: Any, key: str | None = None) -> Any:
    """``value`` with its moments as :func:`utc_iso` text and its durations rounded alike.

    ``key`` is the name ``value`` is stored under. Strings under a time key are
    converted only if they are ISO 8601 with a zone; anything else is left as is.
    """
    if isinstance(value, dict):
        return {k: json_ready(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, bool) or value is None:
        return value
    if _is_time_key(key):
        if isinstance(value, (int, float)):
            return utc_iso(value)
        if isinstance(value, str):
            try:
                moment = datetime.fromisoformat(value)
            except ValueError:
                return value
            return utc_iso(moment) if moment.tzinfo is not None else value
    if isinstance(value, float) and key is not None and key.endswith("_s"):
        return round(value, DURATION_DIGITS)
    return value


def utc_text(ts: float | None, *, seconds: bool = False) -> str:
    """Epoch seconds as a readable UTC time for tables (``-`` for none)."""
    if ts is None:
        return "-"
    shape = "%Y-%m-%d %H:%M:%S UTC" if seconds else "%Y-%m-%d %H:%M UTC"
    return datetime.fromtimestamp(ts, UTC).strftime(shape)


def os_login() -> str:
    """The OS user, who a CLI action is recorded as unless ``--by`` names someone."""
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"  # no passwd entry (containers); --by names someone


def plain(value: Any) -> str:
    """``value`` as a person reads it in human output: never a Python repr.

    None is ``-``, a bool ``yes``/``no``, a list ``a, b``, a dict ``k: v; k: v``,
    a moment ``2026-12-05 07:00:00 UTC``.
    """
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value) if value else "-"
    if isinstance(value, dict):
        return "; ".join(f"{k}: {plain(v)}" for k, v in value.items()) if value else "-"
    return str(value)


def print_json(value: Any, *, stderr: bool = False) -> None:
    """Write ``value`` as JSON for scripts: the one emitter of every ``--json``.

    Times are ISO 8601 UTC and durations rounded to milliseconds (:func:`json_ready`).
    On stdout, unless ``stderr`` (when stdout carries the command's data, as
    ``sim --out -`` does).
    """
    out = sys.stderr if stderr else sys.stdout
    out.write(json.dumps(json_ready(value), indent=2, default=str) + "\n")


async def with_store(
    db: Path | str, action: Callable[[Any], Awaitable[T]], *, readonly: bool = False
) -> T:
    """Open the store at ``db``, run ``action(store)``, close it whatever happens."""
    from jacmon.store import Store

    store = await Store.open(db, readonly=readonly)
    try:
        return await action(store)
    finally:
        await store.close()


def resolve_db(db: Path | None, config: Path | None) -> Path | str:
    """The store: the SQLite file ``--db`` if given, else ``server.store`` (a shared
    PostgreSQL, from config/env), else ``server.db`` from config/env, else the default."""
    from jacmon.config import load_settings

    if db is not None:
        return db
    return load_settings(config).server.store_location


def require_database(path: Path | str, db: Path | None, config: Path | None) -> None:
    """Raise a UsageError naming ``path`` unless the database exists.

    For commands that read a database and must not create one: a mistyped path
    would otherwise report on an empty database. ``db`` and ``config`` are the
    options given (None: not given); the hint repeats them, so the suggested
    command works on the same file.
    """
    if not isinstance(path, Path) or path.exists():
        return  # a PostgreSQL store: opening it says whether it is there
    if db is None and config is None:
        db = path  # from the environment: say which file
    serve = suggest_command("serve", db=db, config=config)
    raise UsageError(
        f"database {path} does not exist; check --db/--config, "
        f"or create it by starting {serve} once"
    )


def existing_db(db: Path | None, config: Path | None) -> Path | str:
    """:func:`resolve_db`, checked by :func:`require_database`."""
    path = resolve_db(db, config)
    require_database(path, db, config)
    return path


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
