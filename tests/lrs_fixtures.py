"""A real Learning Record Store for tests: Ralph, started as a subprocess on loopback.

Ralph lives in its own virtualenv (``.ci/setup-ralph.sh``; ``RALPH_VENV`` moves it)
with the file-system backend and HTTP basic auth. Tests that need it use the
``ralph`` fixture; without the venv they skip, except under CI (``CI`` set),
where they fail so CI proves the LRS tests ran.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
RALPH_VENV = Path(os.environ.get("RALPH_VENV", ROOT / ".ci" / ".ralph-venv"))
RALPH_PYTHON = RALPH_VENV / "bin" / "python"

USER = "jacmon-test"
PASSWORD = "lrs-secret-1"

# Timeouts, in seconds: generous, the box may be loaded.
START_TIMEOUT = 90.0
STOP_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Ralph 5.1's file-system LRS backend writes with the "create" operation, which
# refuses to touch an existing file: every POST after the first fails with 500.
# Writing with "append" (the operation its data backend offers for this) makes it
# a usable LRS; reading, paging, auth and the HTTP API are Ralph's own, unchanged.
SERVE_RALPH = """
import sys
import uvicorn
from ralph.backends.data.base import BaseOperationType
from ralph.backends.lrs.fs import FSLRSBackend
FSLRSBackend.default_operation_type = BaseOperationType.APPEND
uvicorn.run("ralph.api:app", host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


class RalphLrs:
    """One Ralph LRS process with its data in ``workdir``; survives :meth:`stop`/:meth:`start`."""

    def __init__(
        self, workdir: Path, port: int | None = None, *, extra_env: dict[str, str] | None = None
    ) -> None:
        self.workdir = workdir
        self.port = port or free_port()
        #: More ``RALPH_*`` settings (``RALPH_XAPI_FORWARDINGS``, for one).
        self.extra_env = dict(extra_env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "ralph.log"
        self.auth_file = workdir / "auth.json"
        (workdir / "data").mkdir(parents=True, exist_ok=True)
        (workdir / "app").mkdir(exist_ok=True)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """The xAPI endpoint, as given to ``jacmon ingest --lrs``."""
        return f"{self.origin}/xAPI"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RALPH_")}
        env.update(
            {
                "RALPH_APP_DIR": str(self.workdir / "app"),
                "RALPH_AUTH_FILE": str(self.auth_file),
                "RALPH_RUNSERVER_BACKEND": "fs",
                "RALPH_RUNSERVER_AUTH_BACKENDS": "basic",
                "RALPH_BACKENDS__LRS__FS__DEFAULT_DIRECTORY_PATH": str(self.workdir / "data"),
                # The largest page Ralph serves; the tailer's limit is capped to it.
                "RALPH_RUNSERVER_MAX_SEARCH_HITS_COUNT": "100",
            }
        )
        env.update(self.extra_env)
        return env

    def write_auth(self) -> None:
        """Write Ralph's basic-auth file: one user with every scope.

        The bcrypt hash is made with Ralph's own venv (bcrypt comes with ``[lrs]``);
        Ralph's ``auth`` command would need its ``[cli]`` extra as well.
        """
        if self.auth_file.exists():
            return
        digest = subprocess.run(
            [
                str(RALPH_PYTHON),
                "-c",
                "import bcrypt, sys; "
                "print(bcrypt.hashpw(sys.argv[1].encode(), bcrypt.gensalt()).decode())",
                PASSWORD,
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        ).stdout.strip()
        users = [
            {
                "username": USER,
                "hash": digest,
                "scopes": ["all"],
                "agent": {"mbox": "mailto:jacmon-test@example.com", "objectType": "Agent"},
            }
        ]
        self.auth_file.write_text(json.dumps(users, indent=2))

    def start(self) -> None:
        self.write_auth()
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(RALPH_PYTHON), "-c", SERVE_RALPH, str(self.port)],
            env=self._env(),
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Ralph exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(f"{self.origin}/__lbheartbeat__", timeout=5):
                    return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"Ralph did not answer within {START_TIMEOUT}s:\n{self.log()}"
                    ) from None
                time.sleep(0.2)

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL)."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""

    def _request(self, method: str, path: str, body: Any = None) -> Any:
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={
                "Authorization": f"Basic {token}",
                "X-Experience-API-Version": "1.0.3",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:2000]
            raise AssertionError(
                f"Ralph answered {exc.code} to {method} {path}: {detail}"
            ) from None
        return json.loads(raw) if raw else None

    def post(self, statements: list[dict[str, Any]], *, chunk: int = 100) -> list[str]:
        """Store ``statements`` (in chunks); returns the ids the LRS answered."""
        ids: list[str] = []
        for start in range(0, len(statements), chunk):
            ids.extend(self._request("POST", "/statements", statements[start : start + chunk]))
        return ids

    def all_statements(self) -> list[dict[str, Any]]:
        """Every stored statement, following ``more`` (test-side check, not the code under test)."""
        found: list[dict[str, Any]] = []
        page = self._request("GET", "/statements?limit=100")
        found.extend(page["statements"])
        while page.get("more"):
            request_path = page["more"].split("/xAPI", 1)[1]
            page = self._request("GET", request_path)
            found.extend(page["statements"])
        return found


