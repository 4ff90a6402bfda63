"""The dashboard and the demo in a real terminal (tmux), driven as a person would.

Each test starts its own tmux server on a unique socket (``tmux -L``), runs the
command in a detached 120x40 session, reads the screen with ``capture-pane``,
presses ``q`` with ``send-keys`` and checks that nothing is left running. The
tmux server is always killed afterwards. Without tmux the tests are skipped
locally with the reason, and fail under CI (``CI`` set), where tmux is
installed by ``.ci/run``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.client.ingest import IngestClient
from jacmon.store.sqlite.alerts import apply_alert_changes

#: Every panel side by side (below 110 columns the dashboard shows one at a time).
COLUMNS, ROWS = 120, 40

#: Generous: the CI box has 2 shared cores.
TIMEOUT_S = 30.0

#: The demo should show every panel populated this soon after start-up (issue 5);
#: measured and printed, asserted only against TIMEOUT_S so a loaded CI box does not flake.
DEMO_TARGET_S = 10.0

JACMON = [sys.executable, "-m", "jacmon"]


def _require_tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        if os.environ.get("CI"):
            pytest.fail("tmux is not installed; CI must have it (.ci/run installs it)")
        pytest.skip("tmux is not installed (apt-get install tmux); the terminal checks need it")
    return tmux


class Tmux:
    """One private tmux server (its own socket) with one session, ``COLUMNS`` x ``ROWS``."""

    def __init__(self, tmux: str, workdir: Path):
        self.tmux = tmux
        self.socket = f"jacmon-test-{uuid.uuid4().hex[:12]}"
        self.session = "jacmon"
        # remain-on-exit keeps the pane after its command ends, so the test sees how it ended.
        self.config = workdir / "tmux.conf"
        self.config.write_text("set -g remain-on-exit on\nset -g history-limit 100\n", "utf-8")
        self.status_file = workdir / "exit-status"

    def run(self, *args: str, check: bool = True) -> str:
        result = subprocess.run(
            [self.tmux, "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=20,
            # The tmux server (and so the command) inherits this: no JACMON_* of the caller's.
            env={k: v for k, v in os.environ.items() if not k.startswith(("JACMON_", "TMUX"))},
        )
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def start(self, command: list[str], env: dict[str, str]) -> int:
        """Start ``command`` in the session; returns the pane's process id.

        A shell runs the command and writes its exit status to :attr:`status_file`
        (tmux's own ``pane_dead_status`` is not always filled in when the
        terminal closes before the process is reaped).
        """
        exports = [f"{k}={v}" for k, v in env.items()]
        script = 'env "$@"; echo $? > "$JACMON_TEST_STATUS"'
        self.run(
            "new-session",
            "-d",
            "-s",
            self.session,
            "-x",
            str(COLUMNS),
            "-y",
            str(ROWS),
            "-e",
            f"JACMON_TEST_STATUS={self.status_file}",
            "sh",
            "-c",
            script,
            "sh",
            *exports,
            *command,
        )
        return int(self.pane("pane_pid"))

    def exit_status(self) -> str | None:
        """The command's exit status as the shell wrote it (None: not ended yet)."""
        try:
            return self.status_file.read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    def pane(self, field: str) -> str:
        return self.run("display-message", "-p", "-t", self.session, f"#{{{field}}}").strip()

    def screen(self) -> str:
        return self.run("capture-pane", "-p", "-t", self.session)

    def press(self, key: str) -> None:
        self.run("send-keys", "-t", self.session, key)

    def kill_server(self) -> None:
        self.run("kill-server", check=False)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    session = Tmux(_require_tmux(), tmp_path)
    try:
        yield session
    finally:
        session.kill_server()


def app_env(tmp_path: Path) -> dict[str, str]:
    """The command's environment: a colour terminal, no config or token from the user's."""
    return {
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }


