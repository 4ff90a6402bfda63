"""A pushed request body's ``Content-Encoding`` undone, with a bound on what it expands to.

LRS clients and Caliper sensors may compress what they send (``gzip``; ``deflate``
is the same stream in a zlib wrapper). :func:`decoded_body` returns the body as
sent before compression, never more than ``limit`` bytes of it, so a small
compressed body cannot expand into more than the server takes uncompressed
(a "zip bomb" is refused as too large after ``limit`` bytes, not held in memory).
Codings it does not know (``br``, ``zstd``, ``compress``) are refused naming
the value, with what is accepted. No I/O here.
"""

from __future__ import annotations

import zlib
from http import HTTPStatus

#: The codings accepted, for the ``Accept-Encoding`` of a 415 answer.
ACCEPTED = "gzip, deflate"

#: zlib ``wbits`` per coding: gzip's header and trailer, or zlib's (RFC 9110 section 8.4.1).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


class BodyRefused(Exception):
    """The body cannot be read: the HTTP status to answer and the reason."""

    def __init__(self, status: HTTPStatus, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


def codings(header: str | None) -> list[str]:
    """The codings a ``Content-Encoding`` header lists, in the order they were applied
    (lower case; ``identity`` left out)."""
    if not header:
        return []
    named = [part.strip().lower() for part in header.split(",")]
    return [coding for coding in named if coding and coding != "identity"]


def decoded_body(body: bytes, header: str | None, *, limit: int) -> bytes:
    """``body`` with the codings of the ``Content-Encoding`` ``header`` undone.

    ``limit`` (bytes) bounds the result. Raises :class:`BodyRefused`: 415 naming a
    coding that is not accepted, 400 for data that is not what its coding says
    (corrupt or cut short), 413 when the result would be over ``limit``.
    """
    applied = codings(header)
    for coding in applied:
        if coding not in _WBITS:
            raise BodyRefused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"Content-Encoding {coding[:40]!r} is not accepted; send the body as it is, "
                f"or compressed with {ACCEPTED.replace(', ', ' or ')}",
            )
    for coding in reversed(applied):  # the last applied is undone first
        body = _inflate(body, coding, limit)
    return body


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    """``data`` decompressed as ``coding``; gzip may be several members one after another."""
    parts: list[bytes] = []
    size = 0
    remaining = data
    while True:
        stream = zlib.decompressobj(wbits=_WBITS[coding])
        try:
            # One byte over the limit is enough to know it is too much.
            out = stream.decompress(remaining, limit - size + 1)
        except zlib.error as exc:
            raise BodyRefused(
                HTTPStatus.BAD_REQUEST,
                f"the body is not valid {coding} data ({exc}); send it as Content-Encoding "
                "says, or without Content-Encoding",
            ) from None
        size += len(out)
        if size > limit:
            raise BodyRefused(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"the {coding} body expands to more than {limit} bytes; send at most {limit} "
                "uncompressed per request (server.push_max_body_bytes), in smaller batches",
            )
        if not stream.eof:
            raise BodyRefused(
                HTTPStatus.BAD_REQUEST,
                f"the {coding} body is cut short (its end is missing); send the whole body",
            )
        parts.append(out)
        remaining = stream.unused_data
        if not remaining:
            return b"".join(parts)
        if coding == "deflate":  # one zlib stream; gzip goes on to its next member
            raise BodyRefused(
                HTTPStatus.BAD_REQUEST,
                f"the body has {len(remaining)} bytes after the end of its deflate data",
            )
