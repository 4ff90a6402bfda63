"""The connection panel redraws only when what it shows changes (it did 15 times a second)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from tui_helpers import screen_text

from jacmon.client.streams import CONNECTED, RECONNECTING, ConnectionStatus
from jacmon.tui.widgets import ConnectionPanel

NOW = 1767607200.0


class PanelApp(App[None]):
    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self.clock = clock

    def compose(self) -> ComposeResult:
        yield ConnectionPanel(now=lambda: self.clock[0], id="connection")


def connected(stream: str, last: float) -> ConnectionStatus:
    return ConnectionStatus(stream=stream, state=CONNECTED, last_message_at=last, rtt_s=0.002)


async def test_redraws_only_when_the_text_changes():
    clock = [NOW]
    app = PanelApp(clock)
    async with app.run_test(size=(80, 12)) as pilot:
        panel = app.query_one(ConnectionPanel)
        for stream in panel.statuses:
            panel.update_status(connected(stream, NOW))
        panel.redraw()
        await pilot.pause()
        shown = panel.visual
        assert screen_text(app).count("connected") == 4
        # A frame 0.3 s later: ages still read "0s", so nothing is redrawn.
        panel.update_status(connected("activity", NOW + 0.3))
        clock[0] = NOW + 0.4
        panel.redraw()
        assert panel.visual is shown
        # A second later the age reads "1s": redrawn.
        clock[0] = NOW + 1.4
        panel.redraw()
        assert panel.visual is not shown
        shown = panel.visual
        # A stream going down is shown with its retry time and reason.
        panel.update_status(
            ConnectionStatus(
                stream="alerts",
                state=RECONNECTING,
                reason="server going away",
                retry_at=NOW + 4.4,
                last_message_at=NOW,
            )
        )
        panel.redraw()
        await pilot.pause()
        assert panel.visual is not shown
        text = screen_text(app)
        assert "retry 3s" in text and "server going away" in text
