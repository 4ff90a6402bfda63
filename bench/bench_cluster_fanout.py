"""Fan-out with 1 and 3 nodes on PostgreSQL and Redis: deliveries/s, p99, completeness, and
what the bus costs each node per event.

    /work/main/.venv/bin/python bench/bench_cluster_fanout.py [--clients 1000] [--rate 1000]
        [--seconds 20] [--runs 1] [--raw-clients]

Starts a throwaway PostgreSQL and Redis (Debian's, as the cluster tests do). For each
setup a fresh database; the nodes are ``bench/serve.py`` processes pinned to core 0
(``--store``, ``--bus``); the clients (spread over the nodes, one client process per
node or more) and the producer (ingesting into node 1) run on core 1. Setups:

* ``1 node, no bus``: PostgreSQL store, in-process bus (the baseline);
* ``1 node, redis``: the same with the Redis bus (what publishing costs);
* ``3 nodes, redis``: clients spread evenly, ingest into node 1.

The bus's cost per event is the extra server CPU per event of ``1 node, redis`` over
``1 node, no bus`` (publishing), and the CPU per event of a node that only receives
and fans out to its clients in the 3-node run. All nodes share core 0 here (2 cores):
this measures cost and correctness, not scaling.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent / "tests" / "cluster"))

from bench_fanout import add_load_args, report, run_fanout  # noqa: E402
from cluster_services import running_postgres, running_redis  # noqa: E402
from common import LOAD_CPU, machine_facts, median, pin_to_cpu, server_process, write_json  # noqa: E402

RESULTS = BENCH / "results-server"


def run_setup(workdir: Path, pg, redis_url: str | None, nodes: int, args, tag: str) -> dict:
    dsn = pg.create_database(tag)
    settings = {"store": dsn, "metrics_interval_s": 3600}
    if redis_url:
        settings["bus"] = redis_url
    with contextlib.ExitStack() as stack:
        servers = [
            stack.enter_context(server_process(workdir / f"{tag}-{i}.db", node=f"n{i}", **settings))
            for i in range(1, nodes + 1)
        ]
        before = [s.cpu_seconds() for s in servers]
        result = run_fanout(
            servers[0].url,
            args,
            tag,
            lambda: sum(s.cpu_seconds() for s in servers),
            client_bases=[s.url for s in servers],
        )
        spent = [s.cpu_seconds() - b for s, b in zip(servers, before, strict=True)]
    events = result["produced"]["events"]
    result["node_cpu_us_per_event"] = [cpu / events * 1e6 for cpu in spent]
    result["nodes"] = nodes
    result["bus"] = "redis" if redis_url else "local"
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_args(parser)
    parser.set_defaults(rate=1000, runs=1, procs=3)
    parser.add_argument("--out", type=Path, default=RESULTS / "cluster-fanout.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    setups = [("1 node, no bus", 1, False), ("1 node, redis", 1, True), ("3 nodes, redis", 3, True)]
    results: dict = {"machine": machine_facts(), "args": vars(args) | {"out": str(args.out)}}
    with (
        tempfile.TemporaryDirectory(prefix="jacmon-bench-cluster-") as tmp,
        running_postgres() as pg,
        running_redis() as redis,
    ):
        for run in range(args.runs):
            for name, nodes, bus in setups:
                tag = f"r{run}{name.replace(' ', '').replace(',', '')}"
                result = run_setup(Path(tmp), pg, redis.url if bus else None, nodes, args, tag)
                results.setdefault(name, []).append(result)
                cost = ", ".join(f"{c:.0f}" for c in result["node_cpu_us_per_event"])
                print(f"{name} run {run}: {report(result)}; node CPU us/event [{cost}]", flush=True)
    print("\n| setup | delivered (in order) | deliveries/s | p99 ms | server CPU "
          "| CPU per event per node (us) |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, *_ in setups:
        runs = results[name]
        per_node = [median([r["node_cpu_us_per_event"][i] for r in runs])
                    for i in range(runs[0]["nodes"])]  # fmt: skip
        print(
            f"| {name} | {all(r['all_delivered'] for r in runs)} | "
            f"{median([r['deliveries_per_s'] for r in runs]):,.0f} | "
            f"{median([r['event_latency_ms']['p99'] for r in runs]):.1f} | "
            f"{median([r['server_cpu_share'] for r in runs]):.0%} | "
            f"{', '.join(f'{c:.0f}' for c in per_node)} |"
        )
    write_json(args.out, {k: v for k, v in results.items()})
    print(json.dumps({"out": str(args.out)}))


if __name__ == "__main__":
    main()
