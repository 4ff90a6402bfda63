"""The notifier's routing, grouping, retries, repeats and silences, on a real store.

The receiver here is a recording one (our own seam, ``jacmon.notify.model.Receiver``):
these tests are about what is sent when. The receivers themselves are tested
against real HTTP, SMTP and Alertmanager servers in test_receivers_*.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.errors import ConfigError
from jacmon.notify.config import parse_notify
from jacmon.notify.model import Delivery, Notification
from jacmon.notify.service import Notifier
from jacmon.store import Store
from jacmon.store.sqlite.alerts import (
    acknowledge_alert,
    apply_alert_changes,
    open_alerts,
    retire_resolved,
)
from jacmon.store.sqlite.notify import notification_log
from jacmon.store.sqlite.silences import add_silence, expire_silence


class Clock:
    """Wall-clock seconds the test moves by hand."""

    def __init__(self) -> None:
        self.now = time.time()  # silences are set on the wall clock

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Recorder:
    """A receiver that records what it is given and answers what the test says."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.type = "webhook"
        self.sent: list[Notification] = []
        self.answers: list[Delivery] = []

    async def send(self, notification: Notification) -> Delivery:
        self.sent.append(notification)
        if self.answers:
            return self.answers.pop(0)
        return Delivery(ok=True, status="HTTP 200")

    async def close(self) -> None:
        pass


def config(**route: Any) -> dict[str, Any]:
    return {
        "receivers": [
            {"name": "a", "type": "webhook", "url": "http://127.0.0.1:9/a"},
            {"name": "b", "type": "webhook", "url": "http://127.0.0.1:9/b"},
        ],
        "routes": [{"receivers": ["a", "b"], **route}],
    }


@pytest.fixture
async def store(tmp_path):
    store = await Store.open(tmp_path / "jacmon.db")
    yield store
    await store.close()


async def make_notifier(store, clock, **route) -> tuple[Notifier, dict[str, Recorder]]:
    settings = parse_notify(config(**route))
    receivers = {"a": Recorder("a"), "b": Recorder("b")}
    notifier = Notifier(store, settings, receivers, clock=clock)
    await notifier.route_once()  # the first pass sets the watermark: history is not sent
    return notifier, receivers


async def fire(store, learners, *, rule="inactivity", path="python-101", severity="warning"):
    planned = [
        PlannedChange(
            "fire",
            AlertCondition(
                rule=rule,
                severity=severity,
                learner=learner,
                path=path,
                message=f"{learner} has been idle",
                numbers={"idle_days": 4},
            ),
        )
        for learner in learners
    ]
    async with store.db.transaction() as conn:
        return await apply_alert_changes(conn, planned, now=time.time())


async def resolve(store, alert):
    async with store.db.transaction() as conn:
        return await apply_alert_changes(
            conn, [PlannedChange("resolve", None, alert=alert, reason="cleared")], now=time.time()
        )


async def tick(notifier: Notifier) -> None:
    await notifier.route_once()
    for name in notifier.receivers:
        await notifier.deliver_due(name)


async def test_500_alerts_of_one_path_are_one_message_per_receiver_after_group_wait(store):
    clock = Clock()
    notifier, receivers = await make_notifier(store, clock, group_wait="30s")
    await fire(store, [f"learner-{i}" for i in range(500)])
    await notifier.route_once()
    await tick(notifier)
    assert receivers["a"].sent == [] and receivers["b"].sent == []  # still within group_wait
    clock.advance(31)
    await tick(notifier)
    for receiver in receivers.values():
        (message,) = receiver.sent
        assert len(message.alerts) == 500
        assert message.group == {"rule": "inactivity", "path": "python-101"}
        assert {c.change for c in message.changes} == {"fired"}
    assert receivers["a"].sent[0].key != receivers["b"].sent[0].key
    log = await notification_log(store.db.reader, state="sent", limit=2000)
    assert len(log) == 1000


async def test_groups_split_by_path_and_later_changes_wait_for_group_interval(store):
    clock = Clock()
    notifier, receivers = await make_notifier(store, clock, group_wait="10s", group_interval="5m")
    await fire(store, ["ann"], path="python-101")
    await notifier.route_once()
    await fire(store, ["bob"], path="data-science")
    await notifier.route_once()
    clock.advance(11)
    await tick(notifier)
    assert sorted(m.group["path"] for m in receivers["a"].sent) == ["data-science", "python-101"]
    # A new alert in an already-notified group waits for group_interval.
    await fire(store, ["cat"], path="python-101")
    await notifier.route_once()
    clock.advance(60)
    await tick(notifier)
    assert len(receivers["a"].sent) == 2
    clock.advance(241)
    await tick(notifier)
    assert len(receivers["a"].sent) == 3
    assert [a["learner"] for a in receivers["a"].sent[-1].alerts] == ["cat"]


