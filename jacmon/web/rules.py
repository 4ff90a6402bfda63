"""Write ``static/alert-rules.json``: what each alert rule means, for the web pages.

The texts live in :mod:`jacmon.analytics.alert_explain` (the terminal dashboard and
the notifications read them there); the browser reads this JSON copy. A test
checks the copy is current; after changing the texts run::

    python -m jacmon.web.rules
"""

from __future__ import annotations

import json
from pathlib import Path

from jacmon.analytics.alert_explain import NUMBER_LABELS, RULE_TEXTS, TIME_KEYS

#: The file the pages fetch as ``/static/alert-rules.json``.
RULES_FILE = Path(__file__).parent / "static" / "alert-rules.json"


def rules_json() -> str:
    """The JSON text the file must hold: rule texts, number labels and the time keys."""
    payload = {"rules": RULE_TEXTS, "labels": NUMBER_LABELS, "time_keys": sorted(TIME_KEYS)}
    return json.dumps(payload, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


def main() -> None:
    RULES_FILE.write_text(rules_json(), encoding="utf-8")
    print(f"wrote {RULES_FILE}")


if __name__ == "__main__":
    main()
