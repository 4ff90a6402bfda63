"""One TCP connection on jacmon's port: a WebSocket, a page, or an HTTP request with a body.

websockets reads the handshake and answers plain HTTP (``/healthz``, the pages)
through ``process_request``, but it refuses a request with a body. Platforms
push xAPI statements and Caliper envelopes as ``POST``/``PUT`` bodies to the same
port, so :class:`JacmonConnection` looks at the request's head first: a path the
push endpoints own (:class:`PushTarget`), or a request with a body of another
method than GET and HEAD on any path, is read here (head, then a body of
``Content-Length`` bytes, bounded) and answered by them, with keep-alive; any
other request is handed to websockets unchanged, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers

log = logging.getLogger("jacmon.server")

#: Longest request head (request line and headers) accepted, in bytes (431 above).
MAX_HEAD_BYTES = 16 * 1024
#: How long a request may take to arrive once its first byte has, in seconds (408 after).
REQUEST_TIMEOUT_S = 60.0
#: How long an idle keep-alive connection stays open between requests, in seconds.
KEEP_ALIVE_S = 30.0
#: How often an idle keep-alive connection checks whether the server is shutting down, in s.
SHUTDOWN_POLL_S = 0.5


@dataclass(slots=True)
class HttpRequest:
    """One request with its body, as the push endpoints see it."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: Headers
    body: bytes
    #: The peer's address (host, port), for the log.
    peer: Any = None


@dataclass(slots=True)
class HttpReply:
    """What to send back: status, body, headers (the content type among them)."""

    status: HTTPStatus
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)


class PushTarget(Protocol):
    """The endpoints that read request bodies (:class:`jacmon.server.push.PushEndpoints`)."""

    def owns(self, path: str) -> bool:
        """Whether requests to ``path`` (without the query) are answered here."""

    async def answer(self, request: HttpRequest) -> HttpReply:
        """The reply to one request; never raises."""

    def limit_reply(self, request: HttpRequest, length: int) -> HttpReply | None:
        """A 413 if a body of ``length`` bytes is too large for ``request``, else None."""

    def finish(self, reply: HttpReply) -> HttpReply:
        """``reply`` with the headers every response carries."""


