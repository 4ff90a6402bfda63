"""The plain-events fast path with and without the stored body made from the struct.

    /work/main/.venv/bin/python bench/bench_plain_events.py   (pin it: taskset -c 0)

Per event, in one process, alternated five times: decode a frame of 1,000 plain
events with ``jacmon.plain_events.decode_plain_events`` and make each stored body
with ``event_body``: from the struct in the same pass (kept) vs from
``Event.as_dict`` on the store's writer (before).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import make_event

import jacmon.plain_events as plain
from jacmon.store.encoding import event_body

EVENTS = 100_000


class _NoBody:
    """What the encoder gives in the "before" runs: no text, so event_body encodes."""

    def decode(self) -> None:
        return None


def per_event_us(frames: list[bytes], *, with_body: bool, encode) -> float:
    plain._ENCODE = encode if with_body else (lambda item: _NoBody())
    started = time.perf_counter()
    for frame in frames:
        for event in plain.decode_plain_events(frame) or ():
            event_body(event)
    return (time.perf_counter() - started) / EVENTS * 1e6


def main() -> None:
    frames = [
        json.dumps([make_event(n, learners=2000) for n in range(i, i + 1000)]).encode()
        for i in range(0, EVENTS, 1000)
    ]
    encode = plain._ENCODE
    for _ in range(5):
        kept = per_event_us(frames, with_body=True, encode=encode)
        before = per_event_us(frames, with_body=False, encode=encode)
        print(f"body from the struct {kept:.2f}  body from as_dict {before:.2f} us per event")


if __name__ == "__main__":
    main()
