"""The jacmon server: routing, handshake auth, the stream handlers, background loops, shutdown.

``async with JacmonServer(settings) as server:`` opens the store, starts the
loops and listens; leaving the block shuts down gracefully (stop accepting,
finish the batch in flight, close clients with 1001, close the database).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import math
import ssl
import time
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from http import HTTPStatus
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from jacmon import __version__
from jacmon.config import ServerSettings, Settings
from jacmon.errors import AuthError, ConfigError, JacmonError, ProtocolError, UsageError
from jacmon.events import describe, is_valid_unicode
from jacmon.hints import suggest_command
from jacmon.logs import redact
from jacmon.notify.config import parse_notify
from jacmon.notify.service import Notifier
from jacmon.notify.setup import build_receivers
from jacmon.protocol import (
    PROTOCOL_VERSION,
    ClientType,
    CloseCode,
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
from jacmon.server.auth import (
    Authenticator,
    OriginCheck,
    OriginKind,
    Principal,
    is_loopback,
    origin_refusal,
    tokens_required,
)
from jacmon.server.hub import Hub, Subscriber
from jacmon.server.ingest import ServerSink, handle_ingest
from jacmon.server.listen import listen_problem
from jacmon.server.ops import IngestCounters, prometheus_text
from jacmon.server.sampler import MetricsSampler
from jacmon.server.streams import initial_frames
from jacmon.server.web import WebUI, page_url, security_headers, text_response
from jacmon.store import IngestOutcome, Store, serve_lock
from jacmon.store.rows import learner_path_row, learner_row, module_row

log = logging.getLogger("jacmon.server")

#: How often the alerts feed looks for changes written by other processes, in seconds.
ALERT_POLL_S = 1.0

#: How often the WAL is checkpointed, in seconds.
CHECKPOINT_S = 2.0

#: How often connected tokens are checked for revocation and the catalog for a reload, in s.
REVOCATION_POLL_S = 5.0

#: First and longest wait before a background loop that died is restarted, in seconds.
LOOP_RESTART_FIRST_S = 1.0
LOOP_RESTART_MAX_S = 30.0

#: How long a restarted loop must run without failing to count as up again, in seconds
#: (longer than any loop's first pass: the revocation watch waits REVOCATION_POLL_S).
LOOP_HEALTHY_AFTER_S = 10.0

#: How long shutdown waits for each background loop to end once cancelled, in seconds.
LOOP_STOP_S = 5.0


def load_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context from PEM files, or None when neither is set.

    Raises ConfigError naming the file and what is wrong with it (missing, not
    PEM, the key does not match the certificate), never an OSError traceback.
    """
    if not (cert or key):
        return None
    if not (cert and key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    _check_pem("--tls-cert", cert, "certificate", b"-----BEGIN CERTIFICATE-----")
    _check_pem("--tls-key", key, "private key", b"PRIVATE KEY-----")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc).lower()
        if "mismatch" in reason:
            raise ConfigError(
                f"--tls-key file {key} does not match the certificate {cert}"
            ) from None
        raise ConfigError(
            f"--tls-cert {cert} with --tls-key {key} cannot be loaded: {reason.replace('_', ' ')}"
        ) from None
    return context


