"""What every monitoring task shares: its spec, the context it runs in, what it returns.

A task reads through the store's set-based queries, works out what to change
with the pure functions of :mod:`jacmon.analytics`, then writes in one short
transaction (:meth:`jacmon.store.Store.transaction`). In a dry run it does the
same reads and planning and writes nothing: its outcome says what it *would* do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from jacmon.analytics.alert_rules import Evaluation, count_actions, plan_alert_changes
from jacmon.store import Store, Transaction
from jacmon.store.base import Fence


@dataclass(slots=True)
class TaskOutcome:
    """What one run did (or, in a dry run, would do)."""

    #: Figures for the run record and the CLI (JSON-able).
    summary: dict[str, Any] = field(default_factory=dict)
    #: Alert changes: ``PlannedChange.as_dict()`` each, ``alert_id`` filled in once written.
    alerts: list[dict[str, Any]] = field(default_factory=list)
    #: Rows written (or that would be written) per table; deletions as ``-N`` under "deleted".
    writes: dict[str, int] = field(default_factory=dict)
    #: Velocity per path (only the velocity task), for the metrics stream.
    velocity: dict[str, dict[str, Any]] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "alerts": self.alerts,
            "writes": self.writes,
            "velocity": self.velocity,
        }


@dataclass(slots=True)
class TaskContext:
    """The world one run sees."""

    store: Store
    #: The run's "now" (the scheduler's clock), aware; :attr:`now` is the same in epoch seconds.
    now_dt: datetime
    #: The zone schedules and local dates are read in.
    tz: ZoneInfo
    #: The task's parameters (its ``Params`` dataclass, defaults overridden by config).
    params: Any
    dry_run: bool = False
    #: The scheduler's lease fence: writes commit only while this node still leads.
    fence: Fence | None = None

    @property
    def now(self) -> float:
        return self.now_dt.timestamp()

    @contextlib.asynccontextmanager
    async def writing(self) -> AsyncIterator[Transaction]:
        """The write transaction; in a dry run a read-only one (whose writes raise)."""
        async with self.store.transaction(write=not self.dry_run, fence=self.fence) as tx:
            yield tx

    async def reconcile_alerts(
        self,
        tx: Transaction,
        evaluation: Evaluation,
        outcome: TaskOutcome,
        *,
        inhibited: dict[str, str] | None = None,
    ) -> None:
        """Bring the open alerts of ``evaluation.rules`` in line, inside ``tx``.

        The open alerts are read in ``tx`` so an acknowledgement made since the
        task's reads is not lost. Adds the changes (not the silent touches) to
        ``outcome.alerts`` and their counts to ``outcome.summary["alerts"]``.
        """
        open_now = await tx.open_alerts_of_rules(evaluation.rules)
        plan = plan_alert_changes(open_now, evaluation, inhibited=inhibited)
        visible = [c for c in plan if c.action != "touch"]
        described = [c.as_dict() for c in visible]
        if not self.dry_run:
            logged = await tx.apply_alert_changes(plan, now=self.now)
            for item, change in zip(described, logged, strict=True):
                item["alert_id"] = change["alert"]["id"]
        outcome.alerts.extend(described)
        counts = outcome.summary.setdefault("alerts", {})
        for action, n in count_actions(plan).items():
            counts[action] = counts.get(action, 0) + n


TaskRun = Callable[[TaskContext], Awaitable[TaskOutcome]]


@dataclass(frozen=True, slots=True)
class TaskSpec:
    """One monitoring task: its name, defaults and code."""

    name: str
    #: One line for ``jacmon tasks``.
    description: str
    #: Default schedule (5-field cron, read in the configured time zone).
    cron: str
    #: A missed fire time this recent (seconds) still gets one catch-up run.
    grace_s: float
    #: A run taking longer than this (wall seconds) is stopped and recorded ``error``.
    timeout_s: float
    #: The dataclass of the task's tunable parameters, with their defaults.
    params: type
    run: TaskRun
