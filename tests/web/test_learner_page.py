"""The learner page (GET /learner) in headless Chromium: one learner, and nothing else.

A learner-scoped token (``jacmon token create --role viewer --learner ID``) shows its
learner's paths, modules, level, streak, time spent and activity; asking for another
learner is refused with the server's reason. The token comes as an LMS would pass it
(``#token=`` once) and leaves the address bar at once.
"""

from __future__ import annotations

from pages_support import DOCS, ingest, live_events, make_token, prepare_store
from playwright.sync_api import expect
from web_support import server_thread

LOADED = (
    "() => document.body.dataset.loaded === 'true'"
    " && document.querySelector('#recent li[data-seq]') !== null"
)
NEWEST = "() => +document.querySelector('#recent li[data-seq]').dataset.seq === {}"


def test_a_learner_token_shows_that_learner_only(tmp_path, page):
    db = tmp_path / "jacmon.db"
    prepare_store(db)
    token = make_token(db, role="viewer", learner="ada", name="ada's page")
    with server_thread(tmp_path, require_tokens=True) as server:
        page.set_viewport_size({"width": 900, "height": 900})
        page.goto(f"{server.base}/learner#token={token}")
        page.wait_for_function(LOADED, timeout=3000)
        assert token not in page.url, "the token stayed in the address bar"

        expect(page.locator("#title")).to_have_text("ada")
        expect(page.locator("#stats")).to_contain_text("level")
        expect(page.locator("#stats")).to_contain_text("streak")
        expect(page.locator("#stats")).to_contain_text("time spent")
        cards = page.locator(".path-card")
        expect(cards).to_have_count(2)
        python = page.locator(".path-card[data-path=python-101]")
        expect(python).to_contain_text("2 of")
        expect(python.locator("li")).to_have_count(2)
        expect(page.locator(".path-card[data-path=sql-essentials]")).to_contain_text("enrolled")

        # Live: ada's new event appears; another learner's never does.
        ingest(server.base, live_events("ben", 3), token=make_token(db, role="ingest"))
        mine = ingest(server.base, live_events("ada", 2), token=make_token(db, role="ingest"))
        page.wait_for_function(NEWEST.format(mine["last_seq"]))
        text = page.locator("body").inner_text()
        for other in ("ben", "cy"):
            assert other not in text, f"learner {other} shows on ada's page"
        page.screenshot(path=str(DOCS / "web-learner.png"), full_page=True)


def test_asking_for_another_learner_is_refused_with_the_reason(tmp_path, page):
    db = tmp_path / "jacmon.db"
    prepare_store(db)
    token = make_token(db, role="viewer", learner="ada")
    with server_thread(tmp_path, require_tokens=True) as server:
        page.goto(f"{server.base}/learner?learner=ben#token={token}")
        expect(page.locator("#signin-message")).to_contain_text("scoped to one learner")
        expect(page.locator("#signin-message")).to_contain_text("'ben'")
        expect(page.locator("#page")).to_be_hidden()
        assert "ben" not in page.locator("#page").inner_text()


def test_an_admin_names_the_learner_and_the_page_works_tokenless_on_loopback(tmp_path, page):
    prepare_store(tmp_path / "jacmon.db")
    with server_thread(tmp_path) as server:
        page.goto(f"{server.base}/learner")
        expect(page.locator("#pick")).to_be_visible()
        page.fill("#pick input[name=learner]", "cy")
        page.click("#pick button[type=submit]")
        page.wait_for_function(LOADED, timeout=3000)
        assert page.url.endswith("/learner?learner=cy")
        expect(page.locator("#title")).to_have_text("cy")
        expect(page.locator("#recent")).to_contain_text("assessment.attempted")


def test_the_learner_page_may_be_framed_only_where_configured(tmp_path, page):
    prepare_store(tmp_path / "jacmon.db")
    with server_thread(tmp_path, web={"frame_ancestors": ["https://lms.example.com"]}) as server:
        response = page.goto(f"{server.base}/learner")
        policy = response.headers["content-security-policy"]
        assert "frame-ancestors https://lms.example.com" in policy
        assert "'unsafe-inline'" not in policy
        expect(page.locator("#pick")).to_be_visible()
        page.goto("about:blank")  # leave before the server stops: no refused fetch
