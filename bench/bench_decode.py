"""Where ingest's per-event Python time goes before SQL: decode, validate, re-encode; and
what msgspec would save on each, side by side in one run (issue 15).

    /work/main/.venv/bin/python -m pip install msgspec   # not a jacmon dependency (yet)
    /work/main/.venv/bin/python bench/bench_decode.py [--events 100000] [--batch 1000] [--runs 5]

Each step runs over the same pre-encoded frames (``--batch`` events each, the mix
of bench/common.py:make_event) on one pinned core; reported in microseconds per
event, the median of ``--runs``:

* ``json.loads`` of the frames (today) vs ``msgspec.json.decode`` untyped;
* ``validate_event`` per decoded dict (today: builds the Event, every check with
  its precise message) vs ``msgspec`` typed decoding into a Struct of the same
  fields and types (checks types only: no ranges, times or cross-field rules);
* re-encoding the stored body, ``json.dumps(event.as_dict())`` (today) vs
  ``msgspec.json.encode`` of the same dict.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import LOAD_CPU, machine_facts, make_event, median, pin_to_cpu, write_json

from jacmon.events import validate_event
from jacmon.plain_events import _PlainEvent as EventStruct  # the server's typed struct

try:
    import msgspec
except ImportError:  # pragma: no cover - a hint, not a fallback
    raise SystemExit(
        "bench_decode needs msgspec: .venv/bin/python -m pip install msgspec"
    ) from None

RESULTS = Path(__file__).resolve().parent / "results-server"


def per_event_us(step: Callable[[], Any], events: int) -> float:
    started = time.perf_counter()
    step()
    return (time.perf_counter() - started) / events * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--out", type=Path, default=RESULTS / "decode.json")
    args = parser.parse_args()
    pin_to_cpu(LOAD_CPU)
    events = [make_event(n) for n in range(args.events)]
    frames = [
        json.dumps(events[i : i + args.batch], separators=(",", ":")).encode()
        for i in range(0, len(events), args.batch)
    ]
    decoded = [json.loads(frame) for frame in frames]
    validated = [validate_event(body) for batch in decoded for body in batch]
    bodies = [event.as_dict() for event in validated]
    typed = msgspec.json.Decoder(list[EventStruct])
    steps: dict[str, Callable[[], Any]] = {
        "decode: json.loads": lambda: [json.loads(f) for f in frames],
        "decode: msgspec untyped": lambda: [msgspec.json.decode(f) for f in frames],
        "validate: validate_event": lambda: [validate_event(b) for d in decoded for b in d],
        "decode+types: msgspec Struct": lambda: [typed.decode(f) for f in frames],
        "encode: json.dumps(as_dict)": lambda: [
            json.dumps(b, separators=(",", ":")) for b in bodies
        ],
        "encode: msgspec.json.encode": lambda: [msgspec.json.encode(b) for b in bodies],
        "as_dict (today, before encoding)": lambda: [e.as_dict() for e in validated],
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.runs):
        for name, step in steps.items():
            samples[name].append(per_event_us(step, args.events))
    result = {name: median(values) for name, values in samples.items()}
    print(f"{args.events:,} events in frames of {args.batch:,}; median of {args.runs} runs")
    print("| step | us/event |")
    print("|---|---|")
    for name, value in result.items():
        print(f"| {name} | {value:.2f} |")
    write_json(
        args.out,
        {"machine": machine_facts(), "args": vars(args) | {"out": str(args.out)}, "us": result},
    )


if __name__ == "__main__":
    main()
