"""Each monitoring task over 10,000 learners and 1,000,000 events, vs the earlier design's loop.

    /work/.venv/bin/python bench/bench_tasks.py [--learners 10000] [--events 1000000] [--runs 3]
        [--db PATH] [--out bench/results/tasks.md]

The database is built fast: migrated once with ``Store.open``, then rows go
straight in with sqlite3 ``executemany`` (events over 60 days, 4 paths x 5
modules, a mix of types and idle learners) and the progress tables are derived
from the events with set-based SQL. It is kept at ``--db`` and reused when its
size matches.

jacmon: each task through ``Scheduler.run_once`` (the code path of the server
and ``jacmon run-task``), a real run that writes; the first run fires the
alerts, later runs update or keep them. Reported: first run and the median of
the later ones, wall seconds.

Baseline: the earlier design's approach, re-created: for each learner, for
each day of the task's window, one count query (synchronous sqlite3, which
is cheaper per query than the ORM it used), over the same database file.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jacmon.monitoring.scheduler import Scheduler  # noqa: E402
from jacmon.store import Store  # noqa: E402

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
DAY = 86400.0
HISTORY_DAYS = 60
PATHS = [f"path-{p}" for p in range(4)]
MODULES = [f"m{m}" for m in range(5)]
#: (type, weight) of the generated events.
TYPES = [
    ("module.progressed", 45),
    ("lesson.completed", 15),
    ("assessment.attempted", 17),
    ("session.ended", 10),
    ("activity", 8),
    ("module.completed", 5),
]
TASK_NAMES = ["performance", "engagement", "daily_analytics", "alert_cleanup", "velocity"]


def build_database(path: Path, learners: int, events: int, seed: int = 7) -> None:
    """A migrated database with ``events`` events of ``learners`` learners."""
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)

    async def migrate() -> None:
        store = await Store.open(path)
        await store.close()

    asyncio.run(migrate())
    rng = random.Random(seed)
    end = NOW.timestamp()
    kinds = [t for t, _ in TYPES]
    weights = [w for _, w in TYPES]
    # Each learner: a path, a skill, and the day they stopped (a third stopped recently).
    profiles = []
    for i in range(learners):
        stopped = rng.choice([0.0, 0.0, rng.uniform(0, 10), rng.uniform(2, 20)])
        profiles.append((f"learner-{i:05d}", rng.choice(PATHS), rng.uniform(35, 95), stopped))
    per_learner = events // learners
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = OFF")
    rows = []
    seq = 0
    for learner, path_id, skill, stopped in profiles:
        start = end - HISTORY_DAYS * DAY
        last = end - stopped * DAY
        times = sorted(rng.uniform(start, last) for _ in range(per_learner))
        rows.append(
            (seq + 1, f"ev-{seq + 1}", "path.enrolled", start, start, learner, path_id,
             None, None, None, None, None, None, None, None, "{}")
        )  # fmt: skip
        seq += 1
        for ts, kind in zip(times, rng.choices(kinds, weights, k=per_learner - 1), strict=False):
            seq += 1
            module = rng.choice(MODULES)
            score = progress = duration = None
            item = None
            if kind == "assessment.attempted":
                score = max(0.0, min(100.0, rng.gauss(skill, 15)))
                item = "quiz"
            elif kind == "module.progressed":
                progress = rng.uniform(0, 100)
            elif kind == "session.ended":
                duration = rng.uniform(60, 3600)
            elif kind == "lesson.completed":
                item = "lesson"
            row_path = path_id if kind not in ("session.ended", "activity") else None
            row_module = module if row_path else None
            rows.append(
                (seq, f"ev-{seq}", kind, ts, ts, learner, row_path, row_module, item, score,
                 None, progress, duration, None, None, "{}")
            )  # fmt: skip
        if len(rows) >= 200_000:
            _insert(conn, rows)
            rows = []
    _insert(conn, rows)
    _derive_progress(conn)
    conn.commit()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("ANALYZE")
    conn.close()


def _insert(conn: sqlite3.Connection, rows: list[tuple]) -> None:
    conn.executemany(
        "INSERT INTO events (seq, id, type, ts, received, learner, path, module, item, score,"
        " success, progress, duration_s, attempt, session, body)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        rows,
    )


def _derive_progress(conn: sqlite3.Connection) -> None:
    """Fill catalog, module, path and learner progress from the events, set-based."""
    conn.executemany(
        "INSERT INTO catalog_paths (path, title, source) VALUES (?, ?, 'file')",
        [(p, p.title()) for p in PATHS],
    )
    conn.executemany(
        "INSERT INTO catalog_modules (path, module, position, title, source)"
        " VALUES (?, ?, ?, ?, 'file')",
        [(p, m, i, m) for p in PATHS for i, m in enumerate(MODULES)],
    )
    conn.execute(
        """INSERT INTO module_progress
        SELECT learner, path, module,
               CASE WHEN max(type = 'module.completed') THEN 'completed' ELSE 'in_progress' END,
               CASE WHEN max(type = 'module.completed') THEN 100.0
                    ELSE coalesce(max(progress), 0.0) END,
               coalesce(sum(duration_s), 0.0), min(ts), max(ts),
               min(CASE WHEN type = 'module.completed' THEN ts END)
        FROM events WHERE module IS NOT NULL GROUP BY learner, path, module"""
    )
    conn.execute(
        """INSERT INTO path_progress
        SELECT m.learner, m.path,
               CASE WHEN sum(m.status = 'completed') = 5 THEN 'completed' ELSE 'in_progress' END,
               sum(m.percent) / 5.0, sum(m.status = 'completed'), sum(m.time_spent_s),
               0, 1, 0, CAST(max(m.last_activity) / 86400 AS INTEGER),
               min(m.first_activity), min(m.first_activity), max(m.last_activity),
               CASE WHEN sum(m.status = 'completed') = 5 THEN max(m.completed_at) END,
               NULL, max(m.last_activity)
        FROM module_progress m GROUP BY m.learner, m.path"""
    )
    conn.execute(
        """INSERT INTO learners
        SELECT learner, count(*),
               coalesce(sum(CASE WHEN type = 'session.ended' THEN duration_s END), 0.0),
               0, 1, 0, 0, CAST(max(ts) / 86400 AS INTEGER), min(ts), max(ts)
        FROM events GROUP BY learner"""
    )
    conn.execute(
        "INSERT OR IGNORE INTO learner_days SELECT DISTINCT learner,"
        " CAST(floor(ts / 86400.0) AS INTEGER) FROM events"
    )
    conn.execute(
        "INSERT OR IGNORE INTO path_days SELECT DISTINCT learner, path,"
        " CAST(floor(ts / 86400.0) AS INTEGER) FROM events WHERE path IS NOT NULL"
    )
    # Progress is the fold of every event: the projection's watermark is the newest seq.
    conn.execute(
        "INSERT OR REPLACE INTO meta (key, value)"
        " SELECT 'progress_seq', CAST(max(seq) AS TEXT) FROM events"
    )


# The earlier design: per learner, per day of the window, one count query.


def baseline(db: Path, task: str) -> tuple[float, int]:
    """(wall seconds, queries) of the per-learner, per-day loop for ``task``."""
    conn = sqlite3.connect(db)
    learners = [r[0] for r in conn.execute("SELECT learner FROM learners ORDER BY learner")]
    now = NOW.timestamp()
    queries = 0
    started = time.perf_counter()
    if task == "performance":
        # Score count per learner per day over the two 7-day windows.
        for learner in learners:
            for day in range(14):
                conn.execute(
                    "SELECT count(*), avg(score) FROM events WHERE learner = ?"
                    " AND type = 'assessment.attempted' AND ts >= ? AND ts < ?",
                    (learner, now - (day + 1) * DAY, now - day * DAY),
                ).fetchone()
                queries += 1
    elif task == "engagement":
        for learner in learners:
            for day in range(14):
                conn.execute(
                    "SELECT count(*) FROM events WHERE learner = ? AND ts >= ? AND ts < ?",
                    (learner, now - (day + 1) * DAY, now - day * DAY),
                ).fetchone()
                queries += 1
    elif task == "daily_analytics":
        # One day: a count per learner per figure.
        start = now - DAY
        for learner in learners:
            for condition in (
                "1",
                "type IN ('lesson.completed', 'module.completed', 'path.completed')",
                "type = 'assessment.attempted'",
                "score IS NOT NULL",
                "type = 'session.ended'",
            ):
                conn.execute(
                    f"SELECT count(*), avg(score), sum(duration_s) FROM events WHERE learner = ?"
                    f" AND ts >= ? AND ts < ? AND {condition}",
                    (learner, start, now),
                ).fetchone()
                queries += 1
    elif task == "velocity":
        # Completions per learner per day over 14 days, per path they are on.
        on_path = conn.execute("SELECT learner, path FROM path_progress").fetchall()
        for learner, path in on_path:
            for day in range(14):
                conn.execute(
                    "SELECT count(*) FROM events WHERE learner = ? AND path = ?"
                    " AND type = 'module.completed' AND ts >= ? AND ts < ?",
                    (learner, path, now - (day + 1) * DAY, now - day * DAY),
                ).fetchone()
                queries += 1
    elif task == "alert_cleanup":
        # Per alert: look at it, decide, delete one by one.
        ids = [r[0] for r in conn.execute("SELECT id FROM alerts")]
        for alert_id in ids:
            conn.execute("SELECT state, resolved_at FROM alerts WHERE id = ?", (alert_id,))
            queries += 1
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed, queries


#: The same loop through the Django ORM the earlier design used, run in bench/.venv-django
#: (bench/setup-django-env.sh) on the same file: unmanaged models over jacmon's tables.
DJANGO_LOOP = r"""
import json, sys, time
import django
from django.conf import settings

