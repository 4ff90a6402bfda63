"""Building a resuming client's replay frames: splicing stored bodies vs decode + re-encode.

    /work/.venv/bin/python bench/bench_replay.py [--events 100000] [--runs 3]

A client that resumes with ``?since`` gets up to ``replay_window`` (100,000)
stored events as frames of 500, built on the event loop. jacmon splices each
stored JSON body with its seq (``server/streams.py:_activity_frames``); the
baseline is what it did before: ``json.loads`` every body, add ``seq``, and
encode the frames again with ``envelope()``. Same rows, same process, in
turn; both must carry the same events. Reported: milliseconds per full replay.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import make_event, median

from jacmon.events import validate_event
from jacmon.protocol import ServerType, Stream, envelope
from jacmon.server.streams import REPLAY_FRAME_EVENTS, _activity_frames


def decode_and_reencode(rows: list[tuple[int, str]]) -> list[bytes]:
    """The earlier replay: every stored body decoded, then the frames encoded again."""
    events = []
    for seq, body in rows:
        event = json.loads(body)
        event["seq"] = seq
        events.append(event)
    frames = []
    for start in range(0, len(events), REPLAY_FRAME_EVENTS):
        chunk = events[start : start + REPLAY_FRAME_EVENTS]
        frames.append(
            envelope(Stream.ACTIVITY, ServerType.EVENTS, chunk[-1]["seq"], {"events": chunk})
        )
    return frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = [
        (n + 1, json.dumps(validate_event(make_event(n)).as_dict(), separators=(",", ":")))
        for n in range(args.events)
    ]
    timings: dict[str, list[float]] = {"splice": [], "decode + re-encode": []}
    for _ in range(args.runs):
        for name, build in (
            ("splice", lambda: _activity_frames(rows, reset=None)),
            ("decode + re-encode", lambda: decode_and_reencode(rows)),
        ):
            started = time.perf_counter()
            frames = build()
            timings[name].append(time.perf_counter() - started)
    spliced, baseline = _activity_frames(rows, reset=None), decode_and_reencode(rows)
    assert [json.loads(f)["data"]["events"] for f in spliced] == [
        json.loads(f)["data"]["events"] for f in baseline
    ], "the two replays differ"
    size = sum(map(len, frames)) / 1e6
    print(f"{args.events:,} events in {len(spliced)} frames ({size:.1f} MB), median of {args.runs}")
    for name, seconds in timings.items():
        print(f"  {name:<20} {median(seconds) * 1000:7.1f} ms")
    ratio = median(timings["decode + re-encode"]) / median(timings["splice"])
    print(f"  splice is {ratio:.0f}x faster")


if __name__ == "__main__":
    main()
