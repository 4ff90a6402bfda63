"""The bus interface: publish committed facts, subscribe to them by kind."""

from __future__ import annotations

import abc
import logging
from collections.abc import Callable
from typing import TypeVar

from jacmon.bus.facts import Fact

log = logging.getLogger("jacmon.bus")

F = TypeVar("F", bound=Fact)

#: Called with each fact of the kind it subscribed to, synchronously and in publish order.
#: It must not block: it queues work (the fan-out's flusher, say) and returns.
FactHandler = Callable[[F], None]


class Bus(abc.ABC):
    """Committed facts and their sequence numbers, handed to this node's subscribers.

    Handlers of one kind run in subscription order, synchronously inside
    :meth:`publish`: a caller that publishes right after a commit (no await in
    between) knows every subscriber has the fact before anything else runs, which
    is what the streams' "register, snapshot, then live" handshake relies on. A
    handler that raises is logged and skipped; the others still get the fact.
    """

    def __init__(self) -> None:
        self._handlers: dict[type, list[Callable[[object], None]]] = {}

    def subscribe(self, kind: type[F], handler: FactHandler[F]) -> Callable[[], None]:
        """Call ``handler`` with every later fact of ``kind``; returns the unsubscribe."""
        handlers = self._handlers.setdefault(kind, [])
        handlers.append(handler)  # type: ignore[arg-type]

        def unsubscribe() -> None:
            if handler in handlers:
                handlers.remove(handler)  # type: ignore[arg-type]

        return unsubscribe

    def deliver(self, fact: Fact) -> None:
        """Hand ``fact`` to this node's subscribers of its kind."""
        for handler in list(self._handlers.get(type(fact), ())):
            try:
                handler(fact)
            except Exception:
                # One subscriber's bug must not take the fact away from the others.
                log.exception("a %s subscriber failed", type(fact).__name__)

    @abc.abstractmethod
    def publish(self, fact: Fact) -> None:
        """Publish a committed fact: this node's subscribers get it before this returns."""

    @abc.abstractmethod
    def problem(self) -> str | None:
        """Why the bus does not work right now, as a sentence (for /healthz); None if it does."""

    async def close(self) -> None:  # noqa: B027 - nothing to release in a local bus
        """Release connections (a bus between nodes)."""
