"""The progress rules' reference for tests: a random event generator and the pure rules
(jacmon/analytics/progress.py) kept per key, to hold the store's SQL projection to.

Used by tests/store (the SQL statements, spans and restarts) and by the SIGKILL
loop (tests/server/test_projection_sigkill.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from store_backends import rows

from jacmon.analytics.progress import (
    BatchProgress,
    apply_learner,
    apply_module,
    apply_path,
)
from jacmon.events import EVENT_TYPES, Event
from jacmon.store import Store
from jacmon.store.catalog import Catalog

#: 2026-01-05T00:00:00Z.
DAY0 = 1767571200
LEARNERS = ["u1", "u2", "u3", "u4"]
PATHS = ["p1", "p2", "p3"]
MODULES = ["m1", "m2", "m3", "m4", "m5"]


def random_event(rng: random.Random, n: int, used_ids: list[str]) -> dict[str, Any]:
    kind = rng.choice(EVENT_TYPES)
    if used_ids and rng.random() < 0.05:
        event_id = rng.choice(used_ids)  # a duplicate
    else:
        event_id = f"e{n}"
        used_ids.append(event_id)
    # Up to 12 days, so batches hold gaps between active days and late events.
    when = DAY0 + rng.randrange(12) * 86400 + rng.randrange(86400)
    body: dict[str, Any] = {
        "id": event_id,
        "type": kind,
        "ts": datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z"),
        "learner": rng.choice(LEARNERS),
    }
    if kind.startswith(("path.", "module.", "lesson.")) or rng.random() < 0.6:
        body["path"] = rng.choice(PATHS)
    if kind.startswith(("module.", "lesson.")) or ("path" in body and rng.random() < 0.5):
        body["module"] = rng.choice(MODULES)
    if kind.startswith(("lesson.", "assessment.")):
        body["item"] = f"i{rng.randrange(3)}"
    if kind == "module.progressed" or rng.random() < 0.1:
        body["progress"] = rng.randrange(101)
    if kind == "assessment.attempted" or rng.random() < 0.1:
        if rng.random() < 0.5:
            body["score"] = {"scaled": rng.randrange(101) / 100}
        else:
            body["score"] = {"raw": rng.randrange(11), "min": 0, "max": 10}
    if rng.random() < 0.5:
        body["duration_s"] = rng.randrange(1, 600)
    return body


class Reference:
    """Progress kept by the pure rules, batch by batch, as the store did before SQL."""

    def __init__(self) -> None:
        self.modules: dict[tuple, dict] = {}
        self.paths: dict[tuple, dict] = {}
        self.learners: dict[tuple, dict] = {}
        self.ids: set[str] = set()
        #: Active days per learner and per (learner, path): the store's day tables.
        self.learner_days: dict[str, set[int]] = {}
        self.path_days: dict[tuple[str, str], set[int]] = {}

    def _sums(self, learner: str, path: str, catalog: Catalog) -> tuple[float, int, float | None]:
        total, completed, done_at = 0.0, 0, None
        for (who, on, module), row in self.modules.items():
            if who == learner and on == path and (path, module) in catalog.known_modules:
                total += row["percent"]
                completed += row["status"] == "completed"
                if row["completed_at"] is not None:
                    done_at = max(done_at or row["completed_at"], row["completed_at"])
        return total, completed, done_at

    def apply(self, events: list[Event], catalog: Catalog, recounted: set[str]) -> None:
        for path in recounted:
            # What recompute_path_percents does to the rows of learners not in the batch.
            count = max(catalog.module_counts.get(path, 0), 1)
            for (learner, on), row in self.paths.items():
                if on == path and row["status"] != "completed":
                    total, completed, _ = self._sums(learner, path, catalog)
                    row["percent"] = min(100.0, total / count)
                    row["modules_completed"] = completed
        batch = BatchProgress()
        for event in events:
            if event.id not in self.ids:
                self.ids.add(event.id)
                batch.add(event)
        for key, delta in batch.modules.items():
            self.modules[key] = apply_module(self.modules.get(key), delta)
        for key, delta in batch.paths.items():
            total, completed, done_at = self._sums(key[0], key[1], catalog)
            days = self.path_days.setdefault(key, set())
            days |= delta.days
            self.paths[key] = apply_path(
                self.paths.get(key),
                delta,
                module_percent_sum=total,
                modules_completed=completed,
                modules_completed_at=done_at,
                module_count=catalog.module_counts.get(key[1], 0),
                catalog_is_authoritative=key[1] in catalog.authoritative,
                days=days,
            )
        for learner, delta in batch.learners.items():
            days = self.learner_days.setdefault(learner, set())
            days |= delta.days
            self.learners[(learner,)] = apply_learner(
                self.learners.get((learner,)), delta, days=days
            )


async def table(store: Store, name: str, keys: tuple[str, ...]) -> dict[tuple, dict]:
    found = await rows(store, f"SELECT * FROM {name}")
    return {tuple(row.pop(k) for k in keys): row for row in found}


def assert_same(stored: dict[tuple, dict], expected: dict[tuple, dict], name: str) -> None:
    assert stored.keys() == expected.keys(), name
    for key, row in expected.items():
        # Sums may add in another order in SQLite: equal up to float rounding.
        assert stored[key] == pytest.approx(row, rel=1e-12), (name, key)
