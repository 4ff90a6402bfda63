"""``jacmon ingest``: feed events from a JSONL file, stdin, an xAPI file, or by tailing an LRS."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import IO, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from jacmon.client.ingest import IngestClient
from jacmon.commands.common import (
    ConfigOption,
    check_server_url,
    handle_errors,
    print_json,
    run,
)
from jacmon.config import load_settings
from jacmon.errors import UsageError
from jacmon.sources.files import FORMATS, FileSource, FileSummary
from jacmon.sources.lrs import LrsTailer, TailerSettings, TailStats
from jacmon.sources.pump import Outage, Pump, Tally
from jacmon.sources.remote import RemoteSink

# soft_wrap: summary lines stay whole, for people and for grep.
err_console = Console(stderr=True, soft_wrap=True)

#: How many rejections the summary lists one by one (all are counted).
SHOWN_REJECTIONS = 20


async def ingest_file(
    stream: IO[bytes],
    name: str,
    *,
    fmt: str,
    server: str,
    token: str | None,
    batch_size: int,
    total_bytes: int | None,
    console: Console,
) -> FileSummary:
    """Validate (or map) every record of ``stream`` and send the good ones in batches.

    A bad record is listed in the summary with where it was and why; it never
    stops the rest.
    """
    source = FileSource(stream, name, fmt=fmt, batch_size=batch_size)
    progress = Progress(
        TextColumn("[bold]ingest[/]"),
        BarColumn(),
        TextColumn("{task.fields[counts]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
        disable=not console.is_terminal,
    )
    async with IngestClient(server, token=token) as client:
        with progress:
            task = progress.add_task("ingest", total=total_bytes, counts="")

            def show(summary: Tally) -> None:
                progress.update(
                    task,
                    completed=source.reader.consumed,
                    counts=f"{summary.accepted} new, {summary.duplicates} dup, "
                    f"{len(summary.rejected)} rejected",
                )

            await Pump(client, source.summary, on_batch=show).drain(source)
    return source.summary


def _print_file_summary(summary: FileSummary, name: str, console: Console) -> None:
    console.print(
        f"{escape(name)}: read {summary.read}, [green]accepted {summary.accepted}[/], "
        f"duplicates {summary.duplicates}, "
        f"[{'red' if summary.rejected else 'green'}]rejected {len(summary.rejected)}[/]",
        highlight=False,
    )
    for rejection in summary.rejected[:SHOWN_REJECTIONS]:
        # escape: reasons quote the bad values, which may look like markup.
        console.print(
            f"  [red]rejected[/] {escape(rejection.where)}: {escape(rejection.error)}",
            highlight=False,
        )
    if len(summary.rejected) > SHOWN_REJECTIONS:
        console.print(f"  ... and {len(summary.rejected) - SHOWN_REJECTIONS} more (use --json)")


async def tail_lrs(
    settings: TailerSettings,
    *,
    server: str,
    token: str | None,
    follow: bool,
    console: Console,
) -> TailStats:
    """Read the LRS once (or keep following it until SIGINT/SIGTERM) into the server.

    Following, a jacmon server that goes away is waited for (and said so on
    ``console``); the first connection is not retried, so a wrong --server fails.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)

    def show(stats: TailStats) -> None:
        if console.is_terminal:
            console.print(
                f"lrs: read {stats.fetched}, accepted {stats.accepted}, "
                f"duplicates {stats.duplicates}, unmappable {stats.unmappable}, "
                f"watermark {stats.watermark or '-'}",
                highlight=False,
            )

    try:
        async with RemoteSink(server, token=token) as sink:
            tailer = LrsTailer(settings, sink, on_progress=show)

            def report(outage: Outage) -> None:
                if outage.side != "sink":
                    tailer.log_outage(outage)
                    return
                console.print(
                    f"jacmon server away ({outage.error}); retrying in {outage.wait_s:.0f}s",
                    highlight=False,
                    markup=False,
                )

            if follow:
                await tailer.follow(stop, on_outage=report)
            else:
                await tailer.poll()
            return tailer.stats
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _tail_summary(stats: TailStats) -> dict[str, Any]:
    return {
        "read": stats.fetched,
        "accepted": stats.accepted,
        "duplicates": stats.duplicates,
        "unmappable": stats.unmappable,
        # The shape of every rejection list ({error}); the tailer keeps no input index.
        "rejected": [{"error": f"{r.where}: {r.error}"} for r in stats.rejected],
        "polls": stats.polls,
        "outages": stats.outages,
        "watermark": stats.watermark,
        "skipped": [{"statement": s.statement_id, "reason": s.reason} for s in stats.skipped],
    }


