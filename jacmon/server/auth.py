"""Tokens, roles and learner scope: who may connect to what.

A token looks like ``jm_<id>_<secret>``; only SHA-256 of the secret is stored,
so a stolen database does not leak working tokens. Roles:

* ``viewer``: the four streams (``can_ack`` also lets it acknowledge alerts);
* ``ingest``: ``/ws/ingest`` only;
* ``admin``: everything.

A token with a ``learner`` sees only that learner.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from jacmon.errors import AuthError, UsageError

if TYPE_CHECKING:
    from jacmon.config import ServerSettings
    from jacmon.store import Store

ROLES = ("viewer", "ingest", "admin")


@dataclass(slots=True, frozen=True)
class Principal:
    """Who is connected: a token's identity, or ``anonymous`` where tokens are optional."""

    token_id: str | None
    role: str
    learner: str | None = None
    can_ack: bool = False

    @property
    def name(self) -> str:
        return self.token_id or "anonymous"

    def may_view(self) -> bool:
        return self.role in ("viewer", "admin")

    def may_ingest(self) -> bool:
        return self.role in ("ingest", "admin")

    def may_ack(self) -> bool:
        return self.role == "admin" or (self.role == "viewer" and self.can_ack)


#: Where tokens are optional (loopback, not required): full access, like a local admin.
ANONYMOUS = Principal(token_id=None, role="admin")


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def tokens_required(server: ServerSettings) -> bool:
    """Tokens are required wherever configured so, and off loopback unless --insecure."""
    return server.require_tokens or not (is_loopback(server.host) or server.insecure)


