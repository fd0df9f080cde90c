"""Dimension records in: the YAML and CSV files ``butler insert-dimension-records`` reads.

The CSV read here is the CSV `format.record_row` writes, so records can be copied between repositories.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..dimension_records import parse_field_text
from ..dimensions import DimensionElement, DimensionUniverse, unknown_name_message
from ..errors import ButlerError
from .format import TIMESPAN_COLUMNS

__all__ = ["RecordFileError", "read_record_file"]


class RecordFileError(ButlerError):
    """A dimension-record file cannot be read or used; the message names the file (and record)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def read_record_file(
    path: Path, element: DimensionElement, universe: DimensionUniverse
) -> list[dict[str, Any]]:
    """Read the records of ``element`` from a YAML or CSV file; errors name the file and the record."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise RecordFileError(f"Cannot read {path}: {err}") from err
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _records_from_csv(str(path), text, element, universe)
    if suffix in (".yaml", ".yml", ".json"):
        return _records_from_yaml(str(path), text, element)
    raise RecordFileError(f"{path}: unknown record file type {suffix!r}; expected .yaml, .yml or .csv.")


def _records_from_yaml(name: str, text: str, element: DimensionElement) -> list[dict[str, Any]]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise RecordFileError(f"{name}: invalid YAML: {err}") from err
    if isinstance(data, Mapping):
        if set(data) != {"records"}:
            raise RecordFileError(
                f"{name}: a mapping at the top must have only the key 'records', not {list(data)}."
            )
        data = data["records"]
    if data is None:
        return []
    if not isinstance(data, list):
        raise RecordFileError(
            f"{name}: expected a list of records (or 'records:' holding one), got {data!r}."
        )
    records = []
    for number, item in enumerate(data, start=1):
        where = f"{name} record {number}"
        if not isinstance(item, Mapping):
            raise RecordFileError(f"{where}: expected a mapping of field names to values, got {item!r}.")
        values = {str(key): value for key, value in item.items()}
        _check_fields(where, element, values)
        records.append(_fold_timespan(where, values))
    return records


def _records_from_csv(
    name: str, text: str, element: DimensionElement, universe: DimensionUniverse
) -> list[dict[str, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [column.strip() for column in next(reader, [])]
    _check_fields(f"{name} line 1", element, header)
    repeated = sorted({column for column in header if header.count(column) > 1})
    if repeated:
        raise RecordFileError(f"{name} line 1: column(s) {', '.join(repeated)} appear more than once.")
    records = []
    for cells in reader:
        where = f"{name} line {reader.line_num}"
        if not any(cell.strip() for cell in cells):
            continue
        if len(cells) != len(header):
            raise RecordFileError(
                f"{where}: {len(cells)} cell(s), but the header has {len(header)} column(s)."
            )
        try:
            values = {
                column: parse_field_text(universe, element, column, cell.strip())
                for column, cell in zip(header, cells, strict=True)
            }
        except ButlerError as err:
            raise RecordFileError(f"{where}: {err}", err.exit_code) from err
        records.append(_fold_timespan(where, values))
    return records


def _check_fields(where: str, element: DimensionElement, fields: Sequence[str] | Mapping[str, Any]) -> None:
    """Raise naming the first field that records of ``element`` do not have."""
    allowed = list(element.record_fields)
    if element.is_dimension and element.key is not None and element.key.name != element.name:
        allowed.append(element.name)  # the registry accepts e.g. `exposure: 5` for `id: 5`
    if element.has_timespan:
        allowed.extend(TIMESPAN_COLUMNS)
    for field in fields:
        if field not in allowed:
            raise RecordFileError(
                f"{where}: {unknown_name_message(f'field of {element.name} records', field, allowed)}"
            )


def _fold_timespan(where: str, values: dict[str, Any]) -> dict[str, Any]:
    """Replace ``timespan_begin``/``timespan_end`` by a ``timespan`` mapping (None when both are empty)."""
    if not any(column in values for column in TIMESPAN_COLUMNS):
        return values
    if "timespan" in values:
        raise RecordFileError(
            f"{where}: give either 'timespan' or 'timespan_begin'/'timespan_end', not both."
        )
    begin, end = values.pop("timespan_begin", None), values.pop("timespan_end", None)
    values["timespan"] = None if begin is None and end is None else {"begin": begin, "end": end}
    return values
