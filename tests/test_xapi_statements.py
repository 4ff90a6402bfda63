"""jacmon.sources.xapi_statements: the checks and preparation behind POST /xAPI/statements."""

from __future__ import annotations

import json

import pytest
from lrs_fixtures import mixed_statement

from jacmon.sources.xapi_statements import (
    MAX_STATEMENT_DEPTH,
    StatementInvalid,
    content_digest,
    prepare_statements,
)


def nested_statement(total_levels: int) -> dict:
    """A valid statement whose deepest value sits ``total_levels`` containers down
    (the statement itself is level 1, ``result`` 2, ``extensions`` 3)."""
    body, _ = mixed_statement(3, timestamp="2026-01-05T10:00:00Z")
    value: object = 1
    for _ in range(total_levels - 3):
        value = [value]
    body["result"] = {"extensions": {"https://example.com/x": value}}
    return body


def test_nesting_is_bounded_at_exactly_the_limit() -> None:
    assert prepare_statements([nested_statement(MAX_STATEMENT_DEPTH)], stored=0.0)
    with pytest.raises(StatementInvalid, match=r"statement 1 nests deeper than 32 levels"):
        prepare_statements(
            [nested_statement(5), nested_statement(MAX_STATEMENT_DEPTH + 1)], stored=0.0
        )


def test_standard_and_lenient_json_paths_keep_the_statement_as_sent() -> None:
    body, _ = mixed_statement(4, timestamp="2026-01-05T10:00:00Z")
    fast = prepare_statements([body], stored=0.0, standard=True)[0]
    slow = prepare_statements([body], stored=0.0, standard=False)[0]
    assert json.loads(fast.raw) == json.loads(slow.raw) == body
    # Keys in any order are one content; LRS-set properties are not content.
    reordered = dict(reversed(list(body.items())))
    assert content_digest(reordered) == content_digest({**body, "stored": "x"}) == fast.digest
    # What only the json module decodes (NaN) is kept as sent.
    body["result"]["extensions"] = {"https://example.com/x": float("nan")}
    lenient = prepare_statements([body], stored=0.0, standard=False)[0]
    assert "NaN" in lenient.raw
