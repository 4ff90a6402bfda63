"""The gap-free global sequences (events, alert changes) for writers on several nodes.

Clients resume a stream by sequence number ("everything after 41,237"), and the
server tails ``events`` and ``alert_changes`` by ``seq > last``. That is only
correct if every number is used (no holes: a client must not wait for a seq that
will never exist) and if numbers become visible in order (a reader that has seen
seq k+1 must never later find a committed k it skipped).

One row per sequence in ``seq_counters`` holds the last number handed out. A
writer allocates inside its batch's transaction::

    UPDATE seq_counters SET last_value = last_value + $n WHERE name = $1 RETURNING last_value

and uses ``last_value - n + 1 .. last_value``. The UPDATE takes the row's lock and
keeps it until the transaction ends, so:

- allocation is serialised: a second writer's UPDATE waits for the first's COMMIT
  or ROLLBACK, then (READ COMMITTED re-reads the updated row) continues from the
  number the first one left;
- a rollback undoes the increment with everything else, so the next writer reuses
  those numbers: no holes;
- numbers commit in order: whoever holds numbers below yours committed (or rolled
  back) before your UPDATE returned, so seq order is commit order and a reader's
  snapshot always holds a prefix 1..k.

A PostgreSQL SEQUENCE (``nextval``, an IDENTITY or BIGSERIAL) gives neither:
``nextval`` is never rolled back, so a failed batch leaves a hole, and it is not
tied to commit, so writer A can take 5, writer B take 6 and commit first; a reader
then sees 6 without 5, moves its mark to 6, and never delivers 5.

The price is that batches on all nodes commit one at a time from their UPDATE on:
allocate as late as possible in the transaction and commit right after. When the
batch must dedupe against stored rows before it knows how many numbers it needs,
:func:`lock` first (so no other writer can insert the same id meanwhile), check,
then :func:`allocate` on the row it already holds. Run in READ COMMITTED (the
default): under REPEATABLE READ or SERIALIZABLE the waiting writer fails with a
serialization error instead of continuing.
"""

from __future__ import annotations

import asyncpg

from jacmon.errors import StoreError

#: The sequences the schema has (rows of ``seq_counters``).
EVENTS = "events"
ALERT_CHANGES = "alert_changes"


def _require_transaction(conn: asyncpg.Connection) -> None:
    # Outside a transaction the row lock would end with the statement: the
    # guarantees above would silently not hold.
    if not conn.is_in_transaction():
        raise StoreError("sequence numbers are allocated inside the batch's transaction")


async def allocate(conn: asyncpg.Connection, count: int, name: str = EVENTS) -> range:
    """Take the next ``count`` (>= 1) numbers of sequence ``name`` in the open transaction.

    Returns them as a range (``range.start`` is the first). The sequence stays
    locked until the transaction commits or rolls back; a rollback gives the
    numbers back.
    """
    if count < 1:
        raise ValueError(f"count must be >= 1, not {count}")
    _require_transaction(conn)
    last = await conn.fetchval(
        "UPDATE seq_counters SET last_value = last_value + $2 WHERE name = $1 RETURNING last_value",
        name,
        count,
    )
    if last is None:
        raise StoreError(f"no sequence {name!r} in seq_counters; is the schema migrated?")
    return range(last - count + 1, last + 1)


async def lock(conn: asyncpg.Connection, name: str = EVENTS) -> int:
    """Lock sequence ``name`` for the open transaction without taking numbers; its last value.

    Other writers' :func:`allocate` and :func:`lock` wait until this transaction
    ends, so what it reads from here on (READ COMMITTED: each statement sees the
    latest commits) cannot change under it by another writer of this sequence.
    """
    _require_transaction(conn)
    last = await conn.fetchval(
        "SELECT last_value FROM seq_counters WHERE name = $1 FOR UPDATE", name
    )
    if last is None:
        raise StoreError(f"no sequence {name!r} in seq_counters; is the schema migrated?")
    return last


async def last_value(conn: asyncpg.Connection, name: str = EVENTS) -> int:
    """The last number of ``name`` committed (or taken by this connection's transaction).

    A high-water mark that survives retention deleting the rows themselves.
    """
    last = await conn.fetchval("SELECT last_value FROM seq_counters WHERE name = $1", name)
    if last is None:
        raise StoreError(f"no sequence {name!r} in seq_counters; is the schema migrated?")
    return last
