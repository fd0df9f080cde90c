"""Where task config values come from (history, override files), how they print, and how they stay put when frozen."""

from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, NoReturn, Protocol

import yaml
from pydantic_core import PydanticSerializationError, to_jsonable_python

from .errors import ConfigError

__all__ = [
    "HistoryEntry",
    "caller_source",
    "format_config",
    "format_history",
    "freeze_value",
    "render_value",
    "run_override_file",
    "same_value",
    "snapshot",
]

_LOG = logging.getLogger(__name__)

_SOURCE_LABEL = "__config_source__"
"""Global of an executed override file naming it in history (``file overrides.py`` -> ``file overrides.py:3``)."""


class _Config(Protocol):
    """What this module needs of `graph.config.Config`."""

    def iter_fields(self) -> Iterator[tuple[str, Any, str]]: ...

    def history(self, path: str) -> list[HistoryEntry]: ...


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One value a config field has had."""

    value: Any
    """The value (a copy for lists, dicts and sets; the import path of a sub-task class)."""
    source: str
    """Where it came from: ``default``, ``constructor``, a pipeline or command-line override, or ``file:line``."""


def caller_source(frame: FrameType | None) -> str:
    """``file:line`` of ``frame`` (code that assigned a config field); an override file's label if it has one."""
    if frame is None:
        return "python"
    label = frame.f_globals.get(_SOURCE_LABEL)
    where = label if isinstance(label, str) else frame.f_code.co_filename
    return f"{where}:{frame.f_lineno}"


def snapshot(value: Any) -> Any:
    """``value`` as kept in history: shallow copies of lists, dicts and sets, everything else as is."""
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return value


def render_value(value: Any) -> str:
    """``value`` as a one-line YAML flow value (what a pipeline ``config:`` block would say)."""
    try:
        plain = to_jsonable_python(value)
    except PydanticSerializationError:
        return repr(value)
    if isinstance(plain, str | int | float | bool) or plain is None:
        text = yaml.safe_dump(plain, default_flow_style=True, allow_unicode=True)
        return text.removesuffix("\n").removesuffix("\n...")
    return yaml.safe_dump(
        plain, default_flow_style=True, allow_unicode=True, sort_keys=False, width=2**31
    ).strip()


def same_value(a: Any, b: Any) -> bool:
    """Equality of plain (JSON-like) values that also holds for two NaNs."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def format_config(config: _Config, pattern: str = "*") -> str:
    """Lines ``path: value  # doc`` for the leaf fields whose dotted path matches ``pattern``.

    ``pattern`` is an fnmatch pattern, case-insensitive; one naming a sub-config (``background``)
    selects all of its fields.
    """
    pattern = pattern.lower()
    lines = []
    for path, value, doc in config.iter_fields():
        key = path.lower()
        if fnmatch.fnmatchcase(key, pattern) or fnmatch.fnmatchcase(key, pattern + ".*"):
            lines.append(f"{path}: {render_value(value)}  # {' '.join(doc.split())}")
    return "\n".join(lines)


def format_history(config: _Config, path: str) -> str:
    """The history of field ``path``: one ``value  source`` line per entry, values aligned, newest last."""
    entries = config.history(path)
    values = [render_value(entry.value) for entry in entries]
    width = max((len(v) for v in values), default=0)
    return "\n".join(
        f"{value:<{width}}  {entry.source}" for value, entry in zip(values, entries, strict=True)
    )


def run_override_file(config: Any, path: Path, source: str | None) -> None:
    """Execute Python file ``path`` with ``config`` bound to ``config``; see `graph.config.Config.load_python`."""
    label = source or f"file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"Cannot read config override file {path}: {err}") from err
    try:
        code = compile(text, str(path), "exec")
    except SyntaxError as err:
        raise ConfigError(f"Config override file {path}, line {err.lineno}: syntax error: {err.msg}") from err
    namespace = {
        "__name__": "__config_override__",
        "__file__": str(path),
        _SOURCE_LABEL: label,
        "config": config,
    }
    _LOG.debug("Applying config override file %s to %s.", path, type(config).__name__)
    try:
        exec(code, namespace)
    except Exception as err:
        line = _line_in(err.__traceback__, str(path))
        detail = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        error_class = type(err) if isinstance(err, ConfigError) else ConfigError
        raise error_class(f"Config override file {path}, line {line}: {detail}") from err


def _line_in(traceback: TracebackType | None, filename: str) -> int | None:
    """Line of the innermost frame of ``traceback`` running code from ``filename``."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == filename:
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return line


def freeze_value(value: Any, where: str) -> Any:
    """``value`` with every list, dict and set in it replaced by a read-only copy (``where`` names the field)."""
    if isinstance(value, FrozenList | FrozenDict | FrozenSet):
        return value
    if isinstance(value, list):
        return FrozenList((freeze_value(v, where) for v in value), where)
    if isinstance(value, dict):
        return FrozenDict(((k, freeze_value(v, where)) for k, v in value.items()), where)
    if isinstance(value, set):
        return FrozenSet(value, where)
    return value


def _refuse(self: FrozenList | FrozenDict | FrozenSet, *args: Any, **kwargs: Any) -> NoReturn:
    raise ConfigError(f"Cannot modify {self.where}: the config is frozen.")


class FrozenList(list[Any]):
    """A list value of a frozen config: reads like a list, refuses every change."""

    __slots__ = ("where",)

    def __init__(self, items: Iterable[Any], where: str) -> None:
        super().__init__(items)
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenList, (list(self), self.where))

    append = extend = insert = remove = pop = clear = sort = reverse = _refuse
    __setitem__ = __delitem__ = __iadd__ = __imul__ = _refuse


class FrozenDict(dict[Any, Any]):
    """A dict value of a frozen config: reads like a dict, refuses every change."""

    __slots__ = ("where",)

    def __init__(self, items: Iterable[tuple[Any, Any]], where: str) -> None:
        super().__init__(items)
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenDict, (list(self.items()), self.where))

    __setitem__ = __delitem__ = __ior__ = clear = pop = popitem = setdefault = update = _refuse


class FrozenSet(set[Any]):
    """A set value of a frozen config: reads like a set, refuses every change."""

    __slots__ = ("where",)

    def __init__(self, items: Iterable[Any], where: str) -> None:
        super().__init__(items)
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (FrozenSet, (list(self), self.where))

    add = discard = remove = pop = clear = update = _refuse
    intersection_update = difference_update = symmetric_difference_update = _refuse
    __ior__ = __iand__ = __isub__ = __ixor__ = _refuse
