"""Shared helpers for the server benchmarks: pinning, limits, the server subprocess, events, stats.

Benchmarks run the server in its own process pinned to one core (``SERVER_CPU``)
and the load generators on the other (``LOAD_CPU``), so the numbers say what
one server core does. Everything is loopback only; every loop is bounded in
count and time.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
#: The core the server under test runs on; load generators use the other one.
SERVER_CPU = 0
LOAD_CPU = 1
#: Seconds to wait for a server subprocess to print its port.
START_TIMEOUT_S = 60.0


#: ``pin_to_cpu(ALL_CPUS)``: every core (a child would otherwise inherit its parent's pin).
ALL_CPUS = -1


def pin_to_cpu(cpu: int | None) -> None:
    """Pin this process to one core (None: leave it alone; ALL_CPUS: every core; ignored
    where unsupported)."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return
    cores = os.cpu_count() or 1
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, set(range(cores)) if cpu == ALL_CPUS else {cpu % cores})


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard one; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def machine_facts() -> dict[str, Any]:
    """What the results were measured on (for the results file)."""
    import websockets

    facts: dict[str, Any] = {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "websockets": websockets.__version__,
        "sqlite": __import__("sqlite3").sqlite_version,
        "kernel": platform.release(),
        "open_files_limit": resource.getrlimit(resource.RLIMIT_NOFILE),
    }
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    facts["jacmon"] = code_version()
    with contextlib.suppress(OSError):
        facts["loadavg"] = Path("/proc/loadavg").read_text().split()[:3]
    return facts


def code_version() -> dict[str, Any]:
    """Which jacmon code is measured: its source directory and, in a git tree, commit and dirt.

    To measure one commit while others edit the tree, export it and put it first:
    ``git archive HEAD jacmon | tar -x -C /tmp/snap && PYTHONPATH=/tmp/snap python bench/...``.
    """
    import jacmon

    source = Path(jacmon.__file__).resolve().parent
    info: dict[str, Any] = {"source": str(source)}
    git = ["git", "-C", str(source.parent)]
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        info["commit"] = subprocess.run(
            [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            [*git, "status", "--porcelain", "--", "jacmon"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split("\n")
        info["uncommitted_jacmon_files"] = [line[3:] for line in dirty if line.strip()]
    return info


# Statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values`` by nearest rank (nan when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


# Events


PATHS = ("python-101", "data-201", "web-110", "sql-150", "ml-301")
MODULES_PER_PATH = 8


def make_event(n: int, *, learners: int = 2000, run: str = "r", **extra: Any) -> dict[str, Any]:
    """A valid contract event, deterministic in ``n``: a realistic mix of types.

    ``run`` keeps ids unique across runs against one database; ``extra`` fields
    (e.g. ``sent_at``) are kept by the server and streamed to clients.
    """
    learner = f"u{n % learners}"
    path = PATHS[n % len(PATHS)]
    module = f"m{(n // len(PATHS)) % MODULES_PER_PATH}"
    base: dict[str, Any] = {
        "id": f"{run}-{n}",
        "ts": f"2026-01-05T10:{(n // 60) % 60:02d}:{n % 60:02d}Z",
        "learner": learner,
        "session": f"s-{learner}",
    }
    kind = n % 4
    if kind == 0:
        base |= {"type": "module.progressed", "path": path, "module": module}
        base["progress"] = float((n * 7) % 101)
    elif kind == 1:
        base |= {"type": "lesson.completed", "path": path, "module": module, "item": f"l{n % 5}"}
        base["duration_s"] = 60.0 + n % 300
    elif kind == 2:
        base |= {"type": "assessment.attempted", "path": path, "module": module, "item": "quiz"}
        base["score"] = {"scaled": (n % 11) / 10, "raw": n % 11, "min": 0, "max": 10}
        base["attempt"] = 1 + n % 3
    else:
        base |= {"type": "activity", "path": path}
    return base | extra


# The server under test, in its own process


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used so far."""
    import psutil

    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


@dataclass
class ServerProcess:
    """A jacmon server started by ``bench/serve.py`` in a subprocess."""

    proc: subprocess.Popen
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        import psutil

        return psutil.Process(self.pid).memory_info().rss

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def stop(self, timeout: float = 30.0) -> str:
        """SIGTERM, wait, return what the server wrote on stdout after its port line."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        return out or ""


@contextlib.contextmanager
def server_process(
    db: Path,
    *,
    cpu: int | None = SERVER_CPU,
    profile: Path | None = None,
    log_file: Path | None = None,
    config: Path | None = None,
    default_gc: bool = False,
    **settings: Any,
) -> Iterator[ServerProcess]:
    """Run ``bench/serve.py`` on ``db`` pinned to ``cpu``; ``settings`` go to ServerSettings,
    ``config``'s ``[notify]`` table to the notifier; ``default_gc``: CPython's collector
    thresholds instead of the ones ``jacmon serve`` sets."""
    cmd = [sys.executable, str(BENCH_DIR / "serve.py"), "--db", str(db)]
    if config is not None:
        cmd += ["--config", str(config)]
    if cpu is not None:
        cmd += ["--cpu", str(cpu)]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if default_gc:
        cmd.append("--default-gc")
    for key, value in settings.items():
        cmd += ["--set", f"{key}={value}"]
    stderr = open(log_file, "w") if log_file else subprocess.DEVNULL  # noqa: SIM115
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=REPO_DIR)
    try:
        line = read_line(proc, START_TIMEOUT_S)
        info = json.loads(line)
        server = ServerProcess(proc, int(info["port"]), int(info["pid"]))
        yield server
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log_file:
            stderr.close()


def read_line(proc: subprocess.Popen, timeout: float) -> str:
    """One line from ``proc``'s stdout within ``timeout`` seconds, or an error naming the wait."""
    import selectors

    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                line = proc.stdout.readline()
                if line:
                    return line
                raise RuntimeError(f"{proc.args[1]} exited (code {proc.wait()}) before its line")
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args[1]} exited (code {proc.returncode})")
    raise TimeoutError(f"no line from {proc.args[1]} within {timeout:.0f} s")


def spawn_python(script: str, args: list[str], *, cpu: int | None = LOAD_CPU) -> subprocess.Popen:
    """Start ``bench/<script>`` with this interpreter, pinned to ``cpu``, pipes on stdin/stdout."""
    cmd = [sys.executable, str(BENCH_DIR / script), *args]
    if cpu is not None:
        cmd = ["taskset", "-c", str(cpu), *cmd]
    return subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_DIR
    )


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
