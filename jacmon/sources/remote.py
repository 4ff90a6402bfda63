"""A jacmon server's ``/ws/ingest`` as a pump sink that survives the server going away.

``jacmon ingest --lrs --follow`` rides out server restarts: once connected,
every failure of the connection (or a batch the server could not store) is
:class:`~jacmon.sources.pump.SinkAway`, and :meth:`RemoteSink.reconnect` opens a
new connection when the pump retries. The first connection is not retried: a
wrong ``--server`` fails at once, with the client's message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from jacmon.client.ingest import Ack, IngestClient
from jacmon.errors import JacmonError
from jacmon.sources.pump import SinkAway

T = TypeVar("T")


class RemoteSink:
    """An :class:`IngestClient` to ``server`` that reconnects; use as an async context manager."""

    def __init__(self, server: str, *, token: str | None = None) -> None:
        self.server = server
        self.token = token
        self._client: IngestClient | None = None

    async def __aenter__(self) -> RemoteSink:
        self._client = await IngestClient(self.server, token=self.token).__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._close()

    async def reconnect(self) -> None:
        """Open a new connection; :class:`SinkAway` if the server is still away."""
        await self._close()
        try:
            self._client = await IngestClient(self.server, token=self.token).__aenter__()
        except JacmonError as exc:
            raise SinkAway(str(exc)) from None

    async def send_batch(
        self, events: Sequence[Any], *, cursor: tuple[str, str] | None = None
    ) -> Ack:
        """:meth:`IngestClient.send_batch`; any failure is :class:`SinkAway`."""
        return await self._call(lambda client: client.send_batch(events, cursor=cursor))

    async def get_cursor(self, name: str) -> str | None:
        """:meth:`IngestClient.get_cursor`; any failure is :class:`SinkAway`."""
        return await self._call(lambda client: client.get_cursor(name))

    async def _call(self, call: Callable[[IngestClient], Awaitable[T]]) -> T:
        if self._client is None:
            raise SinkAway("not connected to the jacmon server")
        try:
            return await call(self._client)
        except JacmonError as exc:
            # Closed now, as before the wait: the next try opens a new connection.
            await self._close()
            raise SinkAway(str(exc)) from None

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            # A connection that already failed may fail to close too; it is gone either way.
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
