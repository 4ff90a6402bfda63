"""The notification outbox in PostgreSQL: the meaning of :mod:`jacmon.store.sqlite.notify`.

Several nodes run the router and the delivery loops against one outbox, so each
transaction first locks what it decides on: the router the ``meta`` row of its
watermark (``notify_seq``: one router at a time routes each change once), a claim
the group's ``notify_groups`` row (one node claims a group's batch), repeat
planning an advisory lock. Times are wall-clock epoch seconds.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import asyncpg

from jacmon.notify.config import Route
from jacmon.notify.model import Delivery, Notification
from jacmon.store.postgres.alerts import open_alerts
from jacmon.store.postgres.meta import set_meta
from jacmon.store.records import backoff_s, receivers_for
from jacmon.store.types import ClaimedBatch, DueGroup, batch_key

ROUTED_CHANGES = frozenset({"fired", "resolved", "acknowledged", "unacknowledged"})
#: Longest text kept from a receiver's answer.
DETAIL_CHARS = 1000
#: The advisory lock that serialises repeat planning across nodes ("jmrept").
REPEAT_LOCK = 0x6A6D72657074


async def _watermark(conn: asyncpg.Connection) -> str | None:
    """The router's watermark, its row locked for this transaction (None: never set)."""
    return await conn.fetchval("SELECT value FROM meta WHERE key = 'notify_seq' FOR UPDATE")


async def route_new_changes(
    conn: asyncpg.Connection, routes: Iterable[Route], *, now: float, limit: int = 500
) -> int:
    """Inside the caller's transaction: route up to ``limit`` alert changes after the
    watermark into outbox rows, and move the watermark past them; how many were read.
    The first time, the router starts at the newest change (the history is not sent)."""
    routes = list(routes)
    mark = await _watermark(conn)
    if mark is None:
        # Two nodes starting at once: one inserts, the other waits on the row, then
        # finds it and carries on from it.
        head = await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_changes")
        inserted = await conn.fetchval(
            "INSERT INTO meta (key, value) VALUES ('notify_seq', $1)"
            " ON CONFLICT (key) DO NOTHING RETURNING 1",
            str(head),
        )
        if inserted:
            return 0
        mark = await _watermark(conn)
    if limit <= 0:
        return 0
    changes = await conn.fetch(
        "SELECT c.seq, c.change, a.id, a.rule, a.severity, a.learner, a.path"
        " FROM alert_changes c JOIN alerts a ON a.id = c.alert_id"
        " WHERE c.seq > $1 ORDER BY c.seq LIMIT $2",
        int(mark),
        limit,
    )
    if not changes:
        return 0
    rows: list[tuple[Any, ...]] = []
    groups: dict[tuple[str, str], tuple[str, str]] = {}
    labels_json: dict[str, str] = {}
    now = float(now)
    for seq, change, alert_id, rule, severity, learner, path in changes:
        if change not in ROUTED_CHANGES:
            continue
        alert = {"rule": rule, "severity": severity, "learner": learner, "path": path}
        for receiver, route in receivers_for(routes, alert, change):
            group_key, labels = route.group_of(alert)
            if group_key not in labels_json:
                labels_json[group_key] = json.dumps(labels)
            groups[(receiver, group_key)] = (route.name, labels_json[group_key])
            rows.append((receiver, route.name, group_key, alert_id, seq, change, None, now))
    if rows:
        await conn.executemany(
            "INSERT INTO notifications (receiver, route, group_key, alert_id, change_seq,"
            " change, body, created_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
            rows,
        )
        await conn.executemany(
            "INSERT INTO notify_groups (receiver, group_key, route, labels)"
            " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            [(r, g, route, labels) for (r, g), (route, labels) in groups.items()],
        )
    await set_meta(conn, "notify_seq", str(changes[-1][0]))
    return len(changes)


