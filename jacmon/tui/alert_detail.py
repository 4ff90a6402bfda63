"""The alert detail view (Enter on an alert): why it fired, the evidence, who acknowledged it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from jacmon.analytics.alert_explain import NUMBER_LABELS, TIME_KEYS, rule_text
from jacmon.tui.format import SEVERITY_STYLES, age_since, date_time, number, score_percent
from jacmon.tui.messages import AlertAckRequested, AlertUnackRequested


def scored_events(events: Iterable[dict[str, Any]], learner: str) -> list[dict[str, Any]]:
    """``learner``'s scored events, newest first (from the activity feed's events)."""
    own = [e for e in events if e.get("learner") == learner and score_percent(e) is not None]
    return own[::-1]


def dated_scores(scores: list[Any], events: list[dict[str, Any]]) -> list[str]:
    """One line per score (newest first), with its date when an event of the feed matches it.

    A score item may carry its own time (``{"score": 35, "ts": ...}``); a bare
    number is paired in order with the learner's newest scored events whose
    score rounds the same. Unmatched: "date not in the feed".
    """
    lines = []
    pool = list(events)
    for item in scores:
        if isinstance(item, dict):
            value = item.get("score", item.get("value"))
            when = item.get("ts", item.get("at"))
            lines.append(f"{number(value)} on {date_time(when)}")
            continue
        match = next(
            (e for e in pool if round(score_percent(e) or -1.0) == round(float(item))), None
        )
        if match is None:
            lines.append(f"{number(item)} (date not in the feed)")
            continue
        pool.remove(match)
        where = "/".join(str(match[k]) for k in ("path", "item") if match.get(k))
        lines.append(f"{number(item)} on {date_time(match.get('ts'))}  {where}".rstrip())
    return lines


def evidence_lines(alert: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """The alert's ``numbers`` as readable lines: labels, dates for times, scores with dates."""
    lines = []
    for key, value in (alert.get("numbers") or {}).items():
        label = NUMBER_LABELS.get(key, key.replace("_", " "))
        if key in TIME_KEYS or key.endswith("_at"):
            lines.append(f"{label}: {date_time(value)}")
        elif isinstance(value, list):
            lines.append(f"{label}:")
            lines.extend(f"  • {line}" for line in dated_scores(value, events))
        elif isinstance(value, int | float) and not isinstance(value, bool):
            lines.append(f"{label}: {number(value)}")
        else:
            lines.append(f"{label}: {value if value is not None else '-'}")
    return lines


def silence_text(silence: dict[str, Any] | None) -> str:
    """Whether notifications of the alert are sent, or the silence that stops them."""
    if not silence:
        return "sent (not silenced)"
    text = f"silenced until {date_time(silence.get('until'))} by {silence.get('by') or 'unknown'}"
    return text + (f": {silence['note']}" if silence.get("note") else "")


def ack_lines(alert: dict[str, Any]) -> list[str]:
    """Acknowledgement state, then every acknowledgement of the history (when it is sent)."""
    current = alert.get("acknowledged")
    history = alert.get("acknowledgements") or []
    lines = ["acknowledged: " + (_ack_text(current) if current else "no")]
    if history:
        lines.append("history:")
        lines.extend(f"  • {_ack_text(entry)}" for entry in history)
    return lines


def _ack_text(ack: dict[str, Any]) -> str:
    parts = [f"by {ack.get('by') or 'unknown'} at {date_time(ack.get('at'))}"]
    if ack.get("note"):
        parts.append(f"note: {ack['note']}")
    if ack.get("expires_at"):
        parts.append(f"expires {date_time(ack['expires_at'])}")
    if ack.get("action") and ack["action"] != "acknowledged":
        parts.insert(0, str(ack["action"]))
    return " · ".join(parts)


def detail_renderable(
    alert: dict[str, Any],
    others: list[dict[str, Any]],
    events: list[dict[str, Any]],
    now: float,
) -> Group:
    """Everything the detail view shows for ``alert``; ``others``: the learner's other alerts."""
    severity = str(alert.get("severity", "info"))
    title = Text.assemble(
        (f" {severity.upper()} ", SEVERITY_STYLES.get(severity, "")),
        f" alert {alert['id']} · {alert.get('rule', '?')}",
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold cyan", no_wrap=True)
    facts.add_column(overflow="fold")
    facts.add_row("learner", str(alert.get("learner") or "-"))
    facts.add_row("path", str(alert.get("path") or "- (not tied to one path)"))
    facts.add_row("first fired", date_time(alert.get("first_seen")))
    facts.add_row("last seen", date_time(alert.get("last_seen")))
    facts.add_row("firing for", age_since(alert.get("first_seen"), now))
    facts.add_row("notified", silence_text(alert.get("silenced")))
    learner = str(alert.get("learner") or "")
    parts: list[Any] = [
        title,
        Text(""),
        Text(str(alert.get("message", "")), style="bold"),
        Text(""),
        Text("Why: " + rule_text(alert.get("rule")), style="italic"),
        Text(""),
        facts,
        Text(""),
        Text("Evidence", style="bold underline"),
    ]
    evidence = evidence_lines(alert, scored_events(events, learner) if learner else [])
    parts.extend(Text(line) for line in evidence or ["(no numbers sent with this alert)"])
    parts += [Text(""), Text("Acknowledgement", style="bold underline")]
    parts.extend(Text(line) for line in ack_lines(alert))
    if others:
        parts += [Text(""), Text(f"Other open alerts of {learner}", style="bold underline")]
        for other in others:
            parts.append(
                Text(
                    f"  • {other['id']} {other.get('severity', '?')} {other.get('rule', '?')}: "
                    f"{other.get('message', '')} ({age_since(other.get('first_seen'), now)})"
                )
            )
    return Group(*parts)


class AlertDetailScreen(ModalScreen[None]):
    """One alert in full. ``a`` acknowledges it, ``u`` withdraws that (both ask first);
    Esc or q closes."""

    BINDINGS = [
        Binding("escape,q", "dismiss", "Close", tooltip="Back to the dashboard"),
        Binding("a", "ack", "Ack", tooltip="Acknowledge this alert (asks first)"),
        Binding("u", "unack", "Unack", tooltip="Withdraw this alert's ack (asks first)"),
    ]

    def __init__(
        self,
        alert: dict[str, Any],
        others: list[dict[str, Any]],
        events: list[dict[str, Any]],
        now: float,
    ) -> None:
        super().__init__()
        self.alert = alert
        self.body = Static(detail_renderable(alert, others, events, now), id="alert-detail-body")

    def compose(self) -> ComposeResult:
        with Vertical(id="alert-detail-box"):
            with VerticalScroll():
                yield self.body
            yield Static(
                "a: acknowledge · u: withdraw ack · Esc: close · ↑↓: scroll",
                id="alert-detail-keys",
            )

    def update_alert(
        self,
        alert: dict[str, Any],
        others: list[dict[str, Any]],
        events: list[dict[str, Any]],
        now: float,
    ) -> None:
        """Show the alert's latest state (an ack or a new number arrived)."""
        self.alert = alert
        self.body.update(detail_renderable(alert, others, events, now))

    def action_ack(self) -> None:
        self.post_message(AlertAckRequested(int(self.alert["id"])))

    def action_unack(self) -> None:
        self.post_message(AlertUnackRequested(int(self.alert["id"])))