async def wait_for_screen(
    tmux: Tmux, predicate: Callable[[str], Any], what: str, timeout: float = TIMEOUT_S
) -> str:
    """Poll capture-pane until ``predicate(screen)``; fail showing the last screen."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = await asyncio.to_thread(tmux.screen)
        if predicate(screen):
            return screen
        if await asyncio.to_thread(tmux.pane, "pane_dead") == "1":
            raise AssertionError(f"the command ended while waiting for {what}:\n{screen}")
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; screen:\n{screen}")


async def quit_and_check_exit(tmux: Tmux, pane_pid: int, pids: set[int]) -> None:
    """Press q; the command must end with status 0 and leave none of ``pids`` running."""
    await asyncio.to_thread(tmux.press, "q")
    deadline = time.monotonic() + TIMEOUT_S
    while (status := tmux.exit_status()) is None:
        if time.monotonic() > deadline:
            screen = await asyncio.to_thread(tmux.screen)
            raise AssertionError(f"still running {TIMEOUT_S:.0f} s after q; screen:\n{screen}")
        await asyncio.sleep(0.1)
    assert status == "0", f"exit status {status}; screen:\n{await asyncio.to_thread(tmux.screen)}"
    while await asyncio.to_thread(tmux.pane, "pane_dead") != "1":
        if time.monotonic() > deadline:
            raise AssertionError("the pane is still alive after the command ended")
        await asyncio.sleep(0.1)
    while left := alive(pids | {pane_pid}):
        if time.monotonic() > deadline:
            raise AssertionError(f"processes left after q: {describe(left)}")
        await asyncio.sleep(0.1)


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process under it, now."""
    try:
        root = psutil.Process(pid)
        return {pid} | {child.pid for child in root.children(recursive=True)}
    except psutil.NoSuchProcess:
        return set()


def alive(pids: set[int]) -> list[psutil.Process]:
    """The processes of ``pids`` still running (zombies count as ended)."""
    out = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                out.append(proc)
        except psutil.NoSuchProcess:
            continue
    return out


def describe(procs: list[psutil.Process]) -> str:
    parts = []
    for proc in procs:
        try:
            parts.append(f"{proc.pid} {' '.join(proc.cmdline())}")
        except psutil.Error:
            parts.append(str(proc.pid))
    return "; ".join(parts)


async def feed(running_server: Any) -> None:
    """Real events through the ingest endpoint, and one alert fired as the tasks fire them."""
    events = [
        {
            "id": f"tmux-{n}",
            "type": kind,
            "ts": "2026-01-05T10:00:00Z",
            "learner": learner,
            "path": "python-101",
            **extra,
        }
        for n, (learner, kind, extra) in enumerate(
            [
                ("ada", "path.enrolled", {}),
                ("ada", "module.progressed", {"module": "m1", "progress": 60}),
                ("bob", "path.enrolled", {}),
                ("bob", "assessment.failed", {"item": "quiz-1", "score": {"scaled": 0.31}}),
            ]
        )
    ]
    async with IngestClient(running_server.url) as client:
        ack = await client.send_batch(events)
    assert ack.accepted == len(events), ack
    condition = AlertCondition(
        rule="performance-decline",
        severity="warning",
        learner="bob",
        path="python-101",
        message="bob's scores dropped",
        numbers={"drop_pct": 30},
    )
    async with running_server.server.store.db.transaction() as conn:
        await apply_alert_changes(conn, [PlannedChange("fire", condition)], now=time.time())


def dashboard_populated(screen: str) -> bool:
    return (
        re.search(r"python-101\s+2\b", screen) is not None  # progress: the path, 2 enrolled
        # activity: the score sits before the ids (never the part cut), the date before the
        # time (the events are not of today)
        and re.search(r"2026-01-05 10:00:00 failed\s+31% bob python-", screen) is not None
        and "bob's scores" in screen  # alerts
        and "Alerts (1)" in screen
        and screen.count("connected") >= 4  # every stream's row
    )


async def test_dashboard_in_tmux_shows_the_panels_and_quits_on_q(running_server, tmux, tmp_path):
    await feed(running_server)
    pane_pid = await asyncio.to_thread(
        tmux.start, [*JACMON, "dashboard", "--server", running_server.url], app_env(tmp_path)
    )
    pids = process_tree(pane_pid)

    def populated(screen: str) -> bool:
        # The dashboard's processes, seen while it runs (the pane's shell and its children).
        pids.update(process_tree(pane_pid))
        return dashboard_populated(screen)

    screen = await wait_for_screen(tmux, populated, "every panel with the data sent")
    assert any("dashboard" in " ".join(p.cmdline()) for p in alive(pids)), describe(alive(pids))
    for title in ("Progress", "Activity", "Trends", "Alerts", "Connection"):
        assert title in screen
    # A live event reaches the screen too.
    async with IngestClient(running_server.url) as client:
        await client.send_batch(
            [
                {
                    "id": "tmux-live",
                    "type": "path.enrolled",
                    "ts": "2026-01-05T10:01:00Z",
                    "learner": "cyd",
                    "path": "python-101",
                }
            ]
        )
    await wait_for_screen(
        tmux, lambda s: re.search(r"enrolled\s+cyd", s) is not None, "cyd's live event"
    )
    pids |= process_tree(pane_pid)
    await quit_and_check_exit(tmux, pane_pid, pids)


