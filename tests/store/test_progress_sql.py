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

import pytest
from progress_reference import MODULES, Reference, assert_same, random_event, table
from store_backends import ingest_projected

from jacmon.events import validate_event
from jacmon.store import Store
from jacmon.store.catalog import CatalogPath
from jacmon.store.sqlite.progress_sql import MATH_FALLBACKS


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
            outcome = await ingest_projected(store, events)
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
                await ingest_projected(store, batch)
            return [
                await table(store, "path_progress", ("learner", "path")),
                await table(store, "learners", ("learner",)),
            ]
        finally:
            await store.close()

    builtin = await progress(tmp_path / "builtin.db", fallbacks=False)
    assert await progress(tmp_path / "fallback.db", fallbacks=True) == builtin
