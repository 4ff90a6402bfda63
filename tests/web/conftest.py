"""Fixtures for the web UI's tests: Debian's Chromium through Playwright's sync API.

The browser is ``/usr/bin/chromium`` (``.ci/run`` installs it; never
``playwright install``). The flags keep it from reaching for the network, which
is closed here and would make it hang.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS
from web_support import STOPPED_PORTS

#: Longest a page action or expectation waits, in milliseconds.
PAGE_TIMEOUT_MS = 5000


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the browser tests last, wherever they were collected.

    While Playwright's sync API is open (one session for all browser tests) its
    event loop counts as running in the main thread, so ``asyncio.run`` and the
    async tests that came after it would fail.
    """
    items.sort(key=lambda item: "browser" in getattr(item, "fixturenames", ()))


@pytest.fixture(scope="session")
def playwright() -> Iterator:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing; install Debian's chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright) -> Iterator:
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


@dataclass
class BrowserProblems:
    """Console errors and uncaught page errors seen during a test.

    The ``page`` fixture fails the test if any are left at its end; a test that
    provokes one on purpose takes it out with :meth:`expect`.
    """

    seen: list[str] = field(default_factory=list)

    def expect(self, fragment: str) -> list[str]:
        """Remove and return the problems containing ``fragment``."""
        matched = [text for text in self.seen if fragment in text]
        self.seen = [text for text in self.seen if fragment not in text]
        return matched


@pytest.fixture
def browser_problems() -> BrowserProblems:
    return BrowserProblems()


@pytest.fixture
def page(browser, browser_problems: BrowserProblems) -> Iterator:
    """A fresh page; the test fails if a console error (a CSP violation is one) or an
    uncaught page error was not expected."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(PAGE_TIMEOUT_MS)

    #: Each problem's first arrival (time.monotonic()) and the URL Chromium gave with it.
    arrived: dict[str, tuple[float, str]] = {}

    def on_console(message) -> None:
        if message.type == "error":
            text = f"console {message.type}: {message.text}"
            arrived.setdefault(text, (time.monotonic(), message.location.get("url") or ""))
            browser_problems.seen.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: browser_problems.seen.append(f"page error: {error}"))
    yield page
    context.close()
    left = [
        text
        for text in browser_problems.seen
        if not _after_stop(text, *arrived.get(text, (-1.0, "")))
    ]
    assert left == [], "the browser reported problems"


def _after_stop(text: str, at: float, url: str) -> bool:
    """Chromium's own log of a refused reconnect to a test server that the test stopped
    for good before it logged (the page outlives a ``with server_thread(...)`` block):
    not a problem of the page. A server stopped and started again is not skipped: its
    test takes those out itself with :meth:`BrowserProblems.expect`."""
    if "ERR_CONNECTION_REFUSED" not in text:
        return False
    return any(
        f"127.0.0.1:{port}/" in f"{text} {url}" and at >= stopped
        for port, stopped in STOPPED_PORTS.items()
    )
