"""``jacmon demo --web``: serves the browser dashboard until Ctrl+C or SIGTERM, then a
summary and exit 0; the flag's usage errors."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from support import flat
from typer.testing import CliRunner

from jacmon.cli import app

#: Bounds for one run, in seconds: start (a 2-core CI box), then stop.
START_S = 30.0
STOP_S = 30.0

runner = CliRunner()


def read_url(proc: subprocess.Popen) -> str:
    """The browser address from the demo's first stderr line (bounded by the test timeout)."""
    line = proc.stderr.readline()
    match = re.search(r"open (http://127\.0\.0\.1:\d+/) in a browser", line)
    assert match, line + proc.stderr.read() if proc.poll() is not None else line
    return match.group(1)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_demo_web_serves_the_page_and_stops_cleanly(tmp_path, signum):
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {**os.environ, "TMPDIR": str(tmp)}
    cmd = [sys.executable, "-m", "jacmon", "demo", "--web", "--learners", "5", "--port", "0"]
    with subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path
    ) as proc:
        try:
            url = read_url(proc)
            port = url.rsplit(":", 1)[1].rstrip("/")
            hint = proc.stderr.readline()
            assert f"ssh -L {port}:127.0.0.1:{port}" in hint
            with urllib.request.urlopen(url, timeout=5) as page:
                assert page.status == 200
                assert page.headers["Content-Type"] == "text/html; charset=utf-8"
                assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
            time.sleep(0.5)
            proc.send_signal(signum)
            out, err = proc.communicate(timeout=STOP_S)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"browser dashboard was at {url}" in out
    assert "events stored: " in out
    # The temporary database went with it.
    assert list(tmp.iterdir()) == []


def test_demo_web_with_a_duration_ends_by_itself_with_a_json_summary(tmp_path):
    db = tmp_path / "demo.db"
    result = runner.invoke(
        app,
        ["demo", "--web", "--duration", "2", "--learners", "3", "--json", "--db", str(db)],
    )
    assert result.exit_code == 0, result.output
    assert "open http://127.0.0.1:" in result.stderr
    summary = json.loads(result.stdout)
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", summary["web_url"])
    assert summary["url"] == "ws" + summary["web_url"].removeprefix("http").removesuffix("/")


def test_headless_and_web_exclude_each_other(tmp_path):
    result = runner.invoke(
        app, ["demo", "--web", "--headless", "--duration", "1", "--db", str(tmp_path / "d.db")]
    )
    assert result.exit_code == 2
    assert "error: --headless and --web exclude each other" in flat(result.stderr)
    assert not (tmp_path / "d.db").exists()
