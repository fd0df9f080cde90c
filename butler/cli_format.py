"""The text formats of the ``butler`` command: record files in (YAML, CSV), query results out (table, JSON, CSV).

Pure functions; ``cli.py`` reads the command line and prints. The CSV written for dimension records
is the CSV read back for them, so records can be copied between repositories.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from .data_coordinate import DimensionRecord
from .datasets import DatasetRef
from .dimension_records import parse_field_text
from .dimensions import DimensionElement, DimensionUniverse, unknown_name_message
from .errors import ButlerError

__all__ = [
    "OUTPUT_FORMATS",
    "TIMESPAN_COLUMNS",
    "RecordFileError",
    "cell_text",
    "dataset_row",
    "read_record_file",
    "record_columns",
    "record_row",
    "render",
    "render_table",
    "sort_key",
]

OUTPUT_FORMATS = ("table", "json", "csv")
"""Values of every query command's ``--format`` option."""

TIMESPAN_COLUMNS = ("timespan_begin", "timespan_end")
"""Record-file and output columns holding the bounds of a record's timespan (ISO-8601 times)."""

Row = Mapping[str, Any]
"""One result: column name -> value (int, float, str, bool, None, or a list of those)."""


class RecordFileError(ButlerError):
    """A dimension-record file cannot be read or used; the message names the file (and record)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


# -- query results out ----------------------------------------------------------------------------


def render(rows: Sequence[Row], columns: Sequence[str], output_format: str) -> str:
    """Render ``rows`` in ``output_format`` (one of `OUTPUT_FORMATS`), without a trailing newline.

    Parameters
    ----------
    rows
        The results, already in display order.
    columns
        The columns to show, in order; a row lacking one shows it empty (JSON leaves the key out).
    output_format
        ``table`` (aligned, with a header and a separator line), ``json`` (a list of objects)
        or ``csv`` (a header row, then one row per result).
    """
    if output_format == "json":
        objects = [{column: row[column] for column in columns if column in row} for row in rows]
        return json.dumps(objects, indent=2, default=str)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([cell_text(row.get(column)) for column in columns] for row in rows)
        return buffer.getvalue().rstrip("\n")
    if output_format == "table":
        return render_table(rows, columns)
    raise ValueError(f"Unknown output format {output_format!r}; expected one of {', '.join(OUTPUT_FORMATS)}.")


def render_table(rows: Sequence[Row], columns: Sequence[str]) -> str:
    """Aligned columns under a header and a dashed separator; numeric columns are right-aligned."""
    cells = [[cell_text(row.get(column)) for column in columns] for row in rows]
    widths = [max([len(column), *(len(line[i]) for line in cells)]) for i, column in enumerate(columns)]
    numeric = [_is_numeric_column(rows, column) for column in columns]

    def line(values: Sequence[str]) -> str:
        parts = [
            value.rjust(width) if right else value.ljust(width)
            for value, width, right in zip(values, widths, numeric, strict=True)
        ]
        return " ".join(parts).rstrip()

    separator = " ".join("-" * width for width in widths)
    return "\n".join([line(columns), separator, *(line(values) for values in cells)])


def cell_text(value: Any) -> str:
    """The text of one value in a table or CSV cell: empty for None, lists joined with ``", "``."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(item) for item in value)
    return str(value)


def _is_numeric_column(rows: Iterable[Row], column: str) -> bool:
    values = [row.get(column) for row in rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)


def sort_key(values: Iterable[Any]) -> tuple[tuple[bool, Any], ...]:
    """A key sorting rows by their values in order, with None after every other value."""
    return tuple((value is None, value) for value in values)


def record_columns(element: DimensionElement, *, with_region: bool) -> list[str]:
    """Columns of `record_row`: the record's fields, timespans as begin/end, the region if asked.

    These are also the columns ``butler insert-dimension-records`` reads from CSV, so a CSV export
    can be inserted into another repository.
    """
    columns: list[str] = []
    for field in element.record_fields:
        if field == "timespan":
            columns.extend(TIMESPAN_COLUMNS)
        elif field != "region" or with_region:
            columns.append(field)
    return columns


def record_row(record: DimensionRecord) -> dict[str, Any]:
    """A dimension record as a row: timespan bounds as ISO-8601 UTC text, the region as hex-encoded bytes."""
    row: dict[str, Any] = {}
    for field, value in record.to_dict().items():
        if field == "timespan":
            begin = value.begin if value is not None else None
            end = value.end if value is not None else None
            row["timespan_begin"] = begin.isoformat() if begin is not None else None
            row["timespan_end"] = end.isoformat() if end is not None else None
        elif field == "region":
            row["region"] = bytes(value.encode()).hex() if value is not None else None
        else:
            row[field] = value
    return row


def dataset_row(ref: DatasetRef) -> dict[str, Any]:
    """A dataset as a row: ``type``, ``run``, ``id``, then one column per data ID key."""
    return {"type": ref.dataset_type.name, "run": ref.run, "id": str(ref.id), **ref.data_id.mapping}


# -- dimension records in --------------------------------------------------------------------------


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
