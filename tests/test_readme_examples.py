"""The README's Examples and Scripts, run as written against a real server.

README.md is this test's input: every line of the ``sh`` blocks under
``## Examples`` is one test case (a new README line is a new case, a changed
one is tested as changed), and a ``toml`` block there whose first line reads
``# FILE — COMMAND`` is written to FILE and COMMAND is run. Each command runs in
a real shell (``bash -c``) with the environment a reader would have: a
``jacmon serve`` running on the default database in their data directory, the
files the commands name in the working directory (``events.jsonl``,
``statements.json``, ``envelopes.json``), ``some-exporter`` on PATH, their LRS
password exported and an LRS to tail (a real Ralph). The only differences from the text are the ones
listed, with their reasons, in :data:`SUBSTITUTIONS` and :data:`READER_ENV`.

Every command must exit 0 and print no Python traceback; with ``--json`` it
prints JSON whose timestamps are ISO 8601 UTC, without it no Python reprs.
:data:`EXPECTATIONS` adds what a reader would check after each line (keyed by
README text, so a reworded line loses its check loudly). Lines that fail for a
reason fixed elsewhere are in :data:`KNOWN_FAILURES`, as strict xfails.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from lrs_fixtures import PASSWORD, RalphLrs, mixed_statement, require_ralph
from lrs_fixtures import free_port as lrs_free_port
from support import flat
from test_terminal_tmux import Tmux, quit_and_check_exit, wait_for_screen

from jacmon.analytics.alert_rules import AlertCondition, PlannedChange
from jacmon.store import Store
from jacmon.store.sqlite.alerts import apply_alert_changes

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"

#: Generous, in seconds: the CI box has 2 shared cores.
TIMEOUT_S = 60.0

#: The fewest commands the Examples section has today: a restructured README
#: that the parser no longer understands must fail here, not test nothing.
MIN_COMMANDS = 16

#: The LRS user the README's ``--lrs-user`` names, added to Ralph's users.
README_LRS_USER = "jacmon"

#: README text -> (what the test runs instead, why). ``{lrs_url}`` is the test's Ralph.
SUBSTITUTIONS: dict[str, tuple[str, str]] = {
    "https://lrs.example.com/xAPI": (
        "{lrs_url}",
        "the example LRS does not exist; a real Ralph LRS on loopback stands in",
    ),
    "--duration 120": ("--duration 3", "two minutes of streaming shows nothing 3 s does not"),
    "--learners 500": (
        "--learners 20",
        "scaled with the duration: at the README's rate and speed, 20 learners' day of "
        "history is sent within 3 s as 500 learners' is within 120 s (else 'behind the clock')",
    ),
    "--duration 30": ("--duration 3", "the demo's summary after 3 s has every part of 30 s's"),
    "http://127.0.0.1:8765/xAPI/statements": (
        "http://127.0.0.1:$JACMON_PORT/xAPI/statements",
        "the reader's server is on 8765; the test's takes a free port (JACMON_PORT)",
    ),
}

#: Environment the test gives every command, beyond the reader's HOME and XDG dirs.
READER_ENV: dict[str, str] = {
    "JACMON_PORT": "the reader's server is on 8765; the test's takes a free port",
    "JACMON_SERVER": "so the clients find that server (ws://127.0.0.1:PORT)",
    "JACMON_LRS__PASSWORD": "the reader exported their LRS password; the test LRS's here",
}


# --- The README, parsed ---------------------------------------------------------------


@dataclass(frozen=True)
class ReadmeCommand:
    """One command line from the README; ``files`` are written to the cwd before it runs."""

    text: str
    files: dict[str, str] = field(default_factory=dict)

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.text)


def strip_comment(line: str) -> str:
    """``line`` without a trailing ``# comment`` (a ``#`` after a blank, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].rstrip()
    return line.rstrip()


