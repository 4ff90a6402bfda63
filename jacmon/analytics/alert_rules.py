"""Alert conditions and the lifecycle plan: what a task's findings do to the open alerts.

A task evaluates its rules into an :class:`Evaluation`: the conditions that
*fire* (past the fire threshold) and the ones that merely *hold* (between the
fire and the clear threshold, so an alert already firing stays open but no new
one starts: that gap is what keeps an alert from flapping at the boundary).
:func:`plan_alert_changes` compares an evaluation with the open alerts and says
what to fire, update, keep or resolve. Nothing here touches the database.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

SEVERITIES = ("info", "warning", "critical")


def fingerprint(rule: str, learner: str | None, path: str | None) -> str:
    """The identity of an alert: rule + learner + path, as 16 hex digits."""
    # A separator that cannot appear in ids keeps ("a:b", "c") apart from ("a", "b:c").
    text = "\x1f".join((rule, learner or "", path or ""))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(slots=True)
class AlertCondition:
    """One rule true for one learner (and path): what an alert would say."""

    rule: str
    severity: str
    learner: str | None
    path: str | None
    message: str
    #: The figures behind the message (JSON-able), e.g. {"recent_avg": 52.3}.
    numbers: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.learner, self.path)


@dataclass(slots=True)
class Evaluation:
    """What one evaluation of some rules found."""

    #: The rules evaluated: open alerts of these rules not found again are resolved.
    rules: frozenset[str]
    #: Conditions past the fire threshold.
    firing: list[AlertCondition] = field(default_factory=list)
    #: Conditions between the fire and the clear threshold: keep an open alert, start none.
    holding: list[AlertCondition] = field(default_factory=list)


@dataclass(slots=True)
class PlannedChange:
    """One change to make: ``fire`` a new alert, ``update`` or ``touch`` an open one, ``resolve``.

    ``touch`` refreshes ``last_seen`` only (nothing a viewer needs to hear about);
    ``update`` means the severity, message or numbers changed.
    """

    action: str
    condition: AlertCondition | None
    #: The open alert this changes (None for ``fire``).
    alert: dict[str, Any] | None = None
    #: Why an alert resolves: "cleared" or "inhibited by <rule>".
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able description (what ``run-task --dry-run`` prints)."""
        source = self.condition
        alert = self.alert or {}
        return {
            "action": self.action,
            "alert_id": alert.get("id"),
            "rule": source.rule if source else alert.get("rule"),
            "severity": source.severity if source else alert.get("severity"),
            "learner": source.learner if source else alert.get("learner"),
            "path": source.path if source else alert.get("path"),
            "message": source.message if source else alert.get("message"),
            "numbers": source.numbers if source else alert.get("numbers"),
            "reason": self.reason,
        }


def plan_alert_changes(
    open_alerts: list[dict[str, Any]],
    evaluation: Evaluation,
    *,
    inhibited: dict[str, str] | None = None,
) -> list[PlannedChange]:
    """The changes that bring the open alerts of ``evaluation.rules`` in line with it.

    ``open_alerts`` are firing alerts as dicts (``id``, ``fingerprint``, ``rule``,
    ``severity``, ``message``, ``numbers``); those of other rules are left alone.
    ``inhibited`` maps fingerprints that must not alert to the reason (an open one
    is resolved with that reason, a new one is not fired).
    """
    inhibited = inhibited or {}
    open_by_print = {a["fingerprint"]: a for a in open_alerts if a["rule"] in evaluation.rules}
    changes: list[PlannedChange] = []
    seen: set[str] = set()
    for condition, may_fire in [(c, True) for c in evaluation.firing] + [
        (c, False) for c in evaluation.holding
    ]:
        key = condition.fingerprint
        if key in seen:
            continue
        seen.add(key)
        alert = open_by_print.get(key)
        if key in inhibited:
            if alert is not None:
                changes.append(PlannedChange("resolve", None, alert, reason=inhibited[key]))
            continue
        if alert is None:
            if may_fire:
                changes.append(PlannedChange("fire", condition))
            continue
        changed = (
            alert["severity"] != condition.severity
            or alert["message"] != condition.message
            or alert["numbers"] != condition.numbers
        )
        changes.append(PlannedChange("update" if changed else "touch", condition, alert))
    now_on_path = _paths_by_rule_and_learner(evaluation, inhibited)
    for key, alert in open_by_print.items():
        if key not in seen:
            changes.append(
                PlannedChange("resolve", None, alert, reason=_why_gone(alert, now_on_path))
            )
    return changes


def _paths_by_rule_and_learner(
    evaluation: Evaluation, inhibited: dict[str, str]
) -> dict[tuple[str, str | None], str]:
    """(rule, learner) -> a path its condition now names, for conditions that alert."""
    paths: dict[tuple[str, str | None], str] = {}
    for condition in evaluation.firing + evaluation.holding:
        if condition.path is not None and condition.fingerprint not in inhibited:
            paths.setdefault((condition.rule, condition.learner), condition.path)
    return paths


def _why_gone(alert: dict[str, Any], now_on_path: dict[tuple[str, str | None], str]) -> str:
    """Why an open alert no longer found resolves.

    An alert without a path whose condition now names one was raised before its
    rule learned paths: it is replaced by the per-path alert, not left firing.
    """
    path = now_on_path.get((alert["rule"], alert.get("learner")))
    if alert.get("path") is None and path is not None:
        return f"replaced by the alert on path {path}"
    return "cleared"


def count_actions(changes: list[PlannedChange]) -> dict[str, int]:
    """How many changes of each action (fire, update, touch, resolve), for run summaries."""
    counts = {"fire": 0, "update": 0, "touch": 0, "resolve": 0}
    for change in changes:
        counts[change.action] += 1
    return counts
