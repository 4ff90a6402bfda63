"""Helpers for the task, alert and scheduler tests: events at chosen times in a real store.

No tests here; the ``test_tasks_*``, ``test_alerts*`` and ``test_scheduler*`` modules import it.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jacmon.events import validate_event
from jacmon.monitoring.scheduler import RunResult, Scheduler
from jacmon.store import Store
from jacmon.store.sqlite.alerts import list_alerts

#: "Now" of most task tests: a Monday noon, UTC.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

_ids = itertools.count(1)


def ago(days: float = 0.0, *, now: datetime = NOW) -> datetime:
    return now - timedelta(days=days)


def ev(kind: str, learner: str, when: datetime, **fields: Any) -> dict[str, Any]:
    """One event dict of the ingest contract at ``when``."""
    body = {"id": f"e{next(_ids)}", "type": kind, "ts": when.isoformat(), "learner": learner}
    body.update(fields)
    return body


def score(learner: str, when: datetime, percent: float, item: str = "quiz") -> dict[str, Any]:
    """An assessment attempt scoring ``percent`` (0-100)."""
    return ev("assessment.attempted", learner, when, item=item, score={"raw": percent, "max": 100})


def enrol(learner: str, path: str, when: datetime) -> dict[str, Any]:
    return ev("path.enrolled", learner, when, path=path)


def progress(learner: str, path: str, module: str, when: datetime, pct: float) -> dict[str, Any]:
    return ev("module.progressed", learner, when, path=path, module=module, progress=pct)


async def open_store(tmp_path: Path, events: list[dict[str, Any]] = ()) -> Store:
    store = await Store.open(tmp_path / "jacmon.db")
    await ingest(store, events)
    return store


async def ingest(store: Store, events: list[dict[str, Any]]) -> None:
    if events:
        await store.ingest([validate_event(e) for e in events])


async def run_task(
    store: Store,
    name: str,
    now: datetime = NOW,
    *,
    tasks: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> RunResult:
    """Run task ``name`` once as if it were ``now``; fail the test if it did not succeed."""
    result = await Scheduler(store, tasks or {}, lambda: now).run_once(name, dry_run=dry_run)
    assert result.outcome == "success", result.error
    return result


async def alerts(store: Store, state: str = "all", rule: str | None = None) -> list[dict]:
    found = await list_alerts(store.db.reader, state=state)
    return [a for a in found if rule is None or a["rule"] == rule]
