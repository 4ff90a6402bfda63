"""A client for the server's ``/ws/ingest`` endpoint: send batches, get acknowledgements.

Used by ``jacmon ingest``, the simulator and the LRS tailer. An acknowledgement
arrives only after the server committed the batch, so an acknowledged event is
durable.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from jacmon.errors import JacmonError


@dataclass(slots=True)
class Rejection:
    """One event the server refused: its index in the batch and why."""

    index: int
    error: str


@dataclass(slots=True)
class Ack:
    """The server's answer to one batch."""

    accepted: int
    duplicates: int
    rejected: list[Rejection] = field(default_factory=list)
    #: Store sequence number of the last event accepted so far (0 if none ever).
    last_seq: int = 0

    @classmethod
    def from_message(cls, data: dict[str, Any]) -> Ack:
        return cls(
            accepted=int(data["accepted"]),
            duplicates=int(data["duplicates"]),
            rejected=[Rejection(int(r["index"]), str(r["error"])) for r in data["rejected"]],
            last_seq=int(data.get("last_seq", 0)),
        )


class IngestClient:
    """One WebSocket connection to ``/ws/ingest``; use as an async context manager.

    ``server`` is the base URL (``ws://127.0.0.1:8765``); ``token`` is sent as
    ``Authorization: Bearer``; ``None`` sends none (fine on loopback by default).
    """

    def __init__(self, server: str, *, token: str | None = None, open_timeout: float = 10.0):
        self.url = server.rstrip("/") + "/ws/ingest"
        self.token = token
        self.open_timeout = open_timeout
        self._ws: ClientConnection | None = None

    async def __aenter__(self) -> IngestClient:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        try:
            self._ws = await connect(
                self.url,
                additional_headers=headers,
                compression=None,
                max_size=None,
                open_timeout=self.open_timeout,
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode(errors="replace").strip()
            raise JacmonError(
                f"server at {self.url} refused the connection: "
                f"HTTP {exc.response.status_code} {body}"
            ) from None
        except (OSError, TimeoutError) as exc:
            raise JacmonError(
                f"cannot reach a jacmon server at {self.url} ({exc}); "
                "start one with 'jacmon serve' or pass --server"
            ) from None
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._ws is not None:
            await self._ws.close()

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        """Send ``events`` (decoded JSON values) as one frame and wait for the ack.

        ``cursor`` (name, value) is stored by the server in the same transaction
        as the batch: a producer's watermark that can never run ahead of, or
        behind, the events it covers. Read it back with :meth:`get_cursor`.
        """
        if cursor is None:
            return await self.send_raw(json.dumps(list(events), separators=(",", ":")))
        message = {
            "type": "batch",
            "events": list(events),
            "cursor": {"name": cursor[0], "value": cursor[1]},
        }
        return await self.send_raw(json.dumps(message, separators=(",", ":")))

    async def get_cursor(self, name: str) -> str | None:
        """The value last stored for cursor ``name`` with a batch, or None if never."""
        reply = await self._request({"type": "cursor.get", "name": name}, "cursor")
        return reply["value"]

    async def _exchange(self, frame: str | bytes, answer_type: str, refused: str) -> dict[str, Any]:
        """Send ``frame``; the ``data`` of the first reply of ``answer_type``.

        An ``error`` reply raises JacmonError as ``"<refused>: <server's message>"``.
        """
        assert self._ws is not None, "use IngestClient as 'async with'"
        try:
            await self._ws.send(frame)
            while True:
                reply = json.loads(await self._ws.recv())
                if reply.get("type") == answer_type:
                    return reply["data"]
                if reply.get("type") == "error":
                    raise JacmonError(f"{refused}: {reply['data']['message']}")
        except ConnectionClosed as exc:
            reason = exc.rcvd.reason if exc.rcvd else "no close frame"
            raise JacmonError(f"server closed the ingest connection: {reason}") from None

    async def _request(self, message: dict[str, Any], answer_type: str) -> dict[str, Any]:
        return await self._exchange(
            json.dumps(message), answer_type, f"server refused {message['type']}"
        )

    async def send_raw(self, frame: str | bytes) -> Ack:
        """Send one already-encoded JSON array frame and wait for its ack."""
        return Ack.from_message(await self._exchange(frame, "ack", "server rejected the batch"))
