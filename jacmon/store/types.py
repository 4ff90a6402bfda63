"""What every store hands back, whatever the backend: stored events, ingest outcomes,
notification batches, and the errors a store raises for its callers to show."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from jacmon.errors import JacmonError, StoreError
from jacmon.events import Event
from jacmon.notify.model import AlertChange, Notification

ALERT_STATES = ("firing", "resolved")

#: Notification states; pending and sending are the open ones.
STATES = ("pending", "sending", "sent", "failed", "silenced")
#: Changes the router looks at (``updated`` is the task re-measuring a firing alert).


class AlertError(JacmonError):
    """An alert does not exist or cannot take the change asked for."""


class SilenceError(JacmonError):
    """A silence command that cannot be carried out (the message says why)."""


class StorageUnavailable(StoreError):
    """A batch could not be stored for a reason of the storage, not of the events.

    Disk full, a read-only file, an I/O error, or the database file removed or
    replaced while open. Nothing of the batch was stored; the message names the
    problem and what clears it.
    """


class RecordConflict(StoreError):
    """A pushed record's id is already kept (or repeated in the batch) with other
    content, and its record refuses that: nothing of the batch was stored."""

    def __init__(self, source: str, ids: list[str]):
        self.source = source
        self.ids = ids
        more = f" (and {len(ids) - 1} more)" if len(ids) > 1 else ""
        super().__init__(f"{source} record {ids[0]} is already kept with other content{more}")


@dataclass(slots=True)
class StoredEvent:
    """An event as stored: its sequence number and its JSON text (extras included)."""

    seq: int
    event: Event
    body: str


@dataclass(slots=True)
class ProgressChanges:
    """Rows the batch changed, as dicts, for the dashboard stream's deltas."""

    paths: list[dict[str, Any]] = field(default_factory=list)
    modules: list[dict[str, Any]] = field(default_factory=list)
    learners: list[dict[str, Any]] = field(default_factory=list)
    #: Paths whose module count changed (their learners' percents were re-derived).
    recounted: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.paths or self.modules or self.learners)


@dataclass(slots=True)
class IngestOutcome:
    """What one committed batch did (progress follows later: see :class:`Projection`)."""

    stored: list[StoredEvent]
    #: Indexes (into the events given) that were duplicates of stored ids.
    duplicate_indexes: list[int]
    last_seq: int


@dataclass(frozen=True, slots=True)
class ReceivedRecord:
    """One record a platform pushed (an xAPI statement, a Caliper event), kept as sent.

    Stored in the same transaction as the events of its request, so nothing a sender
    sent is lost, even what jacmon cannot map; a record already kept (same ``source``
    and ``id``) is left as it was.
    """

    #: ``xapi`` or ``caliper``.
    source: str
    #: The statement's or event's id (generated for an xAPI statement sent without one).
    id: str
    #: The record as JSON text, as the sender sent it (with a generated id added).
    body: str
    #: SHA-256 (hex) of the record's content as compared for conflicts (see the source).
    digest: str
    #: The jacmon event it became, or None when it could not be mapped.
    event_id: str | None
    #: Why it could not be mapped (None when it was).
    reason: str | None
    #: The token that sent it (None: the loopback anonymous admin).
    token: str | None
    #: True: if the id is already kept (or repeated in the batch) with another digest,
    #: the whole batch is refused with :class:`RecordConflict` (xAPI's 409), checked
    #: inside the batch's transaction so two senders racing cannot both succeed.
    #: False: the record kept first stays.
    refuse_other_content: bool = False


@dataclass(frozen=True, slots=True)
class Projection:
    """One committed projector span: events ``first_seq``..``last_seq`` folded into the
    progress tables, and the watermark (``progress_seq``) moved to ``last_seq`` in the
    same transaction."""

    first_seq: int
    last_seq: int
    changes: ProgressChanges


@dataclass(frozen=True, slots=True)
class ProgressView:
    """Dashboard summaries read in one snapshot with the watermark they reflect: every
    value is the fold of the events up to ``progress_seq``, none after it."""

    progress_seq: int
    paths: list[dict[str, Any]]
    modules: list[dict[str, Any]]
    total_learners: int


@dataclass(frozen=True, slots=True)
class DueGroup:
    """An alert group of one receiver with something to send now."""

    receiver: str
    group_key: str


def batch_key(receiver: str, group_key: str, ids: list[int]) -> str:
    """The idempotency key of a message: the same for every retry of the same rows."""
    text = f"{receiver}\n{group_key}\n{min(ids)}-{max(ids)}-{len(ids)}"
    return "jm-" + hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class ClaimedBatch:
    """A batch as claimed: its key, group labels and raw rows (change, seq, alert JSON,
    routed at, alert id). :meth:`notification` decodes it, after the write transaction."""

    receiver: str
    key: str
    labels: dict[str, str]
    rows: list[tuple[str, int, str, float, int]]

    def notification(
        self, dashboard_url: str | None = None, shared: dict[int, AlertChange] | None = None
    ) -> Notification:
        """The message to send. ``shared`` keeps the changes by seq across receivers: the
        same burst goes to each of them, and each alert is decoded at most once (and not
        at all for a receiver that forwards the stored JSON)."""
        cache = {} if shared is None else shared
        changes = []
        for change, seq, body, _, alert_id in self.rows:
            item = cache.get(seq) if seq else None
            if item is None:
                item = AlertChange(change, seq, raw=body, alert_id=alert_id)
                if seq:
                    cache[seq] = item
            changes.append(item)
        return Notification(
            receiver=self.receiver,
            key=self.key,
            group=self.labels,
            changes=tuple(changes),
            created_at=min(row[3] for row in self.rows),
            dashboard_url=dashboard_url,
        )
