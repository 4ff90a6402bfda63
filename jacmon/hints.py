"""Commands suggested in error messages, spelled so that running them as shown works.

A hint like "create one with 'jacmon token create --role admin'" is only right
for the default database: someone who ran ``jacmon serve --db lab.db`` needs
``--db lab.db`` in it too. Every hint that names a command goes through
:func:`suggest_command`, in the CLI, the server and the store alike.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path


def suggest_command(args: str, *, db: Path | str | None = None, config: Path | None = None) -> str:
    """``'jacmon ARGS --config CONFIG --db DB'``, quoted for a message and a shell.

    ``config`` is the config file that was read and ``db`` the database the failing
    command used; each is left out when None or when the suggested command would
    find it by itself (the default, or named by JACMON_CONFIG / JACMON_DB).
    """
    from jacmon.config import default_config_path, default_db_path

    words = ["jacmon", args]
    if config is not None and not _found_anyway(config, "JACMON_CONFIG", default_config_path()):
        words += ["--config", shlex.quote(str(config))]
    if db is not None and not _found_anyway(db, "JACMON_DB", default_db_path()):
        words += ["--db", shlex.quote(str(db))]
    return "'" + " ".join(words) + "'"


def _found_anyway(path: Path | str, variable: str, default: Path) -> bool:
    """Whether a command without the flag would use ``path``: it is what ``variable``
    names, or the default when the variable is unset."""
    found = Path(os.environ.get(variable) or default)
    return Path(path).absolute() == found.absolute()