async def test_matchers_severity_at_least_and_which_changes(store):
    clock = Clock()
    notifier, receivers = await make_notifier(
        store, clock, severity="critical", rule=["inactivity"], send=["fired"], group_wait=1
    )
    await fire(store, ["warn-only"], severity="warning")
    await notifier.route_once()
    fired = await fire(store, ["crit"], severity="critical")
    await notifier.route_once()
    await fire(store, ["other-rule"], rule="engagement_drop", severity="critical")
    await notifier.route_once()
    clock.advance(2)
    await tick(notifier)
    (message,) = receivers["a"].sent
    assert [a["learner"] for a in message.alerts] == ["crit"]
    # resolved is not in send: nothing more goes out.
    await resolve(store, fired[0]["alert"])
    clock.advance(600)
    await tick(notifier)
    assert len(receivers["a"].sent) == 1


async def fire_deliver_then_resolve_first(store, notifier, clock, learners: list[str]) -> None:
    """Fire alerts for ``learners``, let them be sent, then resolve the first and send that
    (group_wait and group_interval of 1 s: the clock moves 2 s before each send)."""
    fired = await fire(store, learners)
    await notifier.route_once()
    clock.advance(2)
    await tick(notifier)
    await resolve(store, fired[0]["alert"])
    clock.advance(2)
    await tick(notifier)


async def test_a_route_without_matchers_sends_fired_and_resolved(store):
    clock = Clock()
    notifier, receivers = await make_notifier(store, clock, group_wait=1, group_interval=1)
    await fire_deliver_then_resolve_first(store, notifier, clock, ["ann"])
    assert [m.changes[0].change for m in receivers["a"].sent] == ["fired", "resolved"]


async def test_retries_keep_the_key_honour_retry_after_and_a_400_is_not_retried(store):
    clock = Clock()
    notifier, receivers = await make_notifier(store, clock, group_wait=1)
    a, b = receivers["a"], receivers["b"]
    a.answers = [
        Delivery(ok=False, status="HTTP 503", retry=True, retry_after_s=120),
        Delivery(ok=False, status="connection refused", retry=True),
    ]
    b.answers = [Delivery(ok=False, status="HTTP 400", detail="bad payload", retry=False)]
    await fire(store, ["ann"])
    await notifier.route_once()
    clock.advance(2)
    await tick(notifier)
    assert len(a.sent) == 1 and len(b.sent) == 1
    clock.advance(60)  # Retry-After said 120 s
    await tick(notifier)
    assert len(a.sent) == 1
    clock.advance(61)
    await tick(notifier)
    assert len(a.sent) == 2
    clock.advance(BACKOFF_CAP)
    await tick(notifier)
    assert len(a.sent) == 3
    assert len({m.key for m in a.sent}) == 1  # one notification, one idempotency key
    assert len(b.sent) == 1  # the 400 was not retried
    (failed,) = await notification_log(store.db.reader, receiver="b")
    assert failed["state"] == "failed" and failed["last_detail"] == "bad payload"
    (sent,) = await notification_log(store.db.reader, receiver="a")
    assert sent["state"] == "sent" and sent["attempts"] == 3


BACKOFF_CAP = 601


async def test_a_receiver_down_past_max_age_fails_the_notification(store):
    clock = Clock()
    settings = parse_notify({**config(group_wait=1), "max_age": "1h"})
    down = Recorder("a")
    down.answers = [Delivery(ok=False, status="connection refused")] * 100
    notifier = Notifier(store, settings, {"a": down, "b": Recorder("b")}, clock=clock)
    await notifier.route_once()
    await fire(store, ["ann"])
    await notifier.route_once()
    for _ in range(30):
        clock.advance(BACKOFF_CAP)
        await tick(notifier)
    (row,) = await notification_log(store.db.reader, receiver="a")
    assert row["state"] == "failed"
    assert notifier.metrics.failed["a"] == 1


async def test_a_crash_between_claim_and_answer_resends_under_the_same_key(tmp_path):
    clock = Clock()
    db = tmp_path / "jacmon.db"
    store = await Store.open(db)
    notifier, _ = await make_notifier(store, clock, group_wait=1)
    await fire(store, ["ann"])
    await notifier.route_once()
    clock.advance(2)
    # Claimed (state sending), then the process dies before the answer is recorded.
    from jacmon.store.sqlite.notify import claim_batch, due_groups

    (group,), _ = await due_groups(store.db.reader, "a", notifier.routes, now=clock())
    async with store.db.transaction() as conn:
        claimed = await claim_batch(conn, group)
    await store.close()
    store = await Store.open(db)
    try:
        settings = parse_notify(config(group_wait=1))
        again = Recorder("a")
        notifier = Notifier(store, settings, {"a": again, "b": Recorder("b")}, clock=clock)
        await tick(notifier)
        (message,) = again.sent
        assert message.key == claimed.key
    finally:
        await store.close()


