"""What ``jacmon serve --check`` says about ``[notify]``: the receivers and routes, each
validated, and which route would send which of the currently firing alerts where."""

from __future__ import annotations

from collections import Counter
from typing import Any

from jacmon.durations import format_duration
from jacmon.errors import JacmonError
from jacmon.notify.config import parse_notify
from jacmon.notify.setup import build_receivers


async def check_notify(
    raw: dict[str, Any], firing: list[dict[str, Any]]
) -> tuple[dict[str, Any], list[str]]:
    """(plan, problems) for the ``[notify]`` table, given the firing alerts."""
    try:
        settings = parse_notify(raw)
        receivers = build_receivers(settings)
    except JacmonError as exc:
        return {"enabled": False}, [str(exc)]
    for receiver in receivers.values():
        await receiver.close()  # built only to validate their settings
    if not settings.enabled:
        return {"enabled": False, "why": "no [[notify.receivers]] and [[notify.routes]]"}, []
    routes = []
    for route in settings.routes:
        matched = [a for a in firing if route.matches(a) and not a.get("silenced")]
        groups = Counter(route.group_of(a)[0] for a in matched)
        routes.append(
            {
                "name": route.name,
                "receivers": list(route.receivers),
                "matchers": {
                    key: value
                    for key, value in (
                        ("severity_at_least", route.severity),
                        ("rule", sorted(route.rules) if route.rules else None),
                        ("path", sorted(route.paths) if route.paths else None),
                        ("learner", sorted(route.learners) if route.learners else None),
                    )
                    if value is not None
                },
                "send": sorted(route.send),
                "group_by": list(route.group_by),
                "timing": {
                    "group_wait": format_duration(route.group_wait_s),
                    "group_interval": format_duration(route.group_interval_s),
                    "repeat_interval": format_duration(route.repeat_interval_s),
                },
                "firing_alerts_matched": len(matched),
                "groups_now": len(groups),
            }
        )
    unused = set(settings.receiver_names()) - {
        r for route in settings.routes for r in route.receivers
    }
    problems = [
        f"receiver {name!r} is configured but no [[notify.routes]] sends to it"
        for name in sorted(unused)
    ]
    plan = {
        "enabled": True,
        "receivers": [{"name": s.name, "type": s.type} for s in settings.receivers],
        "routes": routes,
        "silenced_firing_alerts": sum(1 for a in firing if a.get("silenced")),
    }
    return plan, problems
