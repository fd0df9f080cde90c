"""Query results out: aligned tables, JSON and CSV; dimension records and datasets as rows.

Pure functions; the command modules read the command line and print. `record_row` and
`record_columns` give the CSV that ``insert-dimension-records`` reads back (see `record_files`).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..data_coordinate import DimensionRecord
from ..datasets import DatasetRef
from ..dimensions import DimensionElement

__all__ = [
    "OUTPUT_FORMATS",
    "TIMESPAN_COLUMNS",
    "Row",
    "cell_text",
    "dataset_row",
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
