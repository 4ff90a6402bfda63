"""The acknowledge and un-acknowledge prompts: y/n, with an optional note (and expiry)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from jacmon.tui.format import middle_ellipsis, parse_duration


@dataclass(frozen=True, slots=True)
class AckAnswer:
    """What the user confirmed: the note ("" for none) and the expiry in seconds (None: never)."""

    note: str
    expires_in_s: float | None


class AckScreen(ModalScreen[AckAnswer | None]):
    """Asks "acknowledge alert N?"; returns an :class:`AckAnswer`, or None when declined.

    ``y`` (or Enter in a field) confirms, ``n`` or Esc declines; Tab reaches
    the note and the expiry (``30m``, ``2h``, ``1d``; empty: never expires).
    """

    # No field focused at first: y and n answer at once; Tab reaches the fields.
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("y", "confirm", "Yes", tooltip="Acknowledge the alert"),
        Binding("n,escape", "cancel", "No", tooltip="Leave the alert as it is"),
    ]

    def __init__(self, alert: dict[str, Any]) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        who = middle_ellipsis(str(alert.get("learner") or alert.get("path") or "-"), 40)
        with Vertical(id="ack-box"):
            # Text, not markup: ids and messages may hold brackets.
            yield Static(
                Text(f"Acknowledge alert {alert['id']} ({alert.get('rule', '?')}, {who})?"),
                id="ack-title",
            )
            yield Static(Text(str(alert.get("message", ""))), id="ack-message")
            yield Input(placeholder="note (optional)", id="ack-note")
            yield Input(placeholder="expires after: 30m, 2h, 1d (empty: never)", id="ack-expiry")
            yield Static("", id="ack-error")
            yield Static("y: acknowledge · n / Esc: cancel · Tab: note and expiry", id="ack-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        note = self.query_one("#ack-note", Input).value.strip()
        try:
            expires_in_s = parse_duration(self.query_one("#ack-expiry", Input).value)
        except ValueError as exc:
            # Keep the prompt open with the reason; the user fixes the text.
            self.query_one("#ack-error", Static).update(Text(str(exc), "red"))
            return
        self.dismiss(AckAnswer(note, expires_in_s))

    def action_cancel(self) -> None:
        self.dismiss(None)


class UnackScreen(ModalScreen[str | None]):
    """Asks "withdraw the acknowledgement of alert N?"; returns the note ("" for none),
    or None when declined. ``y`` (or Enter in the note) confirms, ``n`` or Esc declines."""

    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("y", "confirm", "Yes", tooltip="Withdraw the acknowledgement"),
        Binding("n,escape", "cancel", "No", tooltip="Leave the alert acknowledged"),
    ]

    def __init__(self, alert: dict[str, Any]) -> None:
        super().__init__()
        self.alert = alert

    def compose(self) -> ComposeResult:
        alert = self.alert
        who = middle_ellipsis(str(alert.get("learner") or alert.get("path") or "-"), 40)
        current = alert.get("acknowledged") or {}
        with Vertical(id="ack-box"):
            yield Static(
                Text(
                    f"Withdraw the acknowledgement of alert {alert['id']} "
                    f"({alert.get('rule', '?')}, {who})?"
                ),
                id="ack-title",
            )
            yield Static(
                Text(f"acknowledged by {current.get('by', '?')}: {current.get('note') or '-'}"),
                id="ack-message",
            )
            yield Input(placeholder="note (optional): why", id="ack-note")
            yield Static("y: withdraw · n / Esc: cancel · Tab: note", id="ack-keys")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def action_confirm(self) -> None:
        self.dismiss(self.query_one("#ack-note", Input).value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)
