"""In Chromium: a page served by jacmon opens its WebSocket under the CSP, and inline
script is blocked (``connect-src 'self'`` covers ws:// to the same host; no 'unsafe-inline')."""

from __future__ import annotations

from pathlib import Path

import pytest
from web_support import server_thread

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>csp test</title>
<script type="module" src="/static/app.js"></script></head>
<body><p id="state">loading</p><p id="whoami">?</p></body></html>
"""

APP = """
const state = document.getElementById("state");
const ws = new WebSocket(`ws://${location.host}/ws/metrics`);
ws.onopen = () => { state.textContent = "open"; };
ws.onerror = () => { state.textContent = "error"; };
const answer = await fetch("/whoami");
document.getElementById("whoami").textContent = (await answer.json()).role;
"""

INLINE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>inline</title></head>
<body><p id="state">untouched</p>
<script>document.getElementById("state").textContent = "inline ran";</script>
<p id="styled" style="color: rgb(255, 0, 0)">styled</p></body></html>
"""


@pytest.fixture
def web(tmp_path):
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_text(PAGE)
    (static / "app.js").write_text(APP)
    (static / "learner.html").write_text(INLINE)
    with server_thread(tmp_path, web_root=Path(static)) as running:
        yield running


def test_the_page_opens_its_websocket_and_fetches_whoami_under_the_csp(web, page):
    page.goto(f"{web.base}/")
    page.wait_for_function("document.getElementById('state').textContent !== 'loading'")
    assert page.inner_text("#state") == "open"
    page.wait_for_function("document.getElementById('whoami').textContent !== '?'")
    assert page.inner_text("#whoami") == "admin"


def test_inline_script_and_style_are_blocked_and_reported(web, page, browser_problems):
    page.goto(f"{web.base}/learner")
    page.wait_for_load_state("load")
    assert page.inner_text("#state") == "untouched"
    color = page.eval_on_selector("#styled", "e => getComputedStyle(e).color")
    assert color != "rgb(255, 0, 0)"
    violations = browser_problems.expect("Content Security Policy")
    assert any("inline script" in text for text in violations), violations
    assert any("inline style" in text for text in violations), violations
