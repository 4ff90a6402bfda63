"""The activity feed: newest events live, coloured by type, bounded, filterable."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

from jacmon.tui.format import (
    LABEL_OFFSET,
    LABEL_STYLES,
    LABEL_WIDTH,
    event_line,
    event_matches,
)
from jacmon.tui.state import FEED_CAPACITY


class EventTypeHighlighter(Highlighter):
    """Colours a feed line's event label (the fixed-width column after the time)."""

    def highlight(self, text: Text) -> None:
        label = text.plain[LABEL_OFFSET : LABEL_OFFSET + LABEL_WIDTH].strip()
        style = LABEL_STYLES.get(label)
        if style:
            text.stylize(style, LABEL_OFFSET, LABEL_OFFSET + LABEL_WIDTH)
        text.stylize("grey50", 0, LABEL_OFFSET - 1)


class ActivityFeed(Log):
    """Follows the newest events unless the user scrolled up; then counts "N new".

    Holds at most :data:`~jacmon.tui.state.FEED_CAPACITY` lines; only the
    visible lines are rendered, so a burst costs little.
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, highlight=True, max_lines=FEED_CAPACITY, auto_scroll=True)
        self.highlighter = EventTypeHighlighter()
        self.border_title = "Activity"
        self.terms: list[tuple[str | None, str]] = []
        self.filter_text = ""
        #: Events that arrived while the user was scrolled up.
        self.unseen = 0

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events (oldest first)."""
        lines = [event_line(e) for e in events if not self.terms or event_matches(e, self.terms)]
        following = self.is_vertical_scroll_end
        if lines:
            self.write_lines(lines)
        if not following:
            self.unseen += len(lines)
        self._update_subtitle()

    def replace_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Redraw the feed from ``events`` (after a snapshot or a filter change)."""
        self.clear()
        self.unseen = 0
        self.add_events(events)
        self.scroll_end(animate=False, immediate=True)

    def set_filter(self, text: str, terms: list[tuple[str | None, str]]) -> None:
        self.filter_text = text
        self.terms = terms
        self.border_title = f"Activity [filter: {text}]" if text else "Activity"

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Back at the bottom: the user has seen everything.
        if self.unseen and self.is_vertical_scroll_end:
            self.unseen = 0
            self._update_subtitle()

    def _update_subtitle(self) -> None:
        self.border_subtitle = f"{self.unseen} new ↓" if self.unseen else ""
