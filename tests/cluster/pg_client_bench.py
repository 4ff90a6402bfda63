"""Measure asyncpg and psycopg 3 writing jacmon-like event rows (docs/cluster-notes.md).

Not a test: run it by hand on a quiet machine, from the repository root::

    .venv/bin/python -m pip install 'psycopg[binary]'   # only for the comparison
    .venv/bin/python tests/cluster/pg_client_bench.py [--rows 20000] [--repeat 5]

It starts a throwaway PostgreSQL (cluster_services.PostgresServer: loopback TCP,
fsync off, so the numbers are the client and the server's CPU, not the disk), makes
an ``events`` table shaped like jacmon's, and times each way of writing ``--rows``
rows in one transaction: ``executemany`` of a one-row INSERT, one INSERT of
``unnest()`` arrays (what a batch with ON CONFLICT needs), and COPY. It prints the
median and best of ``--repeat`` runs per way, in milliseconds and rows per second.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg

try:
    import psycopg
except ImportError:
    sys.exit(
        "psycopg 3 is not a jacmon dependency; for the comparison: pip install psycopg[binary]"
    )

sys.path.insert(0, str(Path(__file__).parent))
from cluster_services import running_postgres

COLUMNS = (
    "seq", "id", "type", "ts", "received", "learner", "path", "module", "item", "score",
    "success", "progress", "duration_s", "attempt", "session", "body",
)  # fmt: skip

TABLE = """
CREATE TABLE events (
    seq BIGINT PRIMARY KEY, id TEXT NOT NULL UNIQUE, type TEXT NOT NULL,
    ts DOUBLE PRECISION NOT NULL, received DOUBLE PRECISION NOT NULL, learner TEXT NOT NULL,
    path TEXT, module TEXT, item TEXT, score DOUBLE PRECISION, success INTEGER,
    progress DOUBLE PRECISION, duration_s DOUBLE PRECISION, attempt INTEGER, session TEXT,
    body TEXT NOT NULL
);
CREATE INDEX events_learner_ts ON events (learner, ts);
CREATE INDEX events_ts ON events (ts);
"""

NAMES = ", ".join(COLUMNS)
INSERT_PG = f"INSERT INTO events ({NAMES}) VALUES ({', '.join(f'${i}' for i in range(1, 17))})"
INSERT_PS = f"INSERT INTO events ({NAMES}) VALUES ({', '.join(['%s'] * 16)})"
TYPES = (
    "bigint", "text", "text", "float8", "float8", "text", "text", "text", "text", "float8",
    "int4", "float8", "float8", "int4", "text", "text",
)  # fmt: skip
UNNEST = (
    f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT * FROM unnest("
    + ", ".join(f"${i}::{t}[]" for i, t in enumerate(TYPES, 1))
    + ") ON CONFLICT (id) DO NOTHING"
)


def make_rows(count: int) -> list[tuple]:
    rows = []
    for n in range(1, count + 1):
        event = {
            "id": f"e-{n}",
            "type": "module.progressed",
            "ts": "2026-01-05T10:00:00Z",
            "learner": f"u{n % 500}",
            "path": "python-101",
            "module": f"m{n % 12}",
            "progress": n % 101,
        }
        body = json.dumps(event, separators=(",", ":"))
        rows.append(
            (n, event["id"], event["type"], 1767607200.0 + n, 1767607300.0 + n,
             event["learner"], "python-101", event["module"], None, None, None,
             float(n % 101), 12.5, None, f"s{n % 97}", body)
        )  # fmt: skip
    return rows


async def asyncpg_ways(dsn: str, rows: list[tuple]) -> dict[str, Callable[[], Awaitable[None]]]:
    conn = await asyncpg.connect(dsn)
    columns = list(zip(*rows, strict=True))

    async def executemany() -> None:
        async with conn.transaction():
            await conn.executemany(INSERT_PG, rows)

    async def unnest() -> None:
        async with conn.transaction():
            await conn.execute(UNNEST, *columns)

    async def copy() -> None:
        async with conn.transaction():
            await conn.copy_records_to_table("events", records=rows, columns=COLUMNS)

    async def truncate() -> None:
        await conn.execute("TRUNCATE events")

    return {
        "asyncpg executemany": executemany,
        "asyncpg INSERT ... unnest": unnest,
        "asyncpg COPY (copy_records_to_table)": copy,
        "_truncate": truncate,
        "_close": conn.close,
    }


async def psycopg_ways(dsn: str, rows: list[tuple]) -> dict[str, Callable[[], Awaitable[None]]]:
    conn = await psycopg.AsyncConnection.connect(dsn)
    columns = [list(column) for column in zip(*rows, strict=True)]
    unnest_sql = (
        f"INSERT INTO events ({', '.join(COLUMNS)}) SELECT * FROM unnest("
        + ", ".join(f"%s::{t}[]" for t in TYPES)
        + ") ON CONFLICT (id) DO NOTHING"
    )

    async def executemany() -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(INSERT_PS, rows)

    async def unnest() -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(unnest_sql, columns)

    async def executemany_binary() -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.executemany(INSERT_PS.replace("%s", "%b"), rows)

    async def unnest_binary() -> None:
        async with conn.transaction(), conn.cursor() as cur:
            await cur.execute(unnest_sql.replace("%s", "%b"), columns)

    async def copy() -> None:
        async with conn.transaction(), conn.cursor() as cur:
            async with cur.copy(f"COPY events ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for row in rows:
                    await copy.write_row(row)

    async def truncate() -> None:
        await conn.execute("TRUNCATE events")
        await conn.commit()

    return {
        "psycopg executemany (pipeline)": executemany,
        "psycopg INSERT ... unnest": unnest,
        "psycopg executemany, binary params (%b)": executemany_binary,
        "psycopg INSERT ... unnest, binary params": unnest_binary,
        "psycopg COPY (write_row)": copy,
        "_truncate": truncate,
        "_close": conn.close,
    }


async def measure(dsn: str, count: int, repeat: int) -> None:
    rows = make_rows(count)
    setup = await asyncpg.connect(dsn)
    await setup.execute(TABLE)
    await setup.close()
    print(f"{count} rows, one transaction each, median and best of {repeat}")
    print(f"asyncpg {asyncpg.__version__}, psycopg {psycopg.__version__} "
          f"(libpq {psycopg.pq.version() // 10000}.{psycopg.pq.version() % 100})")  # fmt: skip
    for make in (asyncpg_ways, psycopg_ways):
        ways = await make(dsn, rows)
        for name, way in ways.items():
            if name.startswith("_"):
                continue
            times = []
            for _ in range(repeat):
                await ways["_truncate"]()
                start = time.perf_counter()
                await way()
                times.append(time.perf_counter() - start)
            median, best = statistics.median(times), min(times)
            print(f"  {name:44} median {median * 1000:7.1f} ms  best {best * 1000:7.1f} ms"
                  f"  ({count / median:9,.0f} rows/s)")  # fmt: skip
        await ways["_truncate"]()
        await ways["_close"]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with running_postgres() as server:
        server.create_database("bench")
        asyncio.run(measure(server.dsn("bench"), args.rows, args.repeat))


if __name__ == "__main__":
    main()
