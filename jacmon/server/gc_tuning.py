"""The cyclic garbage collector, tuned for a long-running server process.

CPython's default collects the youngest generation every 700 net container
allocations. One push request of 20,000 xAPI statements allocates about a million
dicts, lists and strings that reference counting frees on its own (request data
has no cycles), so the default runs hundreds of collections per request, each
scanning the request's live objects again: measured, a quarter of the request's
CPU time (docs/benchmarks.md, "Platforms push"). Two changes, as servers built on
CPython commonly make:

- ``gc.freeze()`` once started: the modules, settings and caches alive then are
  never scanned again;
- the youngest generation's threshold at 50,000 allocations: collections are
  rarer and each still short (it scans at most that many young objects).

Cyclic garbage is still collected, a little later; memory held by it stays small
(bounded by the threshold's worth of objects).
"""

from __future__ import annotations

import gc

#: Net container allocations between collections of the youngest generation.
YOUNG_THRESHOLD = 50_000


def tune_for_serving() -> None:
    """Freeze what is alive now and raise the young-generation threshold (call once,
    after start-up)."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
