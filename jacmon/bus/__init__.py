"""The bus: committed facts, in commit order, to whoever on this node reacts to them.

A fact is published once it is committed to the store (events with their
sequence numbers and the progress rows they changed, alert changes, a catalog
reload, revoked tokens). What a node does with a fact (fan-out to its clients,
metrics windows, closing revoked connections) subscribes to the bus; nothing
that produces facts knows who listens. :class:`LocalBus` is the one-process
bus; a bus between nodes implements the same interface.
"""

from jacmon.bus.base import Bus, FactHandler
from jacmon.bus.facts import (
    AlertsChanged,
    CatalogChanged,
    EventsCommitted,
    Fact,
    ProgressProjected,
    TokensRevoked,
)
from jacmon.bus.local import LocalBus
from jacmon.store import Store


async def open_bus(url: str | None, store: Store, *, node: str) -> Bus:
    """The bus ``url`` names (``redis://...``), started; with no url, the one-node bus."""
    if not url:
        return LocalBus()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        from jacmon.errors import ConfigError

        raise ConfigError(
            f"server.bus is {url.split('@')[-1]!r}; expected a redis:// or rediss:// URL "
            "(or none, for one node)"
        )
    from jacmon.bus.redis import RedisBus

    bus = RedisBus(url, store, node=node)
    await bus.start()
    return bus


__all__ = [
    "AlertsChanged",
    "Bus",
    "CatalogChanged",
    "EventsCommitted",
    "Fact",
    "FactHandler",
    "LocalBus",
    "ProgressProjected",
    "TokensRevoked",
    "open_bus",
]
