"""static/alert-rules.json is the browser's copy of the alert texts: it must be current."""

from __future__ import annotations

from jacmon.web.rules import RULES_FILE, rules_json


def test_the_rules_file_matches_alert_explain():
    assert RULES_FILE.read_text(encoding="utf-8") == rules_json(), (
        "jacmon/web/static/alert-rules.json is out of date: run python -m jacmon.web.rules"
    )
