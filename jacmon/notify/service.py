"""The notifier: routes alert changes into the outbox and delivers it, one loop per receiver.

- The router (every ``poll_interval``) expands new alert changes into outbox rows
  (:meth:`jacmon.store.Store.route_new_changes`), plans repeats and lets silences
  lapse, each in one short write transaction.
- Each receiver has its own delivery loop, so a slow or broken receiver delays
  only itself: it claims a due group's batch (a transaction), sends it with no
  transaction open, then records the answer (another transaction). The event
  loop is never blocked and ingest waits at most for those short transactions.
- A receiver that must be told the whole firing set (Alertmanager) also gets a
  resync loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

from jacmon.notify.config import NotifySettings, Route
from jacmon.notify.metrics import NotifyMetrics
from jacmon.notify.model import Delivery, Notification, Receiver
from jacmon.store import Store
from jacmon.store.types import DueGroup

log = logging.getLogger("jacmon.notify")

#: Decoded alerts kept for the next receiver's send of the same changes.
DECODED_CACHE = 20_000
#: Alert changes routed per write transaction.
ROUTE_CHUNK = 500
#: How often silences are checked for their end (or start), in seconds.
SILENCE_CHECK_S = 5.0
#: Longest a send may take before it counts as a timeout (receivers have their own,
#: shorter timeouts; this guards against one that hangs anyway), in seconds.
SEND_GUARD_S = 120.0


class Notifier:
    """Routes and delivers notifications for one store (see the module docstring).

    ``receivers`` maps names to built receivers (the configured ones). ``clock``
    returns wall-clock epoch seconds (group timings are for people).
    """

    def __init__(
        self,
        store: Store,
        settings: NotifySettings,
        receivers: Mapping[str, Receiver],
        *,
        clock: Callable[[], float] = time.time,
        metrics: NotifyMetrics | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.receivers = dict(receivers)
        self.routes: dict[str, Route] = {route.name: route for route in settings.routes}
        self.clock = clock
        self.metrics = metrics or NotifyMetrics()
        self._wake = {name: asyncio.Event() for name in self.receivers}
        self._last_silence_check = 0.0
        #: Changes read from the change log, by seq, shared by the receivers' senders
        #: (each alert is decoded at most once, when a receiver reads it).
        self._decoded: dict[int, Any] = {}

    def loops(self) -> dict[str, Callable[[], Coroutine[Any, Any, Any]]]:
        """Name -> loop factory, for the server's supervisor (each restarts on failure)."""
        loops: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {"notify-router": self.route}
        for name, receiver in self.receivers.items():
            loops[f"notify:{name}"] = lambda name=name: self.deliver(name)
            if hasattr(receiver, "resync"):
                loops[f"notify-resync:{name}"] = lambda name=name: self.resync(name)
        return loops

    async def prime(self) -> None:
        """Before the server serves: with notifications on and no watermark yet, start
        routing at the newest alert change (the history is not sent; what fires from
        now on is, even before the router's first pass)."""
        if self.settings.enabled:
            await self.store.route_new_changes((), now=self.clock(), limit=0)

    # -- router ----------------------------------------------------------------

    async def route(self) -> None:
        """Forever: route new changes, plan repeats, lapse silences; wake the senders."""
        while True:
            await self.route_once()
            await asyncio.sleep(self.settings.poll_interval_s)

    async def route_once(self) -> int:
        """One pass of the router; returns the alert changes read.

        Changes are routed in chunks of :data:`ROUTE_CHUNK`, each its own short
        transaction, so 5,000 alerts fired at once never hold the writer for long.
        """
        now = self.clock()
        read = 0
        if now - self._last_silence_check >= SILENCE_CHECK_S:
            await self.store.lapse_silences(now=now, since=self._last_silence_check)
            self._last_silence_check = now
        if not self.settings.enabled:
            return 0
        while True:
            chunk = await self.store.route_new_changes(
                self.settings.routes, now=now, limit=ROUTE_CHUNK
            )
            read += chunk
            if chunk < ROUTE_CHUNK:
                break
            await asyncio.sleep(0)  # let ingest and the streams in between chunks
        await self.store.plan_repeats(self.routes, now=now)
        self.metrics.set_pending(await self.store.notification_counts())
        for event in self._wake.values():
            event.set()
        return read

    # -- delivery --------------------------------------------------------------

    async def deliver(self, name: str) -> None:
        """Forever: send ``name``'s due groups, then sleep until the next is due (or woken)."""
        wake = self._wake[name]
        while True:
            upcoming = await self.deliver_due(name)
            wait = self.settings.poll_interval_s * 5
            if upcoming is not None:
                wait = min(wait, max(0.0, upcoming - self.clock()))
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=max(wait, 0.05))

    async def deliver_due(self, name: str) -> float | None:
        """Send every group of receiver ``name`` that is due now; returns when the next is due."""
        groups, upcoming = await self.store.due_groups(name, self.routes, now=self.clock())
        for group in groups:
            await self._send_group(group)
        return upcoming

    async def _send_group(self, group: DueGroup) -> None:
        claimed = await self.store.claim_batch(group)
        if claimed is None:
            return
        # Decoded after the commit: a big group must not hold the writer (and ingest).
        if len(self._decoded) > DECODED_CACHE:
            self._decoded.clear()
        notification = claimed.notification(self.settings.dashboard_url, self._decoded)
        delivery = await self.send(notification)
        now = self.clock()
        state = await self.store.finish_batch(
            notification,
            delivery,
            now=now,
            max_age_s=self.settings.max_age_s,
            backoff_base_s=self.settings.retry_backoff_s,
            backoff_cap_s=self.settings.max_retry_backoff_s,
        )
        self.metrics.record(notification, delivery, state, now=now)
        if state == "failed":
            log.warning(
                "notification %s to %s failed for good: %s %s",
                notification.key,
                notification.receiver,
                delivery.status,
                delivery.detail[:300],
            )
        elif state == "sending":
            log.info(
                "notification %s to %s not delivered (%s); will retry",
                notification.key,
                notification.receiver,
                delivery.status,
            )

    async def send(self, notification: Notification) -> Delivery:
        """Hand ``notification`` to its receiver; a receiver that raises or hangs is a
        retryable failure, never the end of the loop."""
        receiver = self.receivers.get(notification.receiver)
        if receiver is None:
            return Delivery(
                ok=False,
                status="no such receiver",
                detail=f"receiver {notification.receiver!r} is no longer configured",
                retry=False,
            )
        try:
            return await asyncio.wait_for(receiver.send(notification), SEND_GUARD_S)
        except TimeoutError:
            return Delivery(ok=False, status="timeout", detail=f"no answer in {SEND_GUARD_S} s")
        except Exception as exc:  # a receiver bug must not stop the others
            log.exception("receiver %s raised", notification.receiver)
            return Delivery(ok=False, status="error", detail=f"{type(exc).__name__}: {exc}")

    # -- resync (Alertmanager) ---------------------------------------------------

    async def resync(self, name: str) -> None:
        """Forever: post the firing, unsilenced alerts the receiver's routes match."""
        receiver: Any = self.receivers[name]
        routes = [r for r in self.settings.routes if name in r.receivers]
        while True:
            alerts = [
                a
                for a in await self.store.open_alerts()
                if not a.get("silenced") and any(r.matches(a) for r in routes)
            ]
            delivery = await receiver.resync(alerts)
            if not delivery.ok:
                log.info("resync of %s failed: %s %s", name, delivery.status, delivery.detail)
            await asyncio.sleep(receiver.resync_interval_s)

    async def close(self) -> None:
        """Close every receiver's connections."""
        for receiver in self.receivers.values():
            try:
                await receiver.close()
            except Exception:  # closing must not stop the shutdown
                log.exception("closing receiver %s", getattr(receiver, "name", "?"))
