"""``jacmon dashboard``: the live terminal dashboard (Textual) for a jacmon server."""

from __future__ import annotations

from pathlib import Path

import typer

from jacmon.commands.common import ConfigOption, check_server_url, handle_errors


@handle_errors
def dashboard(
    server: str | None = typer.Option(
        None, "--server", help="Server URL, e.g. ws://127.0.0.1:8765 [config, JACMON_SERVER]."
    ),
    token: str | None = typer.Option(
        None, "--token", help="Access token [config, JACMON_TOKEN]; none on loopback."
    ),
    learner: str | None = typer.Option(
        None, "--learner", help="Show only this learner [config, JACMON_LEARNER]."
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
