"""Build the configured receivers from ``[notify]`` (their settings checked on the way)."""

from __future__ import annotations

from jacmon.notify.config import NotifySettings
from jacmon.notify.model import Receiver


def build_receivers(settings: NotifySettings) -> dict[str, Receiver]:
    """Name -> receiver for every ``[[notify.receivers]]``; ConfigError names a bad setting."""
    if not settings.receivers:
        return {}
    # Imported only when receivers are configured: they bring the HTTP and SMTP clients.
    from jacmon.notify.receivers import build_receiver

    return {
        spec.name: build_receiver(
            spec,
            where=f"notify.receivers[{index}] (name {spec.name!r})",
            # Alertmanager's resyncs carry the link too, so its annotation does not flip.
            dashboard_url=settings.dashboard_url,
        )
        for index, spec in enumerate(settings.receivers)
    }