async def due_groups(
    conn: asyncpg.Pool, receiver: str, routes: Mapping[str, Route], *, now: float
) -> tuple[list[DueGroup], float | None]:
    """The groups of ``receiver`` to send now, and when the next one falls due."""
    rows = await conn.fetch(
        "SELECT n.group_key, min(n.route), min(n.created_at), bool_or(n.state = 'sending'),"
        " min(CASE WHEN n.state = 'sending' THEN coalesce(n.next_attempt_at, 0) END),"
        " min(g.last_sent_at)"
        " FROM notifications n LEFT JOIN notify_groups g"
        " ON g.receiver = n.receiver AND g.group_key = n.group_key"
        " WHERE n.receiver = $1 AND n.state IN ('pending', 'sending')"
        " GROUP BY n.group_key",
        receiver,
    )
    due: list[DueGroup] = []
    upcoming: float | None = None
    for group_key, route_name, oldest, in_flight, retry_at, last_sent in rows:
        route = routes.get(route_name)
        if in_flight:
            at = retry_at or 0.0
        elif route is None:
            at = oldest
        elif last_sent is None:
            at = oldest + route.group_wait_s
        else:
            at = max(oldest, last_sent + route.group_interval_s)
        if at <= now:
            due.append(DueGroup(receiver, group_key))
        elif upcoming is None or at < upcoming:
            upcoming = at
    return due, upcoming


async def claim_batch(conn: asyncpg.Connection, group: DueGroup) -> ClaimedBatch | None:
    """Inside the caller's transaction: the batch to send for ``group`` (see the SQLite
    store's). The group's row is locked first, so two nodes never claim one group."""
    labels_text = await conn.fetchval(
        "SELECT labels FROM notify_groups WHERE receiver = $1 AND group_key = $2 FOR UPDATE",
        group.receiver,
        group.group_key,
    )
    key = await conn.fetchval(
        "SELECT batch FROM notifications WHERE receiver = $1 AND group_key = $2"
        " AND state = 'sending' LIMIT 1",
        group.receiver,
        group.group_key,
    )
    if key is None:
        await conn.execute(
            "UPDATE notifications SET state = 'silenced' WHERE receiver = $1 AND group_key = $2"
            " AND state = 'pending' AND alert_id IN"
            " (SELECT id FROM alerts WHERE silence_id IS NOT NULL)",
            group.receiver,
            group.group_key,
        )
        ids = [
            r[0]
            for r in await conn.fetch(
                "SELECT id FROM notifications WHERE receiver = $1 AND group_key = $2"
                " AND state = 'pending' ORDER BY id",
                group.receiver,
                group.group_key,
            )
        ]
        if not ids:
            return None
        key = batch_key(group.receiver, group.group_key, ids)
        await conn.execute(
            "UPDATE notifications SET state = 'sending', batch = $1 WHERE id = ANY($2::bigint[])",
            key,
            ids,
        )
    rows = [
        tuple(r)
        for r in await conn.fetch(
            "SELECT n.change, n.change_seq, coalesce(n.body, c.body), n.created_at, n.alert_id"
            " FROM notifications n LEFT JOIN alert_changes c ON c.seq = n.change_seq"
            " WHERE n.batch = $1 ORDER BY n.id",
            key,
        )
        # A change retired with its alert (cleanup, long after max_age) has no body left.
        if r[2] is not None
    ]
    if not rows:
        return None
    labels = json.loads(labels_text) if labels_text else {}
    return ClaimedBatch(group.receiver, key, labels, rows)


async def finish_batch(
    conn: asyncpg.Connection,
    notification: Notification,
    delivery: Delivery,
    *,
    now: float,
    max_age_s: float,
    backoff_base_s: float,
    backoff_cap_s: float,
) -> str:
    """Inside the caller's transaction: record the receiver's answer; the new state.

    Accepted: ``sent``. Refused for good, or retried for longer than ``max_age_s``:
    ``failed``. Otherwise ``sending`` until the next attempt (full-jitter backoff, or
    the receiver's ``Retry-After`` when longer).
    """
    detail = (delivery.detail or "")[:DETAIL_CHARS]
    row = await conn.fetchrow(
        "SELECT max(attempts), max(group_key) FROM notifications WHERE batch = $1",
        notification.key,
    )
    attempts, group_key = (row[0] or 0) + 1, row[1]
    if delivery.ok:
        state, next_at = "sent", None
    elif not delivery.retry or now - notification.created_at >= max_age_s:
        state, next_at = "failed", None
    else:
        wait = backoff_s(attempts, base_s=backoff_base_s, cap_s=backoff_cap_s)
        if delivery.retry_after_s is not None:
            wait = max(wait, min(delivery.retry_after_s, backoff_cap_s))
        state, next_at = "sending", float(now + wait)
    await conn.execute(
        "UPDATE notifications SET state = $1, attempts = $2, next_attempt_at = $3,"
        " last_status = $4, last_detail = $5, sent_at = $6 WHERE batch = $7",
        state,
        attempts,
        next_at,
        delivery.status,
        detail,
        float(now) if state == "sent" else None,
        notification.key,
    )
    if state in ("sent", "failed"):
        await conn.execute(
            "UPDATE notify_groups SET last_sent_at = $1 WHERE receiver = $2 AND group_key = $3",
            float(now),
            notification.receiver,
            group_key,
        )
    return state


