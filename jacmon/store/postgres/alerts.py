"""Alert persistence in PostgreSQL: the alerts table, its change log, the lifecycle writes.

The meaning is the SQLite store's (:mod:`jacmon.store.sqlite.alerts`). What differs:

* ``alert_changes.seq`` comes from the ``alert_changes`` counter row
  (:mod:`jacmon.store.postgres.sequence`), taken in the writing transaction, so
  the feed every node tails by ``seq > last`` never sees a hole or a late
  lower number, whichever node (or command) writes;
* an acknowledgement locks its alert row (``FOR UPDATE``) before it reads the
  history it appends to: two nodes acknowledging at once both land in it; writers
  of several alerts lock their rows in id order, and every writer takes the
  ``alert_changes`` counter last, so two writers never wait on each other in a circle;
* the silence an alert is under is read with a join and built in Python (the
  same JSON as SQLite's ``json_object``, with ``until`` a float).
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import asyncpg

from jacmon.analytics.alert_rules import PlannedChange
from jacmon.store.postgres import sequence
from jacmon.store.postgres.database import PgDatabase
from jacmon.store.postgres.queries import since_query
from jacmon.store.records import alert_change, finite, load_json
from jacmon.store.types import ALERT_STATES, AlertError

Conn = asyncpg.Connection | asyncpg.Pool

_SELECT = (
    "SELECT a.id, a.fingerprint, a.rule, a.severity, a.state, a.learner, a.path, a.message,"
    " a.numbers, a.first_seen, a.last_seen, a.resolved_at, a.ack_by, a.ack_at, a.ack_note,"
    " a.ack_expires_at, a.ack_history, s.id, s.ends_at, s.created_by, s.note"
    " FROM alerts a LEFT JOIN silences s ON s.id = a.silence_id"
)

log = logging.getLogger("jacmon.alerts")


def alert_from_row(row: asyncpg.Record | tuple) -> dict[str, Any]:
    """An alert row (in :data:`_SELECT` order) as the JSON-able dict the streams send."""
    (
        alert_id, print_, rule, severity, state, learner, path, message, numbers, first_seen,
        last_seen, resolved_at, ack_by, ack_at, ack_note, ack_expires_at, ack_history,
        silence_id, silence_until, silence_by, silence_note,
    ) = tuple(row)  # fmt: skip
    acknowledged = None
    if ack_at is not None:
        acknowledged = finite(
            {"by": ack_by, "at": ack_at, "note": ack_note, "expires_at": ack_expires_at}
        )
    silenced = None
    if silence_id is not None:
        silenced = finite(
            {"id": silence_id, "until": silence_until, "by": silence_by, "note": silence_note}
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
        "silenced": silenced,
    }


async def _select(conn: Conn, where: str, *params: Any) -> list[dict[str, Any]]:
    return [alert_from_row(row) for row in await conn.fetch(f"{_SELECT} {where}", *params)]


async def get_alert(conn: Conn, alert_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    """The alert ``alert_id``; ``lock`` holds its row for the caller's transaction."""
    rows = await _select(conn, "WHERE a.id = $1" + (" FOR UPDATE OF a" if lock else ""), alert_id)
    return rows[0] if rows else None


async def open_alerts(conn: Conn, *, learner: str | None = None) -> list[dict[str, Any]]:
    """Firing alerts, oldest first; ``learner`` scopes them."""
    return await list_alerts(conn, state="firing", learner=learner)


async def list_alerts(
    conn: Conn, *, state: str = "firing", learner: str | None = None
) -> list[dict[str, Any]]:
    """Alerts in ``state`` (``firing``, ``resolved`` or ``all``), oldest first."""
    clauses: list[str] = []
    params: list[Any] = []
    if state != "all":
        if state not in ALERT_STATES:
            raise AlertError(
                f"alert state {state!r} is not known. Expected firing, resolved or all."
            )
        params.append(state)
        clauses.append(f"a.state = ${len(params)}")
    if learner is not None:
        params.append(learner)
        clauses.append(f"a.learner = ${len(params)}")
    where = ("WHERE " + " AND ".join(clauses)) if clauses else ""
    return await _select(conn, f"{where} ORDER BY a.id", *params)


async def open_alerts_of_rules(conn: Conn, rules: frozenset[str]) -> list[dict[str, Any]]:
    """Firing alerts of ``rules`` (what a task reconciles against)."""
    return await _select(
        conn, "WHERE a.state = 'firing' AND a.rule = ANY($1::text[]) ORDER BY a.id", sorted(rules)
    )


