"""SIGKILL of ``jacmon serve`` while notifications are pending: after a restart every one
is delivered (at least once; a repeat carries the same idempotency key)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from notify_support import free_port
from test_tasks_fixtures import NOW, ago, ingest, score

from jacmon.store import Store
from jacmon.store.sqlite.notify import notification_log

LEARNERS = 30


def serve(db: Path, config: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "jacmon", "serve", "--db", str(db), "--port", "0",
         "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


async def outbox(db: Path) -> list[dict]:
    store = await Store.open(db, readonly=True)
    try:
        return await notification_log(store.db.reader, limit=1000)
    finally:
        await store.close()


async def wait_for(db: Path, check, what: str, timeout: float = 30.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = await outbox(db)
        if check(rows):
            return rows
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}: {rows}")


async def until_router_started(db: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'notify_seq'").fetchone():
                return
        await asyncio.sleep(0.1)
    raise AssertionError("the server's notifier never started")


def receiver_on(port: int) -> tuple[ThreadingHTTPServer, list[tuple[str, dict]]]:
    received: list[tuple[str, dict]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            received.append((self.headers["Idempotency-Key"], json.loads(body)))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    return server, received


async def test_pending_notifications_survive_sigkill(tmp_path):
    db = tmp_path / "jacmon.db"
    store = await Store.open(db)
    try:
        events = []
        for n in range(LEARNERS):
            events += [score(f"u{n}", ago(2), 30), score(f"u{n}", ago(1), 35)]
        await ingest(store, events)
    finally:
        await store.close()
    port = free_port()  # nothing listens yet: the receiver is down
    config = tmp_path / "jacmon.toml"
    config.write_text(
        "[notify]\npoll_interval = 0.1\nretry_backoff = 0.2\nmax_retry_backoff = 0.5\n"
        '[[notify.receivers]]\nname = "hook"\ntype = "webhook"\n'
        f'url = "http://127.0.0.1:{port}/hook"\n'
        '[[notify.routes]]\nreceivers = ["hook"]\ngroup_wait = "0.2s"\n'
    )
    server = serve(db, config)
    try:
        # The router's first pass sets its watermark (history is not sent); then the task.
        await until_router_started(db)
        task = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "jacmon", "run-task", "performance", "--db", str(db),
            "--at", NOW.isoformat(),
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _, err = await asyncio.wait_for(task.communicate(), 60)
        assert task.returncode == 0, err
        await wait_for(
            db,
            lambda rows: len(rows) == LEARNERS and all(r["attempts"] >= 1 for r in rows),
            "every notification tried against the dead receiver",
        )
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        keys_before = {r["key"] for r in await outbox(db)}
        http, received = receiver_on(port)
        try:
            server = serve(db, config)
            rows = await wait_for(
                db,
                lambda rows: all(r["state"] == "sent" for r in rows),
                "every notification delivered after the restart",
            )
            assert len(rows) == LEARNERS
            delivered = {a["learner"] for _, body in received for a in body["alerts"]}
            assert delivered == {f"u{n}" for n in range(LEARNERS)}
            # What was claimed before the kill went out under the key it had then.
            assert {key for key, _ in received} <= keys_before | {r["key"] for r in rows}
            assert keys_before <= {key for key, _ in received}
        finally:
            http.shutdown()
            http.server_close()
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
