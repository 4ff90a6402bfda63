"""Real PostgreSQL and Redis servers for the cluster tests, started and stopped by the tests.

Nothing is mocked: :class:`PostgresServer` runs Debian's ``initdb`` and ``postgres``
(``postgresql`` package) in a throwaway directory, :class:`RedisServer` runs Debian's
``redis-server`` (``redis-server`` package), both on a free loopback port. ``.ci/run``
installs both packages. Each handle stops only the process it started (by its PID),
and ``stop()``/``start()`` bring the server back on the same port with the same data,
for tests that take a server away and bring it back.

(This lives beside the tests that use it, not in a ``tests/support/`` package: the
existing ``tests/support.py`` module owns the name ``support``.)
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

#: Generous: the CI box has 2 shared cores.
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0

#: The superuser the throwaway cluster is made with, and its password (scram-sha-256 over TCP).
PG_USER = "jacmon"
PG_PASSWORD = "pg-test-secret-7"

REDIS_SERVER = "/usr/bin/redis-server"
#: Debian's PostgreSQL server binaries are in PG_ROOT/<major>/bin.
PG_ROOT = Path("/usr/lib/postgresql")

INSTALL_HINT = (
    "install Debian's postgresql and redis-server packages "
    "(apt-get install postgresql redis-server; .ci/run does this)"
)


class ServiceMissing(RuntimeError):
    """A server binary the tests need is not installed."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has initdb and postgres.

    (``/usr/local/bin/initdb`` on the dev box is only a symlink into Debian's 15.)
    """
    found: list[tuple[int, Path]] = []
    for candidate in PG_ROOT.glob("*/bin"):
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            with contextlib.suppress(ValueError):
                found.append((int(candidate.parent.name), candidate))
    if not found:
        raise ServiceMissing(
            f"PostgreSQL server binaries not found in {PG_ROOT}/*/bin: {INSTALL_HINT}"
        )
    return max(found)[1]


def _stop_process(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to our own child and wait; SIGKILL it if it does not exit in time."""
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class PostgresServer:
    """A throwaway PostgreSQL cluster on ``127.0.0.1:port``, its data in a temp directory.

    Made with ``initdb`` (superuser :data:`PG_USER`, password :data:`PG_PASSWORD`,
    scram over TCP, trust on its private unix socket), fsync off. When the tests run
    as root, initdb and the server run as the ``postgres`` system user (initdb refuses
    root), and the directory is chowned to it. :meth:`stop` and :meth:`start` keep the
    port and the data; :meth:`cleanup` stops the server and removes the directory.
    """

    def __init__(self) -> None:
        self.bin = postgres_bin_dir()
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="jacmon-pg-"))
        self.data = self.workdir / "data"
        self.socket_dir = self.workdir / "run"
        self.log_path = self.workdir / "postgres.log"
        self.process: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                raise ServiceMissing(f"no 'postgres' system user: {INSTALL_HINT}") from None
            self._user = "postgres"
            os.chown(self.workdir, account.pw_uid, account.pw_gid)
        self.workdir.chmod(0o755)  # the tests' own psql (as root) reaches the socket
        try:
            self._initdb()
        except BaseException:
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise

    # -- addresses

    def dsn(self, database: str = "postgres", *, password: str = PG_PASSWORD) -> str:
        """``postgresql://USER:PASSWORD@127.0.0.1:PORT/DATABASE`` (TCP, password auth)."""
        return f"postgresql://{PG_USER}:{password}@127.0.0.1:{self.port}/{database}"

    # -- running things as the cluster's owner

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            list(args),
            user=self._user,
            group=self._user,
            extra_groups=[] if self._user else None,
            cwd=self.workdir,
            env=self._env(),
            capture_output=True,
            text=True,
            check=check,
            timeout=READY_TIMEOUT_S,
        )

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C.UTF-8", LANG="C.UTF-8", TZ="UTC")
        if self._user:
            env["HOME"] = str(self.workdir)
        return env

    def _initdb(self) -> None:
        password_file = self.workdir / "pwfile"
        password_file.write_text(PG_PASSWORD + "\n")
        if self._user:
            account = pwd.getpwnam(self._user)
            os.chown(password_file, account.pw_uid, account.pw_gid)
        try:
            self._run(
                str(self.bin / "initdb"), "-D", str(self.data), "-U", PG_USER,
                f"--pwfile={password_file}", "--auth-local=trust",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync",
            )  # fmt: skip
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(f"initdb failed ({exc.returncode}): {exc.stderr[-2000:]}") from None
        finally:
            password_file.unlink()
        if self._user:
            # The socket directory must belong to the server's user.
            self.socket_dir.mkdir()
            account = pwd.getpwnam(self._user)
            os.chown(self.socket_dir, account.pw_uid, account.pw_gid)
        else:
            self.socket_dir.mkdir()

    # -- the server process

    def start(self) -> None:
        """Start the server (same port, same data) and wait until it accepts connections."""
        if self.process is not None and self.process.poll() is None:
            return
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [str(self.bin / "postgres"), "-D", str(self.data), "-p", str(self.port),
                 "-k", str(self.socket_dir), "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off",
                 "-c", "full_page_writes=off", "-c", "max_connections=100",
                 "-c", "shared_buffers=32MB"],
                user=self._user,
                group=self._user,
                extra_groups=[] if self._user else None,
                cwd=self.workdir,
                env=self._env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in the terminal is the tests' alone
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"postgres exited with {self.process.returncode}: {self.log_tail()}"
                )
            ready = subprocess.run(
                [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port),
                 "-U", PG_USER, "-d", "postgres", "-t", "2"],
                capture_output=True,
                env=self._env(),
                timeout=10,
            )  # fmt: skip
            if ready.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"postgres not ready in {READY_TIMEOUT_S}s on port {self.port}: "
                    f"{self.log_tail()}"
                )
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop the server (fast shutdown: SIGINT rolls back open transactions)."""
        if self.process is not None:
            _stop_process(self.process, signal.SIGINT)
            self.process = None

    def kill(self) -> None:
        """SIGKILL the postmaster, as a crash would (its backends exit on their own)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None
            # Orphaned backends notice the postmaster is gone and exit; give them a moment.
            time.sleep(0.5)

    def cleanup(self) -> None:
        """Stop the server if it runs, and remove its directory."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    # -- administration over the unix socket

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` with psql as the superuser over the unix socket; its output."""
        result = subprocess.run(
            [str(self.bin / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
             "-h", str(self.socket_dir), "-p", str(self.port), "-U", PG_USER,
             "-d", database, "-c", sql],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=READY_TIMEOUT_S,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"psql {sql!r} failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str) -> str:
        """Create an empty database ``name``; its DSN."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        self.psql(f"CREATE DATABASE {name} TEMPLATE template0")
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name``, disconnecting whoever is still connected to it."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"unsafe database name {name!r}")
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    """A started :class:`PostgresServer`, cleaned up (stopped, directory removed) after."""
    server = PostgresServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()


class RedisServer:
    """``redis-server`` on ``127.0.0.1:port``, no persistence; restarts keep the port."""

    def __init__(self) -> None:
        if not Path(REDIS_SERVER).exists():
            raise ServiceMissing(f"{REDIS_SERVER} is missing: {INSTALL_HINT}")
        self.port = free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="jacmon-redis-"))
        self.log_path = self.workdir / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        if self.process is not None and self.process.poll() is None:
            return
        log = self.log_path.open("ab")
        try:
            self.process = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(self.workdir),
                 "--daemonize", "no", "--protected-mode", "yes"],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        finally:
            log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}: {self.log_tail()}"
                )
            if self.ping():
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server not ready in {READY_TIMEOUT_S}s on port {self.port}: "
                    f"{self.log_tail()}"
                )
            time.sleep(0.05)

    def ping(self) -> bool:
        """Whether the server answers PING with PONG (raw RESP, no client library)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process, signal.SIGTERM)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"


@contextlib.contextmanager
def running_redis() -> Iterator[RedisServer]:
    """A started :class:`RedisServer`, stopped and its directory removed after."""
    server = RedisServer()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