async def alert_changes_since(
    conn: Conn, seq: int, *, learner: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Changes with a sequence number above ``seq``, in order: ``{"seq", "change", "alert"}``."""
    sql, params = since_query(
        "SELECT seq, change, body FROM alert_changes", seq, learner=learner, limit=limit
    )
    changes = []
    for s, change, body in await conn.fetch(sql, *params):
        alert = load_json(body, None)
        if isinstance(alert, dict):
            changes.append(alert_change(s, change, alert))
        else:
            log.warning("skipping alert change %d: its stored alert is not readable", s)
    return changes


async def alert_totals(conn: Conn) -> tuple[int, dict[str, int]]:
    """(alerts ever fired, firing alerts per rule)."""
    fired = await conn.fetchval("SELECT count(*) FROM alert_changes WHERE change = 'fired'")
    rows = await conn.fetch(
        "SELECT rule, count(*) FROM alerts WHERE state = 'firing' GROUP BY rule"
    )
    return fired, {rule: n for rule, n in rows}


async def last_alert_change_seq(conn: Conn) -> int:
    """The newest change's sequence number (0 if there is none)."""
    return await conn.fetchval("SELECT coalesce(max(seq), 0) FROM alert_changes")


#: The active silence matching the alert row ``alerts`` (the newest-ending one) at $1.
ACTIVE_SILENCE_OF_ALERT = """
    SELECT s.id FROM silences s
    WHERE s.expired_at IS NULL AND s.starts_at <= $1 AND s.ends_at > $1
      AND (s.rule IS NULL OR s.rule = alerts.rule)
      AND (s.learner IS NULL OR s.learner = alerts.learner)
      AND (s.path IS NULL OR s.path = alerts.path)
    ORDER BY s.ends_at DESC LIMIT 1
"""


async def silence_new_alerts(conn: asyncpg.Connection, alert_ids: list[int]) -> None:
    """Put newly fired alerts under the active silence that matches them, if any (on the
    wall clock: silences are set by people, in their time)."""
    await conn.execute(
        f"UPDATE alerts SET silence_id = ({ACTIVE_SILENCE_OF_ALERT}) WHERE id = ANY($2::bigint[])",
        time.time(),
        alert_ids,
    )


async def record_changes(
    conn: asyncpg.Connection, items: list[tuple[int, str]], ts: float
) -> list[dict[str, Any]]:
    """Log each (alert id, change) with the alert as it now is, in order; the changes.

    The seqs are taken from the ``alert_changes`` counter in this transaction: the
    counter stays locked until it commits, so changes become visible in seq order.
    """
    fired = [alert_id for alert_id, change in items if change == "fired"]
    if fired:
        await silence_new_alerts(conn, fired)
    ids = sorted({alert_id for alert_id, _ in items})
    current = {
        alert["id"]: alert for alert in await _select(conn, "WHERE a.id = ANY($1::bigint[])", ids)
    }
    missing = [alert_id for alert_id in ids if alert_id not in current]
    if missing:
        raise AlertError(f"alert(s) {missing} vanished while their change was being recorded")
    seqs = await sequence.allocate(conn, len(items), sequence.ALERT_CHANGES)
    rows = []
    logged = []
    for seq, (alert_id, change) in zip(seqs, items, strict=True):
        alert = current[alert_id]
        body = json.dumps(alert, separators=(",", ":"))
        rows.append((seq, alert_id, change, float(ts), alert["learner"], body))
        logged.append(alert_change(seq, change, alert))
    await conn.executemany(
        "INSERT INTO alert_changes (seq, alert_id, change, ts, learner, body)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        rows,
    )
    return logged


async def apply_alert_changes(
    conn: asyncpg.Connection, changes: list[PlannedChange], *, now: float
) -> list[dict[str, Any]]:
    """Write ``changes`` inside the caller's transaction; the logged change dicts, in the
    order of ``changes`` (touches left out). See the SQLite store's for the rules."""
    now = float(now)
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
            fired.append((c.fingerprint, c.rule, c.severity, c.learner, c.path, c.message, numbers))
        else:
            raise AlertError(f"unknown alert change {change.action!r}")
    existing = sorted({c.alert["id"] for c in changes if c.action != "fire" and c.alert})
    if existing:
        # Lock the rows in id order first, as every other writer of several alerts does
        # (silences, expiry): updating them in the plan's order could deadlock with one.
        await conn.execute(
            "SELECT id FROM alerts WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", existing
        )
    if touched:
        await conn.executemany("UPDATE alerts SET last_seen = $1 WHERE id = $2", touched)
    if updated:
        await conn.executemany(
            "UPDATE alerts SET severity = $1, message = $2, numbers = $3, last_seen = $4"
            " WHERE id = $5",
            updated,
        )
    if resolved:
        # Before firing: a fingerprint may resolve and fire anew in one plan.
        await conn.executemany(
            "UPDATE alerts SET state = 'resolved', resolved_at = $1, numbers = $2 WHERE id = $3",
            resolved,
        )
    new_ids: dict[str, int] = {}
    if fired:
        columns = list(zip(*fired, strict=True))
        rows = await conn.fetch(
            "INSERT INTO alerts (fingerprint, rule, severity, state, learner, path, message,"
            " numbers, first_seen, last_seen)"
            " SELECT f, r, s, 'firing', l, p, m, n, $8, $8 FROM unnest($1::text[], $2::text[],"
            " $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])"
            " AS t(f, r, s, l, p, m, n) RETURNING fingerprint, id",
            *[list(column) for column in columns],
            now,
        )
        new_ids = {fp: alert_id for fp, alert_id in rows}
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
    conn: asyncpg.Connection, alert_id: int, learner: str | None, done: str
) -> dict[str, Any]:
    """The firing alert ``alert_id`` an action may change, its row locked; another
    learner's alert is answered exactly as a missing one."""
    alert = await get_alert(conn, alert_id, lock=True)
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
    db: PgDatabase,
    alert_id: int,
    *,
    by: str,
    note: str | None = None,
    expires_at: float | None = None,
    now: float | None = None,
    learner: str | None = None,
) -> dict[str, Any]:
    """Acknowledge a firing alert; the change dict (see the SQLite store's)."""
    if not by:
        raise AlertError("acknowledging needs a name: who acknowledges (--by NAME)")
    at = time.time() if now is None else float(now)
    if expires_at is not None and not (math.isfinite(expires_at) and expires_at > at):
        raise AlertError(
            f"acknowledgement expiry {expires_at!r} is not in the future. "
            "Expected a time after now (epoch seconds), or none."
        )
    async with db.transaction() as conn:
        alert = await _firing_in_scope(conn, alert_id, learner, "acknowledged")
        entry = {"action": "acknowledged", "by": by, "at": at, "note": note,
                 "expires_at": expires_at}  # fmt: skip
        history = json.dumps([*alert["acknowledgements"], entry], allow_nan=False)
        await conn.execute(
            "UPDATE alerts SET ack_by = $1, ack_at = $2, ack_note = $3, ack_expires_at = $4,"
            " ack_history = $5 WHERE id = $6",
            by,
            at,
            note,
            None if expires_at is None else float(expires_at),
            history,
            alert_id,
        )
        (logged,) = await record_changes(conn, [(alert_id, "acknowledged")], at)
        return logged


