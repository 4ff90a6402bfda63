"""Committed progress rows kept in memory, so a batch need not read back the rows it updates.

Only the store's own writer changes the progress tables, and it refreshes this
cache after each commit (never before: a rolled-back batch leaves it as it
was), so what the cache holds is what the database holds.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: The progress tables and their key columns.
PROGRESS_KEYS: dict[str, tuple[str, ...]] = {
    "module_progress": ("learner", "path", "module"),
    "path_progress": ("learner", "path"),
    "learners": ("learner",),
}


class ProgressCache:
    """Rows per progress table, keyed by their key tuple.

    ``capacity`` bounds the rows kept per table; past it the table's cache is
    emptied and refills from the database on demand (a crude but O(1) bound:
    a platform's active learners fit well within the default).
    """

    def __init__(self, capacity: int = 250_000):
        self.capacity = capacity
        self._rows: dict[str, dict[tuple, dict[str, Any]]] = {t: {} for t in PROGRESS_KEYS}
        self.hits = 0
        self.misses = 0

    def split(self, table: str, keys: Iterable[tuple]) -> tuple[dict[tuple, dict], list[tuple]]:
        """(cached rows by key, keys not cached)."""
        rows = self._rows[table]
        found: dict[tuple, dict] = {}
        missing: list[tuple] = []
        for key in keys:
            row = rows.get(key)
            if row is None:
                missing.append(key)
            else:
                found[key] = row
        self.hits += len(found)
        self.misses += len(missing)
        return found, missing

    def put(self, table: str, rows: Iterable[dict[str, Any]]) -> None:
        """Remember committed rows (dicts with the key columns)."""
        cache = self._rows[table]
        key_columns = PROGRESS_KEYS[table]
        for row in rows:
            cache[tuple(row[c] for c in key_columns)] = row
        if len(cache) > self.capacity:
            cache.clear()

    def forget(self, table: str | None = None) -> None:
        """Drop a table's rows (all tables with None), e.g. after a bulk update."""
        for name, rows in self._rows.items():
            if table is None or name == table:
                rows.clear()
