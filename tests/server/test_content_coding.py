"""Undoing a body's Content-Encoding: the codings in order, several gzip members, and
the size bound exactly at the limit."""

from __future__ import annotations

import gzip
import zlib
from http import HTTPStatus

import pytest

from jacmon.server.content_coding import BodyRefused, codings, decoded_body

TEXT = b'[{"id": "one"}]' * 40


def test_codings_are_listed_in_the_order_applied_without_identity() -> None:
    assert codings(None) == codings("") == codings("identity") == []
    assert codings(" GZIP , identity,deflate ") == ["gzip", "deflate"]


def test_plain_gzip_deflate_and_both_layered() -> None:
    assert decoded_body(TEXT, None, limit=len(TEXT)) == TEXT
    assert decoded_body(gzip.compress(TEXT), "gzip", limit=len(TEXT)) == TEXT
    assert decoded_body(gzip.compress(TEXT), "x-gzip", limit=len(TEXT)) == TEXT
    assert decoded_body(zlib.compress(TEXT), "deflate", limit=len(TEXT)) == TEXT
    # deflate applied first, then gzip: gzip is undone first.
    layered = gzip.compress(zlib.compress(TEXT))
    assert decoded_body(layered, "deflate, gzip", limit=len(TEXT)) == TEXT


def test_several_gzip_members_are_one_body() -> None:
    members = gzip.compress(TEXT[:100]) + gzip.compress(TEXT[100:])
    assert decoded_body(members, "gzip", limit=len(TEXT)) == TEXT


def test_the_limit_is_on_the_result_exactly() -> None:
    assert decoded_body(gzip.compress(TEXT), "gzip", limit=len(TEXT)) == TEXT
    with pytest.raises(BodyRefused) as refused:
        decoded_body(gzip.compress(TEXT), "gzip", limit=len(TEXT) - 1)
    assert refused.value.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    assert f"more than {len(TEXT) - 1} bytes" in refused.value.reason
    # Across members too.
    members = gzip.compress(TEXT) + gzip.compress(b"x")
    with pytest.raises(BodyRefused):
        decoded_body(members, "gzip", limit=len(TEXT))


@pytest.mark.parametrize(
    ("body", "coding", "status", "says"),
    [
        (TEXT, "br", HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "'br' is not accepted"),
        (TEXT, "gzip, zstd", HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "'zstd' is not accepted"),
        (TEXT, "gzip", HTTPStatus.BAD_REQUEST, "not valid gzip data"),
        (gzip.compress(TEXT)[:-8], "gzip", HTTPStatus.BAD_REQUEST, "cut short"),
        (zlib.compress(TEXT) + b"tail", "deflate", HTTPStatus.BAD_REQUEST, "4 bytes after"),
        (gzip.compress(TEXT) + b"junk", "gzip", HTTPStatus.BAD_REQUEST, "not valid gzip"),
    ],
)
def test_what_cannot_be_read_says_why(
    body: bytes, coding: str, status: HTTPStatus, says: str
) -> None:
    with pytest.raises(BodyRefused) as refused:
        decoded_body(body, coding, limit=1 << 20)
    assert refused.value.status == status and says in refused.value.reason
