"""The formatter interface: reading and writing one file format for a storage class."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from .errors import ButlerError
from .storage_classes import StorageClass, import_object

__all__ = ["Formatter", "FormatterError", "formatter_class"]


class FormatterError(ButlerError):
    """A formatter is unknown, misconfigured, or cannot read or write a file."""


class Formatter(ABC):
    """Reads and writes datasets of some storage classes as files of one format.

    A formatter works on local paths only; datastores download remote files first and write
    to a temporary local path before moving the result into place, so `write` need not be atomic.
    """

    extension: ClassVar[str]
    """File name extension, with the dot (``.parquet``)."""
    write_option_names: ClassVar[frozenset[str]] = frozenset()
    """Write options this formatter accepts (e.g. ``compression``)."""
    parameter_names: ClassVar[frozenset[str]] = frozenset()
    """Read parameters `read` applies itself, reading less of the file (e.g. ``slice``, ``columns``)."""
    component_names: ClassVar[frozenset[str]] = frozenset()
    """Components `read` can return from a whole composite file without reading the rest."""

    def __init__(self, write_options: Mapping[str, Any] | None = None) -> None:
        options = dict(write_options or {})
        unknown = sorted(set(options) - self.write_option_names)
        if unknown:
            raise FormatterError(
                f"{self.name()} accepts write options {sorted(self.write_option_names) or 'none'}, not {unknown}."
            )
        self.write_options = options

    @classmethod
    def name(cls) -> str:
        """The import path recorded with every dataset this formatter writes."""
        return f"{cls.__module__}.{cls.__qualname__}"

    @abstractmethod
    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """Read the dataset (or one of `component_names`) at ``path`` as ``storage_class``'s type.

        Parameters in `parameter_names` are applied while reading; others are the caller's job.
        """

    @abstractmethod
    def write(self, obj: Any, path: Path) -> None:
        """Write ``obj`` to ``path`` (which does not exist yet)."""


def formatter_class(path: str) -> type[Formatter]:
    """The formatter class at import path ``path``; `FormatterError` if it is not one."""
    try:
        value = import_object(path)
    except ButlerError as err:
        raise FormatterError(f"Unknown formatter {path!r}: {err}") from err
    if not (isinstance(value, type) and issubclass(value, Formatter)):
        raise FormatterError(f"{path!r} is not a Formatter class.")
    return value
