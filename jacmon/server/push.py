"""Platforms push here: ``/xAPI/statements`` and ``/xAPI/about`` (xAPI 1.0.3 and 2.0.0)
and ``/caliper`` (IMS Caliper 1.2 envelopes), on the server's one port.

A request is checked whole before anything is stored: the token (HTTP Basic with
an ingest token's id and secret, as LRS clients are configured, or ``Authorization:
Bearer``; the same roles and loopback rules as the WebSockets), the xAPI version
header, the body's size and count (a gzip or deflate body is decompressed, within
the same size limit), and each statement's xAPI validity (400 names the statement
and the field). Then every record is mapped (:mod:`jacmon.sources`),
and the events and the records as sent are stored in one transaction and
acknowledged after the commit. A record jacmon cannot map is still accepted, kept
with the reason (``jacmon ingest-log``) and counted on ``/metrics``: a sender must
not retry it forever. An xAPI statement id already kept with other content is a
409; sent again with the same content, it is stored once.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import msgspec

from jacmon.errors import AuthError
from jacmon.events import Event
from jacmon.logs import redact
from jacmon.server.admission import Gate
from jacmon.server.auth import OriginKind, Principal, origin_refusal
from jacmon.server.connection import HttpReply, HttpRequest
from jacmon.server.content_coding import ACCEPTED, BodyRefused, decoded_body
from jacmon.server.ingest import IngestService
from jacmon.sources.caliper import CaliperMappingError, caliper_to_event, check_envelope
from jacmon.sources.xapi import StatementMappingError, statement_to_event
from jacmon.sources.xapi_statements import (
    ABOUT_VERSIONS,
    DEFAULT_VERSION,
    StatementInvalid,
    check_uuid,
    check_version,
    compact_json,
    json_digest,
    prepare_statements,
)
from jacmon.store.types import ReceivedRecord, RecordConflict, StorageUnavailable

log = logging.getLogger("jacmon.push")

XAPI_PREFIX = "/xAPI"
STATEMENTS = "/xAPI/statements"
ABOUT = "/xAPI/about"
CALIPER = "/caliper"

_DECODER = msgspec.json.Decoder()
_SLASHES = re.compile(r"/{2,}")
_KNOWN_PATHS = {path.lower(): path for path in (XAPI_PREFIX, STATEMENTS, ABOUT, CALIPER)}
_XAPI_LOWER = XAPI_PREFIX.lower()
#: What a statements request's body is, for the 400 of one that is not.
_STATEMENTS_EXPECTED = "a statement or an array of statements"

#: Longest Caliper event id kept as the record's id; a longer one (or none) is kept
#: under ``sha256:<digest>`` (the mapping refuses ids over the event contract's bound).
MAX_RECORD_ID_LENGTH = 1024

#: Request outcomes counted per source, as /metrics labels.
OUTCOMES = ("mapped", "unmapped", "duplicate")


@dataclass
class PushCounters:
    """What the push endpoints received, per source (``xapi``, ``caliper``)."""

    #: (source, outcome) -> records: mapped, unmapped (kept with the reason), duplicate.
    records: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (source, HTTP status) -> requests answered.
    requests: dict[tuple[str, int], int] = field(default_factory=dict)

    def count(self, source: str, outcome: str, n: int = 1) -> None:
        if n:
            key = (source, outcome)
            self.records[key] = self.records.get(key, 0) + n

    def answered(self, source: str, status: HTTPStatus) -> None:
        key = (source, status.value)
        self.requests[key] = self.requests.get(key, 0) + 1

    def prometheus_lines(self) -> list[str]:
        lines = [
            "# HELP jacmon_push_records_total Records pushed to the xAPI and Caliper endpoints,"
            " by outcome (unmapped: accepted and kept with the reason, see jacmon ingest-log).",
            "# TYPE jacmon_push_records_total counter",
        ]
        for source in ("xapi", "caliper"):
            for outcome in OUTCOMES:
                n = self.records.get((source, outcome), 0)
                lines.append(
                    f'jacmon_push_records_total{{source="{source}",outcome="{outcome}"}} {n}'
                )
        lines += [
            "# HELP jacmon_push_requests_total Requests to the push endpoints, by HTTP status.",
            "# TYPE jacmon_push_requests_total counter",
        ]
        for (source, status), n in sorted(self.requests.items()):
            lines.append(f'jacmon_push_requests_total{{source="{source}",status="{status}"}} {n}')
        return lines


class _Refusal(Exception):
    """Answer the request with this status and reason (and extra headers)."""

    def __init__(self, status: HTTPStatus, reason: str, headers: Sequence[tuple[str, str]] = ()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


def request_token(headers: Any) -> str | None:
    """The token of a push request: ``Bearer <token>``, or HTTP Basic with the token's id
    as the username and its secret as the password (``jm_<id>_<secret>``)."""
    header = headers.get("Authorization")
    if not header:
        return None
    scheme, _, credentials = header.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if scheme.lower() != "basic":
        raise _Refusal(
            HTTPStatus.UNAUTHORIZED,
            f"authorization scheme {scheme[:20]!r} is not accepted; use Basic (token id and "
            "secret) or Bearer (the whole token)",
        )
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _Refusal(
            HTTPStatus.UNAUTHORIZED, "Basic credentials are not base64 of 'id:secret'"
        ) from None
    user, sep, secret = decoded.partition(":")
    if not sep:
        raise _Refusal(HTTPStatus.UNAUTHORIZED, "Basic credentials are not 'id:secret'")
    if user.startswith("jm_") and not secret:
        return user  # the whole token as the username, no password
    return f"jm_{user.removeprefix('jm_')}_{secret}"


def _decode_json(body: bytes, expected: str) -> tuple[Any, bool]:
    """The body's JSON value, and whether it was standard JSON (see ``compact_json``):
    msgspec first; the json module for what careless senders write (NaN, Infinity).
    ``expected`` says what the body should be, for the 400 of one that is not JSON."""
    if not body.strip():
        raise _Refusal(HTTPStatus.BAD_REQUEST, f"the body is empty; send {expected} as JSON")
    try:
        return _DECODER.decode(body), True
    except (msgspec.DecodeError, RecursionError):
        pass
    try:
        return json.loads(body), False
    except RecursionError:
        raise _Refusal(HTTPStatus.BAD_REQUEST, "the body nests too deeply") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise _Refusal(
            HTTPStatus.BAD_REQUEST, f"the body is not JSON ({exc}); send {expected} as JSON"
        ) from None


def _json_reply(
    status: HTTPStatus, value: Any, headers: Sequence[tuple[str, str]] = ()
) -> HttpReply:
    body = json.dumps(value, separators=(",", ":")).encode()
    return HttpReply(status, body, [("Content-Type", "application/json"), *headers])


class PushEndpoints:
    """The push endpoints of one server (see the module docstring)."""

    def __init__(
        self,
        ingest: IngestService,
        gate: Gate,
        *,
        security_headers: Sequence[tuple[str, str]],
        server_header: str,
    ):
        self.ingest = ingest
        self.gate = gate
        self.settings = ingest.ctx.settings
        self.counters = PushCounters()
        self._headers = [
            *security_headers,
            ("Server", server_header),
            ("Cache-Control", "no-store"),
        ]

    # PushTarget

    def owns(self, path: str) -> bool:
        found = canonical_path(path)
        return found in (CALIPER, XAPI_PREFIX) or found.lower().startswith(_XAPI_LOWER + "/")

    def limit_reply(self, request: HttpRequest, length: int) -> HttpReply | None:
        limit = self.settings.push_max_body_bytes
        if length <= limit:
            return None
        reason = (
            f"request body is {length} bytes; send at most {limit} per request "
            "(server.push_max_body_bytes), in smaller batches"
        )
        return self.finish(
            self._refusal(request, _Refusal(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, reason))
        )

    def finish(self, reply: HttpReply) -> HttpReply:
        reply.headers.extend(self._headers)
        return reply

    async def answer(self, request: HttpRequest) -> HttpReply:
        request.path = canonical_path(request.path)
        try:
            reply = await self._route(request)
        except _Refusal as refusal:
            reply = self._refusal(request, refusal)
        except StorageUnavailable as exc:
            reason = (
                f"not acknowledged: {exc}; send the request again later (what was stored is "
                "recognised by id and stored once)"
            )
            reply = self._refusal(request, _Refusal(HTTPStatus.SERVICE_UNAVAILABLE, reason))
        except Exception:
            log.exception("push request %s %s failed", request.method, request.path)
            reply = self._refusal(
                request,
                _Refusal(
                    HTTPStatus.INTERNAL_SERVER_ERROR,
                    "the server failed on this request and stored nothing of it; see the "
                    "server log",
                ),
            )
        self.counters.answered(_source(request.path, self.owns(request.path)), reply.status)
        return self.finish(reply)

    def _refusal(self, request: HttpRequest, refusal: _Refusal) -> HttpReply:
        """An error as a JSON document ``{"error": true, "message", "code"}`` (xAPI's own
        shape, used for Caliper too, so senders parse one kind of answer)."""
        headers = list(refusal.headers)
        if request.path.startswith(XAPI_PREFIX):
            # Every xAPI response names the version.
            headers.insert(0, ("X-Experience-API-Version", _echo_version(request)))
        return _json_reply(
            refusal.status,
            {"error": True, "message": refusal.reason, "code": refusal.status.value},
            headers,
        )

    async def _route(self, request: HttpRequest) -> HttpReply:
        path, method = request.path, request.method
        if path == ABOUT:
            _allow(method, ("GET", "HEAD"))
            version = _echo_version(request)
            # 2.0.0 only to a 2.0 client: 1.0.x clients (TinCanPython's About) refuse a list
            # naming a version they do not know.
            listed = [v for v in ABOUT_VERSIONS if v.startswith("1.") or version.startswith("2.")]
            return _json_reply(
                HTTPStatus.OK, {"version": listed}, [("X-Experience-API-Version", version)]
            )
        if path == STATEMENTS:
            if method == "GET":
                raise _Refusal(
                    HTTPStatus.METHOD_NOT_ALLOWED,
                    "jacmon receives statements and does not serve them; read them from your "
                    "LRS (POST or PUT statements here)",
                    [("Allow", "POST, PUT")],
                )
            _allow(method, ("POST", "PUT"))
            return await self._statements(request)
        if path == CALIPER:
            _allow(method, ("POST",))
            return await self._caliper(request)
        if not self.owns(path):
            # Here only for a body sent to another path (see server/connection.py).
            raise _Refusal(
                HTTPStatus.METHOD_NOT_ALLOWED,
                f"{method[:20]} {path[:200]}: only the push endpoints take {method[:20]} "
                f"({STATEMENTS}: POST, PUT; {CALIPER}: POST); other paths answer GET",
                [("Allow", "GET, HEAD")],
            )
        raise _Refusal(
            HTTPStatus.NOT_FOUND,
            f"{path[:200]} is not served; jacmon's xAPI endpoint has {STATEMENTS} (POST, PUT) "
            f"and {ABOUT} (GET); Caliper envelopes go to {CALIPER}",
        )

    async def _admit(self, request: HttpRequest, source: str) -> Principal:
        """Who sends, if they may push; a refusal (401/403) otherwise."""
        headers = request.headers
        origin = self.gate.classify(request)
        if origin == OriginKind.FOREIGN:
            raise _Refusal(HTTPStatus.FORBIDDEN, origin_refusal(redact(headers["Origin"])))
        challenge = [("WWW-Authenticate", 'Basic realm="jacmon", charset="UTF-8"')]
        try:
            token = request_token(headers)
            principal = await self.gate.auth.authenticate(token, origin)
        except _Refusal as refusal:
            raise _Refusal(refusal.status, refusal.reason, challenge) from None
        except AuthError as exc:
            raise _Refusal(HTTPStatus(exc.status), redact(str(exc)), challenge) from None
        if not principal.may_ingest():
            endpoint = "the Caliper endpoint" if source == "caliper" else "the xAPI endpoint"
            raise _Refusal(
                HTTPStatus.FORBIDDEN,
                f"token {principal.name!r} has role {principal.role}; {endpoint} needs ingest "
                "or admin",
            )
        return principal

    def _body(self, request: HttpRequest) -> bytes:
        """The request's body with its ``Content-Encoding`` undone (gzip, deflate), at most
        ``server.push_max_body_bytes`` of it; a refusal naming what is wrong otherwise."""
        media = request.headers.get("Content-Type", "").partition(";")[0].strip().lower()
        if media.startswith("multipart/"):
            # xAPI sends statements with attachments as multipart/mixed.
            raise _Refusal(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Type {media[:60]!r} is not accepted: jacmon keeps no attachments; "
                "send the statements as application/json, without attachments",
            )
        coding = ", ".join(request.headers.get_all("Content-Encoding"))
        try:
            return decoded_body(request.body, coding, limit=self.settings.push_max_body_bytes)
        except BodyRefused as refused:
            headers = []
            if refused.status == HTTPStatus.UNSUPPORTED_MEDIA_TYPE:
                headers.append(("Accept-Encoding", ACCEPTED))  # RFC 9110: what would do
            raise _Refusal(refused.status, refused.reason, headers) from None

    def _check_count(self, what: str, count: int) -> None:
        """A 413 saying ``what`` when ``count`` records are more than one request may carry."""
        limit = self.settings.push_max_records
        if count > limit:
            raise _Refusal(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"{what}; send at most {limit} per request (server.push_max_records)",
            )

    # xAPI

    async def _statements(self, request: HttpRequest) -> HttpReply:
        try:
            version = check_version(request.headers.get("X-Experience-API-Version"))
        except StatementInvalid as exc:
            raise _Refusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        principal = await self._admit(request, "xapi")
        document, standard = _decode_json(self._body(request), _STATEMENTS_EXPECTED)
        put_id = None
        if request.method == "PUT":
            if not isinstance(document, dict):
                raise _Refusal(HTTPStatus.BAD_REQUEST, "PUT takes one statement (a JSON object)")
            # Ralph's statement forwarding PUTs to the configured URL without the
            # parameter; the statement's own id stands in for it then.
            put_id = request.query.get("statementId", [None])[0] or document.get("id")
            if not put_id:
                raise _Refusal(
                    HTTPStatus.BAD_REQUEST,
                    "PUT needs the statementId parameter: /xAPI/statements?statementId=<UUID>",
                )
        statements = document if isinstance(document, list) else [document]
        if not isinstance(document, list | dict):
            raise _Refusal(
                HTTPStatus.BAD_REQUEST,
                f"the body is JSON {type(document).__name__}; send a statement or an array",
            )
        self._check_count(f"request has {len(statements)} statements", len(statements))
        try:
            if put_id is not None:
                check_uuid(put_id, "statementId")
            prepared = prepare_statements(
                statements, stored=self.ingest.ctx.now(), put_id=put_id, standard=standard
            )
        except StatementInvalid as exc:
            raise _Refusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        events: list[Event | None] = []
        reasons: list[str | None] = []
        for statement in prepared:
            try:
                events.append(statement_to_event(statement.for_mapping))
                reasons.append(None)
            except StatementMappingError as exc:
                events.append(None)
                reasons.append(str(exc))
        records = [(statement.id, statement.raw, statement.digest) for statement in prepared]
        unmapped = await self._store("xapi", events, reasons, records, principal)
        headers = [("X-Experience-API-Version", version)]
        if unmapped:
            headers.append(("X-Jacmon-Unmapped", str(unmapped)))
        if put_id is not None:
            return HttpReply(HTTPStatus.NO_CONTENT, b"", headers)
        return _json_reply(HTTPStatus.OK, [statement.id for statement in prepared], headers)

    # Caliper

    async def _caliper(self, request: HttpRequest) -> HttpReply:
        principal = await self._admit(request, "caliper")
        envelope, standard = _decode_json(self._body(request), "a Caliper envelope")
        try:
            data = check_envelope(envelope)
        except CaliperMappingError as exc:
            raise _Refusal(HTTPStatus.BAD_REQUEST, str(exc)) from None
        self._check_count(f"envelope has {len(data)} items in 'data'", len(data))
        events: list[Event | None] = []
        reasons: list[str | None] = []
        records = []
        for index, item in enumerate(data):
            digest = json_digest(item, standard=standard)
            item_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(item_id, str) or not item_id or len(item_id) > MAX_RECORD_ID_LENGTH:
                item_id = f"sha256:{digest}"
            records.append((item_id, compact_json(item, standard=standard).decode(), digest))
            try:
                events.append(caliper_to_event(item))
                reasons.append(None)
            except CaliperMappingError as exc:
                events.append(None)
                reasons.append(f"data[{index}]: {exc}")
        unmapped = await self._store("caliper", events, reasons, records, principal)
        skipped = [
            {"index": index, "id": records[index][0], "reason": reason}
            for index, reason in enumerate(reasons)
            if reason is not None
        ]
        return _json_reply(
            HTTPStatus.OK,
            {"received": len(data), "mapped": len(data) - unmapped, "unmapped": skipped},
        )

    # Storing

    async def _store(
        self,
        source: str,
        events: list[Event | None],
        reasons: list[str | None],
        records: list[tuple[str, str, str]],
        principal: Principal,
    ) -> int:
        """Store the mapped events and every record in one transaction; the number of
        records not mapped (``reasons`` gets why for events outside the accepted times)."""
        valid, indexes, refused = self.ingest.check_times(events)
        for refusal in refused:
            reasons[refusal["index"]] = refusal["error"]
        kept = [
            ReceivedRecord(
                source=source,
                id=record_id,
                body=raw,
                digest=digest,
                event_id=event.id if event is not None and reason is None else None,
                reason=reason,
                token=principal.token_id,
                # xAPI: an id names one statement; other content under it is a 409.
                refuse_other_content=source == "xapi",
            )
            for (record_id, raw, digest), event, reason in zip(
                records, events, reasons, strict=True
            )
        ]
        try:
            ack = await self.ingest.store_validated(valid, indexes, [], records=kept)
        except RecordConflict as conflict:
            raise _Refusal(
                HTTPStatus.CONFLICT,
                f"statement {conflict.ids[0]} is already stored with other content; an id "
                "names one statement (send a new id for a new statement)",
            ) from None
        unmapped = sum(1 for reason in reasons if reason is not None)
        self.counters.count(source, "mapped", ack["accepted"])
        self.counters.count(source, "duplicate", ack["duplicates"])
        self.counters.count(source, "unmapped", unmapped)
        if unmapped:
            log.info("%s: accepted %d record(s) that could not be mapped", source, unmapped)
        return unmapped


def _source(path: str, owned: bool) -> str:
    """The ``source`` label of a request's counter: caliper, xapi, or other (a method only
    the push endpoints take, sent to another path)."""
    if not owned:
        return "other"
    return "caliper" if path == CALIPER else "xapi"


def canonical_path(path: str) -> str:
    """``path`` as the push endpoints name it, whatever a sender's configuration made of
    it: repeated slashes as one (an endpoint set as ``.../xAPI/`` that the client joins
    with ``/statements``), no trailing slash, a known path in its own case
    (``/xapi/statements`` is ``/xAPI/statements``)."""
    squeezed = _SLASHES.sub("/", path).rstrip("/") or "/"
    return _KNOWN_PATHS.get(squeezed.lower(), squeezed)


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise _Refusal(
            HTTPStatus.METHOD_NOT_ALLOWED,
            f"method {method[:20]} is not allowed here; use {' or '.join(allowed)}",
            [("Allow", ", ".join(allowed))],
        )


def _echo_version(request: HttpRequest) -> str:
    """The request's xAPI version when it is one jacmon speaks, else 1.0.3."""
    try:
        return check_version(request.headers.get("X-Experience-API-Version"))
    except StatementInvalid:
        return DEFAULT_VERSION
