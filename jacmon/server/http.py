"""The server's HTTP endpoints beside the streams: ``/healthz``, ``/metrics``, ``/whoami``.

(The browser dashboard's pages are :mod:`jacmon.server.web`.)
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from http import HTTPStatus
from typing import Any

from websockets.http11 import Request, Response

from jacmon import __version__
from jacmon.bus import LocalBus
from jacmon.logs import redact
from jacmon.server.admission import Gate, Refused
from jacmon.server.auth import OriginKind
from jacmon.server.context import ServerContext
from jacmon.server.web import text_response

log = logging.getLogger("jacmon.server")


def json_response(status: HTTPStatus, body: dict[str, Any]) -> Response:
    """A JSON response that no cache keeps; token secrets redacted."""
    return text_response(status, redact(json.dumps(body)) + "\n", "application/json")


class HttpEndpoints:
    """Answers /healthz, /metrics and /whoami for one server.

    ``connection_counts`` gives the open connections per stream (and ingest);
    ``loops_down`` the background loops that are down (name -> cause);
    ``metrics_text`` the Prometheus page.
    """

    def __init__(
        self,
        ctx: ServerContext,
        gate: Gate,
        *,
        started_at: float,
        connection_counts: Callable[[], dict[str, int]],
        loops_down: Mapping[str, str],
        metrics_text: Callable[[], str],
        node: str,
        leading: Callable[[], bool],
    ):
        self.ctx = ctx
        self.gate = gate
        self.started_at = started_at
        self.connection_counts = connection_counts
        self.loops_down = loops_down
        self.metrics_text = metrics_text
        self.node = node
        self.leading = leading

    async def healthz(self, token: str | None, origin: OriginKind) -> Response:
        """Health as JSON: 200 "ok", or 503 "degraded" with the reasons.

        Where tokens are required it needs one (401 without); the database path
        is shown to admins only (the loopback anonymous admin included).
        """
        principal = await self.gate.http_principal(token, origin)
        if isinstance(principal, Response):
            return principal
        problems = await self.health_problems()
        store = self.ctx.store
        db: dict[str, Any] = {"ok": not problems.get("db"), "last_seq": store.last_seq}
        if principal is not None and principal.role == "admin":
            db["path"] = str(self.ctx.settings.db)
        body = {
            "status": "degraded" if problems else "ok",
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 1),
            "db": db,
            "bus": {
                "ok": not problems.get("bus"),
                "kind": "local" if isinstance(self.ctx.bus, LocalBus) else "redis",
            },
            "node": self.node,
            # This node runs the scheduler and the notifier (one node of a store does).
            "leader": self.leading(),
            "connections": self.connection_counts(),
        }
        if problems:
            body["problems"] = list(problems.values())
        if self.loops_down:
            body["loops_down"] = dict(self.loops_down)
        status = HTTPStatus.SERVICE_UNAVAILABLE if problems else HTTPStatus.OK
        return json_response(status, body)

    async def health_problems(self) -> dict[str, str]:
        """What is wrong right now, one sentence per cause: the store, writes, the bus, loops."""
        problems: dict[str, str] = {}
        store = self.ctx.store
        try:
            await store.ping()
        except Exception as exc:
            log.error("health check: database error: %s", exc)
            problems["db"] = f"the database cannot be read: {exc}"
        if store.write_problem:
            problems["writes"] = store.write_problem
        bus_problem = self.ctx.bus.problem()
        if bus_problem:
            problems["bus"] = bus_problem
        for name, cause in sorted(self.loops_down.items()):
            problems[f"loop:{name}"] = f"the {name} loop is down ({cause}); restarting"
        return problems

    async def metrics(self, token: str | None, origin: OriginKind) -> Response:
        """The Prometheus page. Where tokens are required: a viewer or admin token, or
        ``server.metrics_token``; 401 without, 403 for an ingest token."""
        metrics_token = self.ctx.settings.metrics_token
        if not (token and metrics_token and hmac.compare_digest(token, metrics_token)):
            principal = await self.gate.http_principal(token, origin)
            if isinstance(principal, Response):
                return principal
            if principal is not None and not principal.may_view():
                return text_response(
                    HTTPStatus.FORBIDDEN,
                    f"token {principal.name!r} has role {principal.role}; /metrics needs viewer, "
                    "admin or the metrics token\n",
                )
        return text_response(HTTPStatus.OK, self.metrics_text(), "text/plain; version=0.0.4")

    async def whoami(
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
            principal, learner = await self.gate.admit(request, query, token, origin, None)
        except Refused as refused:
            return json_response(
                HTTPStatus.OK,
                {"accepted": False, "status": refused.status.value, "error": refused.reason},
            )
        return json_response(
            HTTPStatus.OK,
            {
                "accepted": True,
                "status": HTTPStatus.OK.value,
                "token": principal.token_id,
                "role": principal.role,
                "learner": learner,
                "can_ack": principal.may_ack(),
                "tokens_required": self.gate.auth.required,
                "server_id": self.ctx.store.server_id,
                "version": __version__,
            },
        )
