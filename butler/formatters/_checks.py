"""Checks every formatter makes: the type it is asked to write, the component and result it reads, library errors."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..formatter import Formatter, FormatterError
from ..storage_classes import StorageClass, StorageClassError

__all__ = ["as_storage_class", "check_component", "check_write_type", "library_errors", "type_name"]


def type_name(cls: type) -> str:
    """The import path of ``cls`` (``builtins.dict``, ``pyarrow.lib.Table``)."""
    return f"{cls.__module__}.{cls.__qualname__}"


def check_write_type(formatter: Formatter, obj: object, expected: tuple[type, ...]) -> None:
    """Raise `FormatterError` unless ``obj`` is an instance of one of ``expected``."""
    if not isinstance(obj, expected):
        raise FormatterError(
            f"{type(formatter).__name__} cannot write {type_name(type(obj))}; expected "
            f"{' or '.join(type_name(t) for t in expected)}."
        )


def check_component(formatter: Formatter, component: str | None) -> None:
    """Raise `FormatterError` unless ``component`` is None or one of the formatter's `component_names`."""
    if component is not None and component not in formatter.component_names:
        available = sorted(formatter.component_names)
        raise FormatterError(
            f"{type(formatter).__name__} cannot read component {component!r}; "
            f"it reads {f'components {available}' if available else 'no components'}."
        )


def as_storage_class(formatter: Formatter, obj: Any, storage_class: StorageClass, path: Path) -> Any:
    """``obj`` (read from ``path``) as ``storage_class``'s type, or `FormatterError` naming the file."""
    try:
        return storage_class.coerce(obj)
    except StorageClassError as err:
        raise FormatterError(
            f"{type(formatter).__name__} cannot read {path} as storage class {storage_class.name}: {err}"
        ) from err


@contextmanager
def library_errors(
    formatter: Formatter, action: str, path: Path, errors: tuple[type[BaseException], ...]
) -> Iterator[None]:
    """Turn ``errors`` raised inside the block into `FormatterError` naming ``path``, chaining the original.

    ``action`` is ``"read"`` or ``"write"``. `FileNotFoundError` passes through unchanged: a missing
    file is the datastore's to report, not a format problem.
    """
    try:
        yield
    except (FileNotFoundError, FormatterError):
        raise
    except errors as err:
        raise FormatterError(f"{type(formatter).__name__} cannot {action} {path}: {err}") from err
