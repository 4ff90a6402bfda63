"""The jacmon error family: every message says what was wrong and how to fix it."""

from __future__ import annotations


class JacmonError(Exception):
    """Base class of every error jacmon raises on purpose.

    The CLI prints ``str(error)`` and exits with :attr:`exit_code`.
    """

    exit_code = 1


class ConfigError(JacmonError):
    """A setting has a bad value or the config file cannot be read."""

    exit_code = 2


class UsageError(JacmonError):
    """A command was called with arguments that cannot work together."""

    exit_code = 2


class EventValidationError(JacmonError):
    """One event does not follow the ingest contract.

    ``field`` names the offending field (``None`` for the event as a whole).
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class StoreError(JacmonError):
    """The database cannot be opened, migrated or written."""


class AuthError(JacmonError):
    """A token is missing, unknown, revoked or lacks the needed role.

    ``status`` is the HTTP status the handshake answers with (401 or 403).
    """

    def __init__(self, message: str, *, status: int = 401) -> None:
        super().__init__(message)
        self.status = status


class ProtocolError(JacmonError):
    """A client sent a frame that is not a valid jacmon message."""


class TaskError(JacmonError):
    """A monitoring task failed or does not exist."""