def require_ralph() -> None:
    """Skip (or, under CI, fail) when Ralph's virtualenv is not installed."""
    if RALPH_PYTHON.exists():
        return
    reason = f"Ralph LRS venv not found at {RALPH_VENV}; run .ci/setup-ralph.sh to install it"
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the LRS tests must run)")
    pytest.skip(reason)


def running_ralph(workdir: Path) -> Iterator[RalphLrs]:
    """Start Ralph with an empty store in ``workdir``; stop it (by PID) when resumed.

    Test modules wrap it in a fixture: ``yield from running_ralph(tmp_path / "ralph")``.
    """
    require_ralph()
    lrs = RalphLrs(workdir)
    lrs.start()
    try:
        yield lrs
    finally:
        lrs.stop()


# Statement factory: statements of mixed verbs and, built from the same inputs
# (not through jacmon.sources.xapi), the event each one must become.

ADL = "http://adlnet.gov/expapi/verbs/"
COURSE = "http://adlnet.gov/expapi/activities/course"
MODULE = "http://adlnet.gov/expapi/activities/module"
LESSON = "http://adlnet.gov/expapi/activities/lesson"
ASSESSMENT = "http://adlnet.gov/expapi/activities/assessment"
CMI5_SESSION = "https://w3id.org/xapi/cmi5/context/extensions/sessionid"
CMI5_PROGRESS = "https://w3id.org/xapi/cmi5/result/extensions/progress"
HOME = "https://lms.example.com"


def _course(n: int) -> str:
    return f"https://lms.example.com/course/c{n}"


def _module(n: int, m: int) -> str:
    return f"{_course(n)}/module/m{m}"


