"""``jacmon sim``: stream a simulated learner population into a server, or write it as JSONL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from jacmon.commands.common import (
    ConfigOption,
    check_server_url,
    handle_errors,
    print_json,
    run,
)
from jacmon.errors import UsageError

console = Console(stderr=True, highlight=False)

#: How many rejections the human summary lists one by one (--json lists all).
SHOWN_REJECTIONS = 5


def _default_stream_start(
    speed: float, duration: float | None, events: int | None, rate: float
) -> datetime:
    """A start from which the simulated run ends about now, not in the future.

    The server rejects events dated more than ``server.max_clock_skew_s`` ahead
    of its clock; at ``speed`` x the wall, a run that starts now would soon be.
    The run lasts ``duration`` wall seconds, or about ``events / rate``.
    """
    wall_s = duration if duration is not None else (events or 0) / rate
    now = datetime.now(UTC).replace(microsecond=0)
    return now - timedelta(seconds=wall_s * speed)


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
    from jacmon.sim import Simulator, generate_history

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
        from jacmon.sim_stream import write_jsonl

        if str(out) == "-":
            count = write_jsonl(stream, sys.stdout)
        else:
            try:
                with out.open("w", encoding="utf-8") as handle:
                    count = write_jsonl(stream, handle)
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
    from jacmon.sim_stream import stream_to_server

    if days is not None:
        raise UsageError("--days bounds --out only. Expected --duration S or --events N to stream.")
    settings = load_settings(config, overrides={"client": {"server": server, "token": token}})
    check_server_url(settings.client.server)
    if duration is None and events is None:
        duration = 60.0
    if moment is None:
        moment = _default_stream_start(speed, duration, events, rate)
    simulator = Simulator(
        seed=seed,
        learners=learners,
        start=moment,
        speed=speed,
        history=timedelta(days=history_days),
        catalog=catalog,
    )
    summary = run(
        stream_to_server(
            simulator,
            settings.client.server,
            token=settings.client.token,
            rate=rate,
            duration_s=duration,
            max_events=events,
            batch_size=batch,
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
        if summary.lag_s > 60:
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
