"""``jacmon sim``: stream a simulated learner population into a server, or write it as JSONL."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from jacmon.commands.common import (
    ConfigOption,
    check_server_url,
    handle_errors,
    print_json,
    run,
)
from jacmon.errors import UsageError

if TYPE_CHECKING:
    from jacmon.sim.stream import StreamSummary

console = Console(stderr=True, highlight=False)

#: How many rejections the human summary lists one by one (--json lists all).
SHOWN_REJECTIONS = 5


def _default_stream_start(
    speed: float,
    duration: float | None,
    events_span_s: float | None,
    events: int | None,
    rate: float,
) -> datetime:
    """A start from which the simulated run ends about now, not in the future.

    The server rejects events dated more than ``server.max_clock_skew_s`` ahead
    of its clock; at ``speed`` x the wall, a run that starts now would soon be.
    The run lasts ``duration`` wall seconds; bounded by ``events`` instead, it
    covers ``events_span_s`` simulated seconds and lasts at least ``events / rate``.
    """
    if duration is not None:
        span_s = duration * speed
    else:
        span_s = max(events_span_s or 0.0, (events or 0) / rate * speed)
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=span_s)


#: Longest simulated span before now an ``--events N`` stream is started, in seconds.
MAX_EVENTS_SPAN_S = 365 * 86400.0


def _events_span_s(events: int, **population: Any) -> float:
    """How long before now (simulated seconds) a stream of ``events`` events must start.

    Its history (sent first) counts towards them. Found by dry runs of the same
    population started an hour, two, four... before now, until one has that
    many events dated up to now, so that an ``--events N`` stream sends N events
    before it reaches the present.
    """
    from jacmon.sim.simulator import Simulator

    now = datetime.now(UTC).replace(microsecond=0)
    span_s = 3600.0
    while span_s < MAX_EVENTS_SPAN_S:
        dry = Simulator(start=now - timedelta(seconds=span_s), speed=1.0, **population)
        if sum(1 for _ in islice(dry.events_until(now), events)) >= events:
            break
        span_s *= 2
    return span_s


def _parse_start(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise UsageError(
            f"--start has value {value!r}. Expected an ISO 8601 time like '2026-01-05T08:00:00Z'."
        ) from None
    if moment.tzinfo is None:
        raise UsageError(f"--start has value {value!r}. Expected a zone: add 'Z' for UTC.")
    return moment


class ProgressLine:
    """A live line on stderr while sim runs; on a terminal only.

    A pipe or a log file gets the summary alone: no per-batch lines to scroll
    past, whatever the run's length. ``total`` is in events, or ``total_s`` in
    wall seconds, or neither (a counter without a bar).
    """

    def __init__(self, total: int | None, total_s: float | None) -> None:
        self.progress = Progress(
            TextColumn("[bold]sim[/]"),
            BarColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=not console.is_terminal,
        )
        self.by_time = total_s is not None
        self.task = self.progress.add_task("sim", total=total_s or total, counts="")

    def written(self, count: int) -> None:
        self.progress.update(self.task, completed=count, counts=f"{count} events written")

    def streamed(self, summary: StreamSummary) -> None:
        simulated = f", simulated {summary.sim_to:%Y-%m-%d %H:%M}" if summary.sim_to else ""
        self.progress.update(
            self.task,
            completed=summary.wall_s if self.by_time else summary.sent,
            counts=f"{summary.sent} sent, {summary.accepted} new, "
            f"{len(summary.rejected)} rejected{simulated}",
        )


@contextlib.contextmanager
def progress_line(total: int | None, *, duration_s: float | None = None) -> Iterator[ProgressLine]:
    """A :class:`ProgressLine`, shown while the block runs and gone after it."""
    shown = ProgressLine(total, duration_s)
    with shown.progress:
        yield shown


@handle_errors
def sim(
    server: Annotated[
        str | None,
        typer.Option(
            help="Server to stream into (ws:// or wss://).",
            show_default="[client] server in the config, else ws://127.0.0.1:8765",
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(help="Write JSONL to this file ('-' for stdout) instead of streaming."),
    ] = None,
    learners: Annotated[int, typer.Option(min=1, help="Simulated learners.")] = 50,
    seed: Annotated[
        int, typer.Option(help="Random seed: the same seed gives the same events.")
    ] = 0,
    rate: Annotated[
        float, typer.Option(min=0.001, help="Most events per second sent to the server.")
    ] = 200.0,
    speed: Annotated[
        float,
        typer.Option(min=0.001, help="Simulated seconds per wall second (600: a day in 144 s)."),
    ] = 600.0,
    duration: Annotated[
        float | None,
        typer.Option(min=0.001, help="Stop streaming after this many seconds.", show_default="60"),
    ] = None,
    events: Annotated[int | None, typer.Option(min=1, help="Stop after this many events.")] = None,
    days: Annotated[
        float | None,
        typer.Option(min=0.001, help="With --out: simulated days to cover.", show_default="7"),
    ] = None,
    history_days: Annotated[
        float,
        typer.Option(min=0.0, help="Streaming: first send this many simulated days of the past."),
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="Simulated start, ISO 8601 with a zone.",
            show_default="so that streaming ends now; with --out, now minus --days",
        ),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Catalog TOML of the simulated paths.", show_default="the demo catalog"),
    ] = None,
    batch: Annotated[int, typer.Option(min=1, help="Most events per batch sent.")] = 200,
    token: Annotated[
        str | None, typer.Option(help="Ingest token.", show_default="[client] token in the config")
    ] = None,
    config: Path | None = ConfigOption,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the summary as JSON (on stderr with --out -).")
    ] = False,
) -> None:
    """Simulate learners: stream their events into a server, or write them as JSONL (--out)."""
    from jacmon.sim.simulator import Simulator, generate_history

    moment = _parse_start(start)
    if out is not None:
        if server is not None:
            raise UsageError("--server and --out were both given. Expected one: stream or write.")
        if events is None and days is None:
            raise UsageError("--out needs a bound. Expected --events N or --days D (or both).")
        span = days if days is not None else 7.0
        end = moment + timedelta(days=span) if moment is not None else None
        stream = generate_history(
            seed=seed, learners=learners, days=span, events=events, end=end, catalog=catalog
        )
        from jacmon.sim.stream import write_jsonl

        if str(out) == "-":
            with progress_line(events) as shown:
                count = write_jsonl(stream, sys.stdout, on_count=shown.written)
        else:
            try:
                with out.open("w", encoding="utf-8") as handle, progress_line(events) as shown:
                    count = write_jsonl(stream, handle, on_count=shown.written)
            except OSError as exc:
                raise UsageError(
                    f"--out {str(out)!r} cannot be written ({exc.strerror or exc}). "
                    "Expected a writable file path."
                ) from None
        if json_output:
            # stdout carries the events with --out -: the summary must not join them.
            print_json({"written": count, "file": str(out)}, stderr=str(out) == "-")
        else:
            console.print(f"wrote {count} events to {out}")
        return

    from jacmon.config import load_settings
    from jacmon.sim.stream import stream_to_server

    if days is not None:
        raise UsageError("--days bounds --out only. Expected --duration S or --events N to stream.")
    settings = load_settings(config, overrides={"client": {"server": server, "token": token}})
    check_server_url(settings.client.server)
    if duration is None and events is None:
        duration = 60.0
    population = {
        "seed": seed,
        "learners": learners,
        "history": timedelta(days=history_days),
        "catalog": catalog,
    }
    now = datetime.now(UTC)
    if moment is None:
        span_s = _events_span_s(events, **population) if duration is None and events else None
        moment = _default_stream_start(speed, duration, span_s, events, rate)
    elif moment > now:
        raise UsageError(
            f"--start has value {start!r}, which is in the future; a live server takes no "
            "events dated after now. Expected a past time (or no --start)."
        )
    simulator = Simulator(start=moment, speed=speed, **population)
    with progress_line(events if duration is None else None, duration_s=duration) as shown:
        summary = run(
            stream_to_server(
                simulator,
                settings.client.server,
                token=settings.client.token,
                rate=rate,
                duration_s=duration,
                max_events=events,
                batch_size=batch,
                on_batch=shown.streamed,
                # A live server takes no events from the future.
                present=lambda: datetime.now(UTC),
            )
        )
    if json_output:
        print_json(summary.as_dict())
    else:
        report = summary.as_dict()
        console.print(
            f"sent {summary.sent} events in {summary.batches} batches over {summary.wall_s:.1f} s "
            f"({report['rate_ev_per_s']} ev/s): {summary.accepted} accepted, "
            f"{summary.duplicates} duplicates, {len(summary.rejected)} rejected"
        )
        if summary.sim_from is not None:
            span = f"{summary.sim_from:%Y-%m-%d %H:%M} .. {summary.sim_to:%Y-%m-%d %H:%M}"
            console.print(f"simulated {span} UTC at {speed:g}x")
        # By default the run is planned to end at the present: reaching it is no news.
        cut_short = (events is not None and summary.sent < events) or (
            start is not None and duration is not None and summary.wall_s < duration - 1.0
        )
        if summary.stopped == "present" and cut_short:
            console.print(
                "[yellow]stopped at the present: a live server takes no events dated in the "
                "future; pass an earlier --start or a lower --speed to send more[/]"
            )
        if summary.behind:
            console.print(
                f"[yellow]the --rate cap kept the stream {summary.lag_s / 60:.0f} simulated "
                "minutes behind the clock; raise --rate or lower --speed[/]"
            )
        for rejection in summary.rejected[:SHOWN_REJECTIONS]:
            console.print(
                f"[red]rejected[/] event {escape(rejection['id'])}: {escape(rejection['error'])}"
            )
        if len(summary.rejected) > SHOWN_REJECTIONS:
            console.print(f"... and {len(summary.rejected) - SHOWN_REJECTIONS} more (use --json)")
    if summary.rejected:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)
