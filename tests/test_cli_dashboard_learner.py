"""``jacmon dashboard --learner NAME``: a learner the server never saw is named, not shown empty."""

from __future__ import annotations

import asyncio

import pytest
from support import dashboard_snapshot, event, flat
from typer.testing import CliRunner

from jacmon.cli import app
from jacmon.client.ingest import IngestClient
from jacmon.commands.dashboard import learner_problem

pytestmark = pytest.mark.usefixtures("isolated_env")


async def feed(url: str, *learners: str) -> None:
    async with IngestClient(url) as client:
        ack = await client.send_batch(
            [event(n, learner=name) for n, name in enumerate(learners, start=1)]
        )
    assert ack.accepted == len(learners)
    # Known once progress is projected (it trails the ack by the projector's lag).
    await dashboard_snapshot(url + "/ws/dashboard", through_seq=ack.last_seq)


async def test_an_unknown_learner_is_refused_with_examples_of_known_ones(running_server):
    await feed(running_server.url, "ada.jensen", "bo.lind")
    args = ["dashboard", "--server", running_server.url, "--learner", "ada.jenson"]
    # The command runs its own event loop: give it a thread.
    result = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert result.exit_code == 2, result.output
    message = flat(result.stderr)
    assert f"learner 'ada.jenson' has no events on {running_server.url}" in message
    assert "known learners look like" in message and "ada.jensen" in message
    assert "Traceback" not in result.output


async def test_a_known_learner_or_an_unreachable_server_lets_the_dashboard_start(
    running_server,
):
    await feed(running_server.url, "ada.jensen")
    assert await learner_problem(running_server.url, None, "ada.jensen") is None
    url = running_server.url
    await running_server.stop()
    # Nobody to ask: the dashboard shows the connection state itself.
    assert await learner_problem(url, None, "ada.jensen") is None


async def test_an_empty_server_says_it_has_no_learners_yet(running_server):
    problem = await learner_problem(running_server.url, None, "ada")
    assert problem is not None and "it has no learners yet" in problem
