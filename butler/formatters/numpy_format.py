"""NumPy ``.npy`` files for arrays (the NumpyArray storage class), sliced through a memory map."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import EllipsisType
from typing import Any

import numpy as np

from ..formatter import Formatter, FormatterError
from ..storage_classes import StorageClass
from ._checks import as_storage_class, check_component, check_write_type, library_errors

__all__ = ["NpyFormatter"]

Index = tuple[slice | int | EllipsisType, ...]

_READ_ERRORS = (OSError, ValueError, TypeError, IndexError)


class NpyFormatter(Formatter):
    """A `numpy.ndarray` as a ``.npy`` file (never pickled: object arrays are refused).

    Read parameter: ``slice``, a slice, an integer, or a tuple of them (one per axis, ``...`` allowed).
    The file is memory-mapped and only the selected part is copied into memory.
    """

    extension = ".npy"
    parameter_names = frozenset({"slice"})

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The array at ``path``, or just ``parameters["slice"]`` of it, as a new in-memory array."""
        check_component(self, component)
        key = (parameters or {}).get("slice")
        if key is None:
            with library_errors(self, "read", path, _READ_ERRORS), path.open("rb") as stream:
                array = np.lib.format.read_array(stream, allow_pickle=False)
        else:
            index = _index(key)
            with library_errors(self, "read", path, _READ_ERRORS):
                mapped = np.lib.format.open_memmap(path, mode="r")
                try:
                    array = np.array(mapped[index])
                except IndexError as err:
                    raise FormatterError(
                        f"NpyFormatter cannot apply slice {key!r} to {path} of shape {mapped.shape}: {err}"
                    ) from err
                finally:
                    del mapped
        return as_storage_class(self, array, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write an array (masked and object arrays are refused)."""
        check_write_type(self, obj, (np.ndarray,))
        if isinstance(obj, np.ma.MaskedArray):
            raise FormatterError(
                "NpyFormatter cannot write numpy.ma.MaskedArray: .npy files would drop the mask."
            )
        if obj.dtype.hasobject:
            raise FormatterError(
                f"NpyFormatter cannot write an array of dtype {obj.dtype}: .npy files are never pickled."
            )
        with library_errors(self, "write", path, (ValueError,)), path.open("wb") as stream:
            np.lib.format.write_array(stream, obj, allow_pickle=False)


def _index(key: Any) -> Index:
    """The ``slice`` read parameter as an index tuple; `FormatterError` for anything else (e.g. lists)."""
    items = key if isinstance(key, tuple) else (key,)
    for item in items:
        if not (
            isinstance(item, slice)
            or item is Ellipsis
            or (isinstance(item, int | np.integer) and not isinstance(item, bool))
        ):
            raise FormatterError(
                f"NpyFormatter: the slice parameter must be a slice, an integer or a tuple of them, not {key!r}."
            )
    return items
