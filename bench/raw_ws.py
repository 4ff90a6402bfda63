"""A minimal WebSocket client for load generation: RFC 6455 frames parsed by hand.

The ``websockets`` client costs ~40 µs of CPU per received frame; with 1,000
clients on one load core that saturates the core and the benchmark measures
the clients, not the server. This one reads unfragmented, unmasked server
frames straight from the byte stream in ``data_received`` (no coroutine per
frame), answers pings, and hands each text message to a callback. Bench only:
no extensions, no fragmentation, no TLS.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable
from urllib.parse import urlsplit

OP_TEXT = 0x1
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA


def _client_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (clients must mask, RFC 6455 5.3)."""
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    length = len(payload)
    if length < 126:
        header = bytes([0x80 | opcode, 0x80 | length])
    elif length < 1 << 16:
        header = bytes([0x80 | opcode, 0x80 | 126]) + length.to_bytes(2, "big")
    else:
        header = bytes([0x80 | opcode, 0x80 | 127]) + length.to_bytes(8, "big")
    return header + mask + masked


class RawWebSocket(asyncio.Protocol):
    """One connection; ``on_message(payload: bytes)`` per text message, ``on_close(reason)``."""

    def __init__(
        self, url: str, on_message: Callable[[bytes], None], on_close: Callable[[str], None]
    ):
        self.url = urlsplit(url)
        self.on_message = on_message
        self.on_close = on_close
        self.buffer = bytearray()
        self.offset = 0
        self.open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        key = base64.b64encode(os.urandom(16)).decode()
        target = self.url.path + (f"?{self.url.query}" if self.url.query else "")
        request = (
            f"GET {target} HTTP/1.1\r\nHost: {self.url.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        transport.write(request.encode())  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.open.done():
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(self.buffer[: self.buffer.find(b"\r\n")])
            if b" 101 " not in status:
                self.open.set_exception(ConnectionError(status.decode(errors="replace")))
                return
            self.open.set_result(None)
            self.offset = end + 4
        self._parse()

    def _parse(self) -> None:
        buffer = self.buffer
        pos = self.offset
        size = len(buffer)
        while size - pos >= 2:
            opcode = buffer[pos] & 0x0F
            length = buffer[pos + 1] & 0x7F
            head = 2
            if length == 126:
                if size - pos < 4:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
                head = 4
            elif length == 127:
                if size - pos < 10:
                    break
                length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
                head = 10
            if size - pos < head + length:
                break
            payload = bytes(buffer[pos + head : pos + head + length])
            pos += head + length
            if opcode == OP_TEXT:
                self.on_message(payload)
            elif opcode == OP_PING and self.transport is not None:
                self.transport.write(_client_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                self._finish(f"{code} {payload[2:].decode(errors='replace')}")
        # Compact now and then, not per frame: deleting from the front is a copy.
        if pos > 1 << 16 or pos == size:
            del buffer[:pos]
            pos = 0
        self.offset = pos

    def _finish(self, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.on_close(reason)
            if self.transport is not None:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.open.done():
            self.open.set_exception(exc or ConnectionError("closed during the handshake"))
        self._finish(f"connection lost: {exc}" if exc else "no close frame")


async def connect_raw(
    url: str, on_message: Callable[[bytes], None], on_close: Callable[[str], None]
) -> RawWebSocket:
    """Open a connection and wait for the 101 answer."""
    parts = urlsplit(url)
    loop = asyncio.get_running_loop()
    _, protocol = await loop.create_connection(
        lambda: RawWebSocket(url, on_message, on_close), parts.hostname, parts.port
    )
    await asyncio.wait_for(protocol.open, 60)
    return protocol
