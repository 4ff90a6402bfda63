"""Statements/s through jacmon's xAPI endpoint vs Ralph's own POST /xAPI/statements.

    .venv/bin/python bench/bench_push.py [--statements 20000] [--runs 3]

One mixed-verb set of statements (tests/lrs_fixtures.mixed_statement: the ten
kinds the mapping knows, every one with a timestamp), encoded once. Each run
sends the same bytes to:

- Ralph 5.1 (its file-system backend, from .ci/setup-ralph.sh, as in the LRS
  tests): the whole set as one POST into a fresh data directory;
- jacmon, a fresh SQLite database each: the same single POST (also with CPython's
  default garbage-collector thresholds instead of jacmon serve's, see
  jacmon/server/gc_tuning.py), then the set in POSTs of 1,000 and of 100
  statements, one after another on one keep-alive connection.

Both servers run on core 0 (``taskset``), the client on core 1, HTTP Basic auth
on both (Ralph's user; a jacmon ingest token's id and secret). jacmon's time
runs from the first byte sent until the projector has folded every event into
progress (``jacmon_projection_lag_events`` 0 in /metrics), so validation,
mapping, storing the event and the raw statement, and progress are all in it;
Ralph's until its 200. Loopback only; bounded by --statements and --runs.
Below 20,000 statements the projector's gathering window (it waits up to 0.4 s
for 20,000 events, server/projector.py) dominates jacmon's time with progress.

``--parts`` says where jacmon's time goes: the same statements through each stage
in this process (no HTTP), one after another, timed on their own: decoding the
body, the xAPI checks with id, digest and the JSON kept, the mapping to events,
storing events and statements in one transaction into a fresh SQLite file, and
folding them into progress. In microseconds per statement, so they add up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from common import LOAD_CPU, SERVER_CPU, machine_facts, pin_to_cpu, server_process, write_json
from lrs_fixtures import PASSWORD, USER, RalphLrs, mixed_statement, require_ralph
from support import make_token

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results-server"
#: Seconds to wait for one request, and for the projector to catch up.
REQUEST_TIMEOUT_S = 600.0
CATCH_UP_TIMEOUT_S = 600.0
LAG = re.compile(r"^jacmon_projection_lag_events(?:\{[^}]*\})? (\d+)$", re.M)


def make_statements(count: int) -> list[dict[str, Any]]:
    """``count`` mixed statements, timestamped a second apart from 2026-01-05."""
    start = 1767571200  # 2026-01-05T00:00:00Z
    return [
        mixed_statement(i, timestamp=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + i)))[0]
        for i in range(count)
    ]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def post_all(port: int, bodies: list[bytes], authorization: str) -> None:
    """POST each body to /xAPI/statements on one keep-alive connection; each must be 200."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    try:
        for body in bodies:
            conn.request(
                "POST",
                "/xAPI/statements",
                body=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Experience-API-Version": "1.0.3",
                    "Authorization": authorization,
                },
            )
            response = conn.getresponse()
            answer = response.read()
            if response.status != 200:
                raise RuntimeError(f"POST answered {response.status}: {answer[:300]!r}")
    finally:
        conn.close()