def _print_tail_summary(stats: TailStats, url: str, console: Console) -> None:
    bad = stats.unmappable + len(stats.rejected)
    console.print(
        f"{url}: read {stats.fetched}, [green]accepted {stats.accepted}[/], "
        f"duplicates {stats.duplicates}, [{'red' if bad else 'green'}]unmappable "
        f"{stats.unmappable}, rejected {len(stats.rejected)}[/], "
        f"watermark {stats.watermark or '-'}",
        highlight=False,
    )
    for skipped in stats.skipped[:SHOWN_REJECTIONS]:
        console.print(
            f"  unmappable statement {skipped.statement_id}: {skipped.reason}",
            highlight=False,
            markup=False,
        )
    for refusal in stats.rejected[:SHOWN_REJECTIONS]:
        console.print(f"  rejected {refusal.where}: {refusal.error}", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command("ingest")
    @handle_errors
    def ingest(
        source: str | None = typer.Argument(
            None,
            help="JSONL (or xAPI, or Caliper) file to read, or '-' for stdin.",
            show_default=False,
        ),
        fmt: str = typer.Option(
            "jsonl",
            "--format",
            "-f",
            help="Input format: 'jsonl' (native events), 'xapi' (statements) or 'caliper' "
            "(Caliper 1.2 envelopes).",
        ),
        lrs: str | None = typer.Option(
            None, "--lrs", help="Tail this LRS xAPI endpoint (like http://lrs/xAPI) instead."
        ),
        lrs_user: str | None = typer.Option(None, "--lrs-user", help="LRS basic-auth user."),
        lrs_password: str | None = typer.Option(
            None,
            "--lrs-password",
            help="LRS basic-auth password; also JACMON_LRS__PASSWORD or password in the "
            "config's [lrs] table.",
        ),
        follow: bool = typer.Option(
            False, "--follow", help="Keep polling the LRS until interrupted."
        ),
        since: str | None = typer.Option(
            None, "--since", help="Read statements stored after this ISO 8601 time."
        ),
        poll_interval: float | None = typer.Option(
            None,
            "--poll-interval",
            help="Seconds between LRS polls with --follow.",
            show_default="5",
        ),
        server: str | None = typer.Option(
            None,
            "--server",
            help="jacmon server URL (ws:// or wss://).",
            show_default="[client] server in the config, else ws://127.0.0.1:8765",
        ),
        token: str | None = typer.Option(
            None, "--token", help="Ingest token.", show_default="[client] token in the config"
        ),
        batch_size: int = typer.Option(
            500, "--batch-size", min=1, max=5000, help="Events per frame (and LRS page size)."
        ),
        config: Path | None = ConfigOption,
        as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    ) -> None:
        """Feed events: a JSONL, xAPI or Caliper file, stdin, or an LRS (--lrs, optionally
        --follow).

        Exits 1 if any record was rejected or could not be mapped; the rest are ingested.
        """
        settings = load_settings(config, overrides={"client": {"server": server, "token": token}})
        check_server_url(settings.client.server)
        if fmt not in FORMATS:
            raise UsageError(f"--format has value {fmt!r}; expected 'jsonl', 'xapi' or 'caliper'")
        if (source is None) == (lrs is None):
            raise UsageError(
                "give exactly one input: a FILE, '-' for stdin, or --lrs URL "
                f"(got {'both' if source else 'neither'})"
            )
        lrs_only = {
            "--lrs-user": lrs_user,
            "--lrs-password": lrs_password,
            "--since": since,
            "--poll-interval": poll_interval,
        }
        if source is not None:
            given = [flag for flag, value in lrs_only.items() if value is not None]
            if follow:
                given.append("--follow")
            if given:
                raise UsageError(f"{', '.join(given)} only apply with --lrs")
            summary = _run_file(
                source, fmt, settings.client.server, settings.client.token, batch_size
            )
            if as_json:
                print_json(summary.as_dict())
            else:
                _print_file_summary(summary, source, err_console)
            if summary.rejected:
                raise typer.Exit(1)
            return
        table = {k: v for k, v in settings.lrs.items() if k != "enabled"}
        table.update(
            {
                key: value
                for key, value in {
                    "url": lrs,
                    "user": lrs_user,
                    "password": lrs_password,
                    "since": since,
                    "poll_interval_s": poll_interval,
                    "page_size": batch_size,
                }.items()
                if value is not None
            }
        )
        tailer_settings = TailerSettings.from_mapping(table)
        stats = run(
            tail_lrs(
                tailer_settings,
                server=settings.client.server,
                token=settings.client.token,
                follow=follow,
                console=err_console,
            )
        )
        if as_json:
            print_json(_tail_summary(stats))
        else:
            _print_tail_summary(stats, tailer_settings.url, err_console)
        if stats.unmappable or stats.rejected:
            raise typer.Exit(1)


def _run_file(
    source: str, fmt: str, server: str, token: str | None, batch_size: int
) -> FileSummary:
    if source == "-":
        return run(
            ingest_file(
                sys.stdin.buffer,
                "<stdin>",
                fmt=fmt,
                server=server,
                token=token,
                batch_size=batch_size,
                total_bytes=None,
                console=err_console,
            )
        )
    path = Path(source)
    try:
        stream = path.open("rb")
    except OSError as exc:
        raise UsageError(
            f"cannot read {source!r}: {exc.strerror}; expected a readable file or '-'"
        ) from None
    with stream:
        return run(
            ingest_file(
                stream,
                source,
                fmt=fmt,
                server=server,
                token=token,
                batch_size=batch_size,
                total_bytes=path.stat().st_size,
                console=err_console,
            )
        )
