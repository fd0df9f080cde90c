"""Expansion of ``{var}``, ``${ENV}`` and ``$ENV`` in config values (no evaluation of any kind).

``{{`` and ``}}`` stand for literal braces. Names in `JOB_PLACEHOLDERS` stay literal (``{qgraphNodeId}``),
as does anything in braces that is not a plain name, and ``<FILE:name>`` markers. An environment
variable that is not set stays as written (like the shell's ``$UNSET`` would be left to the job),
except ``PWD``, which falls back to the current directory.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["expand_value", "format_scalar", "variable_names"]

_TOKEN = re.compile(
    r"\{\{|\}\}|\{(?P<var>[A-Za-z_][A-Za-z0-9_]*)\}"
    r"|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|\$(?P<env>[A-Za-z_][A-Za-z0-9_]*)"
)

Resolver = Callable[[str], object]
"""Returns the (already expanded) value of a ``{var}``; raises when it is undefined or cyclic."""


def variable_names(text: str) -> list[str]:
    """The ``{var}`` names used in ``text``, in order (escapes and env vars excluded)."""
    return [m.group("var") for m in _TOKEN.finditer(text) if m.group("var")]


def format_scalar(value: object) -> str:
    """How a value reads inside a string: lists comma-joined, None empty, booleans as YAML."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ",".join(format_scalar(item) for item in value)
    return str(value)


def _environment(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None and name == "PWD":
        return os.getcwd()
    return value


def expand_string(text: str, resolve: Resolver, keep: frozenset[str]) -> object:
    """Expand one string; a string that is exactly one ``{var}`` takes the variable's own value."""
    whole = _TOKEN.fullmatch(text)
    if whole is not None and whole.group("var") and whole.group("var") not in keep:
        return resolve(whole.group("var"))

    def replace(match: re.Match[str]) -> str:
        token = match.group(0)
        if token == "{{":
            return "{"
        if token == "}}":
            return "}"
        name = match.group("var")
        if name is not None:
            return token if name in keep else format_scalar(resolve(name))
        env = _environment(match.group("braced") or match.group("env"))
        return token if env is None else env

    return _TOKEN.sub(replace, text)


def expand_value(value: Any, resolve: Resolver, keep: frozenset[str]) -> Any:
    """Expand strings inside a value (recursing into lists and mappings)."""
    if isinstance(value, str):
        return expand_string(value, resolve, keep)
    if isinstance(value, Mapping):
        return {key: expand_value(item, resolve, keep) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [expand_value(item, resolve, keep) for item in value]
    return value
