"""Helpers for the dashboard tests: waiting on the app, feeding events, raising alerts."""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.client.ingest import IngestClient
from jacmon.store.sqlite.alerts import apply_alert_changes

#: Generous: the CI box has 2 shared cores.
TIMEOUT_S = 30.0


async def wait_until(
    pilot: Pilot, predicate: Callable[[], Any], what: str, timeout: float = TIMEOUT_S
) -> None:
    """Let the app run until ``predicate()`` is true; fail naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await pilot.pause(0.05)


def screen_text(app: Any) -> str:
    """The text on the app's screen right now (from its SVG screenshot), spaces normalised."""
    svg = app.export_screenshot()
    text = " ".join(re.findall(r">([^<>]*)</text>", svg))
    return html.unescape(text).replace("\xa0", " ")


#: An SVG screenshot's cell width, in its x units (Textual's export).
_CELL_X = 12.2

_SVG_TEXT = re.compile(
    r'<text[^>]*\bx="([\d.]+)"[^>]*clip-path="url\(#terminal-(?:\d+-)?line-(\d+)\)"[^>]*>([^<]*)</text>'
)


def screen_lines(app: Any) -> list[str]:
    """The screen as lines of text, each character in its column (from the SVG screenshot)."""
    width, height = app.size
    grid = [[" "] * width for _ in range(height)]
    for x, line, text in _SVG_TEXT.findall(app.export_screenshot()):
        column = round(float(x) / _CELL_X)
        for offset, char in enumerate(html.unescape(text).replace("\xa0", " ")):
            if 0 <= int(line) < height and column + offset < width:
                grid[int(line)][column + offset] = char
    return ["".join(row).rstrip() for row in grid]


def flowing(lines: list[str]) -> str:
    """Screen lines as one run of words: borders dropped, whitespace collapsed.

    A message wrapped over several rows of a table reads whole in it.
    """
    return " ".join(" ".join(lines).replace("│", " ").split())


def make_event(n: int, *, learner: str = "ada", kind: str = "module.progressed", **fields: Any):
    """A valid event numbered ``n``; ``kind`` picks the type, ``fields`` override."""
    body: dict[str, Any] = {
        "id": f"tui-{n}",
        "type": kind,
        "ts": "2026-01-05T10:00:00Z",
        "learner": learner,
    }
    if kind in ("module.progressed", "module.completed", "lesson.completed"):
        body.update(path="python-101", module="m1", progress=min(100, n % 101))
    if kind == "lesson.completed":
        body["item"] = f"lesson-{n}"
        body.pop("progress")
    if kind.startswith("assessment."):
        body.update(path="python-101", item="quiz-1", score={"scaled": 0.8})
    if kind.startswith("path."):
        body["path"] = "python-101"
    body.update(fields)
    return body


async def send(url: str, events: list[dict[str, Any]]) -> None:
    """Ingest ``events`` through the real ingest endpoint; fail if any is refused."""
    async with IngestClient(url) as client:
        ack = await client.send_batch(events)
    assert not ack.rejected, ack.rejected
    assert ack.accepted + ack.duplicates == len(events)


async def fire_alert(running_server: Any, *, learner: str, message: str, severity: str = "warning"):
    """Fire an alert in the server's database, as the scheduled tasks do; returns its change."""
    condition = AlertCondition(
        rule="performance-decline",
        severity=severity,
        learner=learner,
        path="python-101",
        message=message,
        numbers={"recent_avg": 41.5, "drop_pct": 30},
    )
    async with running_server.server.store.db.transaction() as conn:
        changes = await apply_alert_changes(
            conn, [PlannedChange("fire", condition)], now=time.time()
        )
    return changes[0]
