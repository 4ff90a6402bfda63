"""Why a host and port cannot be listened on, in one line a user can act on.

Shared by ``jacmon serve`` (checked before the database is touched, and in
``serve --check``) and :class:`~jacmon.server.app.JacmonServer` itself, so the
demo and every embedder get the same sentence instead of an ``OSError``.
"""

from __future__ import annotations

import errno
import socket


def listen_problem(host: str, port: int, exc: OSError) -> str:
    """One line saying why ``host:port`` cannot be listened on, and what to do."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    if exc.errno == errno.EADDRINUSE:
        return f"cannot listen on {where}: the port is in use; stop that process or pick --port"
    if exc.errno == errno.EACCES:
        return f"cannot listen on {where}: permission denied; use a port above 1023"
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot listen on {where}: {host} is not an address of this machine; check --host"
    return f"cannot listen on {where}: {exc.strerror or exc}"


def check_port(host: str, port: int) -> str | None:
    """Bind ``host:port`` for a moment; why it cannot be listened on, or None if it can."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        return listen_problem(host, port, exc)
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # As the server binds: SO_REUSEADDR, so a port in TIME_WAIT is not reported busy.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            return listen_problem(host, port, exc)
    return None
