"""The CLI's commands, one module per command or command group.

Each module exposes ``register(app)``; :func:`register_all` calls them in order.
"""

from __future__ import annotations

import importlib

import typer

#: Command modules, in the order ``jacmon --help`` lists them.
COMMAND_MODULES = (
    "serve",
    "dashboard",
    "demo",
    "ingest",
    "ingest_log",
    "sim",
    "tasks",
    "alerts",
    "silence",
    "notify",
    "tokens",
    "catalog",
)


def register_all(app: typer.Typer) -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"jacmon.commands.{name}")
        module.register(app)