def mixed_statement(i: int, *, timestamp: str | None = None) -> tuple[dict, dict]:
    """Statement number ``i`` (its verb cycles through the mapped kinds) and its expected event.

    The expected event lists only the fields the mapping must set; ``None`` means
    "must be absent". ``timestamp`` None leaves it to the LRS (it uses ``stored``).
    """
    course, mod = _course(i % 3), _module(i % 3, i % 4)
    lesson = f"{mod}/lesson/l{i}"
    learner_name = f"learner{i % 17}"
    statement: dict[str, Any] = {
        "id": str(uuid_for(i)),
        "actor": {"objectType": "Agent", "account": {"homePage": HOME, "name": learner_name}},
        "context": {
            "contextActivities": {
                "parent": [{"id": mod, "definition": {"type": MODULE}}],
                "grouping": [{"id": course, "definition": {"type": COURSE}}],
            },
            "extensions": {CMI5_SESSION: f"s-{i % 9}"},
        },
    }
    if timestamp is not None:
        statement["timestamp"] = timestamp
    expected: dict[str, Any] = {
        "id": statement["id"],
        "learner": f"{learner_name}@{HOME}",
        "session": f"s-{i % 9}",
        "path": course,
        "module": mod,
    }
    kind = i % 10
    if kind == 0:
        verb, obj = "registered", {"id": course, "definition": {"type": COURSE}}
        statement["context"] = {"extensions": {CMI5_SESSION: f"s-{i % 9}"}}
        expected.update(type="path.enrolled", item=course, module=None)
    elif kind == 1:
        verb, obj = "launched", {"id": lesson, "definition": {"type": LESSON}}
        expected.update(type="session.started", item=lesson)
    elif kind == 2:
        verb, obj = "terminated", {"id": lesson, "definition": {"type": LESSON}}
        statement["result"] = {"duration": f"PT{i % 50}M{i % 60}.5S"}
        expected.update(type="session.ended", item=lesson, duration_s=(i % 50) * 60 + i % 60 + 0.5)
    elif kind == 3:
        verb, obj = "progressed", {"id": mod, "definition": {"type": MODULE}}
        statement["result"] = {"extensions": {CMI5_PROGRESS: i % 101}}
        expected.update(type="module.progressed", item=mod, progress=float(i % 101))
    elif kind == 4:
        verb, obj = "completed", {"id": lesson, "definition": {"type": LESSON}}
        statement["result"] = {"completion": True}
        expected.update(type="lesson.completed", item=lesson, completion=True)
    elif kind == 5:
        verb, obj = "completed", {"id": mod, "definition": {"type": MODULE}}
        statement["context"]["contextActivities"].pop("parent")
        expected.update(type="module.completed", item=mod)
    elif kind == 6:
        quiz = f"{mod}/quiz/q{i}"
        verb, obj = "answered", {"id": quiz, "definition": {"type": ASSESSMENT}}
        scaled = round((i % 21) / 20, 2)
        statement["result"] = {"score": {"scaled": scaled}, "success": scaled >= 0.5}
        expected.update(
            type="assessment.attempted",
            item=quiz,
            score={"scaled": scaled},
            success=scaled >= 0.5,
        )
    elif kind == 7:
        quiz = f"{mod}/quiz/q{i}"
        verb, obj = "passed", {"id": quiz, "definition": {"type": ASSESSMENT}}
        statement["result"] = {"score": {"raw": 8 + i % 3, "min": 0, "max": 10}, "success": True}
        expected.update(
            type="assessment.passed",
            item=quiz,
            score={"raw": float(8 + i % 3), "min": 0.0, "max": 10.0},
            success=True,
        )
    elif kind == 8:
        verb, obj = "completed", {"id": course, "definition": {"type": COURSE}}
        statement["context"]["contextActivities"] = {}
        expected.update(type="path.completed", item=course, module=None, completion=True)
    else:
        video = f"{mod}/video/v{i}"
        verb = "https://w3id.org/xapi/video/verbs/played"
        obj = {
            "id": video,
            "definition": {"type": "https://w3id.org/xapi/video/activity-type/video"},
        }
        expected.update(type="activity", item=video, verb=verb)
    verb_id = verb if verb.startswith("http") else ADL + verb
    statement["verb"] = {"id": verb_id, "display": {"en-US": verb.rsplit("/", 1)[-1]}}
    statement["object"] = {"objectType": "Activity", **obj}
    expected["verb"] = verb_id
    return statement, expected


def unmappable_statements(start: int) -> list[dict[str, Any]]:
    """Valid xAPI that jacmon cannot map: an anonymous group, a StatementRef, no progress."""
    base = {"verb": {"id": ADL + "experienced"}, "object": {"id": "https://lms.example.com/x"}}
    return [
        {
            **base,
            "id": str(uuid_for(start)),
            "actor": {
                "objectType": "Group",
                "member": [{"objectType": "Agent", "mbox": "mailto:a@example.com"}],
            },
        },
        {
            "id": str(uuid_for(start + 1)),
            "actor": {"mbox": "mailto:b@example.com"},
            "verb": {"id": ADL + "interacted"},
            "object": {"objectType": "StatementRef", "id": str(uuid_for(start + 3))},
        },
        {
            "id": str(uuid_for(start + 2)),
            "actor": {"mbox": "mailto:b@example.com"},
            "verb": {"id": ADL + "progressed"},
            "object": {"id": _module(1, 1), "definition": {"type": MODULE}},
            "context": {"contextActivities": {"grouping": [{"id": _course(1)}]}},
        },
    ]


def uuid_for(i: int) -> uuid.UUID:
    """A stable statement id for number ``i`` (so expectations can be rebuilt)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://jacmon.test/statement/{i}")


def check_event(event: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Differences between a stored event and its expectation (empty when it matches)."""
    problems = []
    for key, want in expected.items():
        got = event.get(key)
        if key == "score" and want is not None and got is not None:
            got = {k: v for k, v in got.items() if v is not None}
        if got != want:
            problems.append(f"{expected['id']} {key}: got {got!r}, expected {want!r}")
    return problems