async def plan_repeats(conn: asyncpg.Connection, routes: Mapping[str, Route], *, now: float) -> int:
    """Inside the caller's transaction: re-send groups whose repeat interval has passed
    (one node at a time: an advisory transaction lock); the number of rows written."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", REPEAT_LOCK)
    groups = [
        g
        for g in await conn.fetch(
            "SELECT g.receiver, g.group_key, g.route, g.labels, g.last_sent_at"
            " FROM notify_groups g WHERE g.last_sent_at IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM notifications n WHERE n.receiver = g.receiver"
            " AND n.group_key = g.group_key AND n.state IN ('pending', 'sending'))"
        )
        if g[2] in routes and now >= g[4] + routes[g[2]].repeat_interval_s
    ]
    if not groups:
        return 0
    firing = [a for a in await open_alerts(conn) if not a["acknowledged"] and not a.get("silenced")]
    rows = []
    now = float(now)
    for receiver, group_key, route_name, _labels, _last in groups:
        route = routes[route_name]
        planned = len(rows)
        for alert in firing:
            if route.matches(alert) and route.group_of(alert)[0] == group_key:
                body = json.dumps(alert, separators=(",", ":"))
                rows.append((receiver, route_name, group_key, alert["id"], 0, "repeat", body, now))
        if len(rows) == planned:
            await conn.execute(
                "UPDATE notify_groups SET last_sent_at = $1 WHERE receiver = $2 AND group_key = $3",
                now,
                receiver,
                group_key,
            )
    if rows:
        await conn.executemany(
            "INSERT INTO notifications (receiver, route, group_key, alert_id, change_seq,"
            " change, body, created_at, state) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending')",
            rows,
        )
    return len(rows)


async def notification_log(
    conn: asyncpg.Pool,
    *,
    receiver: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest outbox rows first, optionally of one receiver or state."""
    where, params = [], []
    if receiver is not None:
        params.append(receiver)
        where.append(f"n.receiver = ${len(params)}")
    if state is not None:
        params.append(state)
        where.append(f"n.state = ${len(params)}")
    params.append(limit)
    sql = (
        "SELECT n.id, n.receiver, n.route, n.group_key, n.alert_id, n.change, n.state, n.batch,"
        " n.attempts, n.created_at, n.next_attempt_at, n.sent_at, n.last_status, n.last_detail,"
        " coalesce(n.body, c.body)"
        " FROM notifications n LEFT JOIN alert_changes c ON c.seq = n.change_seq"
        + (" WHERE " + " AND ".join(where) if where else "")
        + f" ORDER BY n.id DESC LIMIT ${len(params)}"
    )
    keys = (
        "id", "receiver", "route", "group", "alert_id", "change", "state", "key", "attempts",
        "created_at", "next_attempt_at", "sent_at", "last_status", "last_detail",
    )  # fmt: skip
    log = []
    for row in await conn.fetch(sql, *params):
        entry = dict(zip(keys, tuple(row)[:-1], strict=True))
        alert = json.loads(row[-1]) if row[-1] else {}
        entry["rule"], entry["learner"], entry["path"] = (
            alert.get("rule"),
            alert.get("learner"),
            alert.get("path"),
        )
        log.append(entry)
    return log


async def open_counts(conn: asyncpg.Pool) -> dict[str, int]:
    """Receiver -> outbox rows not yet delivered (pending or sending)."""
    rows = await conn.fetch(
        "SELECT receiver, count(*) FROM notifications"
        " WHERE state IN ('pending', 'sending') GROUP BY receiver"
    )
    return {receiver: n for receiver, n in rows}