def projection_lag(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    found = LAG.search(text)
    if found is None:
        raise RuntimeError("no jacmon_projection_lag_events in /metrics")
    return int(found.group(1))


def ralph_run(workdir: Path, body: bytes) -> float:
    """Seconds for Ralph to take ``body`` as one POST into a fresh directory."""
    lrs = RalphLrs(workdir)
    lrs.start()
    try:
        assert lrs.process is not None
        os.sched_setaffinity(lrs.process.pid, {SERVER_CPU % (os.cpu_count() or 1)})
        started = time.perf_counter()
        post_all(lrs.port, [body], basic(USER, PASSWORD))
        return time.perf_counter() - started
    finally:
        lrs.stop()


def jacmon_run(db: Path, bodies: list[bytes], *, default_gc: bool) -> tuple[float, float]:
    """Seconds for jacmon to acknowledge ``bodies`` (sent in order), and to have folded
    them all into progress too."""
    token = asyncio.run(make_token(db, role="ingest", name="bench"))
    _, token_id, secret = token.split("_", 2)
    with server_process(db, cpu=SERVER_CPU, default_gc=default_gc) as server:
        started = time.perf_counter()
        post_all(server.port, bodies, basic(token_id, secret))
        acked = time.perf_counter() - started
        deadline = time.monotonic() + CATCH_UP_TIMEOUT_S
        while projection_lag(server.port):
            if time.monotonic() > deadline:
                raise TimeoutError("the projector did not catch up")
            time.sleep(0.005)
        return acked, time.perf_counter() - started


def measure_parts(statements: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage for ``statements`` as one request, in this process."""
    import msgspec

    from jacmon.sources.xapi import statement_to_event
    from jacmon.sources.xapi_statements import prepare_statements
    from jacmon.store import ReceivedRecord, Store

    body = json.dumps(statements).encode()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    decoded = msgspec.json.decode(body)
    seconds["decode (msgspec)"] = time.perf_counter() - started
    started = time.perf_counter()
    prepared = prepare_statements(decoded, stored=time.time())
    seconds["xAPI checks, id, digest, JSON kept"] = time.perf_counter() - started
    started = time.perf_counter()
    events = [statement_to_event(statement.for_mapping) for statement in prepared]
    seconds["mapping to events (and the event contract)"] = time.perf_counter() - started
    records = [ReceivedRecord("xapi", s.id, s.raw, s.digest, s.id, None, "bench") for s in prepared]

    async def store_and_project() -> None:
        with tempfile.TemporaryDirectory(prefix="jacmon-bench-push-parts-") as tmp:
            store = await Store.open(Path(tmp) / "jacmon.db")
            try:
                started = time.perf_counter()
                await store.ingest(events, records=records)
                seconds["store events + statements (one transaction)"] = (
                    time.perf_counter() - started
                )
                started = time.perf_counter()
                await store.catch_up()
                seconds["fold into progress"] = time.perf_counter() - started
            finally:
                await store.close()

    asyncio.run(store_and_project())
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statements", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "push.json")
    parser.add_argument("--parts", action="store_true", help="where jacmon's time goes")
    args = parser.parse_args()
    statements = make_statements(args.statements)
    if args.parts:
        from jacmon.server.gc_tuning import tune_for_serving

        pin_to_cpu(SERVER_CPU)
        tune_for_serving()  # as jacmon serve runs
        runs = [measure_parts(statements) for _ in range(args.runs)]
        total = 0.0
        print(f"{len(statements):,} statements, median of {args.runs}, in-process:")
        for stage in runs[0]:
            took = statistics.median(run[stage] for run in runs)
            total += took
            print(f"  {stage:46s} {took * 1e6 / len(statements):6.1f} us/statement")
        print(f"  {'total':46s} {total * 1e6 / len(statements):6.1f} us/statement")
        return
    require_ralph()
    pin_to_cpu(LOAD_CPU)

    def chunked(size: int) -> list[bytes]:
        return [
            json.dumps(statements[i : i + size]).encode() for i in range(0, len(statements), size)
        ]

    cases = {
        "ralph, one request": None,
        "jacmon, one request": chunked(len(statements)),
        "jacmon, one request, default GC": chunked(len(statements)),
        "jacmon, batches of 1000": chunked(1000),
        "jacmon, batches of 100": chunked(100),
    }
    whole = cases["jacmon, one request"][0]
    seconds: dict[str, list[float]] = {name: [] for name in cases}
    acked_seconds: dict[str, list[float]] = {name: [] for name in cases}
    for run in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="jacmon-bench-push-") as tmp:
            for name, bodies in cases.items():
                where = Path(tmp) / name.replace(" ", "-").replace(",", "")
                where.mkdir()
                if bodies is None:
                    took = acked = ralph_run(where, whole)
                else:
                    acked, took = jacmon_run(
                        where / "jacmon.db", bodies, default_gc=name.endswith("default GC")
                    )
                seconds[name].append(took)
                acked_seconds[name].append(acked)
                print(
                    f"run {run + 1}: {name}: acknowledged in {acked:.2f} s, "
                    f"with progress {took:.2f} s: {len(statements) / took:,.0f} st/s",
                    flush=True,
                )
    ralph = statistics.median(seconds["ralph, one request"])
    results = {}
    print(f"\n{len(statements):,} statements, {len(whole) / 2**20:.1f} MiB, median of {args.runs}")
    for name, runs in seconds.items():
        took = statistics.median(runs)
        results[name] = {
            "seconds": runs,
            "acknowledged_s": acked_seconds[name],
            "median_s": took,
            "statements_per_s": len(statements) / took,
            "vs_ralph": ralph / took,
        }
        print(
            f"  {name:32s} {took:7.2f} s  {len(statements) / took:9,.0f} st/s"
            f"  {ralph / took:5.1f}x Ralph"
        )
    write_json(
        args.out,
        {
            "command": " ".join(sys.argv),
            "statements": len(statements),
            "body_bytes": len(whole),
            "results": results,
            "machine": machine_facts(),
        },
    )


if __name__ == "__main__":
    main()