def _check_pem(flag: str, path: Path, what: str, marker: bytes) -> None:
    """Raise ConfigError unless ``path`` is a readable file holding a PEM ``what``."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{flag} file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} file {path} is a directory; expected a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{flag} file {path} cannot be read: {exc.strerror}") from None
    if marker not in content:
        raise ConfigError(f"{flag} file {path} is not a PEM {what}")


def _request_token(request: Request, query: dict[str, list[str]]) -> str | None:
    """The token a request carries: ``Authorization: Bearer`` first, then ``?token=``."""
    header = request.headers.get("Authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return query.get("token", [None])[0]


class Refused(Exception):
    """The access checks turned a request away: the HTTP status and the one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _json_response(status: HTTPStatus, body: dict[str, Any]) -> Response:
    """A JSON response that no cache keeps; token secrets redacted."""
    return text_response(status, redact(json.dumps(body)) + "\n", "application/json")


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
        self._origins: OriginCheck
        self._lock = serve_lock(self.settings.db)
        self._tasks: list[asyncio.Task] = []
        #: Background loops that died and are waiting to restart: name -> the cause.
        self.loops_down: dict[str, str] = {}
        self._inflight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._alert_nudge = asyncio.Event()
        self._alert_seq = 0
        self._lrs_stop = asyncio.Event()
        #: Routes and delivers notifications (also lets silences lapse); set in start().
        self.notifier: Notifier | None = None
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

    def connection_counts(self) -> dict[str, int]:
        """Open connections per stream, and on /ws/ingest (for /healthz and /metrics)."""
        return self.hub.connection_counts() | {"ingest": self.ingest_connections}

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
        self._origins = OriginCheck(
            tls=ssl_context is not None,
            loopback=is_loopback(settings.host),
            allowed=settings.allowed_origins,
        )
        self._lock.acquire()
        try:
            self.store = await Store.open(settings.db)
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
            self._auth = Authenticator(self.store, required=required)
            self.sampler = MetricsSampler(
                clock=self.now,
                interval_s=settings.metrics_interval_s,
                history_s=settings.metrics_history_s,
                connected_clients=lambda: sum(self.hub.connection_counts().values()),
            )
            await self.sampler.prime(self.store)
            await self.store.begin_serving()
            self.hub.seq[Stream.ACTIVITY] = self.store.last_seq
            self._alert_seq = await self.store.last_alert_change_seq()
            self.hub.seq[Stream.ALERTS] = self._alert_seq
            # Primed before the scheduler starts: what its first runs fire is notified.
            self.notifier = Notifier(self.store, notify_settings, receivers)
            await self.notifier.prime()
            if self.run_scheduler:
                await self._start_scheduler()
            self._start_loops(lrs_settings is not None)
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
                )
            except OSError as exc:
                raise UsageError(listen_problem(settings.host, settings.port, exc)) from None
        except BaseException:
            await self._stop_background()
            await self.store.close()
            self._lock.release()
            raise
        self.port = self._ws_server.sockets[0].getsockname()[1]
        log.info("serving on %s (db %s)", self.url, settings.db)

    def _start_loops(self, run_lrs: bool) -> None:
        """Start the background loops, each supervised (see :meth:`_supervise`)."""
        loops: dict[str, Callable[[], Coroutine[Any, Any, Any]]] = {
            "flusher": lambda: self.hub.run_flusher(self._flush_progress),
            "sampler": lambda: self.sampler.run(self.hub.publish_sample),
            "alert-feed": self._alert_feed,
            "revocation-watch": self._revocation_watch,
            "checkpoints": self._checkpoints,
        }
        if self.notifier is not None:
            loops |= self.notifier.loops()
        if run_lrs:
            from jacmon.sources.lrs import run_tailer

            lrs = self.full_settings.lrs
            loops["lrs-tailer"] = lambda: run_tailer(lrs, ServerSink(self), self._lrs_stop)
            log.info("lrs tailer: following %s", redact(str(lrs.get("url"))))
        self._tasks = [
            asyncio.create_task(self._supervise(name, make), name=name)
            for name, make in loops.items()
        ]

    async def _supervise(self, name: str, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run the loop ``make()`` until cancelled; if it raises, log the cause at once, mark
        it down (``loops_down``, shown by /healthz) and restart it after a growing pause.

        A loop that returns on its own (the LRS tailer once stopped) is not restarted.
        """
        pause = LOOP_RESTART_FIRST_S
        while True:
            started = time.monotonic()
            try:
                await self._run_loop_once(name, make)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if time.monotonic() - started >= LOOP_HEALTHY_AFTER_S:
                    # It had recovered: a new failure starts the backoff over.
                    pause = LOOP_RESTART_FIRST_S
                cause = redact(f"{type(exc).__name__}: {exc}")
                self.loops_down[name] = cause
                log.error(
                    "%s loop died (%s); restarting in %.0f s", name, cause, pause, exc_info=exc
                )
            await asyncio.sleep(pause)
            pause = min(pause * 2, LOOP_RESTART_MAX_S)
            log.info("%s loop restarted", name)

    async def _run_loop_once(self, name: str, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``make()`` to its end; a loop marked down is marked up again only once it has
        run LOOP_HEALTHY_AFTER_S without failing (one that fails on its first pass stays down
        instead of flickering to "ok" between restarts)."""
        run = asyncio.ensure_future(make())
        try:
            if name in self.loops_down:
                done, _ = await asyncio.wait({run}, timeout=LOOP_HEALTHY_AFTER_S)
                if not done:
                    self.loops_down.pop(name, None)
                    log.info("%s loop recovered", name)
            await run
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await run

    async def _start_scheduler(self) -> None:
        from jacmon.monitoring.scheduler import Scheduler

        self.scheduler = Scheduler(
            self.store,
            self.full_settings.tasks,
            self.scheduler_clock,
            on_alerts_changed=self._alert_nudge.set,
            on_velocity=self.sampler.set_velocity,
        )
        await self.scheduler.start()

    async def _stop_background(self) -> None:
        """Cancel every background loop and wait up to LOOP_STOP_S for them to end.

        Never raises: a loop that died or ignores cancellation is logged, not
        allowed to keep shutdown from closing the database (whose threads would
        keep the process alive).
        """
        self._lrs_stop.set()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if not tasks:
            return
        done, pending = await asyncio.wait(tasks, timeout=LOOP_STOP_S)
        for task in pending:
            log.warning(
                "%s loop did not stop within %.0f s; leaving it", task.get_name(), LOOP_STOP_S
            )
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.warning("%s loop had failed: %s", task.get_name(), task.exception())

    async def shutdown(self) -> None:
        """Stop accepting, finish the batch in flight, close clients with 1001, close the db.

        Each step is bounded and a failing step does not skip the next ones, so a
        SIGTERM always ends the process.
        """
        grace = self.settings.shutdown_grace_s
        if self._ws_server is not None:
            self._ws_server.close(close_connections=False)
        try:
            await asyncio.wait_for(self._idle.wait(), grace)
        except TimeoutError:
            log.warning("a batch was still in flight after %.0f s; closing anyway", grace)
        if self.scheduler is not None:
            await self._bounded("stopping the scheduler", self.scheduler.stop(grace), grace + 5)
        if self._ws_server is not None:
            await self._bounded("closing clients", self._close_clients(), grace + 5)
        await self._stop_background()
        if self.notifier is not None:
            await self._bounded("closing notification receivers", self.notifier.close(), 5)
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
            total_learners = await self.store.learner_count()
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
                changes = await self.store.alert_changes_since(self._alert_seq, limit=1000)
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
                await self.store.upkeep()
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
            revoked = await self.store.revoked_among(sorted({p.token_id for p in live.values()}))
            for ws, principal in live.items():
                if principal.token_id in revoked:
                    log.info("closing a connection of revoked token %s", principal.token_id)
                    await ws.close(CloseCode.TOKEN_REVOKED, "token revoked")

    # Handshake

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
        token = _request_token(request, query)
        origin = self._origins.classify(request.headers.get("Origin"), request.headers.get("Host"))
        if path == "/healthz":
            return await self._healthz(token, origin)
        if path == "/metrics":
            return await self._metrics(token, origin)
        if path == "/whoami":
            return await self._whoami(request, query, token, origin)
        if WebUI.is_route(path):
            return self.web.answer(request, path)
        stream_name = path.removeprefix("/ws/")
        if not path.startswith("/ws/") or stream_name not in {s.value for s in Stream}:
            known = ", ".join(f"/ws/{s.value}" for s in Stream)
            web = "/, /learner, /static/<file>, " if self.web.enabled else ""
            return text_response(
                HTTPStatus.NOT_FOUND,
                redact(
                    f"unknown path {path[:200]}; known: {web}{known}, /whoami, /healthz, /metrics\n"
                ),
            )
        stream = Stream(stream_name)
        try:
            principal, learner = await self._admit(request, query, token, origin, stream)
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

    async def _admit(
        self,
        request: Request,
        query: dict[str, list[str]],
        token: str | None,
        origin: OriginKind,
        stream: Stream | None,
    ) -> tuple[Principal, str | None]:
        """Who asks, and the learner they are scoped to (None: all), for a handshake on
        ``stream`` or, with ``stream`` None, a /whoami question about the streams.

        Raises Refused: 403 for a foreign origin, 401 for a missing or bad token, 403
        for a role the path does not allow or a learner-scoped token asking for another.
        """
        if origin == OriginKind.FOREIGN:
            refusal = origin_refusal(redact(request.headers["Origin"]))
            log.warning("refused a request: %s", refusal)
            raise Refused(HTTPStatus.FORBIDDEN, refusal)
        try:
            principal = await self._auth.authenticate(token, origin)
        except AuthError as exc:
            raise Refused(HTTPStatus(exc.status), redact(str(exc))) from None
        if stream == Stream.INGEST and not principal.may_ingest():
            raise Refused(
                HTTPStatus.FORBIDDEN,
                f"token {principal.name!r} has role {principal.role}; /ws/ingest needs ingest "
                "or admin",
            )
        if stream != Stream.INGEST and not principal.may_view():
            raise Refused(
                HTTPStatus.FORBIDDEN,
                f"token {principal.name!r} has role {principal.role}; streams need viewer or admin",
            )
        learner = query.get("learner", [None])[0] or None
        if principal.learner is not None:
            if learner is not None and learner != principal.learner:
                raise Refused(
                    HTTPStatus.FORBIDDEN,
                    redact(
                        f"token {principal.name!r} is scoped to one learner and cannot see "
                        f"learner {learner[:100]!r}"
                    ),
                )
            learner = principal.learner
        return principal, learner

    async def _whoami(
        self,
        request: Request,
        query: dict[str, list[str]],
        token: str | None,
        origin: OriginKind,
    ) -> Response:
        """Who the request's token is on the streams, as JSON, or why a stream handshake with
        the same token, origin and ``?learner=`` would be refused (the same checks, the same
        status and reason; browsers hide a refused WebSocket handshake's status)."""
        # Always 200 with the verdict in the body: a page asking whether a token will do is
        # not a failed request, and browsers log every 4xx answer as a console error.
        try:
            principal, learner = await self._admit(request, query, token, origin, None)
        except Refused as refused:
            return _json_response(
                HTTPStatus.OK,
                {"accepted": False, "status": refused.status.value, "error": refused.reason},
            )
        return _json_response(
            HTTPStatus.OK,
            {
                "accepted": True,
                "status": HTTPStatus.OK.value,
                "token": principal.token_id,
                "role": principal.role,
                "learner": learner,
                "can_ack": principal.may_ack(),
                "tokens_required": self._auth.required,
                "server_id": self.store.server_id,
                "version": __version__,
            },
        )

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

    async def _http_principal(
        self, token: str | None, origin: OriginKind
    ) -> Principal | Response | None:
        """Who asks for /healthz or /metrics: a principal, None (anonymous where tokens are
        optional and the page, if any, is foreign), or the 401 response to send."""
        if not token and not self._auth.required and not origin.may_be_anonymous:
            return None
        try:
            return await self._auth.authenticate(token, origin)
        except AuthError as exc:
            return text_response(HTTPStatus(exc.status), redact(f"{exc}\n"))

    async def _healthz(self, token: str | None, origin: OriginKind) -> Response:
        """Health as JSON: 200 "ok", or 503 "degraded" with the reasons.

        Where tokens are required it needs one (401 without); the database path
        is shown to admins only (the loopback anonymous admin included).
        """
        principal = await self._http_principal(token, origin)
        if isinstance(principal, Response):
            return principal
        problems = await self._health_problems()
        db: dict[str, Any] = {"ok": not problems.get("db"), "last_seq": self.store.last_seq}
        if principal is not None and principal.role == "admin":
            db["path"] = str(self.settings.db)
        body = {
            "status": "degraded" if problems else "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "db": db,
            "connections": self.connection_counts(),
        }
        if problems:
            body["problems"] = list(problems.values())
        if self.loops_down:
            body["loops_down"] = dict(self.loops_down)
        status = HTTPStatus.SERVICE_UNAVAILABLE if problems else HTTPStatus.OK
        return _json_response(status, body)

    async def _health_problems(self) -> dict[str, str]:
        """What is wrong right now, one sentence per cause: the database, writes, loops."""
        problems: dict[str, str] = {}
        try:
            await self.store.ping()
        except Exception as exc:
            log.error("health check: database error: %s", exc)
            problems["db"] = f"the database cannot be read: {exc}"
        if self.store.write_problem:
            problems["writes"] = self.store.write_problem
        for name, cause in sorted(self.loops_down.items()):
            problems[f"loop:{name}"] = f"the {name} loop is down ({cause}); restarting"
        return problems

    async def _metrics(self, token: str | None, origin: OriginKind) -> Response:
        """The Prometheus page. Where tokens are required: a viewer or admin token, or
        ``server.metrics_token``; 401 without, 403 for an ingest token."""
        metrics_token = self.settings.metrics_token
        if not (token and metrics_token and hmac.compare_digest(token, metrics_token)):
            principal = await self._http_principal(token, origin)
            if isinstance(principal, Response):
                return principal
            if principal is not None and not principal.may_view():
                return text_response(
                    HTTPStatus.FORBIDDEN,
                    f"token {principal.name!r} has role {principal.role}; /metrics needs viewer, "
                    "admin or the metrics token\n",
                )
        return text_response(HTTPStatus.OK, prometheus_text(self), "text/plain; version=0.0.4")

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

    def _hello(self, sub: Subscriber, resumed: bool, given: int) -> list[bytes]:
        """``hello`` (and its earlier-design alias) for a client given data up to ``given``.

        Its ``seq`` is ``given``, never the stream head (``data.head_seq``): resuming
        from any frame's seq must not skip what the client has not received yet.
        """
        data = {
            "server_id": self.store.server_id,
            "epoch": self.epoch,
            "stream": sub.stream.value,
            "seq": given,
            "head_seq": self.hub.seq[sub.stream],
            "learner": sub.learner,
            "protocol": PROTOCOL_VERSION,
            "resumed": resumed,
            "version": __version__,
            # The server's clock, for ages and ack expiries: simulated (and faster) in the demo.
            "clock": {"now": round(self.now(), 3), "rate": self.clock_rate},
        }
        return [
            envelope(sub.stream, ServerType.HELLO, given, data),
            # For clients of the earlier design.
            envelope(sub.stream, ServerType.CONNECTION_ESTABLISHED, given, data),
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
            given = since if resumed and since is not None else 0
            self.hub.go_live(sub, [*self._hello(sub, resumed, given), *frames])
            async for raw in ws:
                await self._on_client_message(sub, principal, raw)
        except ConnectionClosed:
            pass
        finally:
            await self.hub.remove(sub)
            if watching:
                self.sampler.unwatch_learner(learner)

    def _reply(self, sub: Subscriber, kind: ServerType, data: Any) -> None:
        """Queue a non-data frame; its seq is the last data seq this client was given."""
        self.hub.send_direct(sub, envelope(sub.stream, kind, sub.delivered_seq, data))

    def _error(self, sub: Subscriber, code: str, message: str, **details: Any) -> None:
        self._reply(sub, ServerType.ERROR, error_data(code, message, **details))

    async def _resync(self, sub: Subscriber, since: int | None) -> None:
        """Answer ``resume`` (``since`` given) or ``refresh``: hello, then replay or snapshot.

        Frames already queued for this client still reach it before the new
        hello, so a resume replays only what comes after both ``since`` and
        what the client was already given: nothing arrives twice.
        """
        given = sub.delivered_seq
        if since is not None and since <= given:
            since = given
        sub.syncing = True
        frames, resumed = await initial_frames(self, sub, since)
        self.hub.go_live(sub, [*self._hello(sub, resumed, given), *frames])

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
        now = self.now()
        try:
            alert_id = parse_alert_id(body.get("alert_id", body.get("id")), kind.value)
            note = parse_ack_note(body.get("note"), kind.value)
            if kind == ClientType.ACK:
                expires_at = parse_ack_expiry(body.get("expires_at"), now)
        except ProtocolError as exc:
            self._error(sub, "bad_message", str(exc))
            return
        try:
            if kind == ClientType.ACK:
                await self.store.acknowledge_alert(
                    alert_id,
                    by=principal.name,
                    note=note,
                    expires_at=expires_at,
                    now=now,
                    # Scope applies to actions too: another learner's alert is "does not exist".
                    learner=sub.learner,
                )
            else:
                await self.store.unacknowledge_alert(
                    alert_id,
                    by=principal.name,
                    note=note,
                    now=now,
                    learner=sub.learner,
                )
        except JacmonError as exc:
            code = "ack_failed" if kind == ClientType.ACK else "unack_failed"
            self._error(sub, code, str(exc), alert_id=alert_id)
            return
        self._alert_nudge.set()


def _echoable(value: Any) -> bool:
    """True for a ping ``id`` that can be echoed as sent: null, a JSON number, short text."""
    if value is None or (isinstance(value, int | float) and not isinstance(value, bool)):
        return not isinstance(value, float) or math.isfinite(value)
    return isinstance(value, str) and len(value) <= 256 and is_valid_unicode(value)


__all__ = ["JacmonServer"]
