"""``jacmon dashboard``: the live terminal dashboard (Textual) for a jacmon server."""

from __future__ import annotations

from pathlib import Path

import typer

from jacmon.commands.common import ConfigOption, check_server_url, handle_errors


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
    # Building the app checks the URL, so a typo fails here with a message, not in the UI.
    app = JacmonDashboard(client.server, token=client.token, learner=client.learner)
    app.run()


def register(app: typer.Typer) -> None:
    app.command("dashboard")(dashboard)
