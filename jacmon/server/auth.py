"""Tokens, roles and learner scope: who may connect to what.

A token looks like ``jm_<id>_<secret>``; only SHA-256 of the secret is stored,
so a stolen database does not leak working tokens. Roles:

* ``viewer``: the four streams (``can_ack`` also lets it acknowledge alerts);
* ``ingest``: ``/ws/ingest`` only;
* ``admin``: everything.

A token with a ``learner`` sees only that learner.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jacmon.errors import AuthError, UsageError
from jacmon.store.database import Database

if TYPE_CHECKING:
    from jacmon.config import ServerSettings

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
    db: Database,
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
    async with db.transaction() as conn:
        await conn.execute(
            "INSERT INTO tokens (id, hash, role, learner, can_ack, name, created)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_id, _hash(secret), role, learner, int(can_ack), name, record["created"]),
        )
    return f"jm_{token_id}_{secret}", record


async def list_tokens(db: Database) -> list[dict[str, Any]]:
    """Every token's record (never the secret), newest first."""
    async with db.reader.execute(
        "SELECT id, role, learner, can_ack, name, created, revoked FROM tokens"
        " ORDER BY created DESC"
    ) as cursor:
        rows = await cursor.fetchall()
    return [dict(row) | {"can_ack": bool(row["can_ack"])} for row in rows]


async def revoke_token(db: Database, token_id: str) -> None:
    """Revoke by id (``jm_<id>_...``: the part after ``jm_``); a full token works too."""
    if token_id.startswith("jm_"):
        token_id = token_id.split("_")[1]
    async with db.transaction() as conn:
        cursor = await conn.execute(
            "UPDATE tokens SET revoked = ? WHERE id = ? AND revoked IS NULL",
            (time.time(), token_id),
        )
        if cursor.rowcount == 0:
            raise UsageError(
                f"no active token with id {token_id!r}; 'jacmon token list' shows the ids"
            )


async def active_token_count(db: Database) -> int:
    async with db.reader.execute("SELECT count(*) FROM tokens WHERE revoked IS NULL") as cursor:
        (count,) = await cursor.fetchone()
    return count


class Authenticator:
    """Checks the token of each connection against the database.

    ``required`` False (loopback default) lets a request without a token in as
    :data:`ANONYMOUS`; a token that *is* presented is always checked.
    """

    def __init__(self, db: Database, *, required: bool):
        self.db = db
        self.required = required

    async def authenticate(self, token: str | None) -> Principal:
        if not token:
            if self.required:
                raise AuthError(
                    "a token is required: send 'Authorization: Bearer <token>' or ?token=<token>",
                    status=401,
                )
            return ANONYMOUS
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] != "jm":
            raise AuthError("token is malformed; expected jm_<id>_<secret>", status=401)
        _, token_id, secret = parts
        async with self.db.reader.execute(
            "SELECT hash, role, learner, can_ack, revoked FROM tokens WHERE id = ?", (token_id,)
        ) as cursor:
            row = await cursor.fetchone()
        if row is None or not hmac.compare_digest(row["hash"], _hash(secret)):
            raise AuthError(f"token {token_id!r} is not valid", status=401)
        if row["revoked"] is not None:
            raise AuthError(f"token {token_id!r} was revoked", status=401)
        return Principal(token_id, row["role"], row["learner"], bool(row["can_ack"]))