async def test_repeat_interval_resends_firing_unacknowledged_alerts(store):
    clock = Clock()
    notifier, receivers = await make_notifier(
        store, clock, group_wait=1, group_interval=1, repeat_interval="1h"
    )
    await fire(store, ["ann", "bob"])
    await notifier.route_once()
    clock.advance(2)
    await tick(notifier)
    assert len(receivers["a"].sent) == 1
    (ann,) = [a for a in await open_alerts(store.db.reader) if a["learner"] == "ann"]
    await acknowledge_alert(store.db, ann["id"], by="tutor")
    clock.advance(1800)
    await tick(notifier)
    assert len(receivers["a"].sent) == 1  # acknowledged changes are not in send
    clock.advance(1801)
    await tick(notifier)
    repeat = receivers["a"].sent[-1]
    assert [c.change for c in repeat.changes] == ["repeat"]
    assert [a["learner"] for a in repeat.alerts] == ["bob"]  # ann is acknowledged


async def test_a_silence_stops_its_matches_only_and_expiring_it_lets_the_repeat_go(store):
    clock = Clock()
    notifier, receivers = await make_notifier(
        store, clock, group_wait=1, group_interval=1, repeat_interval="1h"
    )
    silence, _ = await add_silence(store.db, by="tutor", learner="ann", duration_s=86400)
    await fire(store, ["ann", "bob"])
    await notifier.route_once()
    alerts = {a["learner"]: a for a in await open_alerts(store.db.reader)}
    assert alerts["ann"]["silenced"]["id"] == silence["id"]
    assert alerts["bob"]["silenced"] is None
    clock.advance(2)
    await tick(notifier)
    (message,) = receivers["a"].sent
    assert [a["learner"] for a in message.alerts] == ["bob"]
    silenced = await notification_log(store.db.reader, receiver="a", state="silenced")
    assert [row["learner"] for row in silenced] == ["ann"]
    _, changes = await expire_silence(store.db, silence["id"], by="tutor")
    assert [c["alert"]["learner"] for c in changes] == ["ann"]
    assert changes[0]["alert"]["silenced"] is None
    clock.advance(3601)
    await tick(notifier)
    assert sorted(a["learner"] for a in receivers["a"].sent[-1].alerts) == ["ann", "bob"]


async def test_turning_notifications_on_does_not_send_the_history(store):
    await fire(store, ["ann"])
    clock = Clock()
    notifier, receivers = await make_notifier(store, clock, group_wait=1)
    clock.advance(2)
    await tick(notifier)
    assert receivers["a"].sent == []


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"routes": [{"receivers": ["nobody"]}]}, "'notify.routes[0].receivers' names 'nobody'"),
        ({**config(), "routes": [{"receivers": ["a"], "group_wait": "soon"}]}, "group_wait"),
        ({**config(), "routes": [{"receivers": ["a"], "severity": "high"}]}, "'high'"),
        ({**config(), "routes": [{"receivers": ["a"], "send": ["updated"]}]}, "'updated'"),
        ({**config(), "routes": [{"receivers": ["a"], "group_by": ["colour"]}]}, "'colour'"),
        ({**config(), "routes": [{"receivers": ["a"], "matchers": 1}]}, "routes[0].matchers"),
        ({"receivers": [{"name": "x", "type": "pager"}]}, "'pager'"),
        ({"receivers": [{"type": "slack"}]}, "needs a name"),
        ({"dashboard_url": "ftp://x"}, "dashboard_url"),
        ({"colour": 1}, "notify.colour"),
    ],
)
def test_bad_notify_config_names_the_key(raw, message):
    with pytest.raises(ConfigError) as caught:
        parse_notify(raw)
    assert message in str(caught.value)


def test_durations_accept_text_or_seconds():
    settings = parse_notify(config(group_wait="45s", group_interval=90, repeat_interval="2h"))
    route = settings.routes[0]
    assert (route.group_wait_s, route.group_interval_s, route.repeat_interval_s) == (
        45.0,
        90.0,
        7200.0,
    )
    assert parse_notify({}).enabled is False


async def test_retiring_a_resolved_alert_takes_its_outbox_rows_with_it(store):
    clock = Clock()
    notifier, _ = await make_notifier(store, clock, group_wait=1, group_interval=1)
    await fire_deliver_then_resolve_first(store, notifier, clock, ["ann", "bob"])
    assert len(await notification_log(store.db.reader)) == 6  # 2 fired + 1 resolved, x2
    async with store.db.transaction() as conn:
        await retire_resolved(conn, before=time.time() + 1)
    left = await notification_log(store.db.reader)
    assert {row["learner"] for row in left} == {"bob"} and len(left) == 2
