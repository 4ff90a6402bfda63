"""The facts the bus carries: each one something the store has committed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jacmon.store.types import ProgressChanges, StoredEvent


@dataclass(frozen=True, slots=True)
class EventsCommitted:
    """One committed ingest batch: its events (seqs ``first_seq``..``last_seq``, no gap)."""

    stored: list[StoredEvent]

    @property
    def first_seq(self) -> int:
        return self.stored[0].seq

    @property
    def last_seq(self) -> int:
        return self.stored[-1].seq


@dataclass(frozen=True, slots=True)
class ProgressProjected:
    """A committed projector span: events ``first_seq``..``last_seq`` are folded into
    progress; ``changes`` are the rows as they are at watermark ``last_seq``.

    A fill (a node that missed spans reads the rows back from the store) carries the
    current rows of every learner with events in the span instead of the span's deltas.
    """

    first_seq: int
    last_seq: int
    changes: ProgressChanges = field(default_factory=ProgressChanges)


@dataclass(frozen=True, slots=True)
class AlertsChanged:
    """Alert changes as logged (``{seq, change, alert}``), in seq order."""

    changes: list[dict[str, Any]]

    @property
    def last_seq(self) -> int:
        return self.changes[-1]["seq"]


@dataclass(frozen=True, slots=True)
class CatalogChanged:
    """The catalog was reloaded (``jacmon catalog load``): module counts may differ."""

    version: str | None = None


@dataclass(frozen=True, slots=True)
class TokensRevoked:
    """These tokens were revoked: their connections must close."""

    token_ids: frozenset[str]


Fact = EventsCommitted | ProgressProjected | AlertsChanged | CatalogChanged | TokensRevoked
