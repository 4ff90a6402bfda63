"""Any [notify] table gets either parsed settings or a ConfigError naming the problem: never
another exception (a config mistake must read as one, not as a traceback)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jacmon.errors import ConfigError
from jacmon.notify.config import parse_notify
from jacmon.notify.setup import build_receivers

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["30s", "5m", "24h", "0", "-1s", "http://127.0.0.1:9/x", "warning", "x"]),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
RECEIVER = st.fixed_dictionaries(
    {
        "name": st.sampled_from(["a", "b", "", 3]),
        "type": st.sampled_from(["webhook", "slack", "email", "alertmanager", "pager"]),
    },
    optional={
        "url": st.sampled_from(["http://127.0.0.1:9/x", "ftp://x", "", 5]),
        "to": VALUES,
        "host": VALUES,
        "timeout_s": VALUES,
        "secret": VALUES,
        "extra": VALUES,
    },
)
ROUTE_KEYS = ("severity", "rule", "path", "learner", "send", "group_by", "group_wait")
ROUTE_KEYS += ("group_interval", "repeat_interval", "name")
ROUTE = st.fixed_dictionaries(
    {"receivers": st.one_of(st.just(["a"]), st.lists(st.sampled_from(["a", "b", "c"])), VALUES)},
    optional=dict.fromkeys(ROUTE_KEYS, VALUES),
)
TABLE = st.fixed_dictionaries(
    {},
    optional={
        "receivers": st.one_of(st.lists(RECEIVER, max_size=3), VALUES),
        "routes": st.one_of(st.lists(ROUTE, max_size=3), VALUES),
        "dashboard_url": VALUES,
        "max_age": VALUES,
        "poll_interval": VALUES,
        "retry_backoff": VALUES,
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(TABLE)
def test_any_notify_table_parses_or_names_its_mistake(table):
    try:
        parsed = parse_notify(table)
        build_receivers(parsed)
    except ConfigError as exc:
        assert str(exc)
