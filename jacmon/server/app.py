"""The jacmon server: routing, handshake auth, the stream handlers, background loops, shutdown.

``async with JacmonServer(settings) as server:`` opens the store, starts the
loops and listens; leaving the block shuts down gracefully (stop accepting,
finish the batch in flight, close clients with 1001, close the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from jacmon import __version__
from jacmon.config import ServerSettings, Settings
from jacmon.errors import AuthError, JacmonError, ProtocolError
from jacmon.protocol import (
    PROTOCOL_VERSION,
    ClientType,
    CloseCode,
    ServerType,
    Stream,
    decode_client_message,
    envelope,
    error_data,
)
from jacmon.server.auth import Authenticator, Principal, active_token_count, tokens_required
from jacmon.server.hub import Hub, Subscriber
from jacmon.server.ingest import ServerSink, handle_ingest
from jacmon.server.ops import IngestCounters, prometheus_text
from jacmon.server.sampler import MetricsSampler
from jacmon.server.streams import initial_frames
from jacmon.store import IngestOutcome, Store
from jacmon.store import alerts as alert_store
from jacmon.store.queries import learner_count, learner_path_row, learner_row, module_row

log = logging.getLogger("jacmon.server")

#: How often the alerts feed looks for changes written by other processes, in seconds.
ALERT_POLL_S = 1.0

#: How often the WAL is checkpointed, in seconds.
CHECKPOINT_S = 2.0

#: How often connected tokens are checked for revocation and the catalog for a reload, in s.
REVOCATION_POLL_S = 5.0


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"))


def _response(status: HTTPStatus, body: str, content_type: str = "text/plain") -> Response:
    headers = Headers(
        [("Content-Type", f"{content_type}; charset=utf-8"), ("Cache-Control", "no-store")]
    )
    return Response(status.value, status.phrase, headers, body.encode())


@dataclass(frozen=True, slots=True)
class Admission:
    """An accepted handshake: who connected to which stream, scoped how, resuming where."""

    principal: Principal
    stream: Stream
    learner: str | None
    since: int | None


class JacmonServer:
    """One jacmon server process.

    ``clock`` returns seconds since the epoch (default: the wall clock); the
    demo passes its simulated clock so metrics windows match event times.
    ``scheduler_clock`` is handed to the task scheduler (see
    :mod:`jacmon.server.scheduler`); ``run_scheduler`` False runs no tasks.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        run_scheduler: bool = True,
        scheduler_clock: Any = None,
    ):
        self.full_settings = settings
        self.settings: ServerSettings = settings.server
        self.now = clock or time.time
        self.run_scheduler = run_scheduler
        self.scheduler_clock = scheduler_clock
        self.started_at = time.time()
        self.epoch = int(self.started_at)
        self.hub = Hub(
            activity_flush_s=self.settings.activity_flush_ms / 1000,
            max_unsent_bytes=self.settings.client_max_unsent_bytes,
            send_timeout_s=self.settings.client_send_timeout_s,
        )
        self.ingest_counters = IngestCounters()
        self.ingest_connections = 0
        self.store: Store
        self.sampler: MetricsSampler
        self.scheduler: Any = None
        self.port: int | None = None
        self._auth: Authenticator
        #: What _process_request decided for each accepted handshake, for _handle.
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission]
        self._admitted = weakref.WeakKeyDictionary()
        self._ws_server: Server | None = None
        self._tasks: list[asyncio.Task] = []
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._alert_nudge = asyncio.Event()
        self._alert_seq = 0
        self._lrs_stop = asyncio.Event()

    # Lifecycle

    async def __aenter__(self) -> JacmonServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.shutdown()

    @property
    def url(self) -> str:
        scheme = "wss" if self.settings.tls_cert else "ws"
        host = self.settings.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def connection_counts(self) -> dict[str, int]:
        """Open connections per stream, and on /ws/ingest (for /healthz and /metrics)."""
        return self.hub.connection_counts() | {"ingest": self.ingest_connections}

    async def start(self) -> None:
        """Open the store, start the loops and listen on host:port (port 0 picks a free one)."""
        settings = self.settings
        self.store = await Store.open(settings.db)
        try:
            required = tokens_required(settings)
            if required and await active_token_count(self.store.db) == 0:
                raise JacmonError(
                    f"refusing to serve on {settings.host} without tokens: create one with "
                    "'jacmon token create --role admin', or pass --insecure to serve openly"
                )
            self._auth = Authenticator(self.store.db, required=required)
            self.sampler = MetricsSampler(
                clock=self.now,
                interval_s=settings.metrics_interval_s,
                history_s=settings.metrics_history_s,
                connected_clients=lambda: sum(self.hub.connection_counts().values()),
            )
            await self.sampler.prime(self.store)
            await self.store.db.take_over_checkpoints()
            self.hub.seq[Stream.ACTIVITY] = self.store.last_seq
            self._alert_seq = await alert_store.last_alert_change_seq(self.store.db.reader)
            self.hub.seq[Stream.ALERTS] = self._alert_seq
            if self.run_scheduler:
                await self._start_scheduler()
            self._tasks = [
                asyncio.create_task(self.hub.run_flusher(self._flush_progress), name="flusher"),
                asyncio.create_task(self.sampler.run(self.hub.publish_sample), name="sampler"),
                asyncio.create_task(self._alert_feed(), name="alert-feed"),
                asyncio.create_task(self._revocation_watch(), name="revocation-watch"),
                asyncio.create_task(self._checkpoints(), name="checkpoints"),
            ]
            lrs = self.full_settings.lrs
            if lrs.get("url") and _truthy(lrs.get("enabled", True)):
                from jacmon.lrs import run_tailer

                self._tasks.append(
                    asyncio.create_task(
                        run_tailer(lrs, ServerSink(self), self._lrs_stop), name="lrs-tailer"
                    )
                )
            ssl_context = None
            if settings.tls_cert or settings.tls_key:
                if not (settings.tls_cert and settings.tls_key):
                    raise JacmonError("TLS needs both --tls-cert and --tls-key")
                ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
                ssl_context.load_cert_chain(settings.tls_cert, settings.tls_key)
            self._ws_server = await serve(
                self._handle,
                settings.host,
                settings.port,
                process_request=self._process_request,
                # PERF-NOTES: per-message compression cost ~2.2x CPU and 3x memory per client.
                compression=None,
                max_size=settings.max_frame_bytes,
                ssl=ssl_context,
                server_header=f"jacmon/{__version__}",
            )
        except BaseException:
            await self._stop_background()
            await self.store.close()
            raise
        self.port = self._ws_server.sockets[0].getsockname()[1]
        log.info("serving on %s (db %s)", self.url, settings.db)

    async def _start_scheduler(self) -> None:
        from jacmon.server.scheduler import Scheduler

        self.scheduler = Scheduler(
            self.store,
            self.full_settings.tasks,
            self.scheduler_clock,
            on_alerts_changed=self._alert_nudge.set,
            on_velocity=self.sampler.set_velocity,
        )
        await self.scheduler.start()

    async def _stop_background(self) -> None:
        self._lrs_stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def shutdown(self) -> None:
        """Stop accepting, finish the batch in flight, close clients with 1001, close the db."""
        grace = self.settings.shutdown_grace_s
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("a batch was still in flight after %.0f s; closing anyway", grace)
        if self.scheduler is not None:
            await self.scheduler.stop(grace)
        if self._ws_server is not None:
            connections = list(self._ws_server.connections)
            await asyncio.gather(
                *(c.close(CloseCode.GOING_AWAY, "server shutting down") for c in connections),
                return_exceptions=True,
            )
            await self._ws_server.wait_closed()
        await self._stop_background()
        await self.store.close()
        log.info("stopped")

    @contextlib.asynccontextmanager
    async def batch_in_flight(self) -> AsyncIterator[None]:
        """Mark an ingest batch in progress, so shutdown waits for its commit."""
        self._inflight += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._inflight -= 1
            if self._inflight == 0:
                self._idle.set()

    # Producers' side

    def on_committed(self, outcome: IngestOutcome) -> None:
        """Called right after a batch committed (no await in between: see streams.py)."""
        if outcome.stored:
            self.hub.publish_events(outcome.stored)
            self.sampler.observe(outcome.stored)
            self.hub.publish_progress(outcome.changes)

    async def _flush_progress(self, pending: list) -> None:
        """Turn pending progress changes into dashboard rows: learner rows plus new summaries."""
        subs = self.hub.subscribers[Stream.DASHBOARD]
        if not subs:
            return
        learners: dict[str, dict] = {}
        learner_paths: dict[tuple, dict] = {}
        modules: dict[tuple, dict] = {}
        for changes in pending:
            for row in changes.learners:
                learners[row["learner"]] = learner_row(row)
            for row in changes.paths:
                learner_paths[(row["learner"], row["path"])] = learner_path_row(row)
            for row in changes.modules:
                modules[(row["learner"], row["path"], row["module"])] = row
        summaries: dict[str, list] = {"paths": [], "modules": []}
        total_learners = None
        if any(s.learner is None for s in subs):
            paths = sorted({key[1] for key in learner_paths})
            module_keys = sorted({(key[1], key[2]) for key in modules})
            summaries["paths"] = await self.store.path_summaries(paths, now=self.now())
            if module_keys:
                summaries["modules"] = await self.store.module_summaries(module_keys)
            total_learners = await learner_count(self.store.db.reader)
        own_modules = []
        if any(s.learner is not None for s in subs):
            # Learner-scoped clients see their own module rows.
            own_modules = [module_row(row) for row in modules.values()]
        self.hub.deliver_rows(
            {
                "learners": list(learners.values()),
                "learner_paths": list(learner_paths.values()),
                "modules": own_modules,
            },
            summaries,
            total_learners=total_learners,
        )

    async def _alert_feed(self) -> None:
        """Publish alert changes, whoever wrote them (scheduler, run-task, alerts ack)."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._alert_nudge.wait(), ALERT_POLL_S)
            self._alert_nudge.clear()
            try:
                changes = await alert_store.alert_changes_since(
                    self.store.db.reader, self._alert_seq, limit=1000
                )
            except Exception:
                log.exception("reading alert changes failed")
                continue
            if changes:
                self._alert_seq = changes[-1]["seq"]
                self.hub.publish_alert_changes(changes)
                if len(changes) == 1000:
                    self._alert_nudge.set()

    async def _checkpoints(self) -> None:
        """Fold the WAL into the database every CHECKPOINT_S, off the ingest path."""
        while True:
            await asyncio.sleep(CHECKPOINT_S)
            try:
                await self.store.db.checkpoint()
            except Exception:
                log.exception("checkpoint failed")

    async def _revocation_watch(self) -> None:
        """Close connections whose token was revoked since they connected (code 4001).

        Also picks up a catalog loaded by another process (``jacmon catalog load``).
        """
        while True:
            await asyncio.sleep(REVOCATION_POLL_S)
            try:
                if await self.store.refresh_catalog():
                    log.info("catalog changed on disk; reloaded")
            except Exception:
                log.exception("reloading the catalog failed")
            live = {
                ws: admitted.principal
                for ws, admitted in list(self._admitted.items())
                if admitted.principal.token_id is not None
            }
            if not live:
                continue
            ids = sorted({p.token_id for p in live.values()})
            marks = ",".join("?" * len(ids))
            async with self.store.db.reader.execute(
                f"SELECT id FROM tokens WHERE revoked IS NOT NULL AND id IN ({marks})", ids
            ) as cursor:
                revoked = {row[0] for row in await cursor.fetchall()}
            for ws, principal in live.items():
                if principal.token_id in revoked:
                    log.info("closing a connection of revoked token %s", principal.token_id)
                    await ws.close(CloseCode.TOKEN_REVOKED, "token revoked")

    # Handshake

    async def _process_request(self, connection: ServerConnection, request: Request):
        parts = urlsplit(request.path)
        path = parts.path.rstrip("/") or "/"
        if path == "/healthz":
            return await self._healthz()
        if path == "/metrics":
            return _response(HTTPStatus.OK, prometheus_text(self), "text/plain; version=0.0.4")
        stream_name = path.removeprefix("/ws/")
        if not path.startswith("/ws/") or stream_name not in {s.value for s in Stream}:
            known = ", ".join(f"/ws/{s.value}" for s in Stream)
            return _response(
                HTTPStatus.NOT_FOUND, f"unknown path {path}; known: {known}, /healthz, /metrics\n"
            )
        query = parse_qs(parts.query)
        token = None
        header = request.headers.get("Authorization")
        if header and header.lower().startswith("bearer "):
            token = header[7:].strip()
        elif "token" in query:
            token = query["token"][0]
        try:
            principal = await self._auth.authenticate(token)
        except AuthError as exc:
            return _response(HTTPStatus(exc.status), f"{exc}\n")
        stream = Stream(stream_name)
        if stream == Stream.INGEST and not principal.may_ingest():
            return _response(
                HTTPStatus.FORBIDDEN,
                f"token {principal.name!r} has role {principal.role}; /ws/ingest needs ingest "
                "or admin\n",
            )
        if stream != Stream.INGEST and not principal.may_view():
            return _response(
                HTTPStatus.FORBIDDEN,
                f"token {principal.name!r} has role {principal.role}; streams need viewer or "
                "admin\n",
            )
        learner = query.get("learner", [None])[0] or None
        if principal.learner is not None:
            if learner is not None and learner != principal.learner:
                return _response(
                    HTTPStatus.FORBIDDEN,
                    f"token {principal.name!r} is scoped to one learner and cannot see "
                    f"learner {learner!r}\n",
                )
            learner = principal.learner
        since_text = query.get("since", [None])[0]
        since = None
        if since_text is not None:
            try:
                since = int(since_text)
            except ValueError:
                return _response(
                    HTTPStatus.BAD_REQUEST,
                    f"since={since_text!r} is not a whole number; pass the last seq received\n",
                )
        self._admitted[connection] = Admission(principal, stream, learner, since)
        return None

    async def _healthz(self) -> Response:
        try:
            async with self.store.db.reader.execute("SELECT 1") as cursor:
                await cursor.fetchone()
            db_ok = True
        except Exception as exc:
            log.error("health check: database error: %s", exc)
            db_ok = False
        body = {
            "status": "ok" if db_ok else "degraded",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "db": {"ok": db_ok, "path": str(self.settings.db), "last_seq": self.store.last_seq},
            "connections": self.connection_counts(),
        }
        status = HTTPStatus.OK if db_ok else HTTPStatus.SERVICE_UNAVAILABLE
        return _response(status, json.dumps(body) + "\n", "application/json")

    # Connections

    async def _handle(self, ws: ServerConnection) -> None:
        admitted = self._admitted[ws]
        try:
            if admitted.stream == Stream.INGEST:
                await handle_ingest(self, ws)
                return
            await self._serve_stream(
                ws, admitted.stream, admitted.principal, admitted.learner, admitted.since
            )
        finally:
            self._admitted.pop(ws, None)

    def _hello(self, sub: Subscriber, resumed: bool) -> list[bytes]:
        data = {
            "server_id": self.store.server_id,
            "epoch": self.epoch,
            "stream": sub.stream.value,
            "seq": self.hub.seq[sub.stream],
            "learner": sub.learner,
            "protocol": PROTOCOL_VERSION,
            "resumed": resumed,
            "version": __version__,
        }
        seq = self.hub.seq[sub.stream]
        return [
            envelope(sub.stream, ServerType.HELLO, seq, data),
            # For clients of the earlier design.
            envelope(sub.stream, ServerType.CONNECTION_ESTABLISHED, seq, data),
        ]

    async def _serve_stream(
        self,
        ws: ServerConnection,
        stream: Stream,
        principal: Principal,
        learner: str | None,
        since: int | None,
    ) -> None:
        sub = Subscriber(ws, stream, learner, self.settings.client_buffer_frames)
        sub.token_id = principal.token_id
        watching = stream == Stream.METRICS and learner is not None
        if watching:
            self.sampler.watch_learner(learner, self.store)
        self.hub.add(sub)
        try:
            frames, resumed = await initial_frames(self, sub, since)
            self.hub.go_live(sub, [*self._hello(sub, resumed), *frames])
            async for raw in ws:
                await self._on_client_message(sub, principal, raw)
        except ConnectionClosed:
            pass
        finally:
            await self.hub.remove(sub)
            if watching:
                self.sampler.unwatch_learner(learner)

    def _error(self, sub: Subscriber, code: str, message: str, **details: Any) -> None:
        frame = envelope(
            sub.stream,
            ServerType.ERROR,
            self.hub.seq[sub.stream],
            error_data(code, message, **details),
        )
        self.hub.send_direct(sub, frame)

    async def _resync(self, sub: Subscriber, since: int | None) -> None:
        sub.syncing = True
        frames, _ = await initial_frames(self, sub, since)
        self.hub.go_live(sub, frames)

    async def _on_client_message(self, sub: Subscriber, principal: Principal, raw) -> None:
        try:
            message = decode_client_message(raw)
        except ProtocolError as exc:
            self._error(sub, "bad_message", str(exc))
            return
        body = message.body
        if message.type == ClientType.PING:
            frame = envelope(
                sub.stream, ServerType.PONG, self.hub.seq[sub.stream], {"id": body.get("id")}
            )
            self.hub.send_direct(sub, frame)
        elif message.type == ClientType.REFRESH:
            await self._resync(sub, None)
        elif message.type == ClientType.RESUME:
            since = body.get("since")
            if isinstance(since, bool) or not isinstance(since, int) or since < 0:
                self._error(
                    sub,
                    "bad_message",
                    f"resume 'since' is {since!r}; expected the last seq received (>= 0)",
                )
                return
            await self._resync(sub, since)
        elif message.type == ClientType.ACK:
            await self._acknowledge(sub, principal, body)
        else:
            self._error(
                sub,
                "bad_message",
                f"message type {message.type.value!r} is not for /ws/{sub.stream.value}",
            )

    async def _acknowledge(self, sub: Subscriber, principal: Principal, body: dict) -> None:
        if sub.stream != Stream.ALERTS:
            self._error(sub, "bad_message", "acknowledge alerts on /ws/alerts")
            return
        if not principal.may_ack():
            self._error(
                sub,
                "forbidden",
                f"token {principal.name!r} may not acknowledge alerts; it needs the "
                "admin role or a viewer token created with --can-ack",
            )
            return
        alert_id = body.get("alert_id", body.get("id"))
        if isinstance(alert_id, str) and alert_id.isdigit():
            alert_id = int(alert_id)
        if isinstance(alert_id, bool) or not isinstance(alert_id, int):
            self._error(
                sub,
                "bad_message",
                f"ack 'alert_id' is {alert_id!r}; expected the alert's numeric id",
            )
            return
        note = body.get("note")
        expires = body.get("expires_at")
        try:
            await alert_store.acknowledge_alert(
                self.store.db,
                alert_id,
                by=principal.name,
                note=note if isinstance(note, str) else None,
                expires_at=float(expires) if isinstance(expires, int | float) else None,
                # The server's clock: alert times and expiries are on it (simulated in the demo).
                now=self.now(),
            )
        except JacmonError as exc:
            self._error(sub, "ack_failed", str(exc), alert_id=alert_id)
            return
        self._alert_nudge.set()


__all__ = ["JacmonServer"]
