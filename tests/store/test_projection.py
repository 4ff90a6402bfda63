"""Progress is a projection of the event log: always exactly the fold of the events up to
its watermark, whatever the batches, the spans and the restarts.

Random event streams (tests/store/test_progress_sql.py's generator: out-of-order
times, duplicates, every event type, an authoritative catalog beside discovered
modules) are ingested in random batches, projected in random spans, with the
store closed and reopened at random points; after every span the progress tables
must equal the reference rules (jacmon/analytics/progress.py) applied to the
stored events up to the watermark, in one go.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from progress_reference import MODULES, Reference, assert_same, random_event, table
from store_backends import rows

from jacmon.events import Event, validate_event
from jacmon.store import Store
from jacmon.store.catalog import CatalogPath


async def assert_is_the_fold(store: Store, stored: list[Event]) -> None:
    """The progress tables equal the reference fold of the stored events up to the
    watermark (``stored`` in seq order, seq 1 first)."""
    watermark = await store.progress_seq()
    reference = Reference()
    reference.apply(stored[:watermark], store.catalog, set())
    assert_same(
        await table(store, "module_progress", ("learner", "path", "module")),
        reference.modules,
        f"module_progress at {watermark}",
    )
    assert_same(
        await table(store, "path_progress", ("learner", "path")),
        reference.paths,
        f"path_progress at {watermark}",
    )
    assert_same(
        await table(store, "learners", ("learner",)), reference.learners, f"learners at {watermark}"
    )


async def run_plan(location: Path | str, seed: int, plan: list[tuple[str, int]]) -> None:
    """Feed the events of ``seed`` through ``plan``: ("ingest", n), ("project", span),
    ("restart", 0); then project everything and compare once more."""
    rng = random.Random(seed)
    used: list[str] = []
    stored: list[Event] = []
    n = 0
    store = await Store.open(location)
    try:
        if seed % 2:
            await store.load_catalog([CatalogPath("p1", None, [(m, None) for m in MODULES[:2]])])
        for action, size in plan:
            if action == "ingest":
                events = [validate_event(random_event(rng, n + i, used)) for i in range(size)]
                n += size
                outcome = await store.ingest(events)
                stored.extend(s.event for s in outcome.stored)
                assert outcome.last_seq == len(stored)
            elif action == "project":
                before = await store.progress_seq()
                span = await store.project(max_events=size)
                if span is None:
                    assert before == len(stored)
                else:
                    assert (span.first_seq, span.last_seq) == (
                        before + 1,
                        min(len(stored), before + size),
                    )
                await assert_is_the_fold(store, stored)
            else:
                await store.close()
                store = await Store.open(location)
        await store.catch_up()
        assert await store.progress_seq() == len(stored)
        await assert_is_the_fold(store, stored)
    finally:
        await store.close()


PLAN = st.lists(
    st.one_of(
        st.tuples(st.just("ingest"), st.integers(1, 30)),
        st.tuples(st.just("project"), st.integers(1, 60)),
        st.tuples(st.just("restart"), st.just(0)),
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**16), plan=PLAN)
def test_any_batches_spans_and_restarts_give_the_fold(tmp_path_factory, seed, plan):
    location = tmp_path_factory.mktemp("projection") / "jacmon.db"
    asyncio.run(run_plan(location, seed, plan))


@pytest.mark.parametrize("seed", range(4))
async def test_spans_and_restarts_on_every_backend(store_location, seed):
    """The same on each backend, for fixed plans (PostgreSQL's databases are not free)."""
    rng = random.Random(seed)
    plan: list[tuple[str, int]] = []
    for _ in range(12):
        plan.append(
            rng.choice([("ingest", rng.randrange(1, 40)), ("project", rng.randrange(1, 80))])
        )
        if rng.random() < 0.15:
            plan.append(("restart", 0))
    await run_plan(store_location, seed, plan)


async def test_ingest_acknowledges_without_touching_progress(store):
    events = [validate_event(random_event(random.Random(1), i, [])) for i in range(20)]
    outcome = await store.ingest(events)
    assert outcome.last_seq == 20
    assert await store.progress_seq() == 0
    assert await rows(store, "SELECT * FROM learners") == []
    spans = await store.catch_up(max_events=8)
    assert [(s.first_seq, s.last_seq) for s in spans] == [(1, 8), (9, 16), (17, 20)]
    assert await store.progress_seq() == 20
    assert await store.project() is None


async def test_snapshot_and_view_carry_the_watermark_they_reflect(store):
    events = [validate_event(random_event(random.Random(2), i, [])) for i in range(30)]
    await store.ingest(events)
    await store.project(max_events=10)
    snapshot = await store.progress_snapshot()
    assert snapshot["progress_seq"] == 10
    view = await store.progress_view(["p1"], [], now=0.0)
    assert view.progress_seq == 10
    assert view.total_learners == snapshot["total_learners"]
    fill = await store.progress_rows_since(4)
    assert (fill.first_seq, fill.last_seq) == (5, 10)
    learners_5_to_10 = {e.learner for e in events[4:10]}
    assert {row["learner"] for row in fill.changes.learners} == learners_5_to_10
    assert await store.progress_rows_since(10) is None


async def test_retention_never_deletes_events_progress_has_not_folded(store):
    events = [validate_event(random_event(random.Random(3), i, [])) for i in range(10)]
    await store.ingest(events)
    await store.project(max_events=4)
    async with store.transaction() as tx:
        deleted = await tx.delete_events_before(float("inf"))
    assert deleted == 4
    assert await store.oldest_seq() == 5
    await store.catch_up()
    assert await store.progress_seq() == 10
