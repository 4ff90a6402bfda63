"""The header line: what matters most (offline, simulated clock, alerts) fits first."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from jacmon.tui.format import fit_parts

#: Between two parts of the header.
SEP = " · "


class StatusHeader(Static):
    """One line at the top: the title, then (priority, text, style) parts that fit the width.

    A narrow terminal drops the least important parts (the server URL first),
    never the OFFLINE mark or the simulated clock; the shown parts keep their order.
    """

    DEFAULT_CSS = """
    StatusHeader {
        dock: top;
        height: 1;
        width: 1fr;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    """

    def __init__(self, title: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.title = title
        self._parts: list[tuple[int, str, str]] = []
        self._shown: tuple[int, tuple[tuple[int, str, str], ...]] | None = None

    def show(self, parts: list[tuple[int, str, str]]) -> None:
        """Show ``parts``: (priority, text, Rich style), priority 0 the most important."""
        self._parts = parts
        self._draw()

    def on_resize(self) -> None:
        self._draw()

    def _draw(self) -> None:
        width = self.content_region.width or self.app.size.width - 2
        key = (width, tuple(self._parts))
        if key == self._shown:
            return
        self._shown = key
        room = width - len(self.title) - len(SEP)
        kept = fit_parts([(p, text) for p, text, _ in self._parts], room, SEP)
        line = Text(self.title, "bold")
        for index in kept:
            _, text, style = self._parts[index]
            line.append(SEP, "grey50")
            line.append(text, style)
        line.truncate(max(1, width), overflow="ellipsis")
        # One line, always: a new text never changes the layout.
        self.update(line, layout=False)