#: A trend row's sparkline and current value (``events/min ▁▂█  180  ↑12%``).
TREND_VALUE = re.compile(r"[▁▂▃▄▅▆▇█]{3,}\s+(\d+(?:\.\d+)?)k?\s")


def demo_populated(screen: str) -> bool:
    alerts = re.search(r"Alerts \((\d+)\)", screen)
    return (
        # progress: a path row with counts and a learner row with a percentage
        re.search(r"python-101\s+\d+\s+\d+\s+\d+", screen) is not None
        and re.search(r"[a-z]+\.[a-z]+-\d{4}\s+\S*\s+\d+%", screen) is not None
        # activity: time, what, who
        and len(re.findall(r"\d\d:\d\d:\d\d \S+\s+[a-z]+\.[a-z]+-\d{4}", screen)) >= 3
        # trends: a sparkline with a current value above 0
        and any(float(v) > 0 for v in TREND_VALUE.findall(screen))
        and alerts is not None
        and int(alerts.group(1)) >= 1
        and screen.count("connected") >= 4
    )


async def test_demo_in_tmux_populates_every_panel_and_leaves_nothing_on_q(tmux, tmp_path):
    started = time.monotonic()
    pane_pid = await asyncio.to_thread(
        tmux.start, [*JACMON, "demo", "--db", str(tmp_path / "demo.db")], app_env(tmp_path)
    )
    pids = process_tree(pane_pid)

    def populated(screen: str) -> bool:
        # The demo's processes, seen while it runs (the pane's shell and its children).
        pids.update(process_tree(pane_pid))
        return demo_populated(screen)

    await wait_for_screen(tmux, populated, "every demo panel populated")
    assert any("demo" in " ".join(p.cmdline()) for p in alive(pids)), describe(alive(pids))
    took = time.monotonic() - started
    # Issue 5 asks for 10 s; the measurement is reported, the bound is CI-safe.
    print(f"demo: every panel populated {took:.1f} s after start (target {DEMO_TARGET_S:.0f} s)")
    assert took < TIMEOUT_S
    await quit_and_check_exit(tmux, pane_pid, pids)


#: The demo's header: ``SIMULATED 7200x · 2026-12-07 14:03``.
SIM_HEADER = re.compile(r"SIMULATED 7200x · (\d{4}-\d\d-\d\d) \d\d:\d\d")
#: The Trends row of events/s arriving now (wall clock): ``received ▁▃█  476.8 ev/s``.
ARRIVAL_RATE = re.compile(r"received\s+[▁▂▃▄▅▆▇█]+\s+(\d+(?:\.\d+)?)(k?) ev/s")
#: A feed line of another day than today: ``│2026-12-06 23:58:01 passed  74% ada…``.
DATED_FEED_LINE = re.compile(r"│(\d{4}-\d\d-\d\d) \d\d:\d\d:\d\d \S+")


def arrival_rate(screen: str) -> float:
    match = ARRIVAL_RATE.search(screen)
    if match is None:
        return 0.0
    return float(match.group(1)) * (1000 if match.group(2) else 1)


def dated_lines_of_another_day(screen: str) -> bool:
    header = SIM_HEADER.search(screen)
    days = {m.group(1) for m in DATED_FEED_LINE.finditer(screen)}
    return header is not None and bool(days - {header.group(1)})


async def test_demo_in_tmux_shows_its_simulated_clock_arrival_rate_and_dated_lines(tmux, tmp_path):
    # 7200x: a simulated day in 12 s, so the feed soon holds lines of the day before.
    command = [*JACMON, "demo", "--db", str(tmp_path / "demo.db"), "--speed", "7200"]
    pane_pid = await asyncio.to_thread(tmux.start, command, app_env(tmp_path))
    pids = process_tree(pane_pid)

    def seen(predicate: Callable[[str], Any]) -> Callable[[str], Any]:
        def check(screen: str) -> Any:
            pids.update(process_tree(pane_pid))
            return predicate(screen)

        return check

    screen = await wait_for_screen(tmux, seen(SIM_HEADER.search), "the simulated clock")
    assert SIM_HEADER.search(screen.splitlines()[0]), screen  # in the header line itself
    # Events flow at once (the backlog): the arrival rate is above 0 even while the
    # event-time rate may read 0.
    await wait_for_screen(tmux, seen(lambda s: arrival_rate(s) > 0), "a non-zero arrival rate")
    await wait_for_screen(
        tmux, seen(dated_lines_of_another_day), "feed lines of another day, dated", timeout=60
    )
    await quit_and_check_exit(tmux, pane_pid, pids)
