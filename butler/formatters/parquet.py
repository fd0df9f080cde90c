"""Parquet files for tables (the ArrowTable and DataFrame storage classes), read column by column."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..formatter import Formatter, FormatterError
from ..storage_classes import StorageClass
from ._checks import as_storage_class, check_component, check_write_type, library_errors

__all__ = ["ParquetFormatter"]

_ERRORS = (pa.ArrowException, OSError, ValueError, TypeError)


class ParquetFormatter(Formatter):
    """A `pyarrow.Table` or `pandas.DataFrame` as a Parquet file; either type reads back as either.

    Write options: ``compression`` (a Parquet codec name, default ``"zstd"``; ``"none"`` for none) and
    ``compression_level`` (codec-specific integer, default the codec's own). Read parameter: ``columns``,
    a list of column names, of which only those are read from the file. A `pandas.DataFrame` keeps its
    index (stored as columns plus pandas metadata), also when ``columns`` is given.
    """

    extension = ".parquet"
    write_option_names = frozenset({"compression", "compression_level"})
    parameter_names = frozenset({"columns"})

    def __init__(self, write_options: Mapping[str, Any] | None = None) -> None:
        super().__init__(write_options)
        self.compression: str = self.write_options.get("compression", "zstd")
        self.compression_level: int | None = self.write_options.get("compression_level")
        if not isinstance(self.compression, str):
            raise FormatterError(
                f"ParquetFormatter: compression must be a codec name, not {self.compression!r}."
            )
        if self.compression_level is not None and (
            isinstance(self.compression_level, bool) or not isinstance(self.compression_level, int)
        ):
            raise FormatterError(
                f"ParquetFormatter: compression_level must be an integer, not {self.compression_level!r}."
            )
        if self.compression.lower() == "none":
            if self.compression_level is not None:
                raise FormatterError("ParquetFormatter: compression_level needs a compression codec.")
            return
        try:
            if not pa.Codec.is_available(self.compression):
                raise FormatterError(
                    f"ParquetFormatter: codec {self.compression!r} is not built into pyarrow."
                )
            pa.Codec(self.compression, self.compression_level)
        except (pa.ArrowException, ValueError) as err:
            raise FormatterError(f"ParquetFormatter: invalid compression options: {err}") from err

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The table at ``path`` (only ``parameters["columns"]`` if given) as ``storage_class``'s type."""
        check_component(self, component)
        as_data_frame = issubclass(storage_class.pytype, pd.DataFrame)
        with library_errors(self, "read", path, _ERRORS), path.open("rb") as stream:
            parquet_file = pq.ParquetFile(stream)
            columns = self._columns(parameters, parquet_file.schema_arrow.names, path)
            table = parquet_file.read(columns=columns, use_pandas_metadata=as_data_frame)
            result = table.to_pandas() if as_data_frame else table
        return as_storage_class(self, result, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write a `pyarrow.Table` or `pandas.DataFrame` with the configured compression."""
        check_write_type(self, obj, (pa.Table, pd.DataFrame))
        with library_errors(self, "write", path, (pa.ArrowException, ValueError, TypeError)):
            table = pa.Table.from_pandas(obj, preserve_index=None) if isinstance(obj, pd.DataFrame) else obj
            with path.open("wb") as stream:
                pq.write_table(
                    table, stream, compression=self.compression, compression_level=self.compression_level
                )

    @staticmethod
    def _columns(parameters: Mapping[str, Any] | None, available: list[str], path: Path) -> list[str] | None:
        """The ``columns`` read parameter as a list (a single name is accepted), checked against the file."""
        columns = (parameters or {}).get("columns")
        if columns is None:
            return None
        if isinstance(columns, str):
            columns = [columns]
        if not (isinstance(columns, list | tuple) and all(isinstance(c, str) for c in columns)):
            raise FormatterError(
                f"ParquetFormatter: columns must be a list of column names, not {columns!r}."
            )
        unknown = [c for c in columns if c not in available]
        if unknown:
            raise FormatterError(f"{path} has no column(s) {unknown}; available columns are {available}.")
        return list(columns)
