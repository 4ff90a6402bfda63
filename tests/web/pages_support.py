"""Helpers for the browser tests of the two pages: a store with progress and firing
alerts, live ingest over a real WebSocket, tokens and the CLI.

Everything async runs in a worker thread with its own event loop: Playwright's
sync API holds the main thread's loop while a browser test runs.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import threading
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import support
from websockets.sync.client import connect

from jacmon.events import validate_event
from jacmon.monitoring.scheduler import Scheduler
from jacmon.store import Store

_ids = itertools.count(1)
T = TypeVar("T")

#: The learners of the store the page tests start from.
LEARNERS = ("ada", "ben", "cy")

#: Where the regenerated screenshots go (shown in the README).
DOCS = Path(__file__).resolve().parents[2] / "docs"


def in_thread(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a fresh loop in another thread; its result."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = asyncio.run(work)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if "error" in box:
        raise box["error"]
    return box["value"]


def event(kind: str, learner: str, when: datetime, **fields: Any) -> dict[str, Any]:
    """One event of the ingest contract at ``when``."""
    body = {"id": f"w{next(_ids)}", "type": kind, "ts": when.isoformat(), "learner": learner}
    body.update(fields)
    return body


def history(now: datetime) -> list[dict[str, Any]]:
    """A day of three learners on two paths: progress, completions, and a run of low
    scores for ``cy`` that makes the performance task fire."""
    start = now - timedelta(hours=20)
    events = []
    for n, learner in enumerate(LEARNERS):
        at = start + timedelta(minutes=n)
        events.append(event("path.enrolled", learner, at, path="python-101"))
        events.append(
            event("session.started", learner, at + timedelta(minutes=1), session=f"s-{learner}")
        )
        for step, module in enumerate(("m1", "m2")):
            when = at + timedelta(hours=1 + step)
            events.append(
                event(
                    "module.progressed",
                    learner,
                    when,
                    path="python-101",
                    module=module,
                    progress=50.0,
                )
            )
            if learner != "cy":
                events.append(
                    event(
                        "module.completed",
                        learner,
                        when + timedelta(minutes=20),
                        path="python-101",
                        module=module,
                    )
                )
    events.append(event("path.enrolled", "ada", start + timedelta(hours=3), path="sql-essentials"))
    for k in range(4):
        when = start + timedelta(hours=4 + k)
        events.append(
            event(
                "assessment.attempted",
                "cy",
                when,
                item=f"quiz-{k}",
                path="python-101",
                module="m1",
                score={"raw": 30 + k, "max": 100},
            )
        )
        events.append(
            event(
                "assessment.attempted",
                "ada",
                when,
                item=f"quiz-{k}",
                path="python-101",
                module="m1",
                score={"raw": 90, "max": 100},
            )
        )
    events.append(
        event(
            "assessment.attempted",
            "ben",
            start + timedelta(hours=9),
            item="quiz-9",
            path="python-101",
            module="m2",
            score={"raw": 41, "max": 100},
        )
    )
    events.append(
        event(
            "assessment.attempted",
            "ben",
            start + timedelta(hours=10),
            item="quiz-10",
            path="python-101",
            module="m2",
            score={"raw": 38, "max": 100},
        )
    )
    return events


async def _prepare(db: Path, events: list[dict[str, Any]], now: datetime) -> list[dict]:
    store = await Store.open(db)
    try:
        if events:
            await store.ingest([validate_event(e) for e in events])
        await Scheduler(store, {}, lambda: now).run_once("performance")
        from jacmon.store.sqlite.alerts import open_alerts

        return await open_alerts(store.db.reader)
    finally:
        await store.close()


def prepare_store(db: Path, *, now: datetime | None = None) -> list[dict]:
    """Fill ``db`` with :func:`history` and run the performance task; the firing alerts."""
    now = now or datetime.now(UTC)
    return in_thread(_prepare(db, history(now), now))


def make_token(db: Path, **kwargs: Any) -> str:
    """A token in ``db`` (``create_token``'s keywords): its full text."""
    return in_thread(support.make_token(db, **kwargs))


def ingest(base: str, events: list[dict[str, Any]], token: str | None = None) -> dict[str, Any]:
    """Send one batch to ``/ws/ingest`` of the server at ``base`` (http://…); its ack data."""
    url = base.replace("http://", "ws://") + "/ws/ingest"
    headers = {"Authorization": f"Bearer {token}"} if token else None
    with connect(url, additional_headers=headers, open_timeout=5) as ws:
        ws.send(json.dumps(events))
        while True:
            frame = json.loads(ws.recv(timeout=5))
            if frame["type"] == "ack":
                return frame["data"]
            if frame["type"] == "error":
                raise AssertionError(f"ingest refused the batch: {frame['data']}")


def live_events(learner: str, count: int, *, path: str = "python-101") -> list[dict[str, Any]]:
    """``count`` activity events of ``learner`` dated now, in order."""
    now = datetime.now(UTC)
    return [
        event("activity", learner, now - timedelta(seconds=count - k), path=path, verb=f"live-{k}")
        for k in range(count)
    ]


def jacmon(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run the jacmon CLI as a user would (wide, no colour); fails the test on a non-zero exit."""
    done = support.run_jacmon(*args, timeout=timeout, env={"COLUMNS": "200", "NO_COLOR": "1"})
    assert done.returncode == 0, f"jacmon {' '.join(args)} failed:\n{done.stderr}"
    return done
