"""The filter prompt (``/``): narrows the focused panel (feed, alerts or learners)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from jacmon.tui.format import parse_filter


class FilterScreen(ModalScreen[str | None]):
    """Returns the filter text (empty clears it) or None when cancelled with Esc."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", tooltip="Keep the current filter")]

    PROMPTS = {
        "activity": "Filter the feed (empty clears): ada  path:python  type:assessment",
        "alerts": "Filter the alerts (empty clears): words in learner, path, rule or message",
        "progress": "Filter paths and learners (empty clears): words in their ids",
    }

    def __init__(self, current: str = "", panel: str = "activity") -> None:
        super().__init__()
        self.current = current
        self.panel = panel

    def compose(self) -> ComposeResult:
        with Vertical(id="filter-box"):
            yield Static(self.PROMPTS[self.panel])
            yield Input(value=self.current, placeholder="learner, path or type", id="filter-input")
            yield Static("", id="filter-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        try:
            if self.panel == "activity":
                parse_filter(event.value)
        except ValueError as exc:
            # Keep the prompt open with the reason; the user fixes the text.
            self.query_one("#filter-error", Static).update(f"[red]{exc}[/]")
            return
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
