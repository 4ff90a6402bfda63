"""The instructor page (GET /) in headless Chromium against a real server on port 0.

Data comes from a real store (events, the performance task's alerts); live events go
in over /ws/ingest; acknowledgements are checked with the real CLI. The ``page``
fixture fails any test that leaves a console error or a CSP violation behind.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta

import pytest
from pages_support import DOCS, ingest, jacmon, live_events, prepare_store
from playwright.sync_api import expect
from web_support import server_thread

#: "Every panel shows data from the store within 3 s" (issue 13), in milliseconds.
FIRST_DATA_MS = 3000

PANELS = ("progress", "activity", "trends", "alerts", "learners", "connection")

ALL_LOADED = (
    "() => ['progress','activity','trends','alerts','learners','connection']"
    ".every(p => document.querySelector(`section[data-panel=${p}]`).dataset.loaded === 'true')"
)


def feed_seqs(page) -> list[int]:
    """The seqs the activity feed lists, oldest first.

    The feed draws only the rows in view (windowed), so the list is the page's feed
    model; the rows drawn must be its newest ones, newest on top.
    """
    listed = page.evaluate("globalThis.jacmonPage.panels.activity.shown().map(e => e.seq)")
    drawn = page.eval_on_selector_all("#feed li[data-seq]", "rows => rows.map(r => +r.dataset.seq)")
    assert drawn and drawn == listed[: len(drawn)], "the feed does not draw its newest rows"
    return list(reversed(listed))


@pytest.fixture
def running(tmp_path):
    alerts = prepare_store(tmp_path / "jacmon.db")
    assert {a["learner"] for a in alerts} >= {"cy"}, alerts
    with server_thread(tmp_path) as server:
        yield server, alerts


def test_every_panel_shows_the_store_within_3_s_and_live_events_arrive_in_order(running, page):
    server, _ = running
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)

    expect(page.locator("#progress-body")).to_contain_text("python-101")
    expect(page.locator("#learners-body")).to_contain_text("ada")
    expect(page.locator("#alerts-body")).to_contain_text("cy")
    expect(page.locator("#feed")).to_contain_text("assessment.attempted")
    assert page.locator("#trends-body canvas").count() >= 5
    expect(page.locator("#connection-body .state-open")).to_have_count(4)
    expect(page.locator("#unread-count")).to_have_text("0")

    before = feed_seqs(page)
    acked = ingest(server.base, live_events("ben", 6))
    assert acked["accepted"] == 6
    expected = list(range(acked["last_seq"] - 5, acked["last_seq"] + 1))
    page.wait_for_function(
        f"() => +document.querySelector('#feed li[data-seq]').dataset.seq === {expected[-1]}"
    )
    assert feed_seqs(page) == before + expected
    expect(page.locator("#feed li").first).to_contain_text("ben")

    # Two metrics samples (2 s apart) make the charts lines rather than points.
    page.wait_for_function("() => globalThis.jacmonPage.models.metrics.samples.length >= 2")
    page.screenshot(path=str(DOCS / "web-instructor.png"))


def test_drill_down_keys_and_filter(running, page):
    server, _ = running
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)

    # Progress: click a path, then a learner on it; Esc goes back up.
    page.locator("#progress-body tr[data-key]", has_text="python-101").click()
    expect(page.locator("#progress-crumbs")).to_contain_text("python-101")
    expect(page.locator("#progress-body")).to_contain_text("Modules")
    page.locator("#progress-body tr[data-key]", has_text="ada").click()
    expect(page.locator("#progress-crumbs")).to_contain_text("ada")
    expect(page.locator("#progress-body")).to_contain_text("level")
    page.keyboard.press("Escape")
    expect(page.locator("#progress-crumbs")).not_to_contain_text("ada")

    # The feed filter speaks the terminal's syntax.
    page.keyboard.press("2")
    page.keyboard.press("/")
    page.keyboard.type("cy type:assessment")
    expect(page.locator("#activity-status")).to_contain_text("matching")
    learners = page.eval_on_selector_all(
        "#feed li .who", "ws => [...new Set(ws.map(w => w.textContent))]"
    )
    assert learners == ["cy"]
    page.keyboard.press("Escape")

    # 4, ↓, Enter: the alert detail, with the rule in words and the evidence.
    page.keyboard.press("4")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    detail = page.locator("#alert-detail")
    expect(detail).to_be_visible()
    expect(detail).to_contain_text("What it means")
    expect(detail).to_contain_text("low scores in a row")
    page.keyboard.press("Escape")
    expect(detail).to_be_hidden()

    # ? shows every key; z maximizes the current panel.
    page.keyboard.press("?")
    expect(page.locator("#help")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    expect(page.locator("section[data-panel=progress]")).to_be_hidden()
    page.keyboard.press("z")
    expect(page.locator("section[data-panel=progress]")).to_be_visible()


def _alerts_json(db) -> dict[int, dict]:
    listed = json.loads(jacmon("alerts", "--db", str(db), "--json").stdout)
    return {a["id"]: a for a in listed}


def test_an_ack_in_the_page_reaches_the_cli_and_a_cli_ack_reaches_the_page(running, page, tmp_path):
    server, alerts = running
    db = tmp_path / "jacmon.db"
    first, second = sorted(alerts, key=lambda a: a["id"])[:2]
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)

    page.locator(f"#alerts-body tr[data-key='{first['id']}']").click()
    detail = page.locator("#alert-detail")
    detail.locator("form[data-action=ack] textarea").fill("calling them today")
    detail.locator("form[data-action=ack] select").select_option(label="for 1 day")
    detail.locator("form[data-action=ack] button[type=submit]").click()
    expect(detail.locator(".outcome.ok")).to_have_text("Acknowledged.")
    expect(detail).to_contain_text("acknowledged by anonymous")

    stored = _alerts_json(db)[first["id"]]
    assert stored["acknowledged"]["note"] == "calling them today"
    assert stored["acknowledged"]["by"] == "anonymous"
    # The CLI's JSON writes times as ISO 8601 UTC.
    expires_at = datetime.fromisoformat(stored["acknowledged"]["expires_at"].replace("Z", "+00:00"))
    expires_in = expires_at.timestamp() - time.time()
    assert 86000 < expires_in < 86500

    # Withdraw it from the page: the CLI sees no acknowledgement, the history keeps both.
    detail.locator("form[data-action=unack] textarea").fill("wrong learner")
    detail.locator("form[data-action=unack] button[type=submit]").click()
    expect(detail.locator(".outcome.ok")).to_have_text("Acknowledgement withdrawn.")
    stored = _alerts_json(db)[first["id"]]
    assert stored["acknowledged"] is None
    assert [h["action"] for h in stored["acknowledgements"]] == ["acknowledged", "unacknowledged"]
    page.keyboard.press("Escape")

    jacmon("alerts", "ack", str(second["id"]), "--db", str(db), "--note", "on it", "--by", "sam")
    row = page.locator(f"#alerts-body tr[data-key='{second['id']}']")
    expect(row).to_contain_text("acked by sam", timeout=5000)


def test_a_viewer_without_can_ack_is_told_why_it_cannot_acknowledge(tmp_path, page):
    from pages_support import make_token

    alerts = prepare_store(tmp_path / "jacmon.db")
    token = make_token(tmp_path / "jacmon.db", role="viewer", name="watcher")
    with server_thread(tmp_path, require_tokens=True) as server:
        page.goto(server.base + "/")
        expect(page.locator("#signin")).to_be_visible()
        page.fill("#signin input[name=token]", token)
        page.click("#signin button[type=submit]")
        page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)
        assert token not in page.url
        page.locator(f"#alerts-body tr[data-key='{alerts[0]['id']}']").click()
        expect(page.locator("#alert-detail")).to_contain_text("may not acknowledge alerts")
        expect(page.locator("#alert-detail form[data-action=ack]")).to_have_count(0)


def test_a_wrong_token_gets_the_reason_and_the_form_again(tmp_path, page):
    from pages_support import make_token

    prepare_store(tmp_path / "jacmon.db")
    make_token(tmp_path / "jacmon.db", role="admin")
    with server_thread(tmp_path, require_tokens=True) as server:
        page.goto(server.base + "/")
        expect(page.locator("#signin-message")).to_contain_text("needs an access token")
        page.fill("#signin input[name=token]", "jm_nosuch_secret")
        page.click("#signin button[type=submit]")
        expect(page.locator("#signin-message")).to_contain_text("nosuch")
        expect(page.locator("#signin")).to_be_visible()
        expect(page.locator("#panels")).to_be_hidden()


def test_a_server_restart_shows_offline_then_resumes_with_every_event_once(
    running, page, browser_problems
):
    server, _ = running
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)
    first = ingest(server.base, live_events("ada", 5))
    page.wait_for_function(
        f"() => +document.querySelector('#feed li[data-seq]').dataset.seq === {first['last_seq']}"
    )
    before = feed_seqs(page)

    server.stop()
    expect(page.locator("#offline")).to_be_visible(timeout=5000)
    expect(page.locator("#offline")).to_contain_text("Offline")
    server.start()
    # Stored while the page is still away: it must get them by resuming from its last seq.
    during = ingest(server.base, live_events("ben", 7))
    expect(page.locator("#offline")).to_be_hidden(timeout=20000)
    after = ingest(server.base, live_events("cy", 4))
    page.wait_for_function(
        f"() => +document.querySelector('#feed li[data-seq]').dataset.seq === {after['last_seq']}"
    )

    seqs = feed_seqs(page)
    assert len(seqs) == len(set(seqs)), "an event is shown twice"
    new = list(range(before[-1] + 1, after["last_seq"] + 1))
    assert seqs == before + new, "an event is missing or out of order"
    assert during["accepted"] == 7
    modes = page.eval_on_selector_all(
        "#connection-body tr[data-key]",
        "rows => rows.map(r => r.dataset.key + ':' + r.children[4].textContent)",
    )
    assert "activity:resumed" in modes and "alerts:resumed" in modes
    # Chromium itself logs each refused connection while the server is down; the page's
    # own code logs nothing.
    refused = browser_problems.expect("ERR_CONNECTION_REFUSED")
    assert all("127.0.0.1" in text or "Failed to load resource" in text for text in refused)


@pytest.mark.parametrize("width,height", [(360, 740), (768, 1024), (1920, 1080)])
def test_usable_from_a_phone_to_a_wide_monitor(running, page, width, height):
    server, _ = running
    page.set_viewport_size({"width": width, "height": height})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow} px at {width} px"
    visible = [p for p in PANELS if page.locator(f"section[data-panel={p}]").is_visible()]
    if width <= 900:
        assert visible == ["progress"]
        page.locator("#tabs [data-panel=alerts]").click()
        expect(page.locator("section[data-panel=alerts]")).to_be_visible()
        expect(page.locator("#alerts-body")).to_contain_text("cy")
        if width == 360:
            page.screenshot(path=str(DOCS / "web-phone.png"))
    else:
        assert visible == list(PANELS) or sorted(visible) == sorted(PANELS)


def test_the_feed_draws_only_the_rows_in_view_and_scrolls_to_the_rest(running, page):
    server, _ = running
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)
    acked = ingest(server.base, live_events("ben", 400))
    page.wait_for_function(
        f"() => +document.querySelector('#feed li[data-seq]').dataset.seq === {acked['last_seq']}"
    )
    listed = feed_seqs(page)
    assert listed == list(range(1, acked["last_seq"] + 1))
    drawn = page.locator("#feed li[data-seq]").count()
    assert 5 < drawn < 60, f"{drawn} feed rows drawn for a 460 px feed"

    # Scrolled to the bottom, the oldest listed event is drawn; the scroll height is the list's.
    page.eval_on_selector("#feed", "f => { f.scrollTop = f.scrollHeight; }")
    page.wait_for_function(
        f"() => document.querySelector('#feed li[data-seq=\"{listed[0]}\"]') !== null"
    )
    height = page.eval_on_selector("#feed", "f => f.scrollHeight")
    assert height >= len(listed) * 40


def test_a_new_critical_alert_pops_up_and_counts_as_unread(running, page, tmp_path):
    from pages_support import event, in_thread

    server, _ = running
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(server.base + "/")
    page.wait_for_function(ALL_LOADED, timeout=FIRST_DATA_MS)
    page.keyboard.press("2")  # away from the Alerts panel: new alerts stay unread
    expect(page.locator("#unread-count")).to_have_text("0")

    now = datetime.now(UTC)
    scores = [
        event(
            "assessment.attempted",
            "dee",
            now - timedelta(minutes=30 - k),
            item=f"quiz-{k}",
            path="python-101",
            score={"raw": 20, "max": 100},
        )
        for k in range(6)
    ]
    ingest(server.base, scores)
    in_thread(_run_performance(tmp_path / "jacmon.db", now))

    toast = page.locator("#toasts .toast.critical")
    expect(toast).to_contain_text("dee", timeout=5000)
    expect(page.locator("#unread-count")).to_have_text("1")
    assert page.title() == "(1) jacmon"
    toast.click()
    expect(page.locator("#alert-detail")).to_contain_text("dee")
    expect(page.locator("#unread-count")).to_have_text("0")


async def _run_performance(db, now):
    from jacmon.monitoring.scheduler import Scheduler
    from jacmon.store import Store

    store = await Store.open(db)
    try:
        await Scheduler(store, {}, lambda: now).run_once("performance")
    finally:
        await store.close()
