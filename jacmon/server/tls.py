"""The server's TLS context, from the PEM files ``--tls-cert`` and ``--tls-key`` name."""

from __future__ import annotations

import ssl
from pathlib import Path

from jacmon.errors import ConfigError


def load_tls(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    """The server's TLS context from PEM files, or None when neither is set.

    Raises ConfigError naming the file and what is wrong with it (missing, not
    PEM, the key does not match the certificate), never an OSError traceback.
    """
    if not (cert or key):
        return None
    if not (cert and key):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    _check_pem("--tls-cert", cert, "certificate", b"-----BEGIN CERTIFICATE-----")
    _check_pem("--tls-key", key, "private key", b"PRIVATE KEY-----")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        reason = str(exc.reason or exc).lower()
        if "mismatch" in reason:
            raise ConfigError(
                f"--tls-key file {key} does not match the certificate {cert}"
            ) from None
        raise ConfigError(
            f"--tls-cert {cert} with --tls-key {key} cannot be loaded: {reason.replace('_', ' ')}"
        ) from None
    return context


def _check_pem(flag: str, path: Path, what: str, marker: bytes) -> None:
    """Raise ConfigError unless ``path`` is a readable file holding a PEM ``what``."""
    try:
        content = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{flag} file {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{flag} file {path} is a directory; expected a PEM file") from None
    except OSError as exc:
        raise ConfigError(f"{flag} file {path} cannot be read: {exc.strerror}") from None
    if marker not in content:
        raise ConfigError(f"{flag} file {path} is not a PEM {what}")
