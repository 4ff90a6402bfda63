"""How ``jacmon --help`` looks: plain text, readable metavars, one default style.

Typer's rich help reads help strings as Rich markup, so ``[[paths]]`` or
``[lrs]`` vanish, and shows Python types (``<bool>``, ``<str>``) as metavars.
The root app uses :class:`JacmonGroup` with ``rich_markup_mode=None``: help is
printed as written, and every value placeholder gets a metavar here, in one place.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperGroup, TyperOption

#: ``-h`` works wherever ``--help`` does (sub-commands inherit it from the root context).
CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"]}

#: Metavars by option name, where the name says more than the type.
_BY_NAME = {
    "server": "URL",
    "lrs": "URL",
    "allowed_origin": "ORIGIN",
    "token": "TOKEN",
    "since": "TIME",
    "at": "TIME",
    "start": "TIME",
    "host": "ADDRESS",
    "port": "PORT",
    "db": "FILE",
    "config": "FILE",
    "catalog": "FILE",
    "out": "FILE",
    "tls_cert": "FILE",
    "tls_key": "FILE",
    "expires_in": "DURATION",
    "format": "FORMAT",
    "fmt": "FORMAT",
    "log_level": "LEVEL",
    "log_format": "FORMAT",
    "state": "STATE",
    "role": "ROLE",
    "learner": "LEARNER",
}

#: Metavars by the parameter's Python type, for the rest.
_BY_TYPE = {"int": "N", "float": "NUMBER", "str": "TEXT"}


def metavar_for(param: TyperOption | TyperArgument) -> str:
    """The placeholder shown after an option (``--db FILE``) or for an argument (``FILE``)."""
    if isinstance(param, TyperArgument):
        return (param.name or "value").upper()
    name = param.name or ""
    if name in _BY_NAME:
        return _BY_NAME[name]
    if param.type_descriptor.is_path:
        return "PATH"
    return _BY_TYPE.get(param.bare_type(), "VALUE")


class _Argument(TyperArgument):
    """A Typer argument shown the click way in the usage line: ``FILE``, ``[SOURCE]``."""

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx: Any) -> str | None:
        # The metavar already names the value; Typer would add its Python type (<str>).
        return None


class _Option(TyperOption):
    """A Typer option whose default reads like the user would type it.

    ``1800``, not ``1800.0``; a ``show_default`` text as written, not in parentheses,
    so ``[default: the user data dir]`` looks like ``[default: 8765]``.
    """

    def _get_default_string(self, **kwargs: Any) -> str:
        if kwargs.get("show_default_is_str"):
            return str(self.show_default)
        default = kwargs.get("default_value")
        if isinstance(default, float):
            return f"{default:g}"
        return super()._get_default_string(**kwargs)


def set_metavars(command: Any) -> None:
    """Give every value-taking parameter of ``command`` and its sub-commands a metavar."""
    for param in command.params:
        if isinstance(param, TyperOption):
            param.__class__ = _Option
            if param.is_flag or param.count:
                continue
        if param.metavar is None:
            param.metavar = metavar_for(param)
        if isinstance(param, TyperArgument):
            param.__class__ = _Argument
    for sub in getattr(command, "commands", {}).values():
        set_metavars(sub)


class JacmonGroup(TyperGroup):
    """The root ``jacmon`` group: fixes the metavars of the whole tree once it is built.

    Typer builds the sub-commands before the root group, so they are all here.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        set_metavars(self)
