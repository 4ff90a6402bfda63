"""Operator mistakes get one clear line on stderr and a non-zero exit, never a traceback.

Every case runs the real ``jacmon`` in its own process, as an operator would.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import run_jacmon

pytestmark = pytest.mark.usefixtures("isolated_env")


jacmon = run_jacmon


def one_error(result: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert a failure with an error line holding every needle and no traceback."""
    assert result.returncode != 0, result.stderr
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    text = " ".join(result.stderr.split())
    for needle in needles:
        assert needle in text, text
    return text


def test_port_in_use_is_one_line(tmp_path, busy_port):
    result = jacmon("serve", "--db", str(tmp_path / "j.db"), "--port", str(busy_port))
    one_error(result, f"127.0.0.1:{busy_port}", "in use")


@pytest.mark.parametrize("mode", [["--web"], ["--headless", "--duration", "5"]])
def test_a_demo_on_a_busy_port_is_one_line(tmp_path, busy_port, mode):
    result = jacmon("demo", *mode, "--db", str(tmp_path / "j.db"), "--port", str(busy_port))
    one_error(result, f"cannot listen on 127.0.0.1:{busy_port}: the port is in use")


@pytest.mark.parametrize("port", ["-1", "70000"])
def test_a_demo_port_out_of_range_is_one_line(tmp_path, port):
    result = jacmon("demo", "--web", "--db", str(tmp_path / "j.db"), "--port", port)
    one_error(result, f"has value {port}", "from 0 to 65535")


def test_check_tests_the_port(tmp_path, busy_port):
    result = jacmon("serve", "--check", "--db", str(tmp_path / "j.db"), "--port", str(busy_port))
    one_error(result, f"problem: cannot listen on 127.0.0.1:{busy_port}", "in use")


@pytest.mark.parametrize("command", ["ingest", "sim", "dashboard"])
@pytest.mark.parametrize(
    ("server", "hint"),
    [("http://127.0.0.1:8765", "'ws://127.0.0.1:8765'"), ("127.0.0.1:8765", "ws://127.0.0.1:8765")],
)
def test_a_server_url_that_is_not_websocket_gets_a_hint(tmp_path, command, server, hint):
    args = {"ingest": [str(tmp_path / "none.jsonl")], "sim": ["--events", "1"], "dashboard": []}
    result = jacmon(command, *args[command], "--server", server)
    one_error(result, f"--server has value {server!r}", hint)


def make_pair(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate and its key (EC: quick to make)."""
    cert, key = directory / f"{name}-cert.pem", directory / f"{name}-key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture(scope="module")
def pems(tmp_path_factory):
    directory = tmp_path_factory.mktemp("pems")
    return make_pair(directory, "a"), make_pair(directory, "b")


def test_tls_files_missing_not_pem_or_mismatched_are_named(tmp_path, pems):
    (cert, key), (_, other_key) = pems
    not_pem = tmp_path / "notes.txt"
    not_pem.write_text("hello\n")
    cases = [
        (
            ["--tls-cert", str(tmp_path / "nope.pem"), "--tls-key", str(key)],
            [f"--tls-cert file {tmp_path / 'nope.pem'} does not exist"],
        ),
        (
            ["--tls-cert", str(not_pem), "--tls-key", str(key)],
            [f"--tls-cert file {not_pem} is not a PEM certificate"],
        ),
        (
            ["--tls-cert", str(cert), "--tls-key", str(not_pem)],
            [f"--tls-key file {not_pem} is not a PEM private key"],
        ),
        (
            ["--tls-cert", str(cert), "--tls-key", str(other_key)],
            [f"--tls-key file {other_key} does not match the certificate {cert}"],
        ),
    ]
    for flags, needles in cases:
        db = str(tmp_path / "j.db")
        one_error(jacmon("serve", "--db", db, "--port", "0", *flags), *needles)
        one_error(jacmon("serve", "--check", "--db", db, *flags), *needles)


def test_a_read_only_db_location_says_read_only(tmp_path):
    # /proc/sys refuses new files even to root: a read-only place on any Linux box.
    result = jacmon("serve", "--db", "/proc/sys/jacmon.db", "--port", "0")
    one_error(result, "/proc/sys", "read-only")
    result = jacmon("token", "create", "--role", "admin", "--db", "/proc/sys/jacmon.db")
    one_error(result, "read-only")


def test_a_db_under_a_file_says_not_a_directory(tmp_path):
    plain = tmp_path / "plain"
    plain.write_text("")
    result = jacmon("serve", "--db", str(plain / "j.db"), "--port", "0")
    one_error(result, f"{plain} is not a directory")


def test_tls_cert_and_key_that_match_still_serve(tmp_path, pems):
    (cert, key), _ = pems
    result = jacmon(
        "serve",
        "--check",
        "--db",
        str(tmp_path / "j.db"),
        "--tls-cert",
        str(cert),
        "--tls-key",
        str(key),
        "--port",
        "0",
    )
    assert result.returncode == 0, result.stderr


def test_serve_refuses_an_unknown_lrs_key_at_start(tmp_path):
    config = tmp_path / "jacmon.toml"
    config.write_text('[lrs]\nurl = "http://127.0.0.1:9/xAPI"\npoll_intervall_s = 1\n')
    result = jacmon("serve", "--config", str(config), "--db", str(tmp_path / "j.db"), "--port", "0")
    one_error(result, "'lrs.poll_intervall_s' is not a setting", "poll_interval_s")
