"""The jacmon server: its parts wired together, the handshake routing, start and shutdown.

``async with JacmonServer(settings) as server:`` opens the store, starts the
loops and listens; leaving the block shuts down gracefully (stop accepting,
finish the batch in flight, close clients with 1001, close the database).

The parts, each given a :class:`~jacmon.server.context.ServerContext`:
``admission`` (who may connect), ``sessions`` (stream clients), ``ingest``
(producers), ``http`` (/healthz, /metrics, /whoami), ``web`` (the browser
dashboard), ``loops`` (the supervised background loops) and ``fanout`` (the
bus feeding the hub). Committed facts travel on the bus: ingest and the alert
feed publish, the hub and the metrics sampler subscribe.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import weakref
from collections.abc import Callable, Coroutine
from http import HTTPStatus
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from jacmon import __version__
from jacmon.bus import Bus, LocalBus, TokensRevoked, open_bus
from jacmon.config import ServerSettings, Settings
from jacmon.errors import JacmonError, ProtocolError, UsageError
from jacmon.hints import suggest_command
from jacmon.logs import redact
from jacmon.notify.config import parse_notify
from jacmon.notify.service import Notifier
from jacmon.notify.setup import build_receivers
from jacmon.protocol import CloseCode, Stream, parse_since
from jacmon.server.admission import Admission, Gate, Refused, request_token
from jacmon.server.auth import Authenticator, OriginCheck, is_loopback, tokens_required
from jacmon.server.connection import connection_factory
from jacmon.server.context import ServerContext
from jacmon.server.fanout import flush_progress, subscribe_hub
from jacmon.server.http import HttpEndpoints
from jacmon.server.hub import Hub
from jacmon.server.ingest import IngestService
from jacmon.server.listen import listen_problem
from jacmon.server.loops import (
    LEASE_CHECK_S,
    AlertFeed,
    Supervisor,
    store_upkeep,
    store_watch,
)
from jacmon.server.ops import prometheus_text
from jacmon.server.projector import Projector
from jacmon.server.push import ABOUT, CALIPER, STATEMENTS, PushEndpoints
from jacmon.server.sampler import MetricsSampler
from jacmon.server.sessions import StreamSessions
from jacmon.server.tls import load_tls
from jacmon.server.web import WebUI, page_url, security_headers, text_response
from jacmon.store import Store, display_location, serve_lock
from jacmon.store.base import Lease

log = logging.getLogger("jacmon.server")


class JacmonServer:
    """One jacmon server process.

    ``clock`` returns seconds since the epoch (default: the wall clock); the
    demo passes its simulated clock so metrics windows match event times.
    ``scheduler_clock`` is handed to the task scheduler (see
    :mod:`jacmon.monitoring.scheduler`); ``run_scheduler`` False runs no tasks.
    ``web_root`` is the directory the web UI's files are read from at start
    (None: the packaged ``jacmon/web/static``).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Callable[[], float] | None = None,
        clock_rate: float = 1.0,
        run_scheduler: bool = True,
        scheduler_clock: Any = None,
        web_root: Traversable | Path | None = None,
    ):
        self.full_settings = settings
        self.settings: ServerSettings = settings.server
        self.now = clock or time.time
        #: Seconds of ``clock`` per wall second (the demo's simulation speed; 1 for real time).
        self.clock_rate = clock_rate
        self.run_scheduler = run_scheduler
        self.scheduler_clock = scheduler_clock
        self.started_at = time.time()
        self.epoch = int(self.started_at)
        self.hub = Hub(
            activity_flush_s=self.settings.activity_flush_ms / 1000,
            max_unsent_bytes=self.settings.client_max_unsent_bytes,
            send_timeout_s=self.settings.client_send_timeout_s,
        )
        self.bus: Bus = LocalBus()
        self.store: Store
        self.sampler: MetricsSampler
        self.ingest: IngestService
        self.scheduler: Any = None
        self.port: int | None = None
        self.loops = Supervisor()
        self._ctx: ServerContext
        self._gate: Gate
        self._sessions: StreamSessions
        self._http: HttpEndpoints
        self._alert_feed: AlertFeed
        #: What _process_request decided for each accepted handshake, for _handle.
        self._admitted: weakref.WeakKeyDictionary[ServerConnection, Admission]
        self._admitted = weakref.WeakKeyDictionary()
        self._ws_server: Server | None = None
        self._lock = serve_lock(self.settings.store_location)
        #: This node's name (/metrics labels, the bus).
        self.node = self.settings.node or f"{socket.gethostname()}-{os.getpid()}"
        self._lrs_stop = asyncio.Event()
        self._run_lrs = False
        #: Whether this node leads now, and the leader's loops it runs.
        self._leading = False
        self._leader_loops: list[str] = []
        self.lease: Lease
        #: Closes of revoked tokens' connections under way.
        self._closing: set[asyncio.Task] = set()
        #: Routes and delivers notifications (also lets silences lapse); set in start().
        self.notifier: Notifier | None = None
        #: Folds committed events into progress while this node leads (built in _wire).
        self.projector: Projector
        self.web_root = web_root
        #: The pages and static files, read in start().
        self.web = WebUI({}, enabled=settings.web.enabled)
        #: Added to every HTTP response (see _process_response).
        self._security_headers = security_headers(settings.web.frame_ancestors)

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

    @property
    def web_url(self) -> str | None:
        """The browser dashboard's address (``http://host:port/``); None when it is off."""
        if not self.web.enabled or self.port is None:
            return None
        return page_url(self.settings.host, self.port, tls=self.settings.tls_cert is not None)

    @property
    def loops_down(self) -> dict[str, str]:
        """Background loops that died and are waiting to restart: name -> the cause."""
        return self.loops.loops_down

    def connection_counts(self) -> dict[str, int]:
        """Open connections per stream, and on /ws/ingest (for /healthz and /metrics)."""
        return self.hub.connection_counts() | {"ingest": self.ingest.connections}

    async def start(self) -> None:
        """Open the store, start the loops and listen on host:port (port 0 picks a free one).

        Raises JacmonError for what an operator must fix (another server on the
        database, a bad TLS file, a bad ``[lrs]`` key) before anything starts.
        """
        from jacmon.sources.lrs import check_lrs_table

        settings = self.settings
        ssl_context = load_tls(settings.tls_cert, settings.tls_key)
        lrs_settings = check_lrs_table(self.full_settings.lrs)
        notify_settings = parse_notify(self.full_settings.notify)
        receivers = build_receivers(notify_settings)
        origins = OriginCheck(
            tls=ssl_context is not None,
            loopback=is_loopback(settings.host),
            allowed=settings.allowed_origins,
        )
        self._lock.acquire()
        try:
            self.store = await Store.open(settings.store_location)
        except BaseException:
            self._lock.release()
            raise
        try:
            required = tokens_required(settings)
            if required and await self.store.active_token_count() == 0:
                create = suggest_command(
                    "token create --role admin", db=settings.db, config=self.full_settings.source
                )
                raise JacmonError(
                    f"refusing to serve on {settings.host} without tokens: create one with "
                    f"{create}, or pass --insecure to serve openly"
                )
            self._gate = Gate(Authenticator(self.store, required=required), origins)
            self.sampler = MetricsSampler(
                clock=self.now,
                interval_s=settings.metrics_interval_s,
                history_s=settings.metrics_history_s,
                connected_clients=lambda: sum(self.hub.connection_counts().values()),
            )
            await self.sampler.prime(self.store)
            await self.store.begin_serving()
            self.bus = await open_bus(settings.bus, self.store, node=self.node)
            self._wire(await self.store.last_alert_change_seq())
            await self.projector.prime()
            self.notifier = Notifier(self.store, notify_settings, receivers)
            self._run_lrs = lrs_settings is not None
            self._start_loops()
            # One node of a store leads: it runs the scheduler, the notifier and the LRS
            # tailer. A store one server serves (SQLite) grants it at once.
            self.lease = self.store.lease("leader")
            if await self.lease.acquire():
                await self._lead()
            self.loops.start({"leadership": self._leadership})
            self.web = WebUI.load(self.web_root, enabled=self.full_settings.web.enabled)
            try:
                self._ws_server = await serve(
                    self._handle,
                    settings.host,
                    settings.port,
                    process_request=self._process_request,
                    process_response=self._process_response,
                    # PERF-NOTES: per-message compression cost ~2.2x CPU and 3x memory per
                    # client.
                    compression=None,
                    max_size=settings.max_frame_bytes,
                    ssl=ssl_context,
                    server_header=f"jacmon/{__version__}",
                    # Requests with a body (the push endpoints) are read and answered by
                    # jacmon's connection; the rest is websockets' (see connection.py).
                    create_connection=connection_factory(self._push),
                )
            except OSError as exc:
                raise UsageError(listen_problem(settings.host, settings.port, exc)) from None
        except BaseException:
            # Also when cancelled by a stop signal while starting: nothing may be left
            # running (a scheduler, the store's threads) to keep the process alive.
            if self.leading:
                await self._step_down()
            await self._stop_background()
            await self.store.close()
            self._lock.release()
            raise
        self.port = self._ws_server.sockets[0].getsockname()[1]
        log.info(
            "serving on %s (node %s, db %s, bus %s)",
            self.url,
            self.node,
            display_location(settings.store_location),
            display_location(settings.bus) if settings.bus else "none",
        )

    def _wire(self, last_alert_seq: int) -> None:
        """Build the parts around the open store and subscribe them to the bus."""
        self.hub.seq[Stream.ACTIVITY] = self.store.last_seq
        self.hub.seq[Stream.ALERTS] = last_alert_seq
        self._ctx = ctx = ServerContext(
            settings=self.settings,
            store=self.store,
            bus=self.bus,
            hub=self.hub,
            sampler=self.sampler,
            now=self.now,
            clock_rate=self.clock_rate,
            epoch=self.epoch,
            nudge_alerts=lambda: self._alert_feed.nudge(),
        )
        self._alert_feed = AlertFeed(ctx, last_alert_seq)
        self.ingest = IngestService(ctx)
        self._sessions = StreamSessions(ctx)
        self._http = HttpEndpoints(
            ctx,
            self._gate,
            started_at=self.started_at,
            connection_counts=self.connection_counts,
            loops_down=self.loops.loops_down,
            metrics_text=self._metrics_text,
            node=self.node,
            leading=lambda: self.leading,
        )
        self._push = PushEndpoints(
            self.ingest,
            self._gate,
            security_headers=self._security_headers,
            server_header=f"jacmon/{__version__}",
        )
        subscribe_hub(ctx)
        self.projector = Projector(self.store, self.bus)
        self.sampler.subscribe(self.bus)
        self.bus.subscribe(TokensRevoked, self._close_revoked)

    def _start_loops(self) -> None:
        """Start the loops every node runs, each supervised (see :class:`Supervisor`)."""
        ctx = self._ctx
        loops: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "flusher": lambda: self.hub.run_flusher(lambda pending: flush_progress(ctx, pending)),
            "sampler": lambda: self.sampler.run(self.hub.publish_sample),
            "alert-feed": self._alert_feed.run,
            "revocation-watch": lambda: store_watch(ctx, self._live_token_ids),
            "checkpoints": lambda: store_upkeep(ctx),
        }
        self.loops.start(loops)

    @property
    def leading(self) -> bool:
        """True while this node holds the lease: it runs the scheduler, notifier, tailer."""
        return self._leading

    async def _lead(self) -> None:
        """Take up the leader's jobs: notifications, the scheduler, the LRS tailer."""
        log.info("node %s leads: running the projector, the scheduler and the notifier", self.node)
        # The projector first: the dashboards' progress and the tasks' reads follow it.
        loops: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {"projector": self.projector.run}
        if self.notifier is not None:
            # Primed before the scheduler starts: what its first runs fire is notified.
            await self.notifier.prime()
            loops |= self.notifier.loops()
        if self.run_scheduler:
            await self._start_scheduler()
        if self._run_lrs:
            from jacmon.sources.lrs import run_tailer

            lrs = self.full_settings.lrs
            sink = self.ingest.sink()
            self._lrs_stop.clear()
            loops["lrs-tailer"] = lambda: run_tailer(lrs, sink, self._lrs_stop)
            log.info("lrs tailer: following %s", redact(str(lrs.get("url"))))
        self._leader_loops = list(loops)
        self._leading = True
        self.loops.start(loops)

    async def _step_down(self) -> None:
        """Stop the leader's jobs (the lease was lost: another node leads now)."""
        grace = self.settings.shutdown_grace_s
        if self.scheduler is not None:
            scheduler, self.scheduler = self.scheduler, None
            await self._bounded("stopping the scheduler", scheduler.stop(grace), grace + 5)
        self._lrs_stop.set()
        names, self._leader_loops = self._leader_loops, []
        self._leading = False
        await self.loops.stop(names)

    async def _leadership(self) -> None:
        """Keep the lease or take it: every LEASE_CHECK_S, a leader confirms it still
        holds the lease (stepping down if not) and another node tries to take it."""
        while True:
            await asyncio.sleep(LEASE_CHECK_S)
            if self.leading:
                if not await self.lease.confirm():
                    log.warning("node %s lost the lease; another node leads now", self.node)
                    await self._step_down()
            elif await self.lease.acquire():
                await self._lead()

    async def _start_scheduler(self) -> None:
        from jacmon.monitoring.scheduler import Scheduler

        self.scheduler = Scheduler(
            self.store,
            self.full_settings.tasks,
            self.scheduler_clock,
            on_alerts_changed=self._alert_feed.nudge,
            lease=self.lease,
            on_velocity=self.sampler.set_velocity,
        )
        await self.scheduler.start()

    async def _stop_background(self) -> None:
        """Stop the LRS tailer and every background loop (never raises)."""
        self._lrs_stop.set()
        await self.loops.stop()

    async def shutdown(self) -> None:
        """Stop accepting, finish the batch in flight, close clients with 1001, close the db.

        Each step is bounded and a failing step does not skip the next ones, so a
        SIGTERM always ends the process.
        """
        grace = self.settings.shutdown_grace_s
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
        try:
            await asyncio.wait_for(self.ingest.wait_idle(), grace)
        except TimeoutError:
            log.warning("a batch was still in flight after %.0f s; closing anyway", grace)
        if self.scheduler is not None:
            await self._bounded("stopping the scheduler", self.scheduler.stop(grace), grace + 5)
        if self._ws_server is not None:
            await self._bounded("closing clients", self._close_clients(), grace + 5)
        await self._stop_background()
        await self._bounded("giving up the lease", self.lease.release(), 5)
        if self.notifier is not None:
            await self._bounded("closing notification receivers", self.notifier.close(), 5)
        await self._bounded("closing the bus", self.bus.close(), 5)
        await self._bounded("closing the database", self.store.close(), grace + 5)
        self._lock.release()
        log.info("stopped")

    async def _close_clients(self) -> None:
        """Close every connection with 1001 and wait for the listener to be closed."""
        assert self._ws_server is not None
        connections = list(self._ws_server.connections)
        await asyncio.gather(
            *(c.close(CloseCode.GOING_AWAY, "server shutting down") for c in connections),
            return_exceptions=True,
        )
        await self._ws_server.wait_closed()

    async def _bounded(self, what: str, step: Coroutine[Any, Any, Any], limit_s: float) -> None:
        """Await one shutdown step for at most ``limit_s`` seconds; log, never raise, a failure."""
        try:
            await asyncio.wait_for(step, limit_s)
        except TimeoutError:
            log.error("shutdown: %s took over %.0f s; going on", what, limit_s)
        except Exception as exc:
            log.error("shutdown: %s failed: %s", what, redact(str(exc)), exc_info=exc)

    def _metrics_text(self) -> str:
        return prometheus_text(
            connections=self.connection_counts(),
            ingest=self.ingest.counters,
            counters=self.hub.counters,
            last_seq=self.store.last_seq,
            node=self.node,
            extra=[
                *self.projector.prometheus_lines(),
                *self._push.counters.prometheus_lines(),
                *(self.notifier.metrics.prometheus_lines() if self.notifier else ()),
            ],
        )

    # Revocation

    def _live_token_ids(self) -> list[str]:
        """The tokens of the connections open now."""
        return [
            admitted.principal.token_id
            for admitted in list(self._admitted.values())
            if admitted.principal.token_id is not None
        ]

    def _close_revoked(self, fact: TokensRevoked) -> None:
        """Close the connections of revoked tokens (code 4001), streams and ingest alike."""
        for ws, admitted in list(self._admitted.items()):
            if admitted.principal.token_id in fact.token_ids:
                log.info("closing a connection of revoked token %s", admitted.principal.token_id)
                task = asyncio.create_task(ws.close(CloseCode.TOKEN_REVOKED, "token revoked"))
                # Held until done: the event loop keeps only a weak reference to a task.
                self._closing.add(task)
                task.add_done_callback(self._closing.discard)

    # Handshake routing

    async def _process_request(self, connection: ServerConnection, request: Request):
        parts = urlsplit(request.path)
        path = parts.path.rstrip("/") or "/"
        query = parse_qs(parts.query, keep_blank_values=True)
        repeated = [
            name
            for name in ("Origin", "Host", "Authorization")
            if len(request.headers.get_all(name)) > 1
        ]
        if repeated:
            return text_response(
                HTTPStatus.BAD_REQUEST, f"header {repeated[0]} is sent twice; expected it once\n"
            )
        token = request_token(request, query)
        origin = self._gate.classify(request)
        if path == "/healthz":
            return await self._http.healthz(token, origin)
        if path == "/metrics":
            return await self._http.metrics(token, origin)
        if path == "/whoami":
            return await self._http.whoami(request, query, token, origin)
        if WebUI.is_route(path):
            return self.web.answer(request, path)
        stream_name = path.removeprefix("/ws/")
        if not path.startswith("/ws/") or stream_name not in {s.value for s in Stream}:
            known = ", ".join(f"/ws/{s.value}" for s in Stream)
            web = "/, /learner, /static/<file>, " if self.web.enabled else ""
            return text_response(
                HTTPStatus.NOT_FOUND,
                redact(
                    f"unknown path {path[:200]}; known: {web}{known}, /whoami, /healthz, "
                    f"/metrics, {STATEMENTS}, {ABOUT}, {CALIPER}\n"
                ),
            )
        stream = Stream(stream_name)
        try:
            principal, learner = await self._gate.admit(request, query, token, origin, stream)
        except Refused as refused:
            return text_response(refused.status, refused.reason + "\n")
        since_text = query.get("since", [None])[0]
        since = None
        if since_text is not None:
            try:
                since = parse_since(since_text)
            except ProtocolError as exc:
                return text_response(HTTPStatus.BAD_REQUEST, f"{exc}\n")
        self._admitted[connection] = Admission(principal, stream, learner, since)
        return None

    def _process_response(
        self, connection: ServerConnection, request: Request, response: Response
    ) -> Response:
        """Put the security headers on every HTTP response (not on a 101 switch to WebSocket).

        A handshake accepted while the server is closing would become websockets' own 503
        after this hook, without them: answer that 503 here instead.
        """
        if response.status_code == HTTPStatus.SWITCHING_PROTOCOLS:
            if connection.server.is_serving():
                return response
            response = text_response(HTTPStatus.SERVICE_UNAVAILABLE, "server is shutting down\n")
        for name, value in self._security_headers:
            response.headers[name] = value
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        admitted = self._admitted[ws]
        try:
            if admitted.stream == Stream.INGEST:
                await self.ingest.handle(ws)
                return
            await self._sessions.serve(
                ws, admitted.stream, admitted.principal, admitted.learner, admitted.since
            )
        finally:
            self._admitted.pop(ws, None)


__all__ = ["JacmonServer"]
