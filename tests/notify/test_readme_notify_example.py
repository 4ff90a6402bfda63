"""The README's and docs/notifications.md's [notify] examples are valid configuration."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from jacmon.notify.check import check_notify

ROOT = Path(__file__).resolve().parents[2]


def notify_blocks(path: Path) -> list[str]:
    blocks = re.findall(r"```toml\n(.*?)```", path.read_text(), flags=re.S)
    return [block for block in blocks if block.lstrip().startswith("[notify]")]


@pytest.mark.parametrize("doc", ["README.md", "docs/notifications.md"])
async def test_the_documented_notify_config_is_valid(doc, monkeypatch):
    monkeypatch.setenv("SMTP_PASSWORD", "x")
    monkeypatch.setenv("JACMON_WEBHOOK_SECRET", "y")
    (block,) = notify_blocks(ROOT / doc)
    table = tomllib.loads(block)["notify"]
    firing = [{"id": 1, "rule": "inactivity", "severity": "critical", "learner": "u1",
               "path": "python-101", "silenced": None}]  # fmt: skip
    plan, problems = await check_notify(table, firing)
    assert problems == []
    assert plan["enabled"] is True
    assert all(route["firing_alerts_matched"] == 1 for route in plan["routes"])