db, task, now = sys.argv[1], sys.argv[2], float(sys.argv[3])
settings.configure(
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": db}},
    INSTALLED_APPS=["django.contrib.contenttypes"],
    USE_TZ=True,
)
django.setup()
from django.db import models
from django.db.models import Avg, Count, Sum

class Event(models.Model):
    seq = models.IntegerField(primary_key=True)
    type = models.TextField()
    ts = models.FloatField()
    learner = models.TextField()
    path = models.TextField(null=True)
    score = models.FloatField(null=True)
    duration_s = models.FloatField(null=True)
    class Meta:
        app_label = "contenttypes"
        managed = False
        db_table = "events"

class Learner(models.Model):
    learner = models.TextField(primary_key=True)
    class Meta:
        app_label = "contenttypes"
        managed = False
        db_table = "learners"

class PathProgress(models.Model):
    learner = models.TextField(primary_key=True)
    path = models.TextField()
    class Meta:
        app_label = "contenttypes"
        managed = False
        db_table = "path_progress"

class Alert(models.Model):
    id = models.IntegerField(primary_key=True)
    state = models.TextField()
    resolved_at = models.FloatField(null=True)
    class Meta:
        app_label = "contenttypes"
        managed = False
        db_table = "alerts"

DAY = 86400.0
learners = list(Learner.objects.order_by("learner").values_list("learner", flat=True))
queries = 0
started = time.perf_counter()
if task == "performance":
    for learner in learners:
        for day in range(14):
            Event.objects.filter(
                learner=learner, type="assessment.attempted",
                ts__gte=now - (day + 1) * DAY, ts__lt=now - day * DAY,
            ).aggregate(n=Count("seq"), avg=Avg("score"))
            queries += 1
