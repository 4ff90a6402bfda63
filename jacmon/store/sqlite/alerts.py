"""Alert persistence: the alerts table, its change log, and the lifecycle writes.

Every change of an alert (fired, updated, resolved, acknowledged) is one row
in ``alert_changes``, written in the same transaction as the alert: the server
tails that table for the alerts stream, whichever process made the change.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import aiosqlite

from jacmon.analytics.alert_rules import PlannedChange
from jacmon.store.records import alert_change, finite, load_json
from jacmon.store.sqlite.database import Database, chunks
from jacmon.store.sqlite.queries import since_query
from jacmon.store.types import ALERT_STATES, AlertError

_COLUMNS = (
    "id, fingerprint, rule, severity, state, learner, path, message, numbers,"
    " first_seen, last_seen, resolved_at, ack_by, ack_at, ack_note, ack_expires_at, ack_history,"
    # The silence the alert is under, as the streams show it (NULL: none).
    " (SELECT json_object('id', s.id, 'until', s.ends_at, 'by', s.created_by, 'note', s.note)"
    " FROM silences s WHERE s.id = alerts.silence_id)"
)

log = logging.getLogger("jacmon.alerts")


def alert_from_row(row: aiosqlite.Row | tuple) -> dict[str, Any]:
    """An alert row (in :data:`_COLUMNS` order) as the JSON-able dict the streams send."""
    (
        alert_id,
        print_,
        rule,
        severity,
        state,
        learner,
        path,
        message,
        numbers,
        first_seen,
        last_seen,
        resolved_at,
        ack_by,
        ack_at,
        ack_note,
        ack_expires_at,
        ack_history,
        silence,
    ) = tuple(row)
    acknowledged = None
    if ack_at is not None:
        acknowledged = finite(
            {"by": ack_by, "at": ack_at, "note": ack_note, "expires_at": ack_expires_at}
        )
    return {
        "id": alert_id,
        "fingerprint": print_,
        "rule": rule,
        "severity": severity,
        "state": state,
        "learner": learner,
        "path": path,
        "message": message,
        "numbers": load_json(numbers, {}),
        "first_seen": first_seen,
        "last_seen": last_seen,
        "resolved_at": resolved_at,
        "acknowledged": acknowledged,
        "acknowledgements": load_json(ack_history, []),
        "silenced": finite(load_json(silence, None)),
    }


async def _select(conn: aiosqlite.Connection, where: str, params: list[Any]) -> list[dict]:
    async with conn.execute(f"SELECT {_COLUMNS} FROM alerts {where}", params) as cursor:
        return [alert_from_row(row) for row in await cursor.fetchall()]


async def get_alert(conn: aiosqlite.Connection, alert_id: int) -> dict[str, Any] | None:
    rows = await _select(conn, "WHERE id = ?", [alert_id])
    return rows[0] if rows else None


async def open_alerts(conn: aiosqlite.Connection, *, learner: str | None = None) -> list[dict]:
    """Firing alerts, oldest first (the alerts stream's snapshot); ``learner`` scopes them."""
    return await list_alerts(conn, state="firing", learner=learner)


async def list_alerts(
    conn: aiosqlite.Connection, *, state: str = "firing", learner: str | None = None
) -> list[dict]:
    """Alerts in ``state`` (``firing``, ``resolved`` or ``all``), oldest first."""
    clauses: list[str] = []
    params: list[Any] = []
    if state != "all":
        if state not in ALERT_STATES:
            raise AlertError(
                f"alert state {state!r} is not known. Expected firing, resolved or all."
            )
        clauses.append("state = ?")
        params.append(state)
    if learner is not None:
        clauses.append("learner = ?")
        params.append(learner)
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return await _select(conn, f"{where} ORDER BY id", params)


async def open_alerts_of_rules(conn: aiosqlite.Connection, rules: frozenset[str]) -> list[dict]:
    """Firing alerts of ``rules`` (what a task reconciles against)."""
    marks = ",".join("?" * len(rules))
    return await _select(
        conn, f"WHERE state = 'firing' AND rule IN ({marks}) ORDER BY id", sorted(rules)
    )


async def alert_changes_since(
    conn: aiosqlite.Connection, seq: int, *, learner: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Changes with a sequence number above ``seq``, in order: ``{"seq", "change", "alert"}``."""
    sql, params = since_query(
        "SELECT seq, change, body FROM alert_changes", seq, learner=learner, limit=limit
    )
    async with conn.execute(sql, params) as cursor:
        rows = await cursor.fetchall()
    changes = []
    for s, change, body in rows:
        alert = load_json(body, None)
        if isinstance(alert, dict):
            changes.append(alert_change(s, change, alert))
        else:
            log.warning("skipping alert change %d: its stored alert is not readable", s)
    return changes


async def alert_totals(conn: aiosqlite.Connection) -> tuple[int, dict[str, int]]:
    """(alerts ever fired, firing alerts per rule)."""
    async with conn.execute("SELECT count(*) FROM alert_changes WHERE change = 'fired'") as cur:
        (fired,) = await cur.fetchone()
    async with conn.execute(
        "SELECT rule, count(*) FROM alerts WHERE state = 'firing' GROUP BY rule"
    ) as cursor:
        firing = {rule: n for rule, n in await cursor.fetchall()}
    return fired, firing


async def last_alert_change_seq(conn: aiosqlite.Connection) -> int:
    """The newest change's sequence number (0 if there is none)."""
    async with conn.execute("SELECT coalesce(max(seq), 0) FROM alert_changes") as cursor:
        (value,) = await cursor.fetchone()
    return value


#: An active silence matching the alert row ``alerts`` (the newest-ending one), on the
#: wall clock: silences are set by people, in their time, also in a simulated demo.
ACTIVE_SILENCE_OF_ALERT = """
    SELECT s.id FROM silences s
    WHERE s.expired_at IS NULL AND s.starts_at <= :now AND s.ends_at > :now
      AND (s.rule IS NULL OR s.rule = alerts.rule)
      AND (s.learner IS NULL OR s.learner = alerts.learner)
      AND (s.path IS NULL OR s.path = alerts.path)
    ORDER BY s.ends_at DESC LIMIT 1
"""


async def silence_new_alerts(conn: aiosqlite.Connection, alert_ids: list[int]) -> None:
    """Put newly fired alerts under the active silence that matches them, if any."""
    now = time.time()
    for chunk in chunks(alert_ids):
        marks = ",".join("?" * len(chunk))
        await conn.execute(
            f"UPDATE alerts SET silence_id = ({ACTIVE_SILENCE_OF_ALERT.replace(':now', '?')})"
            f" WHERE id IN ({marks})",
            [now, now, *chunk],
        )


async def _record_change(
    conn: aiosqlite.Connection, alert_id: int, change: str, ts: float
) -> dict[str, Any]:
    """Log the alert as it now is; returns the change dict."""
    (logged,) = await record_changes(conn, [(alert_id, change)], ts)
    return logged


async def record_changes(
    conn: aiosqlite.Connection, items: list[tuple[int, str]], ts: float
) -> list[dict[str, Any]]:
    """Log each (alert id, change) with the alert as it now is, in order; returns the changes.

    Set-based (a read per chunk of alerts, one insert for all) because a first
    run on a big platform fires thousands of alerts at once.
    """
    fired = [alert_id for alert_id, change in items if change == "fired"]
    if fired:
        await silence_new_alerts(conn, fired)
    current: dict[int, dict[str, Any]] = {}
    ids = sorted({alert_id for alert_id, _ in items})
    for chunk in chunks(ids):
        marks = ",".join("?" * len(chunk))
        for alert in await _select(conn, f"WHERE id IN ({marks})", chunk):
            current[alert["id"]] = alert
    missing = [alert_id for alert_id in ids if alert_id not in current]
    if missing:
        raise AlertError(f"alert(s) {missing} vanished while their change was being recorded")
    # AUTOINCREMENT's high-water mark: a seq is never reused, even after cleanup deleted
    # the newest changes (the alerts stream resumes by seq).
    async with conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'alert_changes'), 0),"
        " coalesce((SELECT max(seq) FROM alert_changes), 0))"
    ) as cursor:
        (last,) = await cursor.fetchone()
    rows = []
    logged = []
    # Explicit seqs, inside the write transaction: the result needs no read-back.
    for offset, (alert_id, change) in enumerate(items, start=1):
        alert = current[alert_id]
        body = json.dumps(alert, separators=(",", ":"))
        rows.append((last + offset, alert_id, change, ts, alert["learner"], body))
        logged.append(alert_change(last + offset, change, alert))
    await conn.executemany(
        "INSERT INTO alert_changes (seq, alert_id, change, ts, learner, body)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )
    return logged


async def apply_alert_changes(
    conn: aiosqlite.Connection, changes: list[PlannedChange], *, now: float
) -> list[dict[str, Any]]:
    """Write ``changes`` inside the caller's transaction; returns the logged change dicts.

    The logged changes come back in the order of ``changes`` (touches left out).
    ``touch`` only moves ``last_seen`` and logs nothing; ``resolve`` keeps the
    acknowledgement (it is history) and records the reason in the numbers.
    """
    touched, updated, resolved, fired = [], [], [], []
    for change in changes:
        if change.action == "touch":
            touched.append((now, change.alert["id"]))
        elif change.action == "update":
            c = change.condition
            numbers = json.dumps(c.numbers, separators=(",", ":"))
            updated.append((c.severity, c.message, numbers, now, change.alert["id"]))
        elif change.action == "resolve":
            numbers = dict(change.alert["numbers"])
            numbers["resolved_because"] = change.reason
            resolved.append((now, json.dumps(numbers, separators=(",", ":")), change.alert["id"]))
        elif change.action == "fire":
            c = change.condition
            numbers = json.dumps(c.numbers, separators=(",", ":"))
            fired.append(
                (c.fingerprint, c.rule, c.severity, c.learner, c.path, c.message, numbers, now, now)
            )
        else:
            raise AlertError(f"unknown alert change {change.action!r}")
    if touched:
        await conn.executemany("UPDATE alerts SET last_seen = ? WHERE id = ?", touched)
    if updated:
        await conn.executemany(
            "UPDATE alerts SET severity = ?, message = ?, numbers = ?, last_seen = ? WHERE id = ?",
            updated,
        )
    if resolved:
        # Before firing: a fingerprint may resolve and fire anew in one plan.
        await conn.executemany(
            "UPDATE alerts SET state = 'resolved', resolved_at = ?, numbers = ? WHERE id = ?",
            resolved,
        )
    new_ids: dict[str, int] = {}
    if fired:
        async with conn.execute("SELECT coalesce(max(id), 0) FROM alerts") as cursor:
            (last_id,) = await cursor.fetchone()
        await conn.executemany(
            "INSERT INTO alerts (fingerprint, rule, severity, state, learner, path, message,"
            " numbers, first_seen, last_seen) VALUES (?, ?, ?, 'firing', ?, ?, ?, ?, ?, ?)",
            fired,
        )
        # The new rows' ids, by fingerprint (unique among firing alerts).
        prints = [row[0] for row in fired]
        for chunk in chunks(prints):
            marks = ",".join("?" * len(chunk))
            async with conn.execute(
                f"SELECT fingerprint, id FROM alerts WHERE id > ? AND state = 'firing'"
                f" AND fingerprint IN ({marks})",
                [last_id, *chunk],
            ) as cursor:
                new_ids.update({fp: alert_id for fp, alert_id in await cursor.fetchall()})
    items: list[tuple[int, str]] = []
    for change in changes:
        if change.action == "fire":
            items.append((new_ids[change.condition.fingerprint], "fired"))
        elif change.action == "update":
            items.append((change.alert["id"], "updated"))
        elif change.action == "resolve":
            items.append((change.alert["id"], "resolved"))
    return await record_changes(conn, items, now) if items else []


async def _firing_in_scope(
    conn: aiosqlite.Connection, alert_id: int, learner: str | None, done: str
) -> dict[str, Any]:
    """The firing alert ``alert_id`` an action may change; another learner's alert is
    answered exactly as a missing one (``done`` names the action in the error)."""
    alert = await get_alert(conn, alert_id)
    if alert is None or (learner is not None and alert["learner"] != learner):
        raise AlertError(
            f"alert {alert_id} does not exist. List alerts with 'jacmon alerts --state all'."
        )
    if alert["state"] != "firing":
        raise AlertError(
            f"alert {alert_id} is {alert['state']}; only a firing alert can be {done}."
        )
    return alert


async def acknowledge_alert(
    db: Database,
    alert_id: int,
    *,
    by: str,
    note: str | None = None,
    expires_at: float | None = None,
    now: float | None = None,
    learner: str | None = None,
) -> dict[str, Any]:
    """Acknowledge a firing alert (who, optional note, optional expiry in epoch seconds).

    The alert stays firing; acknowledging again makes the new acknowledgement
    the current one and keeps every earlier one in ``acknowledgements``.
    Returns the change dict (``{"seq", "change": "acknowledged", "alert"}``).
    ``now`` is the acknowledgement time in epoch seconds (None: the wall clock).
    ``learner`` scopes the action: another learner's alert is answered exactly as
    a missing one, so a scoped token learns nothing about alerts it cannot see.
    """
    if not by:
        raise AlertError("acknowledging needs a name: who acknowledges (--by NAME)")
    at = time.time() if now is None else now
    if expires_at is not None and not (math.isfinite(expires_at) and expires_at > at):
        raise AlertError(
            f"acknowledgement expiry {expires_at!r} is not in the future. "
            "Expected a time after now (epoch seconds), or none."
        )
    async with db.transaction() as conn:
        alert = await _firing_in_scope(conn, alert_id, learner, "acknowledged")
        entry = {
            "action": "acknowledged",
            "by": by,
            "at": at,
            "note": note,
            "expires_at": expires_at,
        }
        history = json.dumps([*alert["acknowledgements"], entry], allow_nan=False)
        await conn.execute(
            "UPDATE alerts SET ack_by = ?, ack_at = ?, ack_note = ?, ack_expires_at = ?,"
            " ack_history = ? WHERE id = ?",
            (by, at, note, expires_at, history, alert_id),
        )
        return await _record_change(conn, alert_id, "acknowledged", at)


async def unacknowledge_alert(
    db: Database,
    alert_id: int,
    *,
    by: str,
    note: str | None = None,
    now: float | None = None,
    learner: str | None = None,
) -> dict[str, Any]:
    """Withdraw the current acknowledgement of a firing alert (an ack made by mistake).

    The alert goes back to unacknowledged; the history keeps the acknowledgement
    and gains an ``unacknowledged`` entry (who, when, optional note), so nothing an
    instructor did is lost. Returns the change dict (``"change": "unacknowledged"``).
    ``now`` is in epoch seconds (None: the wall clock); ``learner`` scopes the
    action exactly as in :func:`acknowledge_alert`.
    """
    if not by:
        raise AlertError("un-acknowledging needs a name: who acts (--by NAME)")
    at = time.time() if now is None else now
    async with db.transaction() as conn:
        alert = await _firing_in_scope(conn, alert_id, learner, "un-acknowledged")
        if alert["acknowledged"] is None:
            raise AlertError(f"alert {alert_id} is not acknowledged; there is nothing to undo.")
        entry = {"action": "unacknowledged", "by": by, "at": at, "note": note}
        history = json.dumps([*alert["acknowledgements"], entry], allow_nan=False)
        await conn.execute(
            "UPDATE alerts SET ack_by = NULL, ack_at = NULL, ack_note = NULL,"
            " ack_expires_at = NULL, ack_history = ? WHERE id = ?",
            (history, alert_id),
        )
        return await _record_change(conn, alert_id, "unacknowledged", at)


async def expire_acknowledgements(
    conn: aiosqlite.Connection, *, now: float, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Clear acknowledgements whose expiry has passed (inside the caller's transaction).

    Each cleared one is logged as ``updated`` and its history gains an ``expired``
    entry. With ``dry_run`` nothing is written
    and the alerts that would change are returned as ``{"alert": ...}`` dicts.
    """
    expired = await _select(
        conn,
        "WHERE state = 'firing' AND ack_expires_at IS NOT NULL AND ack_expires_at <= ?",
        [now],
    )
    if dry_run:
        return [{"change": "updated", "alert": a} for a in expired]
    if not expired:
        return []
    # The history says the acknowledgement ran out, so the detail view explains why
    # an alert an instructor acknowledged is back.
    await conn.executemany(
        "UPDATE alerts SET ack_by = NULL, ack_at = NULL, ack_note = NULL,"
        " ack_expires_at = NULL, ack_history = ? WHERE id = ?",
        [
            (
                json.dumps(
                    [*alert["acknowledgements"], {"action": "expired", "by": "jacmon", "at": now}],
                    allow_nan=False,
                ),
                alert["id"],
            )
            for alert in expired
        ],
    )
    return await record_changes(conn, [(alert["id"], "updated") for alert in expired], now)


async def retire_resolved(
    conn: aiosqlite.Connection, *, before: float, dry_run: bool = False
) -> int:
    """Delete alerts resolved before ``before`` (epoch seconds), their change rows and
    their notification rows.

    Returns how many alerts are (or, with ``dry_run``, would be) deleted.
    """
    async with conn.execute(
        "SELECT count(*) FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (before,)
    ) as cursor:
        (count,) = await cursor.fetchone()
    if dry_run or not count:
        return count
    for table in ("alert_changes", "notifications"):
        # The outbox rows go with their alert: they name its changes (delivered or given
        # up on long before retention ends), and the outbox must not grow for ever.
        await conn.execute(
            f"DELETE FROM {table} WHERE alert_id IN"
            " (SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < ?)",
            (before,),
        )
    await conn.execute("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < ?", (before,))
    return count
