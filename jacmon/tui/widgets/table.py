"""A DataTable kept in sync with keyed rows by changing only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable


class KeyedTable(DataTable):
    """A read-only table whose rows are replaced by key; the first cell is the key's text.

    :meth:`sync` updates cells in place, adds and removes rows and reorders them,
    so a redraw costs what changed, not the whole table.
    """

    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._columns_shown: tuple[str, ...] = ()
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._order: list[str] = []

    def set_columns(self, columns: Sequence[tuple[str, int | None]]) -> None:
        """(label, width or None for auto) per column; resets the rows if they changed."""
        labels = tuple(label for label, _ in columns)
        if labels == self._columns_shown:
            return
        self.clear(columns=True)
        for label, width in columns:
            self.add_column(label, key=label, width=width)
        self._columns_shown = labels
        self._rows = {}
        self._order = []

    def sync(self, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Show exactly ``rows`` (key, cells) in this order."""
        wanted = dict(rows)
        for key in [k for k in self._rows if k not in wanted]:
            self.remove_row(key)
            del self._rows[key]
        for key, cells in rows:
            old = self._rows.get(key)
            if old is None:
                self.add_row(*cells, key=key)
            elif old != cells:
                for label, before, after in zip(self._columns_shown, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, label, after)
            self._rows[key] = cells
        order = [key for key, _ in rows]
        if order != self._order:
            position = {key: index for index, key in enumerate(order)}
            self.sort(self._columns_shown[0], key=lambda first: position.get(str(first), 0))
            self._order = order

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor (None when empty)."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value
