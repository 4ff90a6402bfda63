"""jacmon.js and the page models, run in Chromium as a page imports them.

The protocol paths (connect, resume, reconnect) are covered end to end by the page
tests; these pin the pieces a page cannot see: the backoff's jitter bounds, the feed's
exactly-once rule, the alert order and the unread count, the feed filter.
"""

from __future__ import annotations

import pytest
from web_support import server_thread


@pytest.fixture
def module_page(tmp_path, page):
    with server_thread(tmp_path) as server:
        page.goto(server.base + "/learner")
        page.wait_for_selector("#pick")
        yield page
        page.goto("about:blank")


def test_backoff_is_full_jitter_capped(module_page):
    bounds = module_page.evaluate(
        """async () => {
          const { backoffDelayMs } = await import("/static/jacmon.js");
          const at = (attempt, r) => backoffDelayMs(attempt, { random: () => r });
          return [at(0, 0), at(0, 0.999), at(3, 0.999), at(30, 0.999), at(1000, 0.5)];
        }"""
    )
    assert bounds == [0, 499, 3996, 14985, 7500]


def test_the_feed_keeps_each_seq_once_in_order_and_bounded(module_page):
    seqs = module_page.evaluate(
        """async () => {
          const { ActivityModel } = await import("/static/model.js");
          const feed = new ActivityModel(5);
          const ev = (seq) => ({ seq, learner: "a", type: "activity" });
          feed.applySnapshot({ events: [ev(1), ev(2)] });
          feed.applyEvents([ev(2), ev(3), ev(1), ev(4)]);
          feed.applyEvents([ev(5), ev(6), ev(7), ev("8"), ev(null)]);
          return feed.events.map((e) => e.seq);
        }"""
    )
    assert seqs == [3, 4, 5, 6, 7]


def test_alerts_sort_by_severity_then_age_and_count_unread(module_page):
    result = module_page.evaluate(
        """async () => {
          const { AlertsModel } = await import("/static/model.js");
          const m = new AlertsModel();
          const a = (id, severity, first_seen) => ({ id, severity, first_seen, state: "firing" });
          m.applySnapshot({ alerts: [a(1, "warning", 10), a(2, "critical", 50)] });
          const toast = m.applyChange({ change: "fired", alert: a(3, "critical", 20) });
          const quiet = m.applyChange({ change: "fired", alert: a(4, "info", 5) });
          const gone = { ...a(1, "warning", 10), state: "resolved" };
          m.applyChange({ change: "resolved", alert: gone });
          const order = m.sorted().map((x) => x.id);
          return { order, unread: m.unread.size, toast: toast?.id, quiet };
        }"""
    )
    assert result == {"order": [3, 2, 4], "unread": 2, "toast": 3, "quiet": None}


def test_the_feed_filter_speaks_the_terminal_syntax(module_page):
    matches = module_page.evaluate(
        """async () => {
          const { parseFilter } = await import("/static/panel-activity.js");
          const events = [
            { learner: "ada", type: "assessment.attempted", path: "python-101" },
            { learner: "ada", type: "activity", path: "sql" },
            { learner: "ben", type: "assessment.passed", path: "python-101" },
          ];
          const pick = (text) => events.filter(parseFilter(text)).length;
          return [pick("ada"), pick("ada path:python"), pick("type:assessment"), pick("zed")];
        }"""
    )
    assert matches == [2, 1, 2, 0]