elif task == "engagement":
    for learner in learners:
        for day in range(14):
            Event.objects.filter(
                learner=learner, ts__gte=now - (day + 1) * DAY, ts__lt=now - day * DAY
            ).count()
            queries += 1
elif task == "daily_analytics":
    for learner in learners:
        day = Event.objects.filter(learner=learner, ts__gte=now - DAY, ts__lt=now)
        day.count()
        day.filter(type__in=["lesson.completed", "module.completed", "path.completed"]).count()
        day.filter(type="assessment.attempted").count()
        day.filter(score__isnull=False).aggregate(avg=Avg("score"))
        day.filter(type="session.ended").aggregate(total=Sum("duration_s"))
        queries += 5
elif task == "velocity":
    for learner, path in PathProgress.objects.values_list("learner", "path"):
        for day in range(14):
            Event.objects.filter(
                learner=learner, path=path, type="module.completed",
                ts__gte=now - (day + 1) * DAY, ts__lt=now - day * DAY,
            ).count()
            queries += 1
elif task == "alert_cleanup":
    for alert in Alert.objects.all():
        Alert.objects.filter(id=alert.id).values("state", "resolved_at").first()
        queries += 1
print(json.dumps({"seconds": time.perf_counter() - started, "queries": queries}))
"""


def django_baseline(db: Path, task: str) -> tuple[float, int] | None:
    """(seconds, queries) of the ORM loop, or None without bench/.venv-django."""
    python = ROOT / "bench" / ".venv-django" / "bin" / "python"
    if not python.exists():
        return None
    out = subprocess.run(
        [str(python), "-c", DJANGO_LOOP, str(db), task, str(NOW.timestamp())],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["seconds"], result["queries"]


async def time_tasks(db: Path, runs: int) -> dict[str, dict]:
    store = await Store.open(db)
    results: dict[str, dict] = {}
    try:
        scheduler = Scheduler(store, {}, lambda: NOW)
        for name in TASK_NAMES:
            # Reads and planning only, nothing written: what the baseline loops do.
            dry = []
            for _ in range(runs):
                started = time.perf_counter()
                await scheduler.run_once(name, dry_run=True)
                dry.append(time.perf_counter() - started)
            timings = []
            summary = None
            for _ in range(runs):
                started = time.perf_counter()
                result = await scheduler.run_once(name)
                timings.append(time.perf_counter() - started)
                if result.outcome != "success":
                    raise SystemExit(f"{name} failed: {result.error}")
                summary = summary or result.outcome_detail.summary
            results[name] = {
                "dry_s": statistics.median(dry),
                "first_s": timings[0],
                "later_median_s": statistics.median(timings[1:]) if runs > 1 else timings[0],
                "summary": summary,
            }
    finally:
        await store.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--learners", type=int, default=10_000)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db", type=Path, default=Path("/tmp/jacmon-bench-tasks.db"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "tasks.md")
    parser.add_argument("--rebuild", action="store_true", help="Build the database even if kept.")
    parser.add_argument("--no-django", action="store_true", help="Skip the Django ORM loop.")
    args = parser.parse_args()
    if not 1 <= args.runs <= 10:
        raise SystemExit(f"--runs has value {args.runs}. Expected 1 to 10.")

    marker = args.db.with_suffix(".json")
    wanted = {"learners": args.learners, "events": args.events, "schema": 2}
    if args.rebuild or not marker.exists() or json.loads(marker.read_text()) != wanted:
        started = time.perf_counter()
        build_database(args.db, args.learners, args.events)
        marker.write_text(json.dumps(wanted))
        print(f"built {args.db} in {time.perf_counter() - started:.1f}s", flush=True)
    with sqlite3.connect(args.db) as conn:
        (count,) = conn.execute("SELECT count(*) FROM events").fetchone()
        (people,) = conn.execute("SELECT count(*) FROM learners").fetchone()
        # Fresh task state each bench run: the first run fires alerts and backfills dates.
        for table in (
            "alerts",
            "alert_changes",
            "task_runs",
            "daily_learner_stats",
            "daily_platform_stats",
            "path_velocity",
            "learner_pace",
        ):
            conn.execute(f"DELETE FROM {table}")
    print(f"{people} learners, {count} events", flush=True)

    ours = asyncio.run(time_tasks(args.db, args.runs))
    rows = []
    for name in TASK_NAMES:
        base_s, queries = baseline(args.db, name)
        orm = None if args.no_django else django_baseline(args.db, name)
        mine = ours[name]
        rows.append((name, mine, base_s, queries, orm))
        print(
            f"{name:16} jacmon dry {mine['dry_s']:.3f}s first {mine['first_s']:.3f}s"
            f" later {mine['later_median_s']:.3f}s | sqlite3 loop {base_s:.3f}s"
            + (f" | ORM loop {orm[0]:.3f}s" if orm else "")
            + f" ({queries} queries)",
            flush=True,
        )
    write_report(args, people, count, rows)


def write_report(args, people: int, count: int, rows: list) -> None:
    command = (
        f"/work/.venv/bin/python bench/bench_tasks.py --learners {args.learners}"
        f" --events {args.events} --runs {args.runs}" + (" --no-django" if args.no_django else "")
    )
    lines = [
        "## Monitoring tasks (bench/bench_tasks.py)",
        "",
        f"`{command}`",
        "",
        f"{people:,} learners, {count:,} events over {HISTORY_DAYS} days, 4 paths x 5 modules;"
        " 2-core machine, SQLite WAL. jacmon: each task through `Scheduler.run_once` (the"
        " code path of the scheduler and `jacmon run-task`). *dry run*: reads and planning only,"
        " nothing written (like-for-like with the loops, which only read); *first run*: real"
        " run that fires every alert (thousands) and writes snapshots; *later runs*: real runs"
        " that update or keep the alerts (median). Baseline: the earlier design's approach"
        " re-created over the same file: for each learner, for each day of the task's window,"
        " one count query, via the Django ORM (as the earlier design; bench/.venv-django) and"
        " via plain sqlite3 (the cheapest possible query, a lower bound for that loop)."
        " Limit: <= 2 s per task.",
        "",
        "| task | jacmon dry run | jacmon first run | jacmon later runs | loop queries"
        " | ORM loop | ORM loop / jacmon dry | sqlite3 loop | sqlite3 loop / jacmon dry |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, mine, base_s, queries, orm in rows:
        dry = mine["dry_s"] or 1e-9
        orm_cells = f"{orm[0]:.2f} s | {orm[0] / dry:.0f}x" if orm else "n/a | n/a"
        lines.append(
            f"| {name} | {mine['dry_s']:.3f} s | {mine['first_s']:.3f} s |"
            f" {mine['later_median_s']:.3f} s | {queries:,} | {orm_cells} |"
            f" {base_s:.3f} s | {base_s / dry:.1f}x |"
        )
    lines += ["", "What the first runs found:", ""]
    for name, mine, *_ in rows:
        lines.append(f"- {name}: `{json.dumps(mine['summary'], default=str)[:300]}`")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
