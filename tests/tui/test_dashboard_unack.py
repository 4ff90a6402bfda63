"""Un-acknowledging end to end: dashboard → server → store → CLI, and CLI → server → dashboard."""

from __future__ import annotations

import asyncio
import json
import os
import sys

from tui_helpers import fire_alert, wait_until

from jacmon.client.streams import CONNECTED
from jacmon.tui import JacmonDashboard
from jacmon.tui.ack import AckScreen, UnackScreen
from jacmon.tui.widgets import AlertsPanel, ConnectionPanel

SIZE = (120, 36)


async def jacmon_cli(*args: str) -> tuple[int, str, str]:
    """Run the real ``jacmon`` command in a subprocess without blocking the server's loop.

    Its stdout is a pipe, as in ``jacmon alerts | grep``: whole rows, whatever the
    terminal's COLUMNS (Textual's test driver sets 80 for its children).
    """
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "jacmon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def all_connected(app: JacmonDashboard) -> bool:
    return all(s.state == CONNECTED for s in app.query_one(ConnectionPanel).statuses.values())


def current_ack(app: JacmonDashboard, alert_id: int) -> dict | None:
    return (app.state.alerts.get(alert_id) or {}).get("acknowledged")


async def test_unack_from_the_dashboard_reaches_the_cli_and_back(running_server):
    fired = await fire_alert(running_server, learner="ada", message="ada is stuck")
    alert_id = fired["alert"]["id"]
    db = str(running_server.db_path)
    app = JacmonDashboard(running_server.url)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(AlertsPanel)
        await wait_until(pilot, lambda: panel.selected_alert_id == alert_id, "the alert")
        await wait_until(pilot, lambda: all_connected(app), "streams connected")
        # u on an alert nobody acknowledged only says so.
        await pilot.press("4", "u")
        await pilot.pause()
        assert not isinstance(app.screen, UnackScreen)
        assert any("not acknowledged" in n.message for n in app._notifications)

        await pilot.press("a")
        await wait_until(pilot, lambda: isinstance(app.screen, AckScreen), "the ack prompt")
        await pilot.press("tab", *"called her", "enter")
        await wait_until(pilot, lambda: current_ack(app, alert_id), "the acknowledgement")

        # u asks first; n keeps the acknowledgement.
        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, UnackScreen), "the unack prompt")
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, UnackScreen), "prompt closed")
        assert current_ack(app, alert_id)

        await pilot.press("u")
        await wait_until(pilot, lambda: isinstance(app.screen, UnackScreen), "the prompt again")
        await pilot.press("tab", *"wrong learner", "enter")
        await wait_until(pilot, lambda: current_ack(app, alert_id) is None, "the ack withdrawn")

        # The CLI, another process on the same database, sees the whole history.
        code, out, err = await jacmon_cli("alerts", "--json", "--db", db)
        assert code == 0, err
        (alert,) = [a for a in json.loads(out) if a["id"] == alert_id]
        assert alert["acknowledged"] is None
        assert [e["action"] for e in alert["acknowledgements"]] == [
            "acknowledged",
            "unacknowledged",
        ]
        assert alert["acknowledgements"][0]["note"] == "called her"
        assert alert["acknowledgements"][1]["note"] == "wrong learner"
        assert alert["acknowledgements"][1]["by"] == "anonymous"
        code, out, err = await jacmon_cli("alerts", "--db", db)
        assert "withdrawn by anonymous" in out, out

        # And the other way: the CLI acknowledges and withdraws; the dashboard follows.
        code, out, err = await jacmon_cli("alerts", "ack", str(alert_id), "--by", "sam", "--db", db)
        assert code == 0, err
        await wait_until(pilot, lambda: current_ack(app, alert_id), "the CLI's ack on screen")
        assert current_ack(app, alert_id)["by"] == "sam"
        code, out, err = await jacmon_cli(
            "alerts", "unack", str(alert_id), "--by", "sam", "--note", "oops", "--db", db
        )
        assert code == 0, err
        assert f"withdrew the acknowledgement of alert {alert_id}" in out
        await wait_until(pilot, lambda: current_ack(app, alert_id) is None, "the CLI's unack")
        history = app.state.alerts[alert_id]["acknowledgements"]
        assert [e["action"] for e in history][-2:] == ["acknowledged", "unacknowledged"]

        # Withdrawing again is a clear error, not a traceback.
        code, out, err = await jacmon_cli("alerts", "unack", str(alert_id), "--db", db)
        assert code != 0
        assert "is not acknowledged" in err + out
        assert "Traceback" not in err
