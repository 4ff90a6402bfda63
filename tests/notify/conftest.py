"""Real receivers for the receiver tests: an HTTP server, an SMTP server, an Alertmanager.

Nothing is mocked: each fixture starts the real thing on 127.0.0.1 and stops it
(by its own handle or PID) at teardown.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from notify_support import SMTP_LOGIN, free_port

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

#: Generous: the CI box has 2 shared cores.
READY_TIMEOUT_S = 30.0

# aiosmtpd logs every connection at INFO from its own thread, also after a test's log
# capture has closed its stream ("--- Logging error ---" noise in the test output).
logging.getLogger("mail.log").setLevel(logging.WARNING)


@dataclass
class Recorded:
    """One request the HTTP server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpReceiver:
    """A real HTTP server that records every request and answers from a script.

    ``answers``: (status, headers, body) to send, in order; when empty, 200 ``ok``.
    """

    server: ThreadingHTTPServer
    requests: list[Recorded] = field(default_factory=list)
    answers: deque[tuple[int, dict[str, str], bytes]] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, status: int, body: bytes | str = b"", **headers: str) -> None:
        """Queue the answer to the next request."""
        data = body.encode() if isinstance(body, str) else body
        self.answers.append((status, {k.replace("_", "-"): v for k, v in headers.items()}, data))


def _handler(receiver: HttpReceiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            with receiver.lock:
                receiver.requests.append(
                    Recorded(
                        "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                    )
                )
                status, headers, data = (
                    receiver.answers.popleft() if receiver.answers else (200, {}, b"ok")
                )
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the test output to what failed

    return Handler


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = HttpReceiver(server)
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="http-receiver", daemon=True
    )
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass
class SmtpReceiver:
    """A real SMTP server (aiosmtpd) that keeps every message it accepted.

    ``reply``: what DATA answers (``None``: accept with 250); ``rcpt_reply`` the
    same for RCPT TO.
    """

    port: int
    messages: list[Any] = field(default_factory=list)
    reply: str | None = None
    rcpt_reply: str | None = None

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply:
            return self.rcpt_reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.reply:
            return self.reply
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


def _start_smtp(**kwargs: Any) -> tuple[Controller, SmtpReceiver]:
    handler = SmtpReceiver(port=free_port())
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port, **kwargs)
    controller.start()
    return controller, handler


@pytest.fixture
def smtp_receiver() -> Iterator[SmtpReceiver]:
    controller, handler = _start_smtp()
    try:
        yield handler
    finally:
        controller.stop()


@dataclass
class TlsFiles:
    cert: Path
    key: Path


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A self-signed certificate for 127.0.0.1, made with the openssl CLI."""
    if shutil.which("openssl") is None:
        pytest.fail("openssl is missing; install it (apt-get install openssl) for the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    files = TlsFiles(folder / "cert.pem", folder / "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(files.key), "-out", str(files.cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return files


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = (
        isinstance(auth_data, LoginPassword)
        and (
            auth_data.login.decode(),
            auth_data.password.decode(),
        )
        == SMTP_LOGIN
    )
    # handled=False: aiosmtpd answers 535 itself (True means we already did).
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def starttls_receiver(tls_files: TlsFiles) -> Iterator[SmtpReceiver]:
    """An SMTP server that requires STARTTLS and then a login (:data:`SMTP_LOGIN`)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.cert, tls_files.key)
    controller, handler = _start_smtp(
        tls_context=context,
        require_starttls=True,
        authenticator=_authenticate,
        auth_required=True,
    )
    try:
        yield handler
    finally:
        controller.stop()


@dataclass
class Alertmanager:
    url: str
    process: subprocess.Popen[bytes]

    def alerts(self, **params: str) -> list[dict[str, Any]]:
        """``GET /api/v2/alerts`` as Alertmanager answers it."""
        response = httpx.get(f"{self.url}/api/v2/alerts", params=params, timeout=10)
        response.raise_for_status()
        return response.json()


@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Alertmanager]:
    """Debian's prometheus-alertmanager on a free loopback port, clustering off."""
    if not Path(ALERTMANAGER).exists():
        pytest.fail(
            f"{ALERTMANAGER} is missing: install Debian's prometheus-alertmanager "
            "(apt-get install prometheus-alertmanager; .ci/run does this)"
        )
    folder = tmp_path_factory.mktemp("alertmanager")
    config = folder / "am.yml"
    config.write_text('route:\n  receiver: "null"\nreceivers:\n  - name: "null"\n')
    port = free_port()
    log = (folder / "am.log").open("wb")
    process = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={folder}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    am = Alertmanager(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"alertmanager exited with {process.returncode}: {_tail(folder)}")
            try:
                if httpx.get(f"{am.url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"alertmanager not ready in {READY_TIMEOUT_S}s: {_tail(folder)}")
            time.sleep(0.1)
        yield am
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _tail(folder: Path) -> str:
    return (folder / "am.log").read_text(errors="replace")[-2000:]
