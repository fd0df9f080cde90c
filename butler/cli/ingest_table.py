"""Ingest tables in: the CSV, ECSV or Parquet file ``butler ingest-files`` reads, as file paths with data IDs.

The first column holds each file's path or URI; the others are named after dimensions of the
dataset type and hold its data ID values. Pure functions; the command prints and ingests.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from lsst.resources import ResourcePath

from ..data_coordinate import DataCoordinate
from ..dimensions import DimensionElement, DimensionGroup, FieldType, unknown_name_message
from ..errors import ButlerError, DataIdError

__all__ = ["TABLE_SUFFIXES", "IngestRow", "IngestTableError", "read_ingest_table"]

TABLE_SUFFIXES = {".csv": "CSV", ".ecsv": "ECSV", ".parquet": "Parquet", ".parq": "Parquet", ".pq": "Parquet"}
"""File name suffixes `read_ingest_table` understands, and the format each means."""


class IngestTableError(ButlerError):
    """An ingest table cannot be read, or one of its rows cannot be used; the message names the table and row."""


@dataclass(frozen=True)
class IngestRow:
    """One file of an ingest table."""

    where: str
    """The table and the row, for messages (``table.csv line 3``, ``table.parquet row 2``)."""
    uri: ResourcePath
    """The file, with a relative path resolved against the prefix."""
    data_id: DataCoordinate
    """The data ID of the dataset the file holds (required dimensions only)."""


def read_ingest_table(
    path: Path,
    dimensions: DimensionGroup,
    *,
    constants: Mapping[str, str] | None = None,
    prefix: str | None = None,
) -> list[IngestRow]:
    """Read the files and data IDs listed in the table at ``path``.

    Parameters
    ----------
    path
        A ``.csv``, ``.ecsv`` or ``.parquet`` table; the first column is the file's path or URI,
        the others are named after required dimensions of ``dimensions``.
    dimensions
        The dimensions of the dataset type being ingested.
    constants
        Data ID values (as text) shared by every row; a dimension may not be given both here and
        as a column.
    prefix
        Directory or URI that relative file paths are relative to; default the table's directory.

    Raises
    ------
    IngestTableError
        The table cannot be read, names an unknown column, or a row lacks or has a bad value;
        the message names the table and the row.
    """
    constants = dict(constants or {})
    columns, rows, row_name = _read_table(path)
    if not columns:
        raise IngestTableError(f"{path}: the table has no columns; the first column must be the file path.")
    keys = columns[1:]
    allowed = dimensions.required
    for kind, names in (("data ID column", keys), ("--data-id key", list(constants))):
        for key in names:
            if key not in allowed:
                raise IngestTableError(
                    f"{path}: {unknown_name_message(kind, key, allowed)} "
                    f"(the dataset type's dimensions are {', '.join(allowed)})."
                )
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise IngestTableError(f"{path}: column(s) {', '.join(repeated)} appear more than once.")
    both = sorted(set(keys) & set(constants))
    if both:
        raise IngestTableError(f"{path}: {', '.join(both)} given both as a column and by --data-id.")
    base = ResourcePath(prefix if prefix is not None else path.resolve().parent, forceDirectory=True)
    universe = dimensions.universe
    key_types = {key: _key_type(universe[key]) for key in allowed}
    fixed = {
        key: _key_value(key_types[key], key, text, f"--data-id {key}") for key, text in constants.items()
    }
    result = []
    for number, values in rows:
        where = f"{path} {row_name} {number}"
        file_name = values[0]
        if file_name is None or not str(file_name).strip():
            raise IngestTableError(f"{where}: no file path in the first column ({columns[0]!r}).")
        data_id = dict(fixed)
        for key, value in zip(keys, values[1:], strict=True):
            data_id[key] = _key_value(key_types[key], key, value, where)
        missing = [name for name in allowed if name not in data_id]
        if missing:
            raise IngestTableError(
                f"{where}: no value for {', '.join(missing)}; add a column or pass --data-id "
                f"{missing[0]}=VALUE."
            )
        uri = ResourcePath(str(file_name).strip(), root=base, forceAbsolute=True)
        try:
            coordinate = DataCoordinate.standardize(data_id, dimensions=dimensions)
        except DataIdError as err:
            raise IngestTableError(f"{where}: {err}") from err
        result.append(IngestRow(where, uri, coordinate))
    return result


def _key_type(element: DimensionElement) -> FieldType:
    if element.key is None:  # only join elements lack a key, and they are never required dimensions
        raise IngestTableError(f"{element.name} is not a dimension; it cannot be a data ID key.")
    return element.key.type


def _key_value(key_type: FieldType, key: str, value: Any, where: str) -> int | str:
    """A table cell or ``--data-id`` value as the dimension's key type."""
    if value is None or (isinstance(value, str) and not value.strip()):
        raise IngestTableError(f"{where}: no value for {key}.")
    if key_type is FieldType.INT:
        if isinstance(value, bool):
            raise IngestTableError(f"{where}: {key} must be an integer, got {value!r}.")
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise IngestTableError(f"{where}: {key} must be an integer, got {value!r}.")
        try:
            return int(value.strip() if isinstance(value, str) else value)
        except (TypeError, ValueError):
            raise IngestTableError(f"{where}: {key} must be an integer, got {value!r}.") from None
    return value.strip() if isinstance(value, str) else str(value)


# -- reading the formats ----------------------------------------------------------------------------

Cells = tuple[int, list[Any]]
"""A data row: its number (CSV: line number; otherwise counting data rows from 1) and its cells."""


def _read_table(path: Path) -> tuple[list[str], list[Cells], str]:
    """(column names, rows, what a row number counts: "line" or "row")."""
    kind = TABLE_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise IngestTableError(
            f"{path}: unknown table type {path.suffix!r}; expected one of {', '.join(TABLE_SUFFIXES)}."
        )
    try:
        if kind == "CSV":
            return (*_read_csv(path), "line")
        if kind == "ECSV":
            return (*_read_ecsv(path), "row")
        return (*_read_parquet(path), "row")
    except IngestTableError:
        raise
    except Exception as err:  # each reader library raises its own kinds; all mean "cannot read it"
        raise IngestTableError(f"Cannot read {kind} table {path}: {err}") from err


def _read_csv(path: Path) -> tuple[list[str], list[Cells]]:
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    header = [column.strip() for column in next(reader, [])]
    rows: list[Cells] = []
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise IngestTableError(
                f"{path} line {reader.line_num}: {len(cells)} cell(s), but the header has "
                f"{len(header)} column(s)."
            )
        rows.append((reader.line_num, [cell.strip() or None for cell in cells]))
    return header, rows


def _read_ecsv(path: Path) -> tuple[list[str], list[Cells]]:
    from astropy.table import Table  # imported here: slow to import, and only ECSV tables need it

    table = Table.read(path, format="ascii.ecsv")
    columns = list(table.colnames)
    rows: list[Cells] = []
    for number, row in enumerate(table, start=1):
        rows.append((number, [_plain(row[name]) for name in columns]))
    return columns, rows


def _read_parquet(path: Path) -> tuple[list[str], list[Cells]]:
    import pyarrow.parquet as pq  # imported here: only Parquet tables need it

    table = pq.read_table(path)
    columns = list(table.column_names)
    return columns, [(n, [row[c] for c in columns]) for n, row in enumerate(table.to_pylist(), start=1)]


def _plain(value: Any) -> Any:
    """A numpy scalar or masked value from astropy as a Python value (None when masked)."""
    if np.ma.is_masked(value):
        return None
    return value.item() if isinstance(value, np.generic) else value
