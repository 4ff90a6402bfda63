"""``jacmon ingest-log``: what platforms pushed that could not be mapped, and why."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.text import Text

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

#: The sources that push: the xAPI statements endpoint and the Caliper endpoint.
SOURCES = ("xapi", "caliper")


async def _read(store, *, limit: int, source: str | None, everything: bool) -> dict:
    rows = await store.received_log(limit=limit, source=source, unmapped_only=not everything)
    return {"totals": await store.received_totals(), "rows": rows}


def register(app: typer.Typer) -> None:
    @app.command("ingest-log")
    @handle_errors
    def ingest_log(
        source: str | None = typer.Option(
            None, "--source", help="Only this endpoint: " + ", ".join(SOURCES) + "."
        ),
        everything: bool = typer.Option(
            False,
            "--all",
            help="Every record kept, mapped ones too; without it, only the unmapped.",
        ),
        limit: int = typer.Option(50, "--limit", min=1, max=10000, help="Newest rows to show."),
        show_body: bool = typer.Option(
            False, "--body", help="Print each record as it was sent (JSON)."
        ),
        as_json: bool = typer.Option(False, "--json", help="Print totals and rows as JSON."),
        db: Path | None = DbOption,
        config: Path | None = ConfigOption,
    ) -> None:
        """List what platforms pushed to /xAPI/statements and /caliper that jacmon accepted
        but could not map, newest first, with the reason (--all: every record kept)."""
        if source is not None and source not in SOURCES:
            raise UsageError(
                f"--source has value {source!r}. Expected one of {', '.join(SOURCES)}."
            )
        found = run(
            with_store(
                existing_db(db, config),
                lambda store: _read(store, limit=limit, source=source, everything=everything),
                readonly=True,
            )
        )
        rows = found["rows"]
        if as_json:
            for row in rows:
                row["body"] = json.loads(row["body"])
            print_json(found)
            return
        console = out_console()
        totals = found["totals"]
        summary = ", ".join(
            f"{name}: {counts['mapped']} mapped, {counts['unmapped']} unmapped"
            for name, counts in sorted(totals.items())
        )
        console.print(f"records kept: {summary or 'none yet'}")
        if not rows:
            console.print("nothing unmapped" if not everything else "no records")
            return
        # One line per record and its reason indented below it, not a table: ids and
        # reasons are long, and a table at 80 columns would cut the ids.
        for row in rows:
            outcome = "stored" if row["event_id"] is not None else "unmapped"
            line = Text(f"{utc_text(row['received'], seconds=True)} {row['source']:<7} ")
            line.append(row["id"], style="bold")
            line.append(f" {outcome}")
            console.print(line, overflow="fold", soft_wrap=False)
            if row["reason"]:
                console.print(Text(f"    {row['reason']}"), overflow="fold", soft_wrap=False)
            if show_body:
                console.print_json(row["body"], indent=2)
