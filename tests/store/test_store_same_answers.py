"""Both stores give the same answers: one scenario through the whole Store interface.

The SQLite store is the reference. The same events go into a SQLite file and a
PostgreSQL database; the five monitoring tasks run on each (the real scheduler, on a
fixed clock); then alerts are acknowledged, silenced, routed to notifications,
claimed and sent, tokens made and revoked, retention run. Every answer of every
read method is recorded along the way, and the two transcripts must be equal
(numbers to 9 significant digits: sums may add in another order).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from store_backends import ingest_projected

from jacmon.events import validate_event
from jacmon.monitoring.scheduler import Scheduler
from jacmon.monitoring.tasks import TASKS
from jacmon.notify.config import Route
from jacmon.notify.model import Delivery
from jacmon.store import Store
from jacmon.store.catalog import CatalogPath

#: The scenario's "now": a Monday noon, UTC.
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
LEARNERS = [f"u{i}" for i in range(8)]


def scenario_events(seed: int = 3) -> list[list[dict[str, Any]]]:
    """Batches of events over the 20 days before NOW: enrolments, progress, completions,
    scores falling for some learners, sessions; some learners go quiet."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    n = 0
    for learner in LEARNERS:
        quiet_after = rng.choice([3, 8, 20])  # days before NOW they stop
        path = rng.choice(["p1", "p2"])
        events.append(_ev(n := n + 1, "path.enrolled", learner, 20, path=path))
        for day in range(19, quiet_after - 1, -1):
            for _ in range(rng.randrange(1, 4)):
                when = day - rng.random() * 0.9
                kind = rng.choice(
                    ["module.progressed", "assessment.attempted", "lesson.completed",
                     "session.ended", "module.completed", "activity"]
                )  # fmt: skip
                fields: dict[str, Any] = {"path": path}
                if kind in ("module.progressed", "lesson.completed", "module.completed"):
                    fields["module"] = rng.choice(["m1", "m2", "m3"])
                if kind == "module.progressed":
                    fields["progress"] = rng.randrange(101)
                if kind == "lesson.completed":
                    fields["item"] = "l1"
                if kind == "assessment.attempted":
                    fields["item"] = "q"
                    # Learners u0..u3 score lower and lower: performance alerts.
                    low = learner in ("u0", "u1", "u2", "u3") and day < 7
                    fields["score"] = {"raw": rng.randrange(10, 40) if low else 80, "max": 100}
                if kind == "session.ended":
                    fields["duration_s"] = rng.randrange(60, 3600)
                events.append(_ev(n := n + 1, kind, learner, when, **fields))
    rng.shuffle(events)
    return [events[i : i + 37] for i in range(0, len(events), 37)]


def _ev(n: int, kind: str, learner: str, days_ago: float, **fields: Any) -> dict[str, Any]:
    when = NOW - timedelta(days=days_ago)
    return {"id": f"e{n}", "type": kind, "ts": when.isoformat(), "learner": learner, **fields}


def rounded(value: Any) -> Any:
    """``value`` with numbers as ("number", 9 significant digits), tuples as lists, at any
    depth. A whole float and an int are the same number (SQLite hands a whole REAL back
    as an int from some statements: jacmon.store.rows fixes the types of what is sent),
    but a Decimal or a string where the other store gives a number is a difference."""
    if isinstance(value, float) and value.is_integer():
        return ("number", int(value))
    if isinstance(value, float):
        return ("number", f"{value:.9g}")
    if isinstance(value, int) and not isinstance(value, bool):
        return ("number", value)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    if isinstance(value, set | frozenset):
        return sorted(rounded(item) for item in value)
    return value


