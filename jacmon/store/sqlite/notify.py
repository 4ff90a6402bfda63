"""The notification outbox: routed alert changes, grouped, sent in batches, retried.

The alert change log (``alert_changes``) is committed with every alert change.
:func:`route_new_changes` expands the changes after the router's watermark
(``meta.notify_seq``) into one ``notifications`` row per (receiver, change) a
route matches, and stores the new watermark in the same transaction: a crash
either did both or neither, so no change is routed twice or never. Rows leave
the outbox only when their receiver accepted them (``sent``), when they are
given up on (``failed``, after ``max_age``), or when their alert is silenced.
Times here are wall-clock epoch seconds: delays are for people, also in a
simulated demo.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import aiosqlite

from jacmon.notify.config import Route
from jacmon.notify.model import Delivery, Notification
from jacmon.store.records import BACKOFF_BASE_S, BACKOFF_CAP_S, backoff_s, receivers_for
from jacmon.store.sqlite.database import chunks, get_meta, set_meta
from jacmon.store.types import ClaimedBatch, DueGroup, batch_key

ROUTED_CHANGES = frozenset({"fired", "resolved", "acknowledged", "unacknowledged"})
#: Longest text kept from a receiver's answer.
DETAIL_CHARS = 1000


async def route_new_changes(
    conn: aiosqlite.Connection, routes: Iterable[Route], *, now: float, limit: int = 500
) -> int:
    """Inside the caller's transaction: route up to ``limit`` alert changes after the
    watermark into outbox rows, and move the watermark past them. Returns how many
    changes were read (``limit`` means there may be more).

    The first time (no watermark yet) the router starts at the newest change:
    turning notifications on does not send the history.
    """
    routes = list(routes)
    mark = await get_meta(conn, "notify_seq")
    if mark is None:
        async with conn.execute("SELECT coalesce(max(seq), 0) FROM alert_changes") as cursor:
            (head,) = await cursor.fetchone()
        await set_meta(conn, "notify_seq", str(head))
        return 0
    if limit <= 0:
        return 0
    # The alert's labels come from its row, not from decoding each change's JSON: a burst
    # of thousands of changes is routed without parsing them (rule, learner and path
    # never change for an alert; severity is the current one).
    async with conn.execute(
        "SELECT c.seq, c.change, a.id, a.rule, a.severity, a.learner, a.path"
        " FROM alert_changes c JOIN alerts a ON a.id = c.alert_id"
        " WHERE c.seq > ? ORDER BY c.seq LIMIT ?",
        (int(mark), limit),
    ) as cursor:
        changes = await cursor.fetchall()
    if not changes:
        return 0
    rows: list[tuple[Any, ...]] = []
    groups: dict[tuple[str, str], tuple[str, str]] = {}
    labels_json: dict[str, str] = {}
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
            " change, body, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            rows,
        )
        await conn.executemany(
            "INSERT OR IGNORE INTO notify_groups (receiver, group_key, route, labels)"
            " VALUES (?, ?, ?, ?)",
            [(r, g, route, labels) for (r, g), (route, labels) in groups.items()],
        )
    await set_meta(conn, "notify_seq", str(changes[-1][0]))
    return len(changes)


async def due_groups(
    conn: aiosqlite.Connection, receiver: str, routes: Mapping[str, Route], *, now: float
) -> tuple[list[DueGroup], float | None]:
    """The groups of ``receiver`` to send now, and when the next one falls due (None: none).

    A group never sent waits ``group_wait`` from its oldest pending change; after a
    send, new changes wait until ``group_interval`` after it. A batch in flight
    (``sending``: failed and waiting for its retry, or cut off by a crash) is due at
    its retry time and goes out again under its idempotency key.
    """
    async with conn.execute(
        "SELECT n.group_key, n.route, min(n.created_at), max(n.state = 'sending'),"
        " min(CASE WHEN n.state = 'sending' THEN coalesce(n.next_attempt_at, 0) END),"
        " g.last_sent_at"
        " FROM notifications n LEFT JOIN notify_groups g"
        " ON g.receiver = n.receiver AND g.group_key = n.group_key"
        " WHERE n.receiver = ? AND n.state IN ('pending', 'sending')"
        " GROUP BY n.group_key",
        (receiver,),
    ) as cursor:
        rows = await cursor.fetchall()
    due: list[DueGroup] = []
    upcoming: float | None = None
    for group_key, route_name, oldest, in_flight, retry_at, last_sent in rows:
        route = routes.get(route_name)
        if in_flight:
            at = retry_at or 0.0
        elif route is None:
            at = oldest  # its route left the config: send what was promised, at once
        elif last_sent is None:
            at = oldest + route.group_wait_s
        else:
            at = max(oldest, last_sent + route.group_interval_s)
        if at <= now:
            due.append(DueGroup(receiver, group_key))
        elif upcoming is None or at < upcoming:
            upcoming = at
    return due, upcoming


async def claim_batch(conn: aiosqlite.Connection, group: DueGroup) -> ClaimedBatch | None:
    """Inside the caller's transaction: the batch to send for ``group``.

    A batch already in flight is returned as it was (same rows, same key).
    Otherwise every pending row of the group joins a new batch, except the rows
    of alerts now under a silence, which become ``silenced``. None: nothing left.
    Only raw rows are read here; decoding waits until the transaction is over.
    """
    async with conn.execute(
        "SELECT batch FROM notifications WHERE receiver = ? AND group_key = ?"
        " AND state = 'sending' LIMIT 1",
        (group.receiver, group.group_key),
    ) as cursor:
        row = await cursor.fetchone()
    key = row[0] if row else None
    if key is None:
        await conn.execute(
            "UPDATE notifications SET state = 'silenced' WHERE receiver = ? AND group_key = ?"
            " AND state = 'pending' AND alert_id IN"
            " (SELECT id FROM alerts WHERE silence_id IS NOT NULL)",
            (group.receiver, group.group_key),
        )
        async with conn.execute(
            "SELECT id FROM notifications WHERE receiver = ? AND group_key = ?"
            " AND state = 'pending' ORDER BY id",
            (group.receiver, group.group_key),
        ) as cursor:
            ids = [r[0] for r in await cursor.fetchall()]
        if not ids:
            return None
        key = batch_key(group.receiver, group.group_key, ids)
        for chunk in chunks(ids):
            await conn.execute(
                f"UPDATE notifications SET state = 'sending', batch = ?"
                f" WHERE id IN ({','.join('?' * len(chunk))})",
                (key, *chunk),
            )
    async with conn.execute(
        "SELECT n.change, n.change_seq, coalesce(n.body, c.body), n.created_at, n.alert_id"
        " FROM notifications n LEFT JOIN alert_changes c ON c.seq = n.change_seq"
        " WHERE n.batch = ? ORDER BY n.id",
        (key,),
    ) as cursor:
        # A change retired with its alert (cleanup, long after max_age) has no body left.
        rows = [tuple(r) for r in await cursor.fetchall() if r[2] is not None]
    async with conn.execute(
        "SELECT labels FROM notify_groups WHERE receiver = ? AND group_key = ?",
        (group.receiver, group.group_key),
    ) as cursor:
        labels_row = await cursor.fetchone()
    if not rows:
        return None
    labels = json.loads(labels_row[0]) if labels_row else {}
    return ClaimedBatch(group.receiver, key, labels, rows)


async def finish_batch(
    conn: aiosqlite.Connection,
    notification: Notification,
    delivery: Delivery,
    *,
    now: float,
    max_age_s: float,
    backoff_base_s: float = BACKOFF_BASE_S,
    backoff_cap_s: float = BACKOFF_CAP_S,
) -> str:
    """Inside the caller's transaction: record the receiver's answer; returns the new state.

    Accepted: ``sent``. Refused for good, or retried for longer than ``max_age_s``:
    ``failed``. Otherwise it stays ``sending`` until the next attempt (backoff with
    full jitter, or the receiver's ``Retry-After`` when longer).
    """
    detail = (delivery.detail or "")[:DETAIL_CHARS]
    async with conn.execute(
        "SELECT max(attempts), max(group_key) FROM notifications WHERE batch = ?",
        (notification.key,),
    ) as cursor:
        attempts, group_key = await cursor.fetchone()
    attempts = (attempts or 0) + 1
    if delivery.ok:
        state, next_at = "sent", None
    elif not delivery.retry or now - notification.created_at >= max_age_s:
        state, next_at = "failed", None
    else:
        wait = backoff_s(attempts, base_s=backoff_base_s, cap_s=backoff_cap_s)
        if delivery.retry_after_s is not None:
            wait = max(wait, min(delivery.retry_after_s, backoff_cap_s))
        state, next_at = "sending", now + wait
    await conn.execute(
        "UPDATE notifications SET state = ?, attempts = ?, next_attempt_at = ?,"
        " last_status = ?, last_detail = ?, sent_at = ? WHERE batch = ?",
        (
            state,
            attempts,
            next_at,
            delivery.status,
            detail,
            now if state == "sent" else None,
            notification.key,
        ),
    )
    if state in ("sent", "failed"):
        await conn.execute(
            "UPDATE notify_groups SET last_sent_at = ? WHERE receiver = ? AND group_key = ?",
            (now, notification.receiver, group_key),
        )
    return state


async def plan_repeats(
    conn: aiosqlite.Connection,
    routes: Mapping[str, Route],
    *,
    now: float,
) -> int:
    """Inside the caller's transaction: re-send groups whose repeat interval has passed.

    Each firing alert of the group that is neither acknowledged nor silenced gets
    a ``repeat`` row (its current state). A group with no such alert stays quiet.
    Returns the number of rows written.
    """
    async with conn.execute(
        "SELECT g.receiver, g.group_key, g.route, g.labels, g.last_sent_at FROM notify_groups g"
        " WHERE g.last_sent_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM notifications n"
        " WHERE n.receiver = g.receiver AND n.group_key = g.group_key"
        " AND n.state IN ('pending', 'sending'))"
    ) as cursor:
        groups = [
            g
            for g in await cursor.fetchall()
            if g[2] in routes and now >= g[4] + routes[g[2]].repeat_interval_s
        ]
    if not groups:
        return 0
    from jacmon.store.sqlite.alerts import open_alerts  # the alerts module imports nothing of ours

    firing = [a for a in await open_alerts(conn) if not a["acknowledged"] and not a.get("silenced")]
    rows = []
    for receiver, group_key, route_name, _labels, _last in groups:
        route = routes[route_name]
        planned = len(rows)
        for alert in firing:
            if route.matches(alert) and route.group_of(alert)[0] == group_key:
                body = json.dumps(alert, separators=(",", ":"))
                rows.append((receiver, route_name, group_key, alert["id"], 0, "repeat", body, now))
        if len(rows) == planned:
            # A quiet group starts its next repeat interval now, so it is not rescanned
            # every poll (a group with a repeat to send does so when it is sent).
            await conn.execute(
                "UPDATE notify_groups SET last_sent_at = ? WHERE receiver = ? AND group_key = ?",
                (now, receiver, group_key),
            )
    if rows:
        await conn.executemany(
            "INSERT INTO notifications (receiver, route, group_key, alert_id, change_seq,"
            " change, body, created_at, state) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending')",
            rows,
        )
    return len(rows)


async def notification_log(
    conn: aiosqlite.Connection,
    *,
    receiver: str | None = None,
    state: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """The newest outbox rows first, optionally of one receiver or state."""
    where, params = [], []
    if receiver is not None:
        where.append("receiver = ?")
        params.append(receiver)
    if state is not None:
        where.append("state = ?")
        params.append(state)
    sql = (
        "SELECT n.id, n.receiver, n.route, n.group_key, n.alert_id, n.change, n.state, n.batch,"
        " n.attempts, n.created_at, n.next_attempt_at, n.sent_at, n.last_status, n.last_detail,"
        " coalesce(n.body, c.body)"
        " FROM notifications n LEFT JOIN alert_changes c ON c.seq = n.change_seq"
        + (" WHERE " + " AND ".join(f"n.{w}" for w in where) if where else "")
        + " ORDER BY n.id DESC LIMIT ?"
    )
    async with conn.execute(sql, (*params, limit)) as cursor:
        rows = await cursor.fetchall()
    keys = (
        "id", "receiver", "route", "group", "alert_id", "change", "state", "key", "attempts",
        "created_at", "next_attempt_at", "sent_at", "last_status", "last_detail",
    )  # fmt: skip
    log = []
    for row in rows:
        entry = dict(zip(keys, row[:-1], strict=True))
        alert = json.loads(row[-1]) if row[-1] else {}
        entry["rule"], entry["learner"], entry["path"] = (
            alert.get("rule"),
            alert.get("learner"),
            alert.get("path"),
        )
        log.append(entry)
    return log


async def open_counts(conn: aiosqlite.Connection) -> dict[str, int]:
    """Receiver -> outbox rows not yet delivered (pending or sending).

    Read every router pass for /metrics: it counts through the partial index of
    open rows, not the whole (growing) outbox.
    """
    async with conn.execute(
        "SELECT receiver, count(*) FROM notifications"
        " WHERE state IN ('pending', 'sending') GROUP BY receiver"
    ) as cursor:
        return {receiver: n for receiver, n in await cursor.fetchall()}
