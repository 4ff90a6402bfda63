"""``jacmon serve`` and the browser dashboard: the address at start and in ``--check``,
``--no-web`` and ``[web]`` in the config."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from typer.testing import CliRunner

from jacmon.cli import app

runner = CliRunner()

pytestmark = pytest.mark.usefixtures("isolated_env", "restore_logging")


def test_check_shows_the_web_address_and_frame_ancestors(tmp_path):
    result = runner.invoke(app, ["serve", "--check", "--db", str(tmp_path / "j.db")])
    assert result.exit_code == 0, result.output
    assert "web: http://127.0.0.1:8765/" in result.stdout
    assert "frame_ancestors: 'self'" in result.stdout


def test_check_with_no_web_says_it_is_off(tmp_path):
    result = runner.invoke(
        app, ["serve", "--check", "--no-web", "--json", "--db", str(tmp_path / "j.db")]
    )
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)["plan"]
    assert plan["web"] == "off (web.enabled = false or --no-web)"


def test_check_reports_a_bad_frame_ancestor_from_the_config(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text('[web]\nframe_ancestors = ["lms.example.com"]\n')
    result = runner.invoke(app, ["serve", "--check", "--config", str(config)])
    assert result.exit_code == 2
    assert "Config 'web.frame_ancestors' has value 'lms.example.com'" in result.stderr
    assert "Traceback" not in result.output


def serve_once(tmp_path: Path, *flags: str) -> tuple[list[str], dict[str, int]]:
    """Start ``jacmon serve --port 0``, read its start lines, GET / and /healthz, stop it
    with SIGINT; the start lines and each path's status."""
    cmd = [sys.executable, "-m", "jacmon", "serve", "--port", "0", "--db", str(tmp_path / "j.db")]
    env = {**os.environ, "JACMON_CONFIG": os.devnull}
    with subprocess.Popen(cmd + list(flags), env=env, stderr=subprocess.PIPE, text=True) as proc:
        try:
            line = ""
            while not line.startswith("jacmon serving on "):
                line = proc.stderr.readline()
                assert line, "jacmon serve exited before listening"
            lines = [line, proc.stderr.readline()]
            port = lines[0].split("serving on ")[1].split()[0].rsplit(":", 1)[1]
            statuses = {}
            for path in ("/", "/healthz"):
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                        statuses[path] = r.status
                except urllib.error.HTTPError as exc:
                    statuses[path] = exc.code
            proc.send_signal(signal.SIGINT)
            proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 0
    return [line.strip() for line in lines], statuses


@pytest.mark.timeout(60)
def test_serve_prints_the_web_address_and_serves_the_page(tmp_path):
    lines, statuses = serve_once(tmp_path)
    port = lines[0].split("serving on ")[1].split()[0].rsplit(":", 1)[1]
    assert lines[1] == f"web dashboard: http://127.0.0.1:{port}/"
    assert statuses == {"/": 200, "/healthz": 200}


@pytest.mark.timeout(60)
def test_serve_no_web_turns_the_pages_off(tmp_path):
    lines, statuses = serve_once(tmp_path, "--no-web")
    assert lines[1] == "web dashboard: off (web.enabled = false or --no-web)"
    assert statuses == {"/": 404, "/healthz": 200}
