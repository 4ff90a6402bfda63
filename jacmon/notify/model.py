"""What a receiver is given and what it answers: the seam between routing and sending."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol


class AlertChange:
    """One alert change a notification carries.

    ``change`` is ``fired``, ``updated``, ``resolved``, ``acknowledged``,
    ``unacknowledged`` or ``repeat`` (the group is re-sent after its
    repeat interval). ``alert`` is the alert as the streams send it
    (docs/protocol.md): ``id``, ``rule``, ``severity``, ``state``, ``learner``,
    ``path``, ``message``, ``numbers`` (the evidence), ``first_seen``,
    ``last_seen``, ``resolved_at`` (epoch seconds), ``acknowledged`` and
    ``acknowledgements``.

    ``raw`` is the alert's JSON text as stored, when the change came from the
    outbox: a receiver that forwards JSON (the webhook) splices it in as it is,
    and ``alert`` is decoded from it only when a receiver reads it. A burst of
    thousands of alerts then costs the webhook no decoding and no encoding.
    """

    __slots__ = ("_alert", "alert_id", "change", "raw", "seq")

    def __init__(
        self,
        change: str,
        seq: int,
        alert: dict[str, Any] | None = None,
        *,
        raw: str | None = None,
        alert_id: int | None = None,
    ) -> None:
        if alert is None and raw is None:
            raise ValueError("an AlertChange needs the alert or its JSON text")
        self.change = change
        self.seq = seq
        self._alert = alert
        self.raw = raw
        self.alert_id = int(alert["id"]) if alert_id is None and alert is not None else alert_id

    @property
    def alert(self) -> dict[str, Any]:
        if self._alert is None:
            self._alert = json.loads(self.raw or "{}")
        return self._alert

    @property
    def id(self) -> int:
        """The alert's id (read without decoding when it is known)."""
        return self.alert_id if self.alert_id is not None else int(self.alert["id"])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AlertChange):
            return NotImplemented
        return (self.change, self.seq, self.alert) == (other.change, other.seq, other.alert)

    def __repr__(self) -> str:
        return f"AlertChange({self.change!r}, {self.seq}, alert id {self.id})"


@dataclass(frozen=True, slots=True)
class Notification:
    """One message to one receiver: the pending changes of one alert group.

    ``key`` is the idempotency key: the same on every retry of this message,
    so a receiver can drop repeats. ``group`` is the group's labels
    (``group_by`` names and their values, e.g. ``{"rule": ..., "path": ...}``).
    ``created_at`` is when the first change of the message was routed, in
    epoch seconds. ``dashboard_url`` is ``notify.dashboard_url`` (None: no link).
    """

    receiver: str
    key: str
    group: dict[str, str]
    changes: tuple[AlertChange, ...]
    created_at: float
    dashboard_url: str | None = None

    @property
    def alerts(self) -> list[dict[str, Any]]:
        """Each alert once (its latest state in this message), in the order first seen."""
        latest: dict[int, dict[str, Any]] = {}
        for change in self.changes:
            latest[change.id] = change.alert
        return list(latest.values())

    def latest_changes(self) -> list[AlertChange]:
        """Each alert's last change in this message, in the order the alerts first appear."""
        latest: dict[int, AlertChange] = {}
        for change in self.changes:
            latest[change.id] = change
        return list(latest.values())


@dataclass(frozen=True, slots=True)
class Delivery:
    """A receiver's answer to one send.

    ``ok``: the receiver accepted it (HTTP 2xx, SMTP 250): the notification is done.
    ``retry``: on failure, whether sending again may succeed (timeouts, 5xx, 408,
    429, connection refused); False for a permanent refusal (other 4xx, bad
    address). ``status`` is short (``"HTTP 503"``, ``"SMTP 250"``,
    ``"connection refused"``); ``detail`` an excerpt of the response body or
    the error (at most 1,000 characters, secrets never included).
    ``retry_after_s``: the receiver's ``Retry-After``, in seconds, if it sent one.
    """

    ok: bool
    status: str
    detail: str = ""
    retry: bool = True
    retry_after_s: float | None = None


class Receiver(Protocol):
    """Sends notifications to one configured place (``[[notify.receivers]]``)."""

    name: str
    type: str

    async def send(self, notification: Notification) -> Delivery:
        """Deliver ``notification``; never raises for a delivery failure (answers it)."""
        ...

    async def close(self) -> None:
        """Release connections (called once, at shutdown)."""
        ...


class Resyncing(Protocol):
    """A receiver that must be told the whole firing set periodically (Alertmanager).

    Alertmanager considers an alert resolved when it is not re-posted within its
    ``resolve_timeout``; the worker calls :meth:`resync` every ``resync_interval_s``
    with every firing, unsilenced alert the receiver's routes match.
    """

    resync_interval_s: float

    async def resync(self, alerts: list[dict[str, Any]]) -> Delivery: ...


@dataclass(slots=True)
class ReceiverSpec:
    """A parsed ``[[notify.receivers]]`` table: ``name``, ``type`` and its settings."""

    name: str
    type: str
    settings: dict[str, Any] = field(default_factory=dict)
