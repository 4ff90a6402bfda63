"""Who may connect: the origin, the token, the role and the learner scope of a request.

The same checks answer a WebSocket handshake, ``/whoami`` (which says what a
handshake would get) and the HTTP endpoints, so a refusal reads the same
everywhere.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from http import HTTPStatus
from typing import Protocol

from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from jacmon.errors import AuthError
from jacmon.logs import redact
from jacmon.protocol import Stream
from jacmon.server.auth import Authenticator, OriginCheck, OriginKind, Principal, origin_refusal
from jacmon.server.web import text_response

log = logging.getLogger("jacmon.server")


class Refused(Exception):
    """The access checks turned a request away: the HTTP status and the one-line reason."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Admission:
    """An accepted handshake: who connected to which stream, scoped how, resuming where."""

    principal: Principal
    stream: Stream
    learner: str | None
    since: int | None


def request_token(request: Request, query: dict[str, list[str]]) -> str | None:
    """The token a request carries: ``Authorization: Bearer`` first, then ``?token=``."""
    header = request.headers.get("Authorization")
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return query.get("token", [None])[0]


class HasHeaders(Protocol):
    """A request as :meth:`Gate.classify` reads it: websockets' or the push endpoints'."""

    headers: Headers


class Gate:
    """Classifies origins and authenticates tokens for one server."""

    def __init__(self, auth: Authenticator, origins: OriginCheck):
        self.auth = auth
        self.origins = origins

    def classify(self, request: HasHeaders) -> OriginKind:
        """The origin of a handshake or of a push request (anything with ``headers``)."""
        return self.origins.classify(request.headers.get("Origin"), request.headers.get("Host"))

    async def admit(
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
            principal = await self.auth.authenticate(token, origin)
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

    async def http_principal(
        self, token: str | None, origin: OriginKind
    ) -> Principal | Response | None:
        """Who asks for /healthz or /metrics: a principal, None (anonymous where tokens are
        optional and the page, if any, is foreign), or the 401 response to send."""
        if not token and not self.auth.required and not origin.may_be_anonymous:
            return None
        try:
            return await self.auth.authenticate(token, origin)
        except AuthError as exc:
            return text_response(HTTPStatus(exc.status), redact(f"{exc}\n"))
