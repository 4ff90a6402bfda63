"""The store's SQL progress statements against the reference rules, on random event streams.

jacmon/store/sqlite/progress_sql.py and jacmon/store/postgres/progress_sql.py apply
the progress rules as set-based SQL (the first test runs on both backends);
jacmon/analytics/progress.py states them as pure Python. Here both see the
same random events in the same random batches (out-of-order times, gaps
between active days, duplicates, every event type, an authoritative catalog
beside discovered modules) and every progress row must come out the same.
"""

from __future__ import annotations

import random
import sqlite3
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
from jacmon.events import EVENT_TYPES, Event, validate_event
from jacmon.store import Store
from jacmon.store.catalog import Catalog, CatalogPath
from jacmon.store.sqlite.progress_sql import MATH_FALLBACKS

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

    def _sums(self, learner: str, path: str, catalog: Catalog) -> tuple[float, int]:
        total, completed = 0.0, 0
        for (who, on, module), row in self.modules.items():
            if who == learner and on == path and (path, module) in catalog.known_modules:
                total += row["percent"]
                completed += row["status"] == "completed"
        return total, completed

    def apply(self, events: list[Event], catalog: Catalog, recounted: set[str]) -> None:
        for path in recounted:
            # What recompute_path_percents does to the rows of learners not in the batch.
            count = max(catalog.module_counts.get(path, 0), 1)
            for (learner, on), row in self.paths.items():
                if on == path and row["status"] != "completed":
                    total, completed = self._sums(learner, path, catalog)
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
            total, completed = self._sums(key[0], key[1], catalog)
            self.paths[key] = apply_path(
                self.paths.get(key),
                delta,
                module_percent_sum=total,
                modules_completed=completed,
                module_count=catalog.module_counts.get(key[1], 0),
                catalog_is_authoritative=key[1] in catalog.authoritative,
            )
        for learner, delta in batch.learners.items():
            self.learners[(learner,)] = apply_learner(self.learners.get((learner,)), delta)


async def table(store: Store, name: str, keys: tuple[str, ...]) -> dict[tuple, dict]:
    found = await rows(store, f"SELECT * FROM {name}")
    return {tuple(row.pop(k) for k in keys): row for row in found}


def assert_same(stored: dict[tuple, dict], expected: dict[tuple, dict], name: str) -> None:
    assert stored.keys() == expected.keys(), name
    for key, row in expected.items():
        # Sums may add in another order in SQLite: equal up to float rounding.
        assert stored[key] == pytest.approx(row, rel=1e-12), (name, key)


@pytest.mark.parametrize("seed", range(12))
async def test_sql_progress_matches_the_reference_rules(store_location, seed):
    rng = random.Random(seed)
    store = await Store.open(store_location)
    try:
        if seed % 2:
            # p1 authoritative with two modules: m3 to m5 are extras that never count.
            await store.load_catalog([CatalogPath("p1", None, [(m, None) for m in MODULES[:2]])])
        reference = Reference()
        used: list[str] = []
        n = 0
        for _ in range(25):
            size = rng.randrange(1, 40)
            events = [validate_event(random_event(rng, n + i, used)) for i in range(size)]
            n += size
            outcome = await store.ingest(events)
            reference.apply(events, store.catalog, outcome.changes.recounted)

            assert_same(
                await table(store, "module_progress", ("learner", "path", "module")),
                reference.modules,
                "module_progress",
            )
            assert_same(
                await table(store, "path_progress", ("learner", "path")),
                reference.paths,
                "path_progress",
            )
            assert_same(
                await table(store, "learners", ("learner",)), reference.learners, "learners"
            )
            # The rows handed back for the dashboard are the rows stored.
            stored_paths = await table(store, "path_progress", ("learner", "path"))
            for row in outcome.changes.paths:
                key = (row["learner"], row["path"])
                assert {k: v for k, v in row.items() if k not in ("learner", "path")} == (
                    stored_paths[key]
                )
    finally:
        await store.close()


# SQLite builds without math functions (SQLite only: PostgreSQL always has floor and sqrt)


@pytest.mark.parametrize(
    ("name", "value"),
    [("floor", v) for v in (-86400.5, -1.5, -1.0, -0.2, 0.0, 0.2, 1.0, 20458.99999, None)]
    + [("sqrt", v) for v in (0, 1, 2, 99.0, 100, 1e6, -1, None)],
)
def test_math_fallbacks_give_sqlites_results(name, value):
    conn = sqlite3.connect(":memory:")
    try:
        (builtin,) = conn.execute(f"SELECT {name}(?)", (value,)).fetchone()
    finally:
        conn.close()
    assert MATH_FALLBACKS[name](value) == builtin


@pytest.mark.parametrize("seed", range(3))
async def test_ingest_with_the_python_math_fallbacks(tmp_path, seed):
    """As if SQLite lacked floor() and sqrt(): the same progress as with them."""
    rng = random.Random(seed)
    batches = []
    used: list[str] = []
    for start in range(0, 200, 20):
        batches.append([validate_event(random_event(rng, start + i, used)) for i in range(20)])

    async def progress(path, *, fallbacks: bool) -> list[dict]:
        store = await Store.open(path)
        try:
            if fallbacks:
                for name, function in MATH_FALLBACKS.items():
                    await store.db.writer.create_function(name, 1, function, deterministic=True)
            for batch in batches:
                await store.ingest(batch)
            return [
                await table(store, "path_progress", ("learner", "path")),
                await table(store, "learners", ("learner",)),
            ]
        finally:
            await store.close()

    builtin = await progress(tmp_path / "builtin.db", fallbacks=False)
    assert await progress(tmp_path / "fallback.db", fallbacks=True) == builtin
