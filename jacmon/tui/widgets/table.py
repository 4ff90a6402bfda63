"""A DataTable kept in sync with keyed rows by changing only what changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.text import Text
from textual._two_way_dict import TwoWayDict
from textual.dom import NoScreen
from textual.widgets import DataTable
from textual.widgets._data_table import RowKey


def row_height(cells: Sequence[Any]) -> int:
    """Lines of the tallest cell: a cell's text holds its own line breaks."""
    return max(
        (str(c.plain if isinstance(c, Text) else c).count("\n") + 1 for c in cells), default=1
    )


class KeyedTable(DataTable):
    """A read-only table whose rows are replaced by key; the cursor follows its row's key.

    :meth:`sync` updates cells in place, adds and removes rows and reorders them,
    so a redraw costs what changed, not the whole table. The row under the
    cursor stays under it when rows re-sort, arrive or leave (by key, never by
    row number), so what the user selected is what an action acts on. A row is
    as tall as its tallest cell's lines (a wrapped message).
    """

    DEFAULT_CSS = """
    KeyedTable { height: 1fr; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self._columns_shown: tuple[str, ...] = ()
        self._widths_shown: tuple[int | None, ...] = ()
        self._labels_shown: tuple[str, ...] = ()
        self._rows: dict[str, tuple[Any, ...]] = {}
        self._heights: dict[str, int] = {}
        self._order: list[str] = []

    def set_columns(
        self, columns: Sequence[tuple[str, int | None]], labels: Sequence[str] | None = None
    ) -> None:
        """(key, width or None for auto) per column; resets the rows if the keys changed.

        ``labels`` are the headers shown (None: the keys); a new label (a sort
        mark) or width is changed in place and keeps the rows and the cursor. A
        fixed width sizes the column whatever the rows hold, so every row lines
        up from the first.
        """
        keys = tuple(key for key, _ in columns)
        widths = tuple(width for _, width in columns)
        shown = tuple(labels) if labels is not None else keys
        if keys == self._columns_shown:
            if widths != self._widths_shown:
                self._set_widths(keys, widths)
            if shown != self._labels_shown:
                for key, label in zip(keys, shown, strict=True):
                    self.columns[key].label = Text(label)
                self._labels_shown = shown
                self.refresh()
            return
        self.clear(columns=True)
        for (key, width), label in zip(columns, shown, strict=True):
            self.add_column(label, key=key, width=width)
        self._columns_shown = keys
        self._widths_shown = widths
        self._labels_shown = shown
        self._rows = {}
        self._heights = {}
        self._order = []

    def _set_widths(self, keys: tuple[str, ...], widths: tuple[int | None, ...]) -> None:
        for key, width in zip(keys, widths, strict=True):
            column = self.columns[key]
            column.auto_width = width is None
            column.width = width or 0
        self._widths_shown = widths
        # Drawn lines are cached by their column widths' old values: draw and measure anew.
        self._clear_caches()
        self._update_count += 1
        self._require_update_dimensions = True
        self.refresh()

    def sync(self, rows: list[tuple[str, tuple[Any, ...]]]) -> None:
        """Show exactly ``rows`` (key, cells) in this order; the selected key stays selected.

        Only while the table is its screen's focus (the user is on it, maybe with a
        prompt or detail view over it): otherwise the cursor keeps its row, so an
        unwatched table stays at its top rows instead of following whichever row
        happened to be first down the list.
        """
        selected = self.selected_key if self._is_focused_on_screen() else None
        wanted = dict(rows)
        readded = False
        for key in [k for k in self._rows if k not in wanted]:
            self.remove_row(key)
            del self._rows[key]
            del self._heights[key]
        for key, cells in rows:
            old = self._rows.get(key)
            height = row_height(cells)
            if old is not None and height != self._heights[key]:
                # DataTable keeps a row's height: a row that grew or shrank is added anew.
                self.remove_row(key)
                old = None
                readded = True
            self._heights[key] = height
            if old is None:
                self.add_row(*cells, key=key, height=height)
            elif old != cells:
                for label, before, after in zip(self._columns_shown, old, cells, strict=True):
                    if before != after:
                        self.update_cell(key, label, after, update_width=self._widens(label, after))
            self._rows[key] = cells
        order = [key for key, _ in rows]
        if order != self._order or readded:
            self._reorder(order)
            self._order = order
        self._keep_selected(selected)

    def _is_focused_on_screen(self) -> bool:
        try:
            return self.screen.focused is self
        except NoScreen:  # not mounted yet: a first redraw may come before the screen
            return False

    def _widens(self, column: str, cell: Any) -> bool:
        """Whether ``cell`` is wider than its auto-width column: then the column must grow.

        Re-measuring every update costs a relayout per cell (most do not change
        the width), and never re-measuring left columns cut to the header.
        """
        spec = self.columns[column]
        if not spec.auto_width:
            return False
        width = cell.cell_len if isinstance(cell, Text) else len(str(cell))
        return width > spec.content_width

    def _reorder(self, order: list[str]) -> None:
        """Put the rows in ``order`` (their keys): by key, as the shown text may be shortened."""
        position = {key: index for index, key in enumerate(order)}
        # DataTable.sort does the same, but can only sort by the cells' values.
        self._row_locations = TwoWayDict(
            {RowKey(key): index for key, index in position.items() if RowKey(key) in self.rows}
        )
        self._update_count += 1
        self.refresh()

    def _keep_selected(self, key: str | None) -> None:
        """Put the cursor back on ``key``'s row, wherever it went (gone: the cursor stays)."""
        if key is None or key not in self._rows:
            return
        index = self.get_row_index(key)
        if index != self.cursor_row:
            self.move_cursor(row=index, animate=False, scroll=False)

    def select_key(self, key: str) -> bool:
        """Move the cursor to ``key``'s row; False when there is no such row."""
        if key not in self._rows:
            return False
        self.move_cursor(row=self.get_row_index(key), animate=False)
        return True

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor (None when empty)."""
        if not self.row_count:
            return None
        row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        return row_key.value