async def unacknowledge_alert(
    db: PgDatabase,
    alert_id: int,
    *,
    by: str,
    note: str | None = None,
    now: float | None = None,
    learner: str | None = None,
) -> dict[str, Any]:
    """Withdraw the current acknowledgement of a firing alert; the change dict."""
    if not by:
        raise AlertError("un-acknowledging needs a name: who acts (--by NAME)")
    at = time.time() if now is None else float(now)
    async with db.transaction() as conn:
        alert = await _firing_in_scope(conn, alert_id, learner, "un-acknowledged")
        if alert["acknowledged"] is None:
            raise AlertError(f"alert {alert_id} is not acknowledged; there is nothing to undo.")
        entry = {"action": "unacknowledged", "by": by, "at": at, "note": note}
        history = json.dumps([*alert["acknowledgements"], entry], allow_nan=False)
        await conn.execute(
            "UPDATE alerts SET ack_by = NULL, ack_at = NULL, ack_note = NULL,"
            " ack_expires_at = NULL, ack_history = $1 WHERE id = $2",
            history,
            alert_id,
        )
        (logged,) = await record_changes(conn, [(alert_id, "unacknowledged")], at)
        return logged


async def expire_acknowledgements(
    conn: asyncpg.Connection, *, now: float, dry_run: bool = False
) -> list[dict[str, Any]]:
    """Clear acknowledgements whose expiry has passed (inside the caller's transaction);
    with ``dry_run`` the alerts that would change, as ``{"change", "alert"}`` dicts."""
    now = float(now)
    lock = "" if dry_run else " FOR UPDATE OF a"
    expired = await _select(
        conn,
        "WHERE a.state = 'firing' AND a.ack_expires_at IS NOT NULL AND a.ack_expires_at <= $1"
        " ORDER BY a.id" + lock,
        now,
    )
    if dry_run:
        return [{"change": "updated", "alert": a} for a in expired]
    if not expired:
        return []
    await conn.executemany(
        "UPDATE alerts SET ack_by = NULL, ack_at = NULL, ack_note = NULL,"
        " ack_expires_at = NULL, ack_history = $1 WHERE id = $2",
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


async def retire_resolved(conn: asyncpg.Connection, *, before: float, dry_run: bool = False) -> int:
    """Delete alerts resolved before ``before`` (epoch seconds), their change rows and
    their notification rows; how many alerts are (or would be) deleted."""
    before = float(before)
    count = await conn.fetchval(
        "SELECT count(*) FROM alerts WHERE state = 'resolved' AND resolved_at < $1", before
    )
    if dry_run or not count:
        return count
    for table in ("alert_changes", "notifications"):
        await conn.execute(
            f"DELETE FROM {table} WHERE alert_id IN"
            " (SELECT id FROM alerts WHERE state = 'resolved' AND resolved_at < $1)",
            before,
        )
    await conn.execute("DELETE FROM alerts WHERE state = 'resolved' AND resolved_at < $1", before)
    return count
