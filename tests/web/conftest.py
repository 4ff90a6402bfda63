"""Fixtures for the web UI's tests: Debian's Chromium through Playwright's sync API.

The browser is ``/usr/bin/chromium`` (``.ci/run`` installs it; never
``playwright install``). The flags keep it from reaching for the network, which
is closed here and would make it hang.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from chromium import CHROMIUM, CHROMIUM_ARGS

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
    page.on(
        "console",
        lambda message: (
            browser_problems.seen.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on("pageerror", lambda error: browser_problems.seen.append(f"page error: {error}"))
    yield page
    context.close()
    assert browser_problems.seen == [], "the browser reported problems"
