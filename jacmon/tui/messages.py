"""Messages the dashboard's widgets post (past tense: they say what happened)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from jacmon.client.streams import ConnectionStatus


@dataclass
class ConnectionChanged(Message):
    """A stream's connection status changed (state, RTT, reconnects ...)."""

    status: ConnectionStatus


@dataclass
class ProgressViewChanged(Message):
    """The progress panel's drill-down changed: ``kind`` is overview, path or learner."""

    kind: str
    key: str | None


@dataclass
class AlertAckRequested(Message):
    """The user asked to acknowledge an alert (the app asks for confirmation first)."""

    alert_id: int


@dataclass
class AlertUnackRequested(Message):
    """The user asked to withdraw an alert's acknowledgement (the app asks first)."""

    alert_id: int


@dataclass
class AlertDetailRequested(Message):
    """The user asked for an alert's detail view (Enter on its row)."""

    alert_id: int


@dataclass
class FilterChanged(Message):
    """The feed filter changed; ``text`` empty means no filter."""

    text: str