async def create_token(
    store: Store,
    *,
    role: str,
    learner: str | None = None,
    can_ack: bool = False,
    name: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Create a token; returns (the token text, shown once, and its record)."""
    if role not in ROLES:
        raise UsageError(f"role {role!r} is unknown; expected one of {', '.join(ROLES)}")
    if can_ack and role != "viewer":
        raise UsageError("--can-ack applies to viewer tokens; admin tokens can always acknowledge")
    token_id = secrets.token_hex(4)
    secret = secrets.token_urlsafe(24)
    record = {
        "id": token_id,
        "role": role,
        "learner": learner,
        "can_ack": can_ack,
        "name": name,
        "created": time.time(),
        "revoked": None,
    }
    await store.insert_token(record, _hash(secret))
    return f"jm_{token_id}_{secret}", record


async def list_tokens(store: Store) -> list[dict[str, Any]]:
    """Every token's record (never the secret), newest first."""
    return await store.list_tokens()


async def revoke_token(store: Store, token_id: str) -> None:
    """Revoke by id (``jm_<id>_...``: the part after ``jm_``); a full token works too."""
    if token_id.startswith("jm_"):
        token_id = token_id.split("_")[1]
    if not await store.revoke_token(token_id, now=time.time()):
        raise UsageError(f"no active token with id {token_id!r}; 'jacmon token list' shows the ids")


class OriginKind(Enum):
    """Where a request comes from, by its ``Origin`` header."""

    #: No Origin header: not a browser (jacmon's clients, curl, a scraper).
    NONE = "none"
    #: A page served from this server's own origin (scheme, host and port of the request).
    OWN = "own"
    #: A foreign page whose origin is listed in ``server.allowed_origins``.
    ALLOWED = "allowed"
    #: Any other page: refused on every WebSocket path.
    FOREIGN = "foreign"

    @property
    def may_be_anonymous(self) -> bool:
        """Whether a request without a token may be let in as the loopback admin.

        Never for foreign pages, listed or not: a page open in a browser on the
        server's machine is not the machine's operator.
        """
        return self in (OriginKind.NONE, OriginKind.OWN)


_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _origin_key(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) compared case-insensitively, default ports filled in,
    IPv6 brackets removed; None if ``netloc`` is not a host[:port]."""
    scheme = scheme.lower()
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path:
        return None
    default = _DEFAULT_PORTS.get(scheme)
    if port is None and default is None:
        return None
    host = parts.hostname.lower()
    with contextlib.suppress(ValueError):
        host = str(ipaddress.ip_address(host))  # one spelling per address: [0:0::1] is [::1]
    return scheme, host, port if port is not None else default


def _parse_origin(origin: str) -> tuple[str, str, int] | None:
    scheme, sep, netloc = origin.strip().partition("://")
    if not sep:
        return None
    return _origin_key(scheme, netloc)


class OriginCheck:
    """Classifies a request's ``Origin`` against the server's own origin and an allow-list.

    The server's own origin is the ``Host`` the request came to, with ``https``
    when the server serves TLS, else ``http``. A server on loopback counts only
    loopback hosts (``localhost``, 127.0.0.0/8, ``::1``) as its own: a page on a
    domain that resolves to 127.0.0.1 (DNS rebinding) is foreign. ``allowed`` are
    origins like ``https://lms.example.com``; ``*`` allows every origin (tokens
    still required for them).
    """

    def __init__(self, *, tls: bool, loopback: bool, allowed: list[str]):
        self.scheme = "https" if tls else "http"
        self.loopback = loopback
        self.allow_all = "*" in allowed
        self.allowed = {key for key in map(_parse_origin, allowed) if key is not None}

    def classify(self, origin: str | None, host: str | None) -> OriginKind:
        """The kind of ``origin`` (the header's value; None when absent) for a request to
        ``host`` (the Host header; None when absent)."""
        if origin is None:
            return OriginKind.NONE
        key = _parse_origin(origin)
        if key is not None and host is not None and self._is_own(key, host):
            return OriginKind.OWN
        if key is not None and (self.allow_all or key in self.allowed):
            return OriginKind.ALLOWED
        return OriginKind.FOREIGN

    def _is_own(self, origin: tuple[str, str, int], host: str) -> bool:
        """Whether ``origin`` is this server's, as reached through the Host header ``host``."""
        if origin != _origin_key(self.scheme, host):
            return False
        return not self.loopback or is_loopback(origin[1])


def origin_refusal(origin: str) -> str:
    """The one-line reason a WebSocket handshake from ``origin`` is refused (403)."""
    shown = origin if len(origin) <= 100 else origin[:100] + "…"
    return (
        f"origin {shown!r} may not open WebSockets on this server; if its pages should, "
        f"start the server with --allowed-origin {shown} (server.allowed_origins)"
    )


class Authenticator:
    """Checks the token of each connection against the database.

    ``required`` False (loopback default) lets a request without a token in as
    :data:`ANONYMOUS`, unless it comes from a browser page of a foreign origin;
    a token that *is* presented is always checked.
    """

    def __init__(self, store: Store, *, required: bool):
        self.store = store
        self.required = required

    async def authenticate(
        self, token: str | None, origin: OriginKind = OriginKind.NONE
    ) -> Principal:
        """The principal ``token`` stands for; raises AuthError (401) if it is missing
        where needed, malformed, unknown or revoked."""
        if not token:
            if self.required:
                raise AuthError(
                    "a token is required: send 'Authorization: Bearer <token>' or ?token=<token>",
                    status=401,
                )
            if not origin.may_be_anonymous:
                raise AuthError(
                    "a token is required for pages of another origin: send ?token=<token>; "
                    "tokenless access is for local programs and the server's own pages",
                    status=401,
                )
            return ANONYMOUS
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "jm":
            raise AuthError("token is malformed; expected jm_<id>_<secret>", status=401)
        _, token_id, secret = parts
        row = await self.store.token_for_auth(token_id)
        if row is None or not hmac.compare_digest(row["hash"], _hash(secret)):
            raise AuthError(f"token {token_id!r} is not valid", status=401)
        if row["revoked"] is not None:
            raise AuthError(f"token {token_id!r} was revoked", status=401)
        return Principal(token_id, row["role"], row["learner"], bool(row["can_ack"]))
