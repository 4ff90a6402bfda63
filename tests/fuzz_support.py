"""Hypothesis strategies shared by the fuzz tests: hostile JSON values and careless encoding.

Bounded for CI: a fixed number of examples per property, derandomized (the
same examples on every run), no example database.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

#: Examples per property: a few seconds in total on the 2-core CI box.
EXAMPLES = 60

FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

LONE_SURROGATES = st.sampled_from(["\ud800", "a\udfffb", "\udc00x"])

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([2**63, -(2**63) - 1, 10**400, -(10**400)]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    LONE_SURROGATES,
)


def _nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels):
        value = [value]
    return value


#: Any JSON-ish value: NaN, Infinity, huge ints, lone surrogates, deep nesting included.
VALUES = st.one_of(
    st.recursive(
        SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(st.one_of(st.text(max_size=8), LONE_SURROGATES), inner, max_size=4),
        ),
        max_leaves=12,
    ),
    # Far over the bound of 32 levels; test_server_ingest.py sends 900 (this test's own
    # stack is deep enough that 900 would not decode here).
    st.integers(min_value=20, max_value=600).map(_nested),
)


def encode(value: Any) -> str:
    """As a careless producer would: NaN and Infinity as bare words, surrogates escaped."""
    return json.dumps(value, allow_nan=True)
