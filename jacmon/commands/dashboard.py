"""``jacmon dashboard``: the live terminal dashboard (Textual) for a jacmon server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import typer
from websockets.exceptions import WebSocketException

from jacmon.commands.common import ConfigOption, check_server_url, handle_errors
from jacmon.errors import UsageError

#: How long the --learner check waits for the server, in seconds; past it the
#: dashboard starts anyway and shows the connection's state itself.
LEARNER_CHECK_TIMEOUT_S = 5.0

#: Learner names the "unknown learner" message shows as examples.
EXAMPLE_LEARNERS = 3


#: Failures to ask the server (unreachable, refused, closed, an unexpected frame): the
#: dashboard shows each of them itself, so the --learner check steps aside.
_CANNOT_ASK = (OSError, TimeoutError, WebSocketException, ValueError, KeyError, TypeError)


async def _dashboard_snapshot(
    server: str, token: str | None, learner: str | None
) -> dict[str, Any]:
    """The first ``/ws/dashboard`` snapshot, scoped to ``learner`` (None: everyone)."""
    from websockets.asyncio.client import connect

    url = server.rstrip("/") + "/ws/dashboard"
    if learner is not None:
        url += "?" + urlencode({"learner": learner})
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with connect(url, additional_headers=headers, max_size=None, compression=None) as ws:
        async for frame in ws:
            message = json.loads(frame)
            if message.get("type") == "snapshot":
                return message["data"]
    raise ConnectionError("closed before the snapshot")


async def learner_problem(server: str, token: str | None, learner: str) -> str | None:
    """Why ``--learner`` would show an empty dashboard, or None if the learner is known.

    None too when the server cannot be asked (unreachable, token refused, slow):
    the dashboard itself shows that, with its retries.
    """
    try:
        async with asyncio.timeout(LEARNER_CHECK_TIMEOUT_S):
            scoped = await _dashboard_snapshot(server, token, learner)
            if scoped.get("learners"):
                return None
            problem = f"learner {learner!r} has no events on {server}"
            # A learner-scoped token may not list the others: then say only that.
            with contextlib.suppress(*_CANNOT_ASK):
                everyone = await _dashboard_snapshot(server, token, None)
                names = [row["learner"] for row in everyone.get("learners", [])]
                if names:
                    examples = ", ".join(names[:EXAMPLE_LEARNERS])
                    problem += f"; known learners look like {examples}"
                else:
                    problem += (
                        "; it has no learners yet (feed it with 'jacmon ingest' or 'jacmon sim')"
                    )
            return problem + ". Check --learner."
    except _CANNOT_ASK:
        return None


@handle_errors
def dashboard(
    server: str | None = typer.Option(
        None,
        "--server",
        help="Server URL (ws:// or wss://); also JACMON_SERVER or [client] server in the config.",
        show_default="ws://127.0.0.1:8765",
    ),
    token: str | None = typer.Option(
        None,
        "--token",
        help="Access token; also JACMON_TOKEN or [client] token in the config. "
        "Not needed on loopback unless the server requires tokens.",
    ),
    learner: str | None = typer.Option(
        None,
        "--learner",
        help="Show only this learner; also JACMON_LEARNER or [client] learner in the config.",
    ),
    config: Path | None = ConfigOption,
) -> None:
    """Watch progress, activity, trends, alerts and the connection live. Press ? for keys."""
    from jacmon.config import load_settings
    from jacmon.tui import JacmonDashboard

    settings = load_settings(
        config, overrides={"client": {"server": server, "token": token, "learner": learner}}
    )
    client = settings.client
    check_server_url(client.server)
    if client.learner:
        problem = asyncio.run(learner_problem(client.server, client.token, client.learner))
        if problem is not None:
            raise UsageError(problem)
    # Building the app checks the URL, so a typo fails here with a message, not in the UI.
    app = JacmonDashboard(client.server, token=client.token, learner=client.learner)
    app.run()


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