def examples_section(text: str) -> str:
    """The README from ``## Examples`` up to the next ``## `` heading."""
    match = re.search(r"^## Examples\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Examples' section followed by another '## ' heading"
    return match.group(1)


def readme_commands(text: str) -> list[ReadmeCommand]:
    """Each command of the Examples section's ``sh`` blocks, and each ``# FILE — COMMAND``."""
    commands: list[ReadmeCommand] = []
    for lang, body in re.findall(r"^```(\w+)\n(.*?)^```", examples_section(text), re.S | re.M):
        if lang == "sh":
            for line in body.splitlines():
                if command := strip_comment(line).strip():
                    commands.append(ReadmeCommand(command))
        elif header := re.match(r"#\s*(\S+)\s+—\s+(.+)\n", body):
            commands.append(ReadmeCommand(header.group(2).strip(), {header.group(1): body}))
    return commands


COMMANDS = readme_commands(README.read_text("utf-8"))


def substitute(text: str, lrs_url: str = "") -> str:
    """``text`` with :data:`SUBSTITUTIONS` applied (whole words only)."""
    for old, (new, _) in SUBSTITUTIONS.items():
        text = re.sub(re.escape(old) + r"(?!\S)", new.format(lrs_url=lrs_url), text)
    return text


# --- The reader's machine -------------------------------------------------------------


@dataclass
class Reader:
    """A reader's setup: their dirs, environment, running server and data files."""

    root: Path
    cwd: Path
    env: dict[str, str]

    @property
    def db_path(self) -> Path:
        """The default database, where the reader's ``jacmon serve`` keeps it."""
        return Path(self.env["XDG_DATA_HOME"]) / "jacmon" / "jacmon.db"

    def event_ids(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are stored (read-only: the server holds the database)."""
        with sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True) as conn:
            marks = ",".join("?" * len(ids))
            return {
                row[0] for row in conn.execute(f"SELECT id FROM events WHERE id IN ({marks})", ids)
            }

    def jacmon(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``jacmon ARGS`` as the reader would, for setup and follow-up checks."""
        result = subprocess.run(
            ["jacmon", *args],
            env=self.env,
            cwd=self.cwd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert result.returncode == 0, f"jacmon {' '.join(args)}: {result.stderr}"
        return result


def reader_env(root: Path, port: int) -> dict[str, str]:
    """The environment of a reader whose home is ``root``, and nothing JACMON_ of ours."""
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "jacmon").exists():
        pytest.fail(f"no jacmon script beside {sys.executable}; install with pip install -e .")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JACMON_", "TMUX"))}
    env.update(
        PATH=os.pathsep.join([str(root / "bin"), str(bin_dir), env.get("PATH", "")]),
        HOME=str(root / "home"),
        XDG_CONFIG_HOME=str(root / "config"),
        XDG_DATA_HOME=str(root / "data"),
        JACMON_PORT=str(port),
        JACMON_SERVER=f"ws://127.0.0.1:{port}",
        JACMON_LRS__PASSWORD=PASSWORD,
        TERM="xterm-256color",
    )
    for name in ("bin", "home", "config", "data", "work"):
        (root / name).mkdir(parents=True, exist_ok=True)
    assert set(READER_ENV) <= set(env)
    return env


def wait_healthy(port: int, process: subprocess.Popen[Any]) -> dict[str, Any]:
    """Poll ``/healthz`` until it answers; fail if ``process`` ends or TIMEOUT_S passes."""
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise AssertionError(f"jacmon serve exited with {process.returncode} before serving")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
                return json.loads(reply.read())
        except (OSError, urllib.error.URLError):
            if time.monotonic() > deadline:
                raise AssertionError(f"/healthz did not answer within {TIMEOUT_S:.0f} s") from None
            time.sleep(0.1)


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to the process group the test started; its exit status."""
    if process.poll() is None:
        os.killpg(process.pid, sig)
    try:
        return process.wait(TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(TIMEOUT_S)
        raise AssertionError(f"still running {TIMEOUT_S:.0f} s after signal {sig}") from None


async def seed_alerts(db_path: Path, count: int) -> None:
    """Fire ``count`` alerts (ids 1..count), as a task fires them: ``alerts ack 42`` needs one.

    Their rule is one no scheduled task evaluates, so no task run resolves them mid-test.
    """
    store = await Store.open(db_path)
    try:
        changes = [
            PlannedChange(
                "fire",
                AlertCondition(
                    rule="readme_example",
                    severity="warning",
                    learner=f"u{n}",
                    path="python-101",
                    message=f"u{n}'s latest scores are below the pass mark",
                    numbers={"n": n},
                ),
            )
            for n in range(1, count + 1)
        ]
        async with store.db.transaction() as conn:
            await apply_alert_changes(conn, changes, now=time.time())
    finally:
        await store.close()


#: Events of learner u123 (the README's example learner), so its views have data.
U123_EVENTS = [
    {"id": "readme-u123-1", "type": "path.enrolled", "learner": "u123", "path": "python-101"},
    {
        "id": "e-1",  # the ingest contract's example event, as the README shows it
        "type": "assessment.attempted",
        "learner": "u123",
        "path": "python-101",
        "module": "m3",
        "item": "quiz-2",
        "score": {"scaled": 0.8, "raw": 8, "min": 0, "max": 10},
        "success": True,
        "duration_s": 312,
        "attempt": 1,
        "session": "s-9",
    },
]


def write_reader_files(reader: Reader) -> None:
    """The files the README's commands name, made from real data; ``some-exporter`` on PATH."""
    work = reader.cwd
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    reader.jacmon("sim", "--out", "events.jsonl", "--learners", "20", "--days", "2", "--seed", "1")
    reader.jacmon("sim", "--out", "exported.jsonl", "--learners", "5", "--days", "1", "--seed", "2")
    exporter = reader.root / "bin" / "some-exporter"
    exporter.write_text(
        f"#!/bin/sh\n# A platform's exporter: JSONL events.\ncat {work / 'exported.jsonl'}\n"
    )
    exporter.chmod(0o755)
    statements = [mixed_statement(i, timestamp=stamp)[0] for i in range(40)]
    (work / "statements.json").write_text(json.dumps(statements, indent=1), "utf-8")
    caliper = Path(__file__).resolve().parent / "fixtures" / "caliper"
    events = [
        json.loads((caliper / f"caliperEvent{name}.json").read_text())
        for name in ("SessionLoggedIn", "ViewViewed", "AssessmentItemCompleted", "ToolUseUsed")
    ]
    envelope = {
        "sensor": "https://example.edu/sensors/1",
        "sendTime": "2016-11-15T11:05:01.000Z",
        "dataVersion": "http://purl.imsglobal.org/ctx/caliper/v1p2",
        "data": events,
    }
    (work / "envelopes.json").write_text(json.dumps(envelope, indent=1), "utf-8")
    baseline = "".join(json.dumps({"ts": stamp, **e}) + "\n" for e in U123_EVENTS)
    (reader.root / "u123.jsonl").write_text(baseline, "utf-8")
    reader.jacmon("ingest", str(reader.root / "u123.jsonl"))


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reader]:
    """A reader's machine with ``jacmon serve`` running on the default database."""
    root = tmp_path_factory.mktemp("reader")
    port = lrs_free_port()
    env = reader_env(root, port)
    data_db = root / "data" / "jacmon" / "jacmon.db"
    data_db.parent.mkdir(parents=True)
    asyncio.run(seed_alerts(data_db, 42))
    with (root / "serve.log").open("wb") as log_file:
        server = subprocess.Popen(
            ["jacmon", "serve"],
            env=env,
            cwd=root / "work",
            stdout=subprocess.DEVNULL,
            stderr=log_file,
            start_new_session=True,
        )
    try:
        wait_healthy(port, server)
        reading = Reader(root=root, cwd=root / "work", env=env)
        write_reader_files(reading)
        yield reading
    finally:
        status = stop(server)
    log = (root / "serve.log").read_text("utf-8", errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert status == 0, f"jacmon serve exited with {status} on SIGTERM:\n{log[-4000:]}"


@pytest.fixture(scope="module")
def readme_lrs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RalphLrs]:
    """A real LRS with statements to tail, and the README's LRS user beside the test's."""
    require_ralph()
    lrs = RalphLrs(tmp_path_factory.mktemp("ralph"))
    lrs.write_auth()
    users = json.loads(lrs.auth_file.read_text("utf-8"))
    users.append({**users[0], "username": README_LRS_USER})
    lrs.auth_file.write_text(json.dumps(users), "utf-8")
    lrs.start()
    try:
        lrs.post([mixed_statement(i)[0] for i in range(1000, 1030)])
        yield lrs
    finally:
        lrs.stop()


# --- Running one line ------------------------------------------------------------------


@dataclass
class Outcome:
    """What a command left: its exit status and output (a screen, for the dashboard)."""

    status: int
    stdout: str
    stderr: str
    #: What ``/healthz`` answered, for a ``jacmon serve`` line.
    health: dict[str, Any] | None = None

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def shell(text: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    """``text`` in bash (pipefail: a failing exporter fails the line), in its own group."""
    return subprocess.Popen(
        ["bash", "-o", "pipefail", "-c", text],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def run_to_end(text: str, env: dict[str, str], cwd: Path) -> Outcome:
    process = shell(text, env, cwd)
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        stop(process, signal.SIGKILL)
        raise AssertionError(f"{text!r} still running after {TIMEOUT_S:.0f} s") from None
    return Outcome(process.returncode, stdout, stderr)


def run_server(text: str, tmp_path: Path) -> Outcome:
    """A ``jacmon serve`` line on a machine of its own: answers /healthz, stops on SIGTERM."""
    port = lrs_free_port()
    env = reader_env(tmp_path, port)
    process = shell(text, env, tmp_path / "work")
    try:
        health = wait_healthy(port, process)
    finally:
        status = stop(process)
    stdout, stderr = process.communicate()
    return Outcome(status, stdout, stderr, health)


def run_follow(text: str, reader: Reader, lrs: RalphLrs) -> Outcome:
    """A ``--follow`` line: it must ingest what the LRS holds, then stop cleanly on Ctrl+C."""
    wanted = [mixed_statement(i)[1]["id"] for i in range(1000, 1030)]
    process = shell(text, reader.env, reader.cwd)
    deadline = time.monotonic() + TIMEOUT_S
    try:
        while len(reader.event_ids(wanted)) < len(wanted):
            assert process.poll() is None, f"--follow ended by itself: {process.communicate()}"
            assert time.monotonic() < deadline, "the LRS's statements were not ingested in time"
            time.sleep(0.2)
    finally:
        status = stop(process, signal.SIGINT)
    stdout, stderr = process.communicate()
    return Outcome(status, stdout, stderr)


def require_tmux() -> str:
    tmux = shutil.which("tmux")
    if tmux is None:
        pytest.fail("tmux is not installed (apt-get install tmux); the dashboard lines need it")
    return tmux


def run_dashboard(text: str, reader: Reader, tmp_path: Path, expect: tuple[str, ...]) -> Outcome:
    """A dashboard line in a real terminal (tmux): it must paint ``expect``, and quit on q."""
    tmux = Tmux(require_tmux(), tmp_path)
    try:
        pane_pid = tmux.start(
            ["bash", "-c", f"cd {shlex.quote(str(reader.cwd))} && {text}"], reader.env
        )

        async def drive() -> str:
            screen = await wait_for_screen(
                tmux, lambda s: all(part in s for part in expect), f"all of {expect}"
            )
            await quit_and_check_exit(tmux, pane_pid, set())
            return screen

        screen = asyncio.run(drive())
    finally:
        tmux.kill_server()
    return Outcome(0, screen, "")


# --- What a reader checks after each line ---------------------------------------------


def summary_numbers(output: str) -> dict[str, int]:
    """``accepted 30, duplicates 0`` (ingest) or ``30 accepted`` (sim) as a dict."""
    output = flat(output)  # rich wraps the summary at the terminal's width
    found = {k: int(v) for k, v in re.findall(r"\b([a-z]+) (\d+)\b", output)}
    found.update({k: int(v) for v, k in re.findall(r"\b(\d+) ([a-z]+)\b", output)})
    return found


def all_accepted(outcome: Outcome, reader: Reader) -> None:
    numbers = summary_numbers(outcome.stderr)
    assert numbers.get("accepted", 0) > 0, outcome.stderr
    assert numbers.get("rejected") == 0 and numbers.get("unmappable", 0) == 0, outcome.stderr


def streamed_in_step(outcome: Outcome, reader: Reader) -> None:
    all_accepted(outcome, reader)
    # The rate keeps up with the speed: the README's example must not need a warning.
    assert "behind the clock" not in flat(outcome.output), outcome.output


def week_written(outcome: Outcome, reader: Reader) -> None:
    lines = (reader.cwd / "week.jsonl").read_text("utf-8").splitlines()
    assert len(lines) > 1000 and all(json.loads(line)["id"] for line in lines)
    assert f"wrote {len(lines)} events" in outcome.stderr


def velocity_dry_run(outcome: Outcome, reader: Reader) -> None:
    result = json.loads(outcome.stdout)
    assert (result["task"], result["dry_run"], result["outcome"]) == ("velocity", True, "success")


def five_tasks(outcome: Outcome, reader: Reader) -> None:
    names = {task["task"] for task in json.loads(outcome.stdout)}
    assert names == {"performance", "engagement", "daily_analytics", "alert_cleanup", "velocity"}


def firing_alerts(outcome: Outcome, reader: Reader) -> None:
    alerts = json.loads(outcome.stdout)
    assert 42 in {alert["id"] for alert in alerts}, alerts
    assert all(alert["state"] == "firing" for alert in alerts)


def acknowledged_42(outcome: Outcome, reader: Reader) -> None:
    alerts = json.loads(reader.jacmon("alerts", "--state", "all", "--json").stdout)
    (alert,) = [a for a in alerts if a["id"] == 42]
    assert alert["acknowledged"]["note"] == "spoke to the learner", alert


def unacknowledged_42(outcome: Outcome, reader: Reader) -> None:
    alerts = json.loads(reader.jacmon("alerts", "--state", "all", "--json").stdout)
    (alert,) = [a for a in alerts if a["id"] == 42]
    assert alert["acknowledged"] is None, alert
    # Nothing an instructor did is lost: the acknowledgement and its withdrawal.
    notes = [(entry.get("action"), entry["note"]) for entry in alert["acknowledgements"]]
    assert notes[-1] == ("unacknowledged", "not resolved yet"), notes
    assert any(note == "spoke to the learner" for _, note in notes[:-1]), notes


def served_default_db(outcome: Outcome, reader: Reader) -> None:
    # As the README says: 127.0.0.1, the database in the user data dir ($XDG_DATA_HOME).
    assert outcome.health is not None and outcome.health["status"] == "ok", outcome.health
    assert outcome.health["db"]["path"].endswith("/data/jacmon/jacmon.db"), outcome.health
    assert "serving on ws://127.0.0.1:" in outcome.output, outcome.output


def check_passed(outcome: Outcome, reader: Reader) -> None:
    assert "problem" not in outcome.output, outcome.output


def demo_summary(outcome: Outcome, reader: Reader) -> None:
    stored = re.search(r"events stored: (\d+)", outcome.output)
    assert stored and int(stored.group(1)) > 0, outcome.output


def catalog_loaded(outcome: Outcome, reader: Reader) -> None:
    assert re.search(r"loaded 1 paths? with 3 modules", outcome.output), outcome.output


#: What only a Python repr prints: a list or dict of strings, a bare None as a value.
PYTHON_REPR = re.compile(r"\[\'|\{\'|: None$", re.M)


#: JSON keys that hold a moment (not a duration): ``started``, ``next_run``, ``first_seen``...
TIMESTAMP_KEY = re.compile(
    r"^(at|started|ended|scheduled|since|ts|time|last_run|next_run)$|_(at|seen)$"
)
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)")


def non_iso_timestamps(value: Any, where: str = "") -> list[str]:
    """Where ``value`` (parsed JSON) has a moment not written as ISO 8601 UTC (issue 11)."""
    if isinstance(value, list):
        return [
            p for i, item in enumerate(value) for p in non_iso_timestamps(item, f"{where}[{i}]")
        ]
    if not isinstance(value, dict):
        return []
    problems = []
    for key, item in value.items():
        # A key like ``last_run`` may hold an object (the run, with its own ``started``):
        # that is looked into, not taken for a moment.
        if TIMESTAMP_KEY.search(key) and item is not None and not isinstance(item, dict | list):
            if not (isinstance(item, str) and ISO_UTC.fullmatch(item)):
                problems.append(f"{where}.{key}={item!r}")
        else:
            problems.extend(non_iso_timestamps(item, f"{where}.{key}"))
    return problems


def pushed_ids_answered(outcome: Outcome, reader: Reader) -> None:
    sent = json.loads((reader.cwd / "statements.json").read_text("utf-8"))
    assert json.loads(outcome.stdout) == [statement["id"] for statement in sent]


def pushed_listed(outcome: Outcome, reader: Reader) -> None:
    sent = json.loads((reader.cwd / "statements.json").read_text("utf-8"))
    text = flat(outcome.output)
    assert f"records kept: xapi: {len(sent)} mapped, 0 unmapped" in text, text
    assert sent[0]["id"][:8] in text


#: README text -> the check after it ran (beyond exit 0, no traceback, valid --json).
EXPECTATIONS: dict[str, Callable[[Outcome, Reader], None]] = {
    "jacmon serve --check": check_passed,
    "jacmon serve": served_default_db,
    "jacmon ingest events.jsonl": all_accepted,
    "some-exporter | jacmon ingest -": all_accepted,
    "jacmon ingest --format xapi statements.json": all_accepted,
    "jacmon ingest --format caliper envelopes.json": all_accepted,
    "jacmon ingest --lrs https://lrs.example.com/xAPI --lrs-user jacmon --follow": all_accepted,
    "curl -sSf -H 'X-Experience-API-Version: 1.0.3' -H 'Content-Type: application/json' "
    "--data-binary @statements.json http://127.0.0.1:8765/xAPI/statements": pushed_ids_answered,
    "jacmon ingest-log --all": pushed_listed,
    "jacmon sim --learners 500 --rate 300 --speed 600 --duration 120": streamed_in_step,
    "jacmon sim --out week.jsonl --learners 100 --days 7 --seed 4": week_written,
    "jacmon run-task velocity --dry-run --json": velocity_dry_run,
    "jacmon tasks --json": five_tasks,
    "jacmon alerts --state firing --json": firing_alerts,
    'jacmon alerts ack 42 --note "spoke to the learner"': acknowledged_42,
    'jacmon alerts unack 42 --note "not resolved yet"': unacknowledged_42,
    "jacmon demo --headless --duration 30": demo_summary,
    "jacmon catalog load catalog.toml": catalog_loaded,
}

#: Dashboard lines -> what must be painted ({server}: the URL it connected to).
DASHBOARD_SHOWS: dict[str, tuple[str, ...]] = {
    "jacmon dashboard": ("{server}", "Progress", "python-101"),
    "jacmon dashboard --learner u123": ("{server}", "u123", "python-101/m3"),
}


# --- The tests -------------------------------------------------------------------------


def test_the_readme_examples_are_found() -> None:
    texts = [command.text for command in COMMANDS]
    assert len(texts) >= MIN_COMMANDS, texts
    for needed in ("serve", "dashboard", "ingest", "sim", "run-task", "tasks", "alerts", "demo"):
        assert any(command.argv[:2] == ["jacmon", needed] for command in COMMANDS), needed
    assert "jacmon alerts --state firing --json" in texts  # a Scripts line, the last block


def test_every_substitution_and_check_names_a_readme_line() -> None:
    # A reworded README line must not keep an old substitution or check silently unused.
    texts = [command.text for command in COMMANDS]
    for old in SUBSTITUTIONS:
        assert any(re.search(re.escape(old) + r"(?!\S)", text) for text in texts), old
    for text in [*EXPECTATIONS, *DASHBOARD_SHOWS, *KNOWN_FAILURES]:
        assert text in texts, f"{text!r} is no longer in the README's Examples"


def test_no_readme_line_reaches_outside_the_test_machine() -> None:
    # A line naming a system path (--db /var/lib/...) would write outside tmp: it needs
    # a substitution first. URLs other than loopback are substituted too.
    for command in COMMANDS:
        for arg in shlex.split(substitute(command.text, lrs_url="http://127.0.0.1:1/xAPI")):
            assert not arg.startswith(("/", "~")), f"{command.text!r} names {arg!r}"
            host = re.match(r"\w+://([^/:]+)", arg)
            assert host is None or host.group(1) == "127.0.0.1", f"{command.text!r}: {arg!r}"


def test_comments_are_stripped_but_quoted_hashes_kept() -> None:
    assert strip_comment('jacmon alerts ack 42 --note "#1 fix"   # a note') == (
        'jacmon alerts ack 42 --note "#1 fix"'
    )
    assert strip_comment("jacmon tasks --json") == "jacmon tasks --json"


#: README lines that fail for a reason being fixed elsewhere in issue 11; strict, so each
#: case turns into a failure (remove it here) as soon as the fix lands.
#: README lines that fail for a reason fixed elsewhere (none today): text -> the reason.
KNOWN_FAILURES: dict[str, str] = {}


def command_params() -> list[Any]:
    return [
        pytest.param(
            command,
            id=command.text,
            marks=[pytest.mark.xfail(strict=True, reason=KNOWN_FAILURES[command.text])]
            if command.text in KNOWN_FAILURES
            else [],
        )
        for command in COMMANDS
    ]


def test_timestamp_check_tells_iso_utc_from_epoch_seconds() -> None:
    good = {
        "started": "2026-12-05T07:21:18.19+00:00",
        "alerts": [{"fired_at": "2026-12-05T07:21:18Z"}],
    }
    assert non_iso_timestamps(good) == []
    bad = {"dry_run": True, "alerts": [{"first_seen": 1796455800.0, "resolved_at": None}]}
    assert non_iso_timestamps(bad) == [".alerts[0].first_seen=1796455800.0"]
    # `jacmon tasks --json` once a task has run: last_run is the run, looked into.
    ran = [{"last_run": {"started": "2026-12-06T20:15:00Z", "duration_s": 0.01}}]
    assert non_iso_timestamps(ran) == []
    assert non_iso_timestamps([{"last_run": {"started": 1.5}}]) == ["[0].last_run.started=1.5"]


@pytest.mark.parametrize("command", command_params())
def test_readme_command_runs_as_written(
    command: ReadmeCommand, reader: Reader, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    for name, content in command.files.items():
        (reader.cwd / name).write_text(content, "utf-8")
    argv = command.argv
    if argv[:2] == ["jacmon", "serve"] and "--check" not in argv:
        outcome = run_server(substitute(command.text), tmp_path)
    elif argv[:2] == ["jacmon", "serve"]:
        # The check reports a database another server holds: run it before serving, as a
        # reader does, on a machine of its own.
        env = reader_env(tmp_path, lrs_free_port())
        outcome = run_to_end(substitute(command.text), env, tmp_path / "work")
    elif argv[:2] == ["jacmon", "dashboard"]:
        shows = DASHBOARD_SHOWS.get(command.text, ("{server}",))
        expect = tuple(part.format(server=reader.env["JACMON_SERVER"]) for part in shows)
        outcome = run_dashboard(substitute(command.text), reader, tmp_path, expect)
    elif "--follow" in argv:
        lrs = request.getfixturevalue("readme_lrs")
        outcome = run_follow(substitute(command.text, lrs.url), reader, lrs)
    else:
        outcome = run_to_end(substitute(command.text), reader.env, reader.cwd)

    assert "Traceback" not in outcome.output, outcome.output
    assert outcome.status == 0, f"exit {outcome.status}:\n{outcome.output}"
    if "--json" in argv:
        problems = non_iso_timestamps(json.loads(outcome.stdout))
        assert not problems, f"timestamps not in ISO 8601 UTC: {problems[:5]}"
    else:
        assert not PYTHON_REPR.search(outcome.output), f"a Python repr:\n{outcome.output}"
    if check := EXPECTATIONS.get(command.text):
        check(outcome, reader)


def test_sim_out_twice_with_one_seed_and_start_then_ingest_is_all_duplicates(
    reader: Reader,
) -> None:
    # The README's --out line, with a fixed start: the second file's events are the first's.
    (line,) = [c.text for c in COMMANDS if "--out week.jsonl" in c.text]
    fixed = f"{line.replace('week.jsonl', 'again.jsonl')} --start 2026-11-01T00:00:00Z"
    numbers = []
    for _ in range(2):
        made = run_to_end(fixed, reader.env, reader.cwd)
        assert made.status == 0, made.output
        ingested = run_to_end("jacmon ingest again.jsonl", reader.env, reader.cwd)
        assert ingested.status == 0, ingested.output
        numbers.append(summary_numbers(ingested.stderr))
    first, second = numbers
    assert first["accepted"] == first["read"] > 1000, first
    assert (second["read"], second["accepted"], second["duplicates"]) == (
        first["read"],
        0,
        first["read"],
    ), second
