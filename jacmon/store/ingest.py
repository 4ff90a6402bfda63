"""Storing one batch: dedupe, sequence numbers, events and progress in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from jacmon.analytics.progress import BatchProgress, apply_learner, apply_module, apply_path
from jacmon.events import Event
from jacmon.store.catalog import Catalog
from jacmon.store.progress_cache import PROGRESS_KEYS, ProgressCache

#: Host parameters per statement: well under SQLite's limit (32766 since 3.32).
_CHUNK = 900

MODULE_COLUMNS = (
    "status",
    "percent",
    "time_spent_s",
    "first_activity",
    "last_activity",
    "completed_at",
)
PATH_COLUMNS = (
    "status",
    "percent",
    "modules_completed",
    "time_spent_s",
    "xp",
    "level",
    "streak_days",
    "active_day",
    "enrolled_at",
    "first_activity",
    "last_activity",
    "completed_at",
)
LEARNER_COLUMNS = (
    "events",
    "time_spent_s",
    "xp",
    "level",
    "streak_days",
    "longest_streak",
    "active_day",
    "first_activity",
    "last_activity",
)


@dataclass(slots=True)
class StoredEvent:
    """An event as stored: its sequence number and its JSON text (extras included)."""

    seq: int
    event: Event
    body: str


@dataclass(slots=True)
class ProgressChanges:
    """Rows the batch changed, as dicts, for the dashboard stream's deltas."""

    paths: list[dict[str, Any]] = field(default_factory=list)
    modules: list[dict[str, Any]] = field(default_factory=list)
    learners: list[dict[str, Any]] = field(default_factory=list)
    #: Paths whose module count changed (their learners' percents were re-derived).
    recounted: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.paths or self.modules or self.learners)


@dataclass(slots=True)
class IngestOutcome:
    """What one committed batch did."""

    stored: list[StoredEvent]
    #: Indexes (into the events given) that were duplicates of stored ids.
    duplicate_indexes: list[int]
    changes: ProgressChanges
    last_seq: int


def _chunks(items: Sequence[Any], size: int = _CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _existing_ids(conn: sqlite3.Connection, ids: list[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        marks = ",".join("?" * len(chunk))
        found.update(
            row[0] for row in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", chunk)
        )
    return found


def _fetch_rows(
    conn: sqlite3.Connection, table: str, keys: list[tuple], cache: ProgressCache | None
) -> dict[tuple, dict[str, Any]]:
    """Rows of progress ``table`` by key tuple, from the cache or else the database."""
    if cache is not None:
        rows, keys = cache.split(table, keys)
    else:
        rows = {}
    if not keys:
        return rows
    key_columns = PROGRESS_KEYS[table]
    width = len(key_columns)
    per_chunk = _CHUNK // width
    # CROSS JOIN from the VALUES list: one primary-key search per key. A row-value
    # IN (VALUES ...) makes SQLite scan the whole table instead.
    on = " AND ".join(f"t.{c} = v.column{i + 1}" for i, c in enumerate(key_columns))
    for chunk in _chunks(keys, per_chunk):
        values = ",".join(["(" + ",".join("?" * width) + ")"] * len(chunk))
        params = [part for key in chunk for part in key]
        sql = f"SELECT t.* FROM (VALUES {values}) AS v CROSS JOIN {table} AS t ON {on}"
        for row in conn.execute(sql, params):
            record = dict(row)
            rows[tuple(record[c] for c in key_columns)] = record
    return rows


def _module_sums(
    conn: sqlite3.Connection, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[float, int]]:
    """(sum of module percents, modules completed) per learner x path, catalog modules only."""
    sums: dict[tuple[str, str], tuple[float, int]] = {}
    for chunk in _chunks(keys, _CHUNK // 2):
        values = ",".join(["(?,?)"] * len(chunk))
        params = [part for key in chunk for part in key]
        sql = (
            "SELECT m.learner, m.path, sum(m.percent), sum(m.status = 'completed') "
            f"FROM (VALUES {values}) AS v CROSS JOIN module_progress m"
            " ON m.learner = v.column1 AND m.path = v.column2"
            " JOIN catalog_modules c ON c.path = m.path AND c.module = m.module "
            "GROUP BY m.learner, m.path"
        )
        for learner, path, total, completed in conn.execute(sql, params):
            sums[(learner, path)] = (total or 0.0, completed or 0)
    return sums


def _upsert_sql(table: str, keys: tuple[str, ...], columns: tuple[str, ...]) -> str:
    names = keys + columns
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns)
    return (
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))}) "
        f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}"
    )


def recompute_path_percents(conn: sqlite3.Connection, catalog: Catalog, paths: set[str]) -> None:
    """Re-derive every learner's percent on ``paths`` after their module count changed.

    On a path whose catalog came from a file, learners who have completed
    every listed module complete the path (as the next event would make them).
    """
    mine = (
        " FROM module_progress m"
        " JOIN catalog_modules c ON c.path = m.path AND c.module = m.module"
        " WHERE m.learner = path_progress.learner AND m.path = path_progress.path"
    )
    for path in paths:
        count = max(catalog.module_counts.get(path, 0), 1)
        conn.execute(
            f"UPDATE path_progress SET percent = min(100.0, coalesce((SELECT sum(m.percent){mine}),"
            f" 0) / ?), modules_completed = (SELECT count(*){mine} AND m.status = 'completed')"
            " WHERE path = ? AND status != 'completed'",
            (count, path),
        )
        if path in catalog.authoritative:
            conn.execute(
                "UPDATE path_progress SET status = 'completed', percent = 100.0,"
                f" completed_at = (SELECT max(m.completed_at){mine})"
                " WHERE path = ? AND status != 'completed' AND modules_completed >= ?",
                (path, count),
            )


