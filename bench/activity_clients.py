"""One load-generator process of activity clients: connect N, count every event, time them.

    python bench/activity_clients.py --url ws://127.0.0.1:P/ws/activity --count 500 [--full 10]

Used by bench_fanout.py and bench_django_fanout.py (one process per ~500
clients, pinned to the load core). Protocol with the parent, one JSON line
each way: it prints ``{"ready": N, "seq": S}`` once every client got its
``hello`` (S: the highest seq seen so far); the parent writes
``{"last_seq": L, "deadline_s": D}`` when the producer is done; it waits until
every client has seq L (or D seconds passed) and prints the results.

Each frame is checked cheaply on every client: its events are counted
(``{"seq":`` occurrences), the first event's seq must follow the previous
frame's last, and the frame's seq must be the last event's, so a gap or a
duplicate is caught. The oldest event's ``sent_at`` gives the frame's latency
(an upper bound for its other events). ``--full`` clients also decode every
frame and record every event's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import raise_fd_limit
from raw_ws import connect_raw
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

#: Latency histogram bucket width, in seconds (0.1 ms).
BUCKET_S = 0.0001
SEQ_KEY = b'{"seq":'
SENT_KEY = b'"sent_at":'


@dataclass
class ClientState:
    full: bool
    last: int = -1
    events: int = 0
    frames: int = 0
    errors: list[str] = field(default_factory=list)
    closed: str | None = None


def _number_after(frame: bytes, key: bytes, start: int = 0) -> tuple[float, int]:
    """The JSON number right after ``key`` (from ``start``) and the index after it."""
    i = frame.index(key, start) + len(key)
    j = i
    while frame[j] in b"0123456789.-eE":
        j += 1
    return float(frame[i:j]), j


class Clients:
    def __init__(self, url: str, count: int, full: int, raw: bool = False):
        self.url = url
        #: Non-full clients use bench/raw_ws.py instead of the websockets client.
        self.raw = raw
        self.states = [ClientState(full=i < full) for i in range(count)]
        self.frame_latency: Counter[int] = Counter()
        self.event_latency: Counter[int] = Counter()
        #: Frame built on the server ("ts") minus the oldest event's sent_at: ingest + flush wait.
        self.build_latency: Counter[int] = Counter()
        self.target: int | None = None
        self.done = asyncio.Event()
        self.remaining = count

    def _on_frame(self, state: ClientState, frame: bytes, now: float) -> None:
        head = frame[:120]
        if b'"type":"events"' not in head and b'"type": "events"' not in head:
            # hello (or the snapshot) sets where the live events must continue from.
            if state.last < 0 and (b'"hello"' in head or b'"snapshot"' in head):
                state.last = json.loads(frame)["seq"]
            return
        state.frames += 1
        count = frame.count(SEQ_KEY)
        first, end = _number_after(frame, SEQ_KEY)
        last, _ = _number_after(frame, b'"seq":', 0)
        if state.last >= 0 and int(first) != state.last + 1:
            state.errors.append(f"gap or repeat: expected seq {state.last + 1}, got {int(first)}")
        if int(last) - int(first) + 1 != count:
            state.errors.append(f"frame seq {int(last)} from {int(first)} has {count} events")
        state.last = int(last)
        state.events += count
        try:
            sent, _ = _number_after(frame, SENT_KEY, end)
            self.frame_latency[int((now - sent) / BUCKET_S)] += 1
            built, _ = _number_after(frame, b'"ts":', 0)
            self.build_latency[int(max(0.0, built - sent) / BUCKET_S)] += 1
        except ValueError:
            state.errors.append("event without sent_at")
        if state.full:
            data = json.loads(frame)
            seqs = [e["seq"] for e in data["data"]["events"]]
            if seqs != list(range(seqs[0], seqs[0] + len(seqs))):
                state.errors.append(f"events out of order in frame {data['seq']}")
            for event in data["data"]["events"]:
                self.event_latency[int((now - event["sent_at"]) / BUCKET_S)] += 1
        if self.target is not None and state.last >= self.target:
            self._finish(state)

    def _finish(self, state: ClientState) -> None:
        if not getattr(state, "finished", False):
            state.finished = True  # type: ignore[attr-defined]
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()

    async def run_one_raw(self, state: ClientState, ready: asyncio.Event, opened: list) -> None:
        """The same checks on a minimal hand-parsed connection (bench/raw_ws.py)."""
        closed = asyncio.Event()

        def on_message(frame: bytes) -> None:
            self._on_frame(state, frame, time.time())
            if state.last >= 0:
                ready.set()

        def on_close(reason: str) -> None:
            state.closed = reason
            closed.set()

        try:
            await connect_raw(self.url, on_message, on_close)
            opened.append(1)
            await closed.wait()
        except (OSError, TimeoutError, ConnectionError) as exc:
            state.closed = f"connect failed: {exc}"
        finally:
            ready.set()
            self._finish(state)

    async def run_one(self, state: ClientState, ready: asyncio.Event, opened: list) -> None:
        if self.raw and not state.full:
            await self.run_one_raw(state, ready, opened)
            return
        try:
            async with connect(
                self.url, compression=None, max_size=None, open_timeout=60, ping_interval=None
            ) as ws:
                opened.append(1)
                # The frame envelope's seq comes first; for the Django app, the same format.
                while True:
                    frame = await ws.recv(decode=False)
                    now = time.time()
                    if state.last < 0:
                        self._on_frame(state, frame, now)
                        if state.last >= 0:
                            ready.set()
                        continue
                    self._on_frame(state, frame, now)
        except ConnectionClosed as exc:
            rcvd = exc.rcvd
            state.closed = f"{rcvd.code} {rcvd.reason}" if rcvd else "no close frame"
        except (OSError, TimeoutError) as exc:
            state.closed = f"connect failed: {exc}"
        finally:
            ready.set()
            self._finish(state)

    async def main(self, connect_concurrency: int) -> None:
        loop = asyncio.get_running_loop()
        tasks = []
        opened: list = []
        for start in range(0, len(self.states), connect_concurrency):
            group = self.states[start : start + connect_concurrency]
            readies = [asyncio.Event() for _ in group]
            for state, ready in zip(group, readies, strict=True):
                tasks.append(asyncio.create_task(self.run_one(state, ready, opened)))
            await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), 120)
        seq = max(s.last for s in self.states)
        print(json.dumps({"ready": len(opened), "seq": seq}), flush=True)
        line = await loop.run_in_executor(None, sys.stdin.readline)
        order = json.loads(line)
        self.target = order["last_seq"]
        for state in self.states:
            if state.closed is not None or state.last >= self.target:
                self._finish(state)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), order["deadline_s"])
        finished = time.time()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        errors = [e for s in self.states for e in s.errors]
        print(
            json.dumps(
                {
                    "clients": len(self.states),
                    "complete": sum(s.last >= self.target and not s.errors for s in self.states),
                    "events": sum(s.events for s in self.states),
                    "frames": sum(s.frames for s in self.states),
                    "closed": Counter(s.closed for s in self.states if s.closed),
                    "errors": len(errors),
                    "error_examples": errors[:5],
                    "behind": sorted(self.target - s.last for s in self.states)[-5:],
                    "frame_latency": dict(self.frame_latency),
                    "event_latency": dict(self.event_latency),
                    "build_latency": dict(self.build_latency),
                    "finished_at": finished,
                }
            ),
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--full", type=int, default=10, help="clients that decode every frame")
    parser.add_argument("--connect-concurrency", type=int, default=50)
    parser.add_argument(
        "--raw", action="store_true", help="non-full clients use the minimal raw_ws client"
    )
    args = parser.parse_args()
    raise_fd_limit()
    clients = Clients(args.url, args.count, args.full, raw=args.raw)
    asyncio.run(clients.main(args.connect_concurrency))


if __name__ == "__main__":
    main()
