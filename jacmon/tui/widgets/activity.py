"""The activity feed: newest events live, coloured by type, bounded, filterable."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.text import Text
from textual.widgets import Log

from jacmon.tui.format import (
    LABEL_STYLES,
    LABEL_WIDTH,
    event_line,
    event_matches,
    label_offset,
    local_day,
)
from jacmon.tui.state import FEED_CAPACITY


class EventTypeHighlighter(Highlighter):
    """Colours a feed line's event label (the fixed-width column after the time)."""

    def highlight(self, text: Text) -> None:
        start = label_offset(text.plain)
        label = text.plain[start : start + LABEL_WIDTH].strip()
        style = LABEL_STYLES.get(label)
        if style:
            text.stylize(style, start, start + LABEL_WIDTH)
        text.stylize("grey50", 0, start - 1)


class ActivityFeed(Log):
    """Follows the newest events unless the user scrolled up; then counts "N new".

    Holds at most :data:`~jacmon.tui.state.FEED_CAPACITY` lines; only the
    visible lines are rendered, so a burst costs little. ``now`` is the data's
    clock (epoch seconds): events of another day than its today show their date,
    and when that clock passes midnight the app redraws the lines (see
    :meth:`day_changed`), so yesterday's lines gain their date.
    """

    def __init__(self, *, now: Callable[[], float] = time.time, id: str | None = None) -> None:
        super().__init__(id=id, highlight=True, max_lines=FEED_CAPACITY, auto_scroll=True)
        self.highlighter = EventTypeHighlighter()
        self.border_title = "Activity"
        self.now = now
        self.terms: list[tuple[str | None, str]] = []
        self.filter_text = ""
        self.stale = False
        #: Events that arrived while the user was scrolled up.
        self.unseen = 0
        #: The day (``YYYY-MM-DD``, local) the lines were drawn against; None: none drawn yet.
        self.day: str | None = None

    def _update_size(self, updates: int, lines: list[str]) -> None:
        """Measure new lines on the app's thread, not in Textual's thread worker.

        Log measures them in a worker thread that calls back into the app; when the
        dashboard closes meanwhile, that call raises NoActiveAppError inside the app
        (seen in CI). Feed lines are one short row each: measuring them here costs
        microseconds and leaves no thread behind.
        """
        if lines:
            width = max(cell_len(self._process_line(line)) for line in lines)
            self._update_maximum_width(updates, width)

    def add_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Append events (oldest first)."""
        today = self.day = local_day(self.now())
        lines = [
            event_line(e, today) for e in events if not self.terms or event_matches(e, self.terms)
        ]
        following = self.at_end()
        if lines:
            self.write_lines(lines, scroll_end=False)
            if following:
                self.scroll_end(animate=False, immediate=True, x_axis=False)
        if not following:
            self.unseen += len(lines)
        self._update_subtitle()

    def at_end(self) -> bool:
        """Whether the newest line is in view: the feed then follows new events.

        Not Log's ``is_vertical_scroll_end`` (offset == end): lines drawn before the
        feed had its size leave the offset past the end, and it would stop following.
        """
        return self.scroll_y >= self.max_scroll_y

    def day_changed(self) -> bool:
        """Whether the data's clock passed midnight since the lines were drawn."""
        return self.day is not None and local_day(self.now()) != self.day

    def replace_events(self, events: Iterable[dict[str, Any]]) -> None:
        """Redraw the feed from ``events`` (after a snapshot or a filter change)."""
        self.clear()
        self.unseen = 0
        self.add_events(events)
        self.scroll_end(animate=False, immediate=True)

    def set_filter(self, text: str, terms: list[tuple[str | None, str]]) -> None:
        self.filter_text = text
        self.terms = terms
        self._update_title()

    def set_stale(self, stale: bool) -> None:
        """Mark the feed stale while its stream is offline (events may be missing)."""
        if stale != self.stale:
            self.stale = stale
            self._update_title()

    def _update_title(self) -> None:
        title = f"Activity [filter: {self.filter_text}]" if self.filter_text else "Activity"
        self.border_title = f"{title} (STALE)" if self.stale else title

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        # Back at the bottom: the user has seen everything.
        if self.unseen and self.at_end():
            self.unseen = 0
            self._update_subtitle()

    def _update_subtitle(self) -> None:
        self.border_subtitle = f"{self.unseen} new ↓" if self.unseen else ""