def store_batch(
    conn: sqlite3.Connection,
    catalog: Catalog,
    events: Sequence[Event],
    *,
    next_seq: int,
    received: float,
    cursor: tuple[str, str] | None = None,
    cache: ProgressCache | None = None,
) -> IngestOutcome:
    """Store ``events`` inside the caller's transaction.

    Events whose ``id`` is already stored, or repeated earlier in the batch, are
    duplicates: counted, not stored. The rest get consecutive sequence numbers
    from ``next_seq``. Progress rows they touch are updated in the same
    transaction, and ``cursor`` (name, value), if given, is saved with them.
    Rows are read from ``cache`` where it has them; the caller refreshes it
    from ``changes`` once the transaction commits.
    """
    known = _existing_ids(conn, [e.id for e in events])
    stored: list[StoredEvent] = []
    duplicates: list[int] = []
    seen = set(known)
    rows = []
    progress = BatchProgress()
    seq = next_seq
    for index, event in enumerate(events):
        if event.id in seen:
            duplicates.append(index)
            continue
        seen.add(event.id)
        body = json.dumps(event.as_dict(), separators=(",", ":"), allow_nan=False)
        stored.append(StoredEvent(seq, event, body))
        score = event.score.percent if event.score is not None else None
        rows.append(
            (
                seq,
                event.id,
                event.type,
                event.ts,
                received,
                event.learner,
                event.path,
                event.module,
                event.item,
                score,
                event.success,
                event.progress,
                event.duration_s,
                event.attempt,
                event.session,
                body,
            )
        )
        progress.add(event)
        seq += 1
    if rows:
        conn.executemany(
            "INSERT INTO events (seq, id, type, ts, received, learner, path, module, item, score,"
            " success, progress, duration_s, attempt, session, body)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        changes = _update_progress(conn, catalog, progress, cache)
    else:
        changes = ProgressChanges()
    if cursor is not None:
        conn.execute(
            "INSERT INTO cursors (name, value, updated) VALUES (?, ?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (cursor[0], cursor[1], received),
        )
    return IngestOutcome(stored, duplicates, changes, seq - 1)


def _update_progress(
    conn: sqlite3.Connection,
    catalog: Catalog,
    progress: BatchProgress,
    cache: ProgressCache | None,
) -> ProgressChanges:
    changes = ProgressChanges()
    # In event order (dicts keep it), so discovered modules get stable positions.
    pairs = dict.fromkeys((path, None) for (_, path) in progress.paths)
    pairs.update(dict.fromkeys((path, module) for (_, path, module) in progress.modules))
    recount = catalog.discover(conn, pairs)
    if recount:
        recompute_path_percents(conn, catalog, recount)
        changes.recounted = recount

    module_keys = list(progress.modules)
    if module_keys:
        old = _fetch_rows(conn, "module_progress", module_keys, cache)
        new_rows = []
        for key in module_keys:
            row = apply_module(old.get(key), progress.modules[key])
            new_rows.append(key + tuple(row[c] for c in MODULE_COLUMNS))
            changes.modules.append({"learner": key[0], "path": key[1], "module": key[2]} | row)
        conn.executemany(
            _upsert_sql("module_progress", ("learner", "path", "module"), MODULE_COLUMNS), new_rows
        )

    path_keys = list(progress.paths)
    if path_keys:
        old = _fetch_rows(conn, "path_progress", path_keys, cache)
        sums = _module_sums(conn, path_keys)
        new_rows = []
        for key in path_keys:
            total, completed = sums.get(key, (0.0, 0))
            row = apply_path(
                old.get(key),
                progress.paths[key],
                module_percent_sum=total,
                modules_completed=completed,
                module_count=catalog.module_counts.get(key[1], 0),
                catalog_is_authoritative=key[1] in catalog.authoritative,
            )
            new_rows.append(key + tuple(row[c] for c in PATH_COLUMNS))
            changes.paths.append({"learner": key[0], "path": key[1]} | row)
        conn.executemany(_upsert_sql("path_progress", ("learner", "path"), PATH_COLUMNS), new_rows)

    learner_keys = [(learner,) for learner in progress.learners]
    old = _fetch_rows(conn, "learners", learner_keys, cache)
    new_rows = []
    for (learner,) in learner_keys:
        row = apply_learner(old.get((learner,)), progress.learners[learner])
        new_rows.append((learner, *(row[c] for c in LEARNER_COLUMNS)))
        changes.learners.append({"learner": learner} | row)
    conn.executemany(_upsert_sql("learners", ("learner",), LEARNER_COLUMNS), new_rows)
    return changes