def by_key(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Progress rows ordered by their key (learner, path, module)."""
    return sorted(found, key=lambda r: (r["learner"], r.get("path") or "", r.get("module") or ""))


def run_record(run: dict[str, Any]) -> dict[str, Any]:
    """A task run without what the wall clock decides (duration, pid)."""
    return {k: v for k, v in run.items() if k not in ("duration_s", "pid", "finished", "started")}


async def scenario(store: Store, wall: float) -> list[tuple[str, Any]]:
    """Drive ``store`` through the scenario; the transcript (name, answer) of every step.

    ``wall`` is the real time (epoch seconds) the silences are set at: one value for
    both stores, so that their answers cannot differ by when each run reached that step.
    """
    out: list[tuple[str, Any]] = []
    now = NOW.timestamp()

    async def note(name: str, value: Any) -> None:
        out.append((name, rounded(value)))

    await store.load_catalog([CatalogPath("p2", "Two", [("m1", "One"), ("m2", None)])])
    for batch in scenario_events():
        outcome = await ingest_projected(
            store, [validate_event(e) for e in batch], cursor=("sim", "x")
        )
        # The changed rows come back in no particular order (the dashboard merges them by
        # key): compared by key.
        changes = outcome.changes
        stored = [(s.seq, s.body) for s in outcome.stored]
        await note("ingest", [stored, outcome.duplicate_indexes, by_key(changes.paths),
                              by_key(changes.modules), by_key(changes.learners),
                              changes.recounted, outcome.last_seq])  # fmt: skip
    await note("cursor", await store.get_cursor("sim"))
    await note("catalog_rows", await store.catalog_rows())
    await note("catalog_path_ids", await store.catalog_path_ids())
    await note("left_out", await store.modules_left_out([CatalogPath("p2", None, [("m1", None)])]))

    # Reads the streams and tasks make (in the same order too: the tasks plan in it)
    await note("recent_event_rows", await store.recent_event_rows(5))
    await note("recent_event_rows u1", await store.recent_event_rows(3, learner="u1"))
    await note("event_rows_since", await store.event_rows_since(100, limit=10))
    await note("event_rows_since u2", await store.event_rows_since(0, learner="u2", limit=4))
    await note("oldest_seq", await store.oldest_seq())
    await note("snapshot", await store.progress_snapshot(now=now, learner_limit=5))
    await note("snapshot u3", await store.progress_snapshot(learner="u3", now=now))
    await note("path_summaries", await store.path_summaries(["p1", "p2", "p9"], now=now))
    await note("module_summaries", await store.module_summaries([("p2", "m1"), ("p1", "m3")]))
    await note("learner_count", await store.learner_count())
    await note("last_seen", await store.last_seen(since=now - 5 * 86400))
    await note("last_seen u4", await store.last_seen(learner="u4"))
    await note("recent_events", [r async for r in store.recent_events(since=now - 86400 * 4)])
    await note(
        "recent_events u0",
        [r async for r in store.recent_events(since=0, learner="u0", through_seq=50)],
    )
    day = 86400.0
    completions = await store.path_completions(start=now - 14 * day, mid=now - 7 * day, now=now)
    await note("path_completions", completions)
    await note("in_progress_paths", await store.in_progress_paths())
    await note(
        "activity_counts",
        await store.activity_counts(recent=now - 3 * day, prior=now - 6 * day,
                                    day_starts=[now - (7 - i) * day for i in range(8)],
                                    start=now - 14 * day, now=now),
    )  # fmt: skip
    await note("monitored_learners", await store.monitored_learners())
    await note("score_windows", await store.score_windows(start=now - 14 * day,
                                                          mid=now - 7 * day, now=now))  # fmt: skip
    await note("latest_scores", await store.latest_scores(since=now - 14 * day, now=now, keep=3))
    await note("learner_day_stats", await store.learner_day_stats(now - 4 * day, now))

    # The five tasks, on the scheduler, twice (a day apart: updates and resolutions)
    for when in (NOW, NOW + timedelta(days=1)):
        scheduler = Scheduler(store, {}, lambda when=when: when)
        for name in TASKS:
            result = await scheduler.run_once(name)
            assert result.outcome == "success", result.error
            await note(f"task {name}", result.outcome_detail.as_dict())
    # Everyone comes back (inactivity resolves), and u0 scores high again; the tasks
    # run once more.
    back = NOW + timedelta(days=1, hours=1)
    comeback = [
        validate_event({"id": f"back-{learner}-{i}", "type": "assessment.attempted",
                        "ts": (back + timedelta(minutes=i)).isoformat(), "learner": learner,
                        "item": "q", "score": {"raw": 95, "max": 100}})
        for learner in LEARNERS for i in range(3)
    ]  # fmt: skip
    await note("ingest comeback", [s.seq for s in (await store.ingest(comeback)).stored])
    scheduler = Scheduler(store, {}, lambda: back + timedelta(hours=1))
    for name in TASKS:
        result = await scheduler.run_once(name)
        assert result.outcome == "success", result.error
        await note(f"task {name} after the comeback", result.outcome_detail.as_dict())
    await note("daily_snapshot_days", await store.daily_snapshot_days(["2026-03-01", "2026-03-02"]))
    await note("recent_runs", [run_record(r) for r in await store.recent_runs(limit=20)])
    await note("last_runs", {k: run_record(v) for k, v in (await store.last_runs()).items()})
    await note("last_scheduled", await store.last_scheduled())
    await note("run_totals", await store.run_totals())

    # Alerts
    await note("open_alerts", await store.open_alerts())
    await note("list_alerts all", await store.list_alerts(state="all"))
    await note("list_alerts resolved u0", await store.list_alerts(state="resolved", learner="u0"))
    await note("alert_totals", await store.alert_totals())
    firing = await store.open_alerts()
    assert len(firing) >= 2, "the scenario should leave alerts firing"
    first, second = firing[0]["id"], firing[1]["id"]
    await note("get_alert", await store.get_alert(first))
    await note("get_alert missing", await store.get_alert(99999))

    routes = [Route("all", ("hook",), send=frozenset({"fired", "resolved", "acknowledged"}),
                    group_wait_s=0, group_interval_s=0, repeat_interval_s=3600)]  # fmt: skip
    await note("route first (watermark)", await store.route_new_changes(routes, now=now, limit=500))
    await note("ack", await store.acknowledge_alert(first, by="ann", note="on it",
                                                    expires_at=now + 60, now=now))  # fmt: skip
    await note("ack again", await store.acknowledge_alert(first, by="bob", now=now + 1))
    await note("unack", await store.unacknowledge_alert(first, by="bob", now=now + 2))
    await note("ack with expiry", await store.acknowledge_alert(first, by="cy", expires_at=now + 5,
                                                                now=now + 3))  # fmt: skip
    await note("changes since", await store.alert_changes_since(0, limit=3))
    await note("changes since u", await store.alert_changes_since(2, learner=firing[0]["learner"]))
    await note("last change seq", await store.last_alert_change_seq())

    # Silences (on the wall clock, as people set them: now = the real time)
    silence, changes = await store.add_silence(
        by="ann", learner=firing[1]["learner"], duration_s=3600, note="holiday", now=wall
    )
    await note("add_silence", [silence, changes])
    await note("silenced alert", await store.get_alert(second))
    await note("list_silences", await store.list_silences())
    await note("lapse (none)", await store.lapse_silences(now=wall + 10, since=wall))
    await note("expire_silence", await store.expire_silence(silence["id"], by="ann", now=wall + 20))
    await note("list_silences all", await store.list_silences(include_expired=True))

    # Notifications
    await note("route", await store.route_new_changes(routes, now=now + 10, limit=500))
    await note("counts", await store.notification_counts())
    due, upcoming = await store.due_groups("hook", {r.name: r for r in routes}, now=now + 20)
    await note("due", [due, upcoming])
    for group in due:
        batch = await store.claim_batch(group)
        await note("claim", None if batch is None else [batch.key, batch.labels, batch.rows])
        if batch is not None:
            message = batch.notification()
            await note("claim again", (await store.claim_batch(group)).key == batch.key)
            state = await store.finish_batch(message, Delivery(ok=True, status="HTTP 200"),
                                             now=now + 30, max_age_s=3600, backoff_base_s=1,
                                             backoff_cap_s=10)  # fmt: skip
            await note("finish", state)
    await note("log", await store.notification_log(limit=5))
    await note("log sent", await store.notification_log(receiver="hook", state="sent", limit=3))
    await note("counts after", await store.notification_counts())
    await note("repeats", await store.plan_repeats({r.name: r for r in routes}, now=now + 7200))
    await note("counts repeats", await store.notification_counts())

    # A task's transaction: dry runs count, writes change
    async with store.transaction(write=False) as view:
        await note("dry expire", await view.expire_acknowledgements(now=now + 10, dry_run=True))
        await note("dry retire", await view.retire_resolved(before=now + 3 * day, dry_run=True))
        await note("dry prune", await view.prune_runs(before=now + 3 * day, dry_run=True))
        await note("dry delete", await view.delete_events_before(now - 10 * day, dry_run=True))
        await note("firing rule", await view.firing_rule_per_learner(["performance_decline",
                                                                      "inactivity"]))  # fmt: skip
        await note("open of rules", await view.open_alerts_of_rules(frozenset({"inactivity"})))
    async with store.transaction() as tx:
        await note("expire", await tx.expire_acknowledgements(now=now + 10))
        retired = await tx.retire_resolved(before=now + 3 * day)
        assert retired > 0, "the scenario should retire resolved alerts"
        await note("retire", retired)
        await note("prune", await tx.prune_runs(before=now + 3 * day))
        await note("delete", await tx.delete_events_before(now - 10 * day))
    await note("oldest after retention", await store.oldest_seq())
    await note("alert_totals after", await store.alert_totals())

    # Tokens
    for i, role in enumerate(["admin", "viewer", "viewer"]):
        record = {"id": f"t{i}", "role": role, "learner": "u1" if i == 2 else None,
                  "can_ack": i == 0, "name": f"token {i}", "created": now + i}  # fmt: skip
        await store.insert_token(record, f"hash{i}")
    await note(
        "revoke", [await store.revoke_token("t1", now=now), await store.revoke_token("t1", now=now)]
    )
    await note("tokens", await store.list_tokens())
    await note("active tokens", await store.active_token_count())
    await note(
        "token_for_auth", [await store.token_for_auth("t2"), await store.token_for_auth("x")]
    )
    await note("revoked_among", await store.revoked_among(["t0", "t1", "zz"]))
    return out


async def test_both_stores_give_the_same_answers(tmp_path: Path, pg_dsn: str) -> None:
    transcripts = []
    # Taken once: each run rounds times to 9 digits (10 s), and two runs that read
    # the clock themselves failed when they fell either side of a 10 s boundary.
    wall = datetime.now(UTC).timestamp()
    for location in (tmp_path / "jacmon.db", pg_dsn):
        store = await Store.open(location)
        try:
            transcripts.append(await scenario(store, wall))
        finally:
            await store.close()
    sqlite, postgres = transcripts
    assert [name for name, _ in postgres] == [name for name, _ in sqlite]
    for (name, expected), (_, got) in zip(sqlite, postgres, strict=True):
        assert got == expected, name
