"""``jacmon demo``: server + simulated learners + dashboard in one command.

The terminal dashboard by default; ``--web`` for the browser one alone,
``--headless`` for neither (a summary after ``--duration``).
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import typer

from jacmon.commands.common import handle_errors, print_json
from jacmon.errors import UsageError

if TYPE_CHECKING:
    from jacmon.demo import DemoRuntime, DemoSummary

#: Signals that end the demo the way ``q`` does: the temporary database is removed.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def exit_on_stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into SystemExit while the demo runs.

    Left to their default, they kill the process before any ``finally`` runs and
    the temporary directory stays behind; as an exception, the runtime winds down
    and removes it. The previous handlers come back afterwards.
    """

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    previous = {signum: signal.signal(signum, stop) for signum in STOP_SIGNALS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def require_terminal() -> None:
    """Raise a UsageError unless stdin and stdout are a terminal (the dashboard needs one)."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError(
            "the demo dashboard needs a terminal, and stdin or stdout is not one; "
            "use 'jacmon demo --headless --duration SECONDS' to run without it"
        )


@handle_errors
def demo(
    learners: int = typer.Option(200, "--learners", help="Simulated learners."),
    speed: float = typer.Option(
        1800.0, "--speed", help="Simulated seconds per real second (1800: a day in 48 s)."
    ),
    seed: int = typer.Option(7, "--seed", help="Simulator seed: the same seed, the same learners."),
    history_days: float = typer.Option(
        3.0, "--history-days", help="Simulated days of history fed in first."
    ),
    db: Path | None = typer.Option(
        None,
        "--db",
        help="Keep the demo database here.",
        show_default="a temporary one, removed at exit",
    ),
    port: int = typer.Option(0, "--port", help="Port for the embedded server; 0 picks a free one."),
    headless: bool = typer.Option(False, "--headless", help="No dashboard: print a summary."),
    web: bool = typer.Option(
        False,
        "--web",
        help="No terminal dashboard: serve the browser one and print its address; "
        "run until Ctrl+C.",
    ),
    duration: float | None = typer.Option(
        None, "--duration", help="Stop after this many seconds; required with --headless."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the summary as JSON at exit."),
) -> None:
    """Run an embedded server, simulated learners and the dashboard; quit with q.

    The browser dashboard is served too: open the address printed at start.
    """
    from jacmon.demo import DemoOptions, run_headless, run_web, run_with_dashboard
    from jacmon.logs import setup_logging

    if learners < 1:
        raise UsageError(f"--learners has value {learners}; expected at least 1")
    if speed <= 0:
        raise UsageError(f"--speed has value {speed}; expected a number above 0")
    if headless and web:
        raise UsageError("--headless and --web exclude each other; --web serves the browser UI")
    if headless and duration is None:
        raise UsageError("--headless needs --duration SECONDS, so the demo ends by itself")
    if duration is not None and duration <= 0:
        raise UsageError(f"--duration has value {duration}; expected seconds above 0")
    options = DemoOptions(
        learners=learners,
        speed=speed,
        seed=seed,
        history_days=history_days,
        db=db,
        port=port,
        duration_s=duration,
    )
    if web:
        setup_logging("warning")
        with exit_on_stop_signals():
            summary = run_web(options, _announce_web)
    elif not headless:
        require_terminal()
        with exit_on_stop_signals():
            summary = run_with_dashboard(options, _announce_browser)
    else:
        setup_logging("warning")
        with exit_on_stop_signals():
            summary = run_headless(options)
    if json_output:
        print_json(summary.as_dict())
        return
    _print_summary(summary)


def _announce_browser(runtime: DemoRuntime) -> None:
    """Before the terminal dashboard takes the screen: where the browser one is."""
    typer.echo(f"jacmon demo: browser dashboard at {runtime.web_url}", err=True)


def _announce_web(runtime: DemoRuntime) -> None:
    """``demo --web``: the address to open, how to reach it over SSH and how to stop."""
    port = runtime.web_url.rsplit(":", 1)[1].rstrip("/")
    typer.echo(f"jacmon demo: open {runtime.web_url} in a browser", err=True)
    typer.echo(
        f"  from another machine: ssh -L {port}:127.0.0.1:{port} THIS-HOST, "
        f"then open {runtime.web_url} there",
        err=True,
    )
    typer.echo("  Ctrl+C stops the demo", err=True)


def _print_summary(summary: DemoSummary) -> None:
    """What the demo did, as lines of text."""
    typer.echo(
        f"demo ran {summary.wall_s} s ({summary.simulated_days} simulated days) on {summary.url}"
    )
    typer.echo(f"browser dashboard was at {summary.web_url}")
    typer.echo(f"events stored: {summary.events_stored}")
    typer.echo(f"alerts raised: {summary.alerts_raised} (firing now: {summary.alerts_firing})")
    for rule, count in sorted(summary.alerts_by_rule.items()):
        typer.echo(f"  {rule}: {count} firing")
    typer.echo("task runs:")
    for task, outcomes in sorted(summary.task_runs.items()):
        parts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        typer.echo(f"  {task}: {parts}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
