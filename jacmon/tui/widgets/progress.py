"""The progress panel: paths with bars, learners sortable, drill into a path or a learner."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable

from jacmon.tui.format import age_since, bar, middle_ellipsis, number, to_epoch
from jacmon.tui.messages import ProgressViewChanged
from jacmon.tui.state import LearnerDetail, ProgressData
from jacmon.tui.widgets.table import KeyedTable

BAR_WIDTH = 6

#: Learner sort orders: name -> (label, key over a learner summary, reverse).
LEARNER_SORTS: dict[str, tuple[str, Callable[[dict[str, Any]], Any], bool]] = {
    "recent": ("last activity", lambda r: to_epoch(r.get("last_activity")) or 0.0, True),
    "progress": ("progress", lambda r: r.get("percent") or 0.0, True),
    "level": ("level", lambda r: (r.get("level") or 0, r.get("xp") or 0), True),
    "streak": ("streak", lambda r: r.get("streak_days") or 0, True),
    "name": ("name", lambda r: r.get("learner") or "", False),
}
SORT_ORDER = list(LEARNER_SORTS)

#: Most learner rows drawn; the stream's snapshot is bounded too.
MAX_LEARNER_ROWS = 500

#: Ids longer than this (xAPI IRIs as path ids, long learner ids) are cut in the middle,
#: so the numbers beside them stay on screen; the row key keeps the whole id.
ID_WIDTH = 22

#: Widest status ("in_progress", "unenrolled"): shown whole.
STATUS_WIDTH = 11


def _id(text: str) -> str:
    return middle_ellipsis(text, ID_WIDTH)


def _id_width(label: str, ids: list[str]) -> int:
    """The id column's fixed width: its widest id (at most ID_WIDTH) or its header and mark.

    Fixed, not auto: every row lines up from the first draw, and no id is cut
    to the header's width when a longer one arrives later.
    """
    return max([len(label) + 1, *(min(ID_WIDTH, len(i)) for i in ids)])


def _sort_mark(label: str, marked: str, reverse: bool) -> str:
    return f"{label}{'▼' if reverse else '▲'}" if label == marked else label


#: The learner column each learner sort marks.
SORT_COLUMNS = {
    "recent": "last",
    "progress": "progress",
    "level": "lvl",
    "streak": "strk",
    "name": "learner",
}


def _pct(value: float | None) -> Text:
    value = value or 0.0
    return Text.assemble((bar(value, BAR_WIDTH), "green"), f"{value:4.0f}%")


class ProgressPanel(Vertical):
    """Per path: enrolled / active / completed and mean progress; per learner: %, level, streak.

    ``Enter`` on a path or learner drills in, ``Escape`` comes back, ``s``
    changes the learner order. ``scoped_learner`` (a learner-scoped view)
    starts and stays on that learner. Every change of view posts
    :class:`ProgressViewChanged`: the app opens the learner's own stream for
    the learner view, whose rows come in as ``detail``.
    """

    BINDINGS = [
        Binding("s", "cycle_sort", "Sort", tooltip="Change the order of the learner rows"),
        Binding("i", "invert_sort", "Invert", tooltip="Reverse the learner order"),
        Binding("escape", "back", "Back", show=False, tooltip="Leave the drill-down"),
    ]

    def __init__(
        self,
        *,
        scoped_learner: str | None = None,
        now: Callable[[], float] = time.time,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.border_title = "Progress"
        self.scoped_learner = scoped_learner
        self.now = now
        self.sort = "recent"
        #: The learner order reversed (``i``).
        self.reverse = False
        #: Words a learner or path id must hold to be shown ("" shows all).
        self.filter_text = ""
        self.stale = False
        #: ``("overview", None)``, ``("path", path)`` or ``("learner", learner)``.
        self.view: tuple[str, str | None] = (
            ("learner", scoped_learner) if scoped_learner else ("overview", None)
        )
        self._data = ProgressData()
        self._detail: LearnerDetail | None = None
        # Kept, not queried: a redraw while the app shuts down finds no children by query.
        self.top = KeyedTable(id="progress-top")
        self.bottom = KeyedTable(id="progress-bottom")

    def compose(self) -> ComposeResult:
        yield self.top
        yield self.bottom

    def show(self, data: ProgressData, detail: LearnerDetail | None = None) -> None:
        """Redraw from ``data`` (the latest progress state) and the open learner's own rows."""
        self._data = data
        self._detail = detail
        top, bottom = self.top, self.bottom
        kind, key = self.view
        now = self.now()
        if kind == "overview":
            self._overview(data, top, bottom, now)
        elif kind == "path":
            self._path(data, key or "", top, bottom, now)
        else:
            self._learner(data, detail, key or "", top, bottom, now)

    # -- views ------------------------------------------------------------------

    def _overview(
        self, data: ProgressData, top: KeyedTable, bottom: KeyedTable, now: float
    ) -> None:
        label = LEARNER_SORTS[self.sort][0]
        more = f" of {data.total_learners}" if data.truncated else ""
        self.border_title = self._title("Progress")
        self.border_subtitle = f"{len(data.learners)}{more} learners · sort: {label} (s, i)"
        # "7d": enrolled learners with activity in the last 7 days who have not finished
        # (not "active" in the inactivity alert's sense); the help explains every column.
        paths = [(p, row) for p, row in sorted(data.paths.items()) if self._matches(p)]
        top.set_columns(
            [
                ("path", _id_width("path", [p for p, _ in paths])),
                ("enr", 3),
                ("7d", 3),
                ("done", 4),
                ("mean", BAR_WIDTH + 5),
            ]
        )
        top.sync(
            [
                (
                    path,
                    (
                        _id(path),
                        number(row.get("enrolled")),
                        number(row.get("active")),
                        number(row.get("completed")),
                        _pct(row.get("mean_percent")),
                    ),
                )
                for path, row in paths
            ]
        )
        # A learner's progress: the mean over the paths they are enrolled on.
        totals: dict[str, list[float]] = {}
        for (learner, _path), row in data.learner_paths.items():
            if row.get("status") != "unenrolled":
                totals.setdefault(learner, []).append(row.get("percent") or 0.0)
        summaries = [
            {**row, "percent": sum(p) / len(p) if (p := totals.get(name)) else 0.0}
            for name, row in data.learners.items()
        ]
        _, sort_key, reverse = LEARNER_SORTS[self.sort]
        summaries = [r for r in summaries if self._matches(r["learner"])]
        summaries.sort(key=sort_key, reverse=reverse != self.reverse)
        summaries = summaries[:MAX_LEARNER_ROWS]
        columns = [
            ("learner", _id_width("learner", [r["learner"] for r in summaries])),
            ("progress", BAR_WIDTH + 5),
            ("lvl", 3),
            ("strk", 4),
            ("last", 4),
        ]
        marked = SORT_COLUMNS[self.sort]
        bottom.set_columns(columns, [_sort_mark(key, marked, self.reverse) for key, _ in columns])
        bottom.sync(
            [
                (
                    row["learner"],
                    (
                        _id(row["learner"]),
                        _pct(row["percent"]),
                        number(row.get("level")),
                        number(row.get("streak_days")),
                        age_since(row.get("last_activity"), now),
                    ),
                )
                for row in summaries
            ]
        )

    def _path(
        self, data: ProgressData, path: str, top: KeyedTable, bottom: KeyedTable, now: float
    ) -> None:
        summary = data.paths.get(path, {})
        self.border_title = self._title(f"Progress > {summary.get('title') or path}")
        self.border_subtitle = (
            f"{number(summary.get('enrolled'))} enrolled · "
            f"{number(summary.get('completed'))} done · Esc back"
        )
        modules = sorted(
            (row for (p, _m), row in data.modules.items() if p == path),
            key=lambda r: r.get("position", 0),
        )
        top.set_columns(
            [
                ("module", _id_width("module", [r["module"] for r in modules])),
                ("lrn", 4),
                ("done", 4),
                ("mean", BAR_WIDTH + 5),
            ]
        )
        top.sync(
            [
                (
                    row["module"],
                    (
                        _id(row["module"]),
                        number(row.get("learners")),
                        number(row.get("completed")),
                        _pct(row.get("mean_percent")),
                    ),
                )
                for row in modules
            ]
        )
        rows = [
            row
            for (_l, p), row in data.learner_paths.items()
            if p == path and self._matches(row["learner"])
        ]
        rows.sort(key=lambda r: (-(r.get("percent") or 0.0), r["learner"]))
        rows = rows[:MAX_LEARNER_ROWS]
        bottom.set_columns(
            [
                ("learner", _id_width("learner", [r["learner"] for r in rows])),
                ("progress", BAR_WIDTH + 5),
                ("status", STATUS_WIDTH),
                ("last", 4),
            ]
        )
        bottom.sync(
            [
                (
                    row["learner"],
                    (
                        _id(row["learner"]),
                        _pct(row.get("percent")),
                        row.get("status") or "-",
                        age_since(row.get("last_activity"), now),
                    ),
                )
                for row in rows
            ]
        )

    def _learner(
        self,
        data: ProgressData,
        detail: LearnerDetail | None,
        learner: str,
        top: KeyedTable,
        bottom: KeyedTable,
        now: float,
    ) -> None:
        waiting = ""
        if self.scoped_learner is None:
            # The overview's rows hold no module rows: they come on the learner's own stream.
            if detail is not None and detail.learner == learner and detail.loaded:
                data = detail.data
            else:
                state = detail.connection if detail is not None else "connecting"
                waiting = f" · modules: {state}…"
        row = data.learners.get(learner, {})
        self.border_title = self._title(f"Progress > {learner}")
        back = "" if self.scoped_learner else " · Esc back"
        self.border_subtitle = (
            f"lvl {number(row.get('level'))} · {number(row.get('xp'))} xp · "
            f"streak {number(row.get('streak_days'))}d (best {number(row.get('longest_streak'))})"
            f"{waiting}{back}"
        )
        paths = sorted(
            (r for (name, _p), r in data.learner_paths.items() if name == learner),
            key=lambda r: r["path"],
        )
        top.set_columns(
            [
                ("path", _id_width("path", [r["path"] for r in paths])),
                ("progress", BAR_WIDTH + 5),
                ("status", STATUS_WIDTH),
                ("mods", 4),
            ]
        )
        top.sync(
            [
                (
                    r["path"],
                    (
                        _id(r["path"]),
                        _pct(r.get("percent")),
                        r.get("status") or "-",
                        number(r.get("modules_completed")),
                    ),
                )
                for r in paths
            ]
        )
        # Scoped snapshots carry the learner's own module rows (status, percent).
        own_modules = [
            r
            for r in data.modules.values()
            if "status" in r and r.get("learner", learner) == learner
        ]
        keys = [f"{r['path']}/{r['module']}" for r in own_modules]
        bottom.set_columns(
            [("module", _id_width("module", keys)), ("progress", BAR_WIDTH + 5), ("last", 4)]
        )
        bottom.sync(
            [
                (
                    key,
                    (_id(key), _pct(r.get("percent")), age_since(r.get("last_activity"), now)),
                )
                for key, r in sorted(zip(keys, own_modules, strict=True), key=lambda kr: kr[0])
            ]
        )

    # -- navigation -------------------------------------------------------------

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        key = event.row_key.value
        kind, _ = self.view
        if kind == "overview":
            self.view = ("path", key) if event.data_table.id == "progress-top" else ("learner", key)
        elif kind == "path" and event.data_table.id == "progress-bottom":
            self.view = ("learner", key)
        else:
            return
        self._view_changed()

    def action_back(self) -> None:
        if self.scoped_learner is None and self.view[0] != "overview":
            self.view = ("overview", None)
            self._view_changed()

    def _matches(self, key: str) -> bool:
        words = self.filter_text.lower().split()
        return all(word in key.lower() for word in words)

    def _title(self, title: str) -> str:
        shown = f"{title} [filter: {self.filter_text}]" if self.filter_text else title
        return f"{shown} (STALE)" if self.stale else shown

    def set_filter(self, text: str) -> None:
        """Show only paths and learners whose id holds every word of ``text``."""
        self.filter_text = text.strip()
        self.show(self._data, self._detail)

    def set_stale(self, stale: bool) -> None:
        """Mark the panel stale while its stream is offline (the rows are the last known)."""
        if stale != self.stale:
            self.stale = stale
            self.show(self._data, self._detail)

    def action_invert_sort(self) -> None:
        self.reverse = not self.reverse
        self.show(self._data, self._detail)

    def action_cycle_sort(self) -> None:
        self.sort = SORT_ORDER[(SORT_ORDER.index(self.sort) + 1) % len(SORT_ORDER)]
        self.show(self._data, self._detail)

    def _view_changed(self) -> None:
        self.post_message(ProgressViewChanged(*self.view))
        self.show(self._data, self._detail)
