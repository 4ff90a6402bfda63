"""Stream sessions: one client of ``/ws/dashboard``, ``alerts``, ``metrics`` or ``activity``.

Every session starts, and every ``resume``/``refresh`` restarts, through
:meth:`StreamSessions.sync`, the one place of the handshake that loses nothing:
the client is registered with the hub first (live items then wait in its sync
buffer), its snapshot or replay is read, and it goes live with the buffered
items after it, filtered by seq (nothing missed, nothing twice).
"""

from __future__ import annotations

import math
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from jacmon import __version__
from jacmon.errors import JacmonError, ProtocolError
from jacmon.events import describe, is_valid_unicode
from jacmon.protocol import (
    PROTOCOL_VERSION,
    ClientType,
    ServerType,
    Stream,
    decode_client_message,
    envelope,
    error_data,
    parse_ack_expiry,
    parse_ack_note,
    parse_alert_id,
    parse_since,
)
from jacmon.server.auth import Principal
from jacmon.server.context import ServerContext
from jacmon.server.hub import Subscriber
from jacmon.server.streams import initial_frames


class StreamSessions:
    """Serves the stream connections of one server."""

    def __init__(self, ctx: ServerContext):
        self.ctx = ctx

    async def serve(
        self,
        ws: ServerConnection,
        stream: Stream,
        principal: Principal,
        learner: str | None,
        since: int | None,
    ) -> None:
        """Serve one stream client until it disconnects."""
        ctx = self.ctx
        sub = Subscriber(ws, stream, learner, ctx.settings.client_buffer_frames)
        sub.token_id = principal.token_id
        watching = stream == Stream.METRICS and learner is not None
        if watching:
            ctx.sampler.watch_learner(learner, ctx.store)
        ctx.hub.add(sub)
        try:
            await self.sync(sub, since, given=None)
            async for raw in ws:
                await self._on_client_message(sub, principal, raw)
        except ConnectionClosed:
            pass
        finally:
            await ctx.hub.remove(sub)
            if watching:
                ctx.sampler.unwatch_learner(learner)

    async def sync(self, sub: Subscriber, since: int | None, *, given: int | None) -> None:
        """Bring ``sub`` up to date and live: hello, then the replay after ``since`` (if the
        store still holds it) or a snapshot, then what arrived meanwhile.

        ``given`` is what the client was already given on this connection (None for a new
        one). A registered subscriber is buffering while ``syncing``; frames already queued
        for it still reach it before the new hello, so a resume replays only what comes
        after both ``since`` and ``given``.
        """
        sub.syncing = True
        frames, resumed = await initial_frames(self.ctx, sub, since)
        if given is None:
            given = since if resumed and since is not None else 0
        self.ctx.hub.go_live(sub, [*self._hello(sub, resumed, given), *frames])

    def _hello(self, sub: Subscriber, resumed: bool, given: int) -> list[bytes]:
        """``hello`` (and its earlier-design alias) for a client given data up to ``given``.

        Its ``seq`` is ``given``, never the stream head (``data.head_seq``): resuming
        from any frame's seq must not skip what the client has not received yet.
        """
        ctx = self.ctx
        data = {
            "server_id": ctx.store.server_id,
            "epoch": ctx.epoch,
            "stream": sub.stream.value,
            "seq": given,
            "head_seq": ctx.hub.seq[sub.stream],
            "learner": sub.learner,
            "protocol": PROTOCOL_VERSION,
            "resumed": resumed,
            "version": __version__,
            # The server's clock, for ages and ack expiries: simulated (and faster) in the demo.
            "clock": {"now": round(ctx.now(), 3), "rate": ctx.clock_rate},
        }
        return [
            envelope(sub.stream, ServerType.HELLO, given, data),
            # For clients of the earlier design.
            envelope(sub.stream, ServerType.CONNECTION_ESTABLISHED, given, data),
        ]

    def _reply(self, sub: Subscriber, kind: ServerType, data: Any) -> None:
        """Queue a non-data frame; its seq is the last data seq this client was given."""
        self.ctx.hub.send_direct(sub, envelope(sub.stream, kind, sub.delivered_seq, data))

    def _error(self, sub: Subscriber, code: str, message: str, **details: Any) -> None:
        self._reply(sub, ServerType.ERROR, error_data(code, message, **details))

    async def _resync(self, sub: Subscriber, since: int | None) -> None:
        """Answer ``resume`` (``since`` given) or ``refresh``: hello, then replay or snapshot."""
        given = sub.delivered_seq
        if since is not None and since <= given:
            since = given
        await self.sync(sub, since, given=given)

    async def _on_client_message(self, sub: Subscriber, principal: Principal, raw) -> None:
        try:
            message = decode_client_message(raw)
        except ProtocolError as exc:
            self._error(sub, "bad_message", str(exc))
            return
        body = message.body
        if message.type == ClientType.PING:
            ping_id = body.get("id")
            if not _echoable(ping_id):
                self._error(
                    sub,
                    "bad_message",
                    f"ping 'id' is {describe(ping_id)}; expected null, a number or a short text",
                )
                return
            self._reply(sub, ServerType.PONG, {"id": ping_id})
        elif message.type == ClientType.REFRESH:
            await self._resync(sub, None)
        elif message.type == ClientType.RESUME:
            try:
                since = parse_since(body.get("since"), "resume 'since'")
            except ProtocolError as exc:
                self._error(sub, "bad_message", str(exc))
                return
            await self._resync(sub, since)
        elif message.type in (ClientType.ACK, ClientType.UNACK):
            await self._acknowledge(sub, principal, message.type, body)
        else:
            self._error(
                sub,
                "bad_message",
                f"message type {message.type.value!r} is not for /ws/{sub.stream.value}",
            )

    async def _acknowledge(
        self, sub: Subscriber, principal: Principal, kind: ClientType, body: dict
    ) -> None:
        """Acknowledge (``ack``) or withdraw the acknowledgement (``unack``) of one alert.

        Both need the same permission and both are scoped: another learner's alert
        is answered exactly as a missing one. The result reaches every client as an
        alert change on the stream, not as a reply.
        """
        verb = "acknowledge" if kind == ClientType.ACK else "un-acknowledge"
        if sub.stream != Stream.ALERTS:
            self._error(sub, "bad_message", f"{verb} alerts on /ws/alerts")
            return
        if not principal.may_ack():
            self._error(
                sub,
                "forbidden",
                f"token {principal.name!r} may not {verb} alerts; it needs the "
                "admin role or a viewer token created with --can-ack",
            )
            return
        # The server's clock: alert times and expiries are on it (simulated in the demo).
        now = self.ctx.now()
        try:
            alert_id = parse_alert_id(body.get("alert_id", body.get("id")), kind.value)
            note = parse_ack_note(body.get("note"), kind.value)
            if kind == ClientType.ACK:
                expires_at = parse_ack_expiry(body.get("expires_at"), now)
        except ProtocolError as exc:
            self._error(sub, "bad_message", str(exc))
            return
        store = self.ctx.store
        try:
            if kind == ClientType.ACK:
                await store.acknowledge_alert(
                    alert_id,
                    by=principal.name,
                    note=note,
                    expires_at=expires_at,
                    now=now,
                    # Scope applies to actions too: another learner's alert is "does not exist".
                    learner=sub.learner,
                )
            else:
                await store.unacknowledge_alert(
                    alert_id, by=principal.name, note=note, now=now, learner=sub.learner
                )
        except JacmonError as exc:
            code = "ack_failed" if kind == ClientType.ACK else "unack_failed"
            self._error(sub, code, str(exc), alert_id=alert_id)
            return
        self.ctx.nudge_alerts()


def _echoable(value: Any) -> bool:
    """True for a ping ``id`` that can be echoed as sent: null, a JSON number, short text."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return not isinstance(value, float) or math.isfinite(value)
    return isinstance(value, str) and len(value) <= 256 and is_valid_unicode(value)
