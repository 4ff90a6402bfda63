"""The bus of one process: facts go straight to this node's subscribers."""

from __future__ import annotations

from jacmon.bus.base import Bus
from jacmon.bus.facts import Fact


class LocalBus(Bus):
    """One node, one store: every fact is committed here and delivered here."""

    def publish(self, fact: Fact) -> None:
        self.deliver(fact)

    def problem(self) -> str | None:
        return None