class _BadRequest(Exception):
    """The request cannot be read: answer with this status and reason, then close."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _request_path(target: bytes) -> str:
    return urlsplit(target.decode("latin-1")).path


#: Methods websockets takes a request of without a body (handshakes, pages, /healthz).
_WEBSOCKETS_METHODS = (b"GET", b"HEAD")


def _answered_here(push: PushTarget, head: bytes) -> bool | None:
    """Whether the request beginning with ``head`` is read and answered here (True) or by
    websockets (False); None while too little of its head has arrived to tell.

    Here: a push path, and a request of another method that declares a body
    (``Content-Length`` or ``Transfer-Encoding``) on any path: websockets closes the
    connection without a word on a body, while the push endpoints answer 405 naming the
    paths that take one. Anything else stays websockets' (its pages answer other
    methods without a body themselves).
    """
    line_end = head.find(b"\r\n")
    if line_end < 0:
        return None if len(head) < MAX_HEAD_BYTES else False
    parts = head[:line_end].split(b" ")
    if len(parts) != 3:
        return False
    if push.owns(_request_path(parts[1])):
        return True
    if parts[0] in _WEBSOCKETS_METHODS:
        return False
    head_end = head.find(b"\r\n\r\n")
    if head_end < 0:
        return None if len(head) < MAX_HEAD_BYTES else False
    names = (
        line.partition(b":")[0].strip().lower() for line in head[line_end:head_end].split(b"\r\n")
    )
    return any(name in (b"content-length", b"transfer-encoding") for name in names)


class JacmonConnection(ServerConnection):
    """A websockets server connection that answers the push endpoints' requests itself.

    Until the first request line has arrived, incoming bytes are held; then the
    connection either becomes what websockets makes of it (the bytes replayed) or
    an HTTP/1.1 connection serving push requests until the client closes it, it is
    idle for :data:`KEEP_ALIVE_S` or the server shuts down.
    """

    def __init__(self, *args: Any, push: PushTarget, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._push = push
        self._mode = "sniff"
        self._held = bytearray()
        self._inbox = bytearray()
        self._arrived = asyncio.Event()
        self._eof = False
        self._paused = False
        self._ws_task: asyncio.Task[None] | None = None
        self._max_body = 0

    # asyncio protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        before = set(self.server.handler_tasks)
        super().connection_made(transport)
        started = self.server.handler_tasks - before
        self._ws_task = started.pop() if started else None

    def data_received(self, data: bytes) -> None:
        if self._mode == "websocket":
            super().data_received(data)
            return
        if self._mode == "http":
            self._take(data)
            return
        self._held += data
        here = _answered_here(self._push, bytes(self._held))
        if here is None:
            return  # too little of the head has arrived to tell
        if here:
            self._become_http()
        else:
            self._become_websocket()

    def eof_received(self) -> bool | None:
        if self._mode == "sniff":
            self._become_websocket()
        if self._mode == "websocket":
            return super().eof_received()
        self._eof = True
        self._arrived.set()
        return True  # keep the transport open: the reply is still to be written

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = True
        self._arrived.set()
        super().connection_lost(exc)

    # Choosing

    def _become_websocket(self) -> None:
        self._mode = "websocket"
        held, self._held = bytes(self._held), bytearray()
        if held:
            super().data_received(held)

    def _become_http(self) -> None:
        self._mode = "http"
        # websockets' handler waits for a handshake that will not come: stop it, and
        # serve the requests from a task the server waits for on shutdown as it would.
        if self._ws_task is not None:
            self._ws_task.cancel()
        task = self.loop.create_task(self._serve_http())
        self.server.handler_tasks.add(task)
        task.add_done_callback(self.server.handler_tasks.discard)
        held, self._held = bytes(self._held), bytearray()
        self._take(held)

    def _take(self, data: bytes) -> None:
        self._inbox += data
        self._arrived.set()
        if not self._paused and len(self._inbox) > self._max_body + MAX_HEAD_BYTES:
            self.transport.pause_reading()
            self._paused = True

    # HTTP

    async def _serve_http(self) -> None:
        peer = self.transport.get_extra_info("peername")
        try:
            while True:
                try:
                    request = await self._read_request(peer)
                except _Closed:
                    return
                except _HandOver:
                    # A keep-alive client asks for another path (/healthz, a page, a
                    # WebSocket) on this connection: websockets takes it from here.
                    self._hand_over()
                    return
                except _BadRequest as bad:
                    # The push endpoints' one error shape, before a request could be read.
                    body = {"error": True, "message": bad.reason, "code": bad.status.value}
                    reply = HttpReply(
                        bad.status,
                        json.dumps(body).encode(),
                        [("Content-Type", "application/json")],
                    )
                    self._write(self._push.finish(reply), keep_alive=False)
                    return
                if request is None:
                    return
                reply = await self._push.answer(request)
                keep_alive = (
                    request.headers.get("Connection", "").lower() != "close"
                    and self.server.is_serving()
                    and not self._eof
                )
                self._write(reply, keep_alive=keep_alive)
                if not keep_alive:
                    return
        except Exception:
            log.exception("an HTTP request on the push endpoints failed")
        finally:
            if self._mode == "http":
                self.transport.close()

    def _hand_over(self) -> None:
        self._mode = "websocket"
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        task = self.loop.create_task(self.server.handler(self))
        self.server.handler_tasks.add(task)
        held, self._inbox = bytes(self._inbox), bytearray()
        super().data_received(held)
        if self._eof:
            super().eof_received()

    def _write(self, reply: HttpReply, *, keep_alive: bool) -> None:
        lines = [f"HTTP/1.1 {reply.status.value} {reply.status.phrase}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        lines.append(f"Content-Length: {len(reply.body)}")
        lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.transport.write(head + reply.body)

    async def _wait_for(self, ready: Callable[[], bool], deadline: float, idle: bool) -> bool:
        """Wait until ``ready()``; False when the peer closed, or (``idle``: no request
        begun) the connection idled out or the server is shutting down."""
        while not ready():
            if self._eof:
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                if idle:
                    return False
                raise _BadRequest(HTTPStatus.REQUEST_TIMEOUT, "the request did not arrive in time")
            if idle and not self.server.is_serving():
                return False
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), min(left, SHUTDOWN_POLL_S))
        return True

    async def _read_request(self, peer: Any) -> HttpRequest | None:
        """The next request on the connection, or None when there is none to serve."""
        idle_until = time.monotonic() + KEEP_ALIVE_S
        if not await self._wait_for(lambda: bool(self._inbox), idle_until, idle=True):
            return None
        until = time.monotonic() + REQUEST_TIMEOUT_S

        def head_done() -> bool:
            if b"\r\n\r\n" in self._inbox:
                return True
            if len(self._inbox) > MAX_HEAD_BYTES:
                raise _head_too_large()
            return False

        if not await self._wait_for(head_done, until, idle=False):
            return None
        end = self._inbox.find(b"\r\n\r\n")
        if not _answered_here(self._push, bytes(self._inbox[: end + 4])):
            raise _HandOver
        if end > MAX_HEAD_BYTES:  # head and body arrived together
            raise _head_too_large()
        head = bytes(self._inbox[:end]).decode("latin-1")
        del self._inbox[: end + 4]
        request = _parse_head(head, peer)
        if "Transfer-Encoding" in request.headers:
            raise _BadRequest(
                HTTPStatus.LENGTH_REQUIRED,
                "chunked request bodies are not accepted; send the body with Content-Length",
            )
        length_text = request.headers.get("Content-Length", "0").strip()
        if not length_text.isdigit() or len(request.headers.get_all("Content-Length")) > 1:
            raise _BadRequest(
                HTTPStatus.BAD_REQUEST,
                f"Content-Length {length_text[:40]!r} is not a whole number of bytes",
            )
        length = int(length_text)
        too_large = self._push.limit_reply(request, length)
        if too_large is not None:
            self._write(too_large, keep_alive=False)
            raise _Closed
        self._max_body = length
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        if length and request.headers.get("Expect", "").lower() == "100-continue":
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        if not await self._wait_for(lambda: len(self._inbox) >= length, until, idle=False):
            return None
        request.body = bytes(self._inbox[:length])
        del self._inbox[:length]
        return request


def _head_too_large() -> _BadRequest:
    return _BadRequest(
        HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
        f"the request head is over {MAX_HEAD_BYTES} bytes",
    )


class _HandOver(Exception):
    """The next request on the connection is not for the push endpoints."""


class _Closed(_BadRequest):
    """The reply was written already; close the connection."""

    def __init__(self) -> None:
        super().__init__(HTTPStatus.BAD_REQUEST, "")


def _parse_head(head: str, peer: Any) -> HttpRequest:
    """The request line and headers of ``head`` (without the blank line)."""
    request_line, _, header_text = head.partition("\r\n")
    parts = request_line.split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise _BadRequest(
            HTTPStatus.BAD_REQUEST, f"request line {request_line[:100]!r} is not HTTP/1.1"
        )
    method, target, _ = parts
    headers = Headers()
    for line in header_text.split("\r\n") if header_text else ():
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise _BadRequest(HTTPStatus.BAD_REQUEST, f"header line {line[:100]!r} is malformed")
        headers[name] = value.strip()
    parts_of = urlsplit(target)
    return HttpRequest(
        method=method,
        path=parts_of.path,
        query=parse_qs(parts_of.query, keep_blank_values=True),
        headers=headers,
        body=b"",
        peer=peer,
    )


def connection_factory(push: PushTarget) -> Callable[..., Awaitable[None] | JacmonConnection]:
    """The ``create_connection`` for websockets' ``serve``: connections that route push
    requests to ``push``."""

    def create(*args: Any, **kwargs: Any) -> JacmonConnection:
        return JacmonConnection(*args, push=push, **kwargs)

    return create
