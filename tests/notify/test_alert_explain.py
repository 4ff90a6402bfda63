"""alert_explain: an alert's rule and evidence in words, without the feed, Textual or Rich."""

from __future__ import annotations

import subprocess
import sys

from jacmon.analytics.alert_explain import (
    NUMBER_LABELS,
    RULE_TEXTS,
    evidence_lines,
    rule_text,
    utc_time,
)

# 2026-01-05 10:00 UTC
TEN_AM = 1767607200.0


def test_evidence_lines_labels_numbers_times_and_lists() -> None:
    alert = {
        "numbers": {
            "recent_avg": 41.25,
            "drop": 23,
            "last_activity": TEN_AM,
            "latest": [35.0, 40, 20.5],
            "resolved_at": "2026-01-05T11:30:00Z",
            "custom_thing": "x",
            "big": 125000,
        }
    }
    assert evidence_lines(alert) == [
        "average score, recent window: 41.2",
        "drop (points): 23",
        "last activity: 2026-01-05 10:00 UTC",
        "newest scores:",
        "  • 35",
        "  • 40",
        "  • 20.5",
        "resolved at: 2026-01-05 11:30 UTC",
        "custom thing: x",
        "big: 125.0k",
    ]


def test_dict_score_items_carry_their_date() -> None:
    alert = {"numbers": {"latest": [{"score": 35, "ts": TEN_AM}, {"score": 40}, {"value": 12.5}]}}
    assert evidence_lines(alert) == [
        "newest scores:",
        "  • 35 on 2026-01-05 10:00 UTC",
        "  • 40",
        "  • 12.5",
    ]


def test_no_numbers_no_lines() -> None:
    assert evidence_lines({}) == []
    assert evidence_lines({"numbers": None}) == []


def test_times_in_utc_whatever_the_input() -> None:
    assert utc_time(TEN_AM) == "2026-01-05 10:00 UTC"
    assert utc_time("2026-01-05T12:00:00+02:00") == "2026-01-05 10:00 UTC"
    assert utc_time("2026-01-05T10:00:00") == "2026-01-05 10:00 UTC"
    assert utc_time("yesterday") == "-"
    assert utc_time(None) == "-"


def test_rule_texts() -> None:
    assert rule_text("inactivity") == RULE_TEXTS["inactivity"]
    assert "no description" in rule_text("brand_new_rule")
    assert NUMBER_LABELS["low_run"] == "low scores in a row"


def test_importing_it_loads_no_textual_or_rich() -> None:
    """Receivers run in the server: the module must stay free of the TUI stack."""
    # httpx loads its own command line (rich, click) whenever those are installed (the
    # test tools bring them): that is httpx's, not ours. Measure what jacmon adds on top.
    code = (
        "import sys, httpx; before = set(sys.modules);"
        "import jacmon.analytics.alert_explain, jacmon.notify.receivers;"
        "print(sorted(m for m in set(sys.modules) - before"
        " if m.split('.')[0] in ('textual', 'rich')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
