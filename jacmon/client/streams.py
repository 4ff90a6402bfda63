"""The resilient stream client: one WebSocket per stream that reconnects and resumes by itself.

:class:`StreamClient` keeps one connection to ``/ws/<stream>`` open for as
long as :meth:`StreamClient.run` runs. When the connection drops it waits a
full-jitter exponential backoff (0.5 s base, 30 s cap) and reconnects with
``?since=<last seq>``, so the server replays what was missed, or sends a
snapshot marked ``reset`` when that is older than its replay window. The
client knows nothing of Textual: it hands decoded envelopes to ``on_frame``
and its :class:`ConnectionStatus` to ``on_status``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI, WebSocketException
from websockets.frames import Close

from jacmon.errors import ProtocolError, UsageError
from jacmon.protocol import CloseCode, ServerType, decode_envelope

logger = logging.getLogger(__name__)

#: Frame types that carry stream data and advance the client's ``seq``.
DATA_TYPES = frozenset(
    {
        ServerType.SNAPSHOT,
        ServerType.EVENTS,
        ServerType.PROGRESS,
        ServerType.SAMPLE,
        ServerType.ALERT,
    }
)

# Connection states, as the status panel shows them.
CONNECTING = "connecting"
CONNECTED = "connected"
RECONNECTING = "reconnecting"
OFFLINE = "offline"
#: The server refused the token (HTTP 401/403): retrying cannot help, so the client waits
#: for :meth:`StreamClient.refresh` (the user fixed something) instead of backing off.
REJECTED = "rejected"


def backoff_delay(
    attempt: int, *, base_s: float = 0.5, cap_s: float = 30.0, rng: random.Random | None = None
) -> float:
    """Seconds to wait before reconnect ``attempt`` (0 = first retry): full jitter.

    Uniform in ``[0, min(cap_s, base_s * 2**attempt)]``, so many clients that
    lost the same server do not all come back at the same instant.
    """
    ceiling = min(cap_s, base_s * (2 ** min(attempt, 30)))
    return (rng or random).uniform(0.0, ceiling)


def stream_url(
    server_url: str, stream: str, *, since: int | None = None, learner: str | None = None
) -> str:
    """``ws://host:port`` + stream -> ``ws://host:port/ws/<stream>?since=N&learner=ID``."""
    parts = urlsplit(server_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise UsageError(
            f"server URL {server_url!r} is not a WebSocket URL; "
            "expected ws://HOST:PORT or wss://HOST:PORT"
        )
    query = {}
    if since:
        query["since"] = str(since)
    if learner:
        query["learner"] = learner
    url = server_url.rstrip("/") + f"/ws/{stream}"
    return url + ("?" + urlencode(query) if query else "")


@dataclass(slots=True, frozen=True)
class ConnectionStatus:
    """What the status panel shows for one stream; times are seconds since the epoch."""

    stream: str
    state: str = OFFLINE
    #: Why the last connection failed or closed (None while all is well).
    reason: str | None = None
    #: When the next reconnect attempt starts (state ``reconnecting``).
    retry_at: float | None = None
    #: When the last frame of any kind arrived (None: never).
    last_message_at: float | None = None
    #: Round-trip time of the last ping, in seconds (None: not measured yet).
    rtt_s: float | None = None
    #: Connections opened after the first one.
    reconnects: int = 0
    #: How the last (re)connect went: ``fresh``, ``resumed`` or ``reset``.
    last_connect: str | None = None
    #: The last data ``seq`` received (0: none yet).
    seq: int = 0
    server_id: str | None = None
    epoch: Any = None


class StreamClient:
    """Keep one stream flowing into ``on_frame``, reconnecting and resuming as needed.

    ``server_url`` is the base URL (``ws://127.0.0.1:8765``). ``token`` is sent
    as ``Authorization: Bearer``; None sends none. ``learner`` scopes the
    stream to one learner; None sees everyone.
    """

    def __init__(
        self,
        server_url: str,
        stream: str,
        *,
        token: str | None = None,
        learner: str | None = None,
        on_frame: Callable[[dict[str, Any]], None],
        on_status: Callable[[ConnectionStatus], None] | None = None,
        # Timeouts
        open_timeout_s: float = 5.0,
        ping_interval_s: float = 5.0,
        # Backoff
        backoff_base_s: float = 0.5,
        backoff_cap_s: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        stream_url(server_url, stream)  # fail now on a bad URL, not in the worker
        self.server_url = server_url
        self.stream = stream
        self.token = token
        self.learner = learner
        self.on_frame = on_frame
        self.on_status = on_status
        self.open_timeout_s = open_timeout_s
        self.ping_interval_s = ping_interval_s
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.rng = rng or random.Random()
        self.status = ConnectionStatus(stream=stream)
        self._ws: ClientConnection | None = None
        self._connections = 0
        self._sent_since: int | None = None
        self._ping_id = 0
        self._pings: dict[int, float] = {}
        self._retry_now = asyncio.Event()
        self._received = False

    # -- status ---------------------------------------------------------------

    def _set(self, **changes: Any) -> None:
        self.status = replace(self.status, **changes)
        if self.on_status is not None:
            self.on_status(self.status)

    @property
    def connected(self) -> bool:
        """Connected and greeted: client messages can be sent."""
        return self._ws is not None and self.status.state == CONNECTED

    # -- control --------------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> bool:
        """Send one client message; False (and nothing sent) when not connected."""
        if not self.connected:
            return False
        try:
            await self._ws.send(json.dumps(message))
        except ConnectionClosed:
            return False
        return True

    async def refresh(self) -> bool:
        """Ask for a fresh snapshot; when disconnected, retry the connection now instead."""
        if await self.send({"type": "refresh"}):
            return True
        self._retry_now.set()
        return False

    async def ping(self) -> bool:
        """Send one ``ping``; the ``pong`` sets :attr:`ConnectionStatus.rtt_s`."""
        self._ping_id += 1
        self._pings[self._ping_id] = time.monotonic()
        # Unanswered pings of a dead connection must not pile up.
        while len(self._pings) > 16:
            self._pings.pop(next(iter(self._pings)))
        return await self.send({"type": "ping", "id": self._ping_id})

    # -- the loop -------------------------------------------------------------

    async def run(self) -> None:
        """Connect, read, reconnect, forever (until cancelled)."""
        attempt = 0
        try:
            while True:
                received = False
                rejected = False
                try:
                    received, code, reason = await self._session()
                except InvalidStatus as exc:
                    status = exc.response.status_code
                    body = exc.response.body.decode(errors="replace").strip()[:200]
                    rejected = status in (401, 403)
                    if rejected:
                        reason = f"token rejected: check --token (HTTP {status} {body})"
                    else:
                        reason = f"server refused: HTTP {status} {body}"
                    code = None
                except InvalidURI as exc:
                    code, reason = None, f"bad server URL: {exc}"
                except (OSError, TimeoutError) as exc:
                    code, reason = None, f"cannot reach {self.server_url}: {_describe(exc)}"
                except (WebSocketException, ProtocolError) as exc:
                    received = self._received
                    code, reason = None, f"protocol error: {exc}"
                except Exception as exc:
                    # A bug here must not end the stream for good: log it, show it, retry.
                    logger.exception("%s: unexpected error", self.stream)
                    received = self._received
                    code, reason = None, f"client error: {type(exc).__name__}: {exc}"
                if rejected:
                    await self._wait_for_retry_request(reason)
                    continue
                if code == CloseCode.TOO_SLOW:
                    # The server dropped us for lagging: resume at once, no backoff.
                    attempt, delay_s = 0, 0.0
                else:
                    attempt = 0 if received else attempt + 1
                    delay_s = backoff_delay(
                        attempt, base_s=self.backoff_base_s, cap_s=self.backoff_cap_s, rng=self.rng
                    )
                self._set(state=RECONNECTING, reason=reason, retry_at=time.time() + delay_s)
                logger.debug("%s: %s; retry in %.2f s", self.stream, reason, delay_s)
                self._retry_now.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._retry_now.wait(), delay_s)
        finally:
            self._ws = None
            self._set(state=OFFLINE, retry_at=None)

    async def _wait_for_retry_request(self, reason: str) -> None:
        """Stay ``rejected`` (no retries) until :meth:`refresh` asks to try again."""
        self._set(state=REJECTED, reason=reason, retry_at=None)
        logger.debug("%s: %s; waiting for a refresh", self.stream, reason)
        self._retry_now.clear()
        await self._retry_now.wait()

    async def _session(self) -> tuple[bool, int | None, str]:
        """One connection: open, read until closed.

        Returns whether data arrived, the close code received (None: none) and
        a human reason for the status panel.
        """
        self._received = False
        since = self.status.seq or None
        self._sent_since = since
        url = stream_url(self.server_url, self.stream, since=since, learner=self.learner)
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        self._set(state=CONNECTING, retry_at=None)
        ws = await connect(
            url,
            additional_headers=headers,
            open_timeout=self.open_timeout_s,
            max_size=None,
            compression=None,
            # Our own pings measure RTT; the library's keepalive still detects dead peers.
            ping_interval=20,
        )
        self._connections += 1
        self._ws = ws
        self._pings.clear()
        pinger = asyncio.create_task(self._ping_loop())
        try:
            # An abnormal close is reported below from the close frame, like a clean one.
            with contextlib.suppress(ConnectionClosed):
                async for frame in ws:
                    self._receive(decode_envelope(frame))
                    self._received = True
        finally:
            pinger.cancel()
            self._ws = None
            with contextlib.suppress(asyncio.CancelledError):
                await pinger
            await ws.close()
        rcvd = ws.protocol.close_rcvd
        return self._received, (rcvd.code if rcvd else None), _close_reason(rcvd)

    async def _ping_loop(self) -> None:
        while True:
            await self.ping()
            await asyncio.sleep(self.ping_interval_s)

    def _receive(self, envelope: dict[str, Any]) -> None:
        kind = envelope["type"]
        data = envelope.get("data")
        now = time.time()
        if kind == ServerType.HELLO:
            resumed = bool(isinstance(data, dict) and data.get("resumed"))
            first = self._connections == 1
            self._set(
                state=CONNECTED,
                reason=None,
                retry_at=None,
                last_message_at=now,
                reconnects=self._connections - 1,
                last_connect=(
                    "fresh" if first or not self._sent_since else "resumed" if resumed else "reset"
                ),
                server_id=(data or {}).get("server_id"),
                epoch=(data or {}).get("epoch"),
            )
            return
        if kind == ServerType.PONG:
            sent = self._pings.pop((data or {}).get("id"), None)
            if sent is not None:
                self._set(rtt_s=time.monotonic() - sent, last_message_at=now)
            return
        if kind == ServerType.SNAPSHOT and isinstance(data, dict) and data.get("reset"):
            self._set(last_connect="reset")
        if kind in DATA_TYPES:
            seq = envelope["seq"]
            if kind == ServerType.EVENTS and self.status.seq and seq <= self.status.seq:
                # Already seen (overlap after a resume): never show an event twice.
                self._set(last_message_at=now)
                return
            if kind == ServerType.EVENTS and self.status.seq:
                events = [e for e in data.get("events", []) if e.get("seq", 0) > self.status.seq]
                envelope = {**envelope, "data": {**data, "events": events}}
            # A snapshot restarts the numbering (a new server epoch may count from 0).
            new_seq = seq if kind == ServerType.SNAPSHOT else max(seq, self.status.seq)
            self._set(seq=new_seq, last_message_at=now)
        else:
            self._set(last_message_at=now)
        self.on_frame(envelope)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is `jacmon serve` running there?)"
    return str(exc) or type(exc).__name__


def _close_reason(frame: Close | None) -> str:
    if frame is None:
        return "connection lost"
    names = {
        CloseCode.GOING_AWAY: "server going away",
        CloseCode.TOO_SLOW: "too slow, resuming",
        CloseCode.POLICY: "refused by policy",
        CloseCode.TOKEN_REVOKED: "token revoked",
    }
    label = names.get(frame.code, f"closed {frame.code}")
    return f"{label}: {frame.reason}" if frame.reason else label
