"""Storing dimension records: validation into rows, bulk insert, idempotent sync, spatial overlaps, data ID expansion."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from . import spatial
from .data_coordinate import DataCoordinate, DimensionRecord, validate_key_value
from .database import Database, chunked
from .dimensions import DimensionElement, DimensionUniverse, FieldSpec, FieldType, unknown_name_message
from .errors import ConflictingDefinitionError, DataIdError, DataIdValueError
from .schema import RegistryTables
from .timespan import Timespan, datetime_to_ns

__all__ = ["DimensionRecordStorage", "parse_field_text"]

_LOG = logging.getLogger(__name__)


def parse_field_text(universe: DimensionUniverse, element: DimensionElement, name: str, text: str) -> Any:
    """Convert text (from CSV or a command line) to the Python value of field ``name`` of ``element``.

    An empty string is None; text for an unknown field is returned unchanged (validation names it later).
    """
    spec = _field_specs(universe, element).get(name)
    if spec is None or text == "":
        return None if text == "" else text
    try:
        if spec.type is FieldType.INT:
            return int(text)
        if spec.type is FieldType.FLOAT:
            return float(text)
        if spec.type is FieldType.BOOL:
            return text.strip().lower() in {"1", "true", "yes", "y"}
    except ValueError:
        raise DataIdError(f"{element.name} field {name!r} must be {spec.type.value}, got {text!r}.") from None
    return text


def _field_specs(universe: DimensionUniverse, element: DimensionElement) -> dict[str, FieldSpec]:
    """Field name -> spec for every field of ``element``'s records, including other dimensions' keys."""
    specs: dict[str, FieldSpec] = {m.name: m for m in element.metadata}
    for dimension in element.required_dimensions + element.implies:
        key = universe[dimension].key
        if key is not None:
            specs[dimension] = key
    if element.key is not None:
        specs[element.key.name] = element.key
        specs[element.name] = element.key
    return specs


class DimensionRecordStorage:
    """Reads and writes the records of every dimension element."""

    def __init__(self, db: Database, tables: RegistryTables) -> None:
        self._db = db
        self._tables = tables
        self.universe: DimensionUniverse = tables.universe

    # -- conversion ---------------------------------------------------------------

    def to_row(
        self, element: DimensionElement, record: Mapping[str, Any] | DimensionRecord
    ) -> dict[str, Any]:
        """Validate one record (mapping of field -> value) into a database row."""
        values = record.to_dict() if isinstance(record, DimensionRecord) else dict(record)
        if element.key is not None and element.name in values and element.key.name != element.name:
            values.setdefault(element.key.name, values.pop(element.name))
        allowed = set(element.record_fields)
        unknown = [k for k in values if k not in allowed]
        if unknown:
            raise DataIdError(
                unknown_name_message(f"field of {element.name} records", unknown[0], element.record_fields)
            )
        row: dict[str, Any] = {}
        for dim in element.required_dimensions:
            if values.get(dim) is None:
                raise DataIdError(f"{element.name} record {values} is missing required field {dim!r}.")
            row[dim] = validate_key_value(self.universe[dim], values[dim])
        if element.key is not None:
            if values.get(element.key.name) is None:
                raise DataIdError(
                    f"{element.name} record {values} is missing its key field {element.key.name!r}."
                )
            row[element.name] = validate_key_value(element, values[element.key.name])
        for dim in element.implies:
            value = values.get(dim)
            row[dim] = None if value is None else validate_key_value(self.universe[dim], value)
        for spec in element.metadata:
            row[spec.name] = _validate_metadata(element, spec, values.get(spec.name))
        if element.has_timespan:
            timespan = _timespan_from_value(element, values.get("timespan"))
            row["timespan_begin"] = timespan.begin_ns if timespan else None
            row["timespan_end"] = timespan.end_ns if timespan else None
        if element.has_region:
            try:
                row["region"] = spatial.encode_region(spatial.region_from_value(values.get("region")))
            except (ValueError, RuntimeError) as err:
                raise DataIdError(f"{element.name} record {_key_text(element, row)}: {err}") from None
        return row

    def from_row(self, element: DimensionElement, row: Mapping[Any, Any]) -> DimensionRecord:
        """Turn a database row back into a `DimensionRecord`."""
        values: dict[str, Any] = {d: row[d] for d in element.required_dimensions}
        if element.key is not None:
            values[element.key.name] = row[element.name]
        for dim in element.implies:
            values[dim] = row[dim]
        for spec in element.metadata:
            values[spec.name] = row[spec.name]
        if element.has_timespan:
            begin, end = row["timespan_begin"], row["timespan_end"]
            values["timespan"] = None if begin is None and end is None else Timespan(begin, end)
        if element.has_region:
            values["region"] = spatial.decode_region(row["region"])
        return DimensionRecord(element, values)

    # -- writing --------------------------------------------------------------------

    def insert(
        self,
        element_name: str,
        records: Iterable[Mapping[str, Any] | DimensionRecord],
        skip_existing: bool = False,
    ) -> int:
        """Insert records in one transaction; return how many were new.

        Existing keys raise `ConflictingDefinitionError` unless ``skip_existing``; records referring to
        dimension values with no record raise `DataIdValueError`. Nothing is written on error.
        """
        element = self.universe[element_name]
        rows = [self.to_row(element, r) for r in records]
        _check_unique_keys(element, rows)
        with self._db.transaction() as conn:
            existing = self._existing_rows(conn, element, rows)
            if existing:
                if not skip_existing:
                    sample = next(iter(existing))
                    raise ConflictingDefinitionError(
                        f"{len(existing)} {element.name} record(s) already exist, e.g. "
                        f"{dict(zip(element.key_columns, sample, strict=True))}; use sync to insert idempotently."
                    )
                rows = [r for r in rows if _key(element, r) not in existing]
            self._write_rows(conn, element, rows)
        return len(rows)

    def _write_rows(
        self, conn: sa.Connection, element: DimensionElement, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        self._check_references(conn, element, rows)
        table = self._tables.dimensions[element.name]
        for chunk in chunked(list(rows)):
            conn.execute(sa.insert(table), chunk)
        self._materialize_overlaps(conn, element, rows)

    def sync(self, element_name: str, records: Iterable[Mapping[str, Any] | DimensionRecord]) -> list[bool]:
        """Insert records that are absent; identical existing ones are fine.

        Returns, per record, whether it was inserted. A record whose key exists with other values
        raises `ConflictingDefinitionError` naming the differing fields; nothing is written then.
        """
        element = self.universe[element_name]
        rows = [self.to_row(element, r) for r in records]
        _check_unique_keys(element, rows)
        with self._db.transaction() as conn:
            existing = self._existing_rows(conn, element, rows)
            inserted = []
            new_rows = []
            for row in rows:
                old = existing.get(_key(element, row))
                if old is None:
                    inserted.append(True)
                    new_rows.append(row)
                    continue
                diffs = [name for name, value in row.items() if old[name] != value]
                if diffs:
                    details = (
                        ", ".join(
                            f"{name}: {old[name]!r} in registry, {row[name]!r} given"
                            for name in diffs
                            if name != "region"
                        )
                        or "region differs"
                    )
                    raise ConflictingDefinitionError(
                        f"{element.name} record {_key_text(element, row)} already exists with different values "
                        f"({details})."
                    )
                inserted.append(False)
            if new_rows:
                self._write_rows(conn, element, new_rows)
        return inserted

    def missing_keys(
        self, conn: sa.Connection, element_name: str, keys: set[tuple[Any, ...]]
    ) -> set[tuple[Any, ...]]:
        """Which of ``keys`` (values of the element's key columns) have no record."""
        element = self.universe[element_name]
        table = self._tables.dimensions[element.name]
        columns = [table.c[c] for c in element.key_columns]
        found: set[tuple[Any, ...]] = set()
        for chunk in chunked(sorted(keys, key=str), 500):
            condition = (
                sa.tuple_(*columns).in_(chunk) if len(columns) > 1 else columns[0].in_([k[0] for k in chunk])
            )
            found.update(tuple(row) for row in conn.execute(sa.select(*columns).where(condition)))
        return keys - found

    def _existing_rows(
        self, conn: sa.Connection, element: DimensionElement, rows: Sequence[Mapping[str, Any]]
    ) -> dict[tuple[Any, ...], dict[str, Any]]:
        table = self._tables.dimensions[element.name]
        keys = element.key_columns
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        key_values = [_key(element, r) for r in rows]
        for chunk in chunked(key_values, 500):
            condition = (
                sa.tuple_(*(table.c[k] for k in keys)).in_(chunk)
                if len(keys) > 1
                else (table.c[keys[0]].in_([k[0] for k in chunk]))
            )
            for result in conn.execute(sa.select(table).where(condition)).mappings():
                found[tuple(result[k] for k in keys)] = dict(result)
        return found

    def _check_references(
        self, conn: sa.Connection, element: DimensionElement, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        """Raise `DataIdValueError` naming the first referenced dimension value that has no record."""
        for dim in element.requires + element.implies:
            target = self.universe[dim]
            wanted = {tuple(r[c] for c in target.key_columns) for r in rows}
            wanted = {w for w in wanted if None not in w}
            if not wanted:
                continue
            present = set(
                self._existing_rows(
                    conn, target, [dict(zip(target.key_columns, w, strict=True)) for w in wanted]
                )
            )
            missing = sorted(wanted - present, key=str)
            if missing:
                example = dict(zip(target.key_columns, missing[0], strict=True))
                raise DataIdValueError(
                    f"{len(missing)} {element.name} record(s) refer to {dim} values with no {dim} record, "
                    f"e.g. {example}; insert the {dim} records first."
                )

    def _materialize_overlaps(
        self, conn: sa.Connection, element: DimensionElement, rows: Sequence[Mapping[str, Any]]
    ) -> None:
        for (a, b), table in self._tables.overlaps.items():
            if element.name not in (a, b) or not rows:
                continue
            other = self.universe[b if element.name == a else a]
            mine = [(_key(element, r), spatial.decode_region(r["region"])) for r in rows]
            other_table = self._tables.dimensions[other.name]
            theirs = [
                (tuple(r[:-1]), spatial.decode_region(r[-1]))
                for r in conn.execute(
                    sa.select(*(other_table.c[c] for c in other.key_columns), other_table.c.region).where(
                        other_table.c.region.is_not(None)
                    )
                )
            ]
            pairs = spatial.find_overlaps(mine, theirs)
            a_element, b_element = self.universe[a], self.universe[b]
            overlap_rows = []
            for mine_key, their_key in pairs:
                a_key, b_key = (mine_key, their_key) if element.name == a else (their_key, mine_key)
                overlap_rows.append(
                    dict(zip(a_element.key_columns, a_key, strict=True))
                    | dict(zip(b_element.key_columns, b_key, strict=True))
                )
            for chunk in chunked(overlap_rows):
                conn.execute(sa.insert(table), chunk)
            _LOG.debug(
                "Materialized %d %s-%s overlaps for %d new records.", len(overlap_rows), a, b, len(rows)
            )

    # -- reading --------------------------------------------------------------------

    def fetch(
        self, element_name: str, keys: Iterable[Mapping[str, Any]] | None = None
    ) -> list[DimensionRecord]:
        """Records of an element: all of them, or those with the given key values."""
        element = self.universe[element_name]
        table = self._tables.dimensions[element.name]
        with self._db.transaction() as conn:
            if keys is None:
                rows: Iterable[Mapping[Any, Any]] = conn.execute(sa.select(table)).mappings().all()
            else:
                rows = self._existing_rows(conn, element, list(keys)).values()
            return [self.from_row(element, r) for r in rows]

    def expand(self, data_id: DataCoordinate) -> DataCoordinate:
        """Fill a data ID's implied values and attach the record of every element of its dimensions.

        Raises `DataIdValueError` naming the first value with no record.
        """
        group = data_id.dimensions
        values: dict[str, Any] = dict(data_id.required)
        records: dict[str, DimensionRecord] = {}
        pending = list(group.elements)
        with self._db.transaction() as conn:
            while pending:
                ready = [e for e in pending if all(c in values for c in self.universe[e].key_columns)]
                if not ready:
                    raise DataIdError(f"Cannot expand data ID {data_id}: no way to find {pending}.")
                for name in ready:
                    pending.remove(name)
                    element = self.universe[name]
                    key = {c: values[c] for c in element.key_columns}
                    if any(value is None for value in key.values()):
                        continue  # an implied value the record left empty (e.g. no day_obs)
                    found = self._existing_rows(conn, element, [key])
                    if not found:
                        if not element.is_dimension:
                            continue  # join elements are optional (e.g. no region for this visit+detector)
                        raise DataIdValueError(f"No {name} record for data ID value(s) {key}.")
                    record = self.from_row(element, next(iter(found.values())))
                    records[name] = record
                    for implied in element.implies:
                        values[implied] = record[implied]
        full = tuple(values[k] for k in group.data_id_keys)
        return DataCoordinate(group, full, records)


def _key(element: DimensionElement, row: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(row[c] for c in element.key_columns)


def _key_text(element: DimensionElement, row: Mapping[str, Any]) -> str:
    return str(dict(zip(element.key_columns, _key(element, row), strict=True)))


def _check_unique_keys(element: DimensionElement, rows: Sequence[Mapping[str, Any]]) -> None:
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        key = _key(element, row)
        if key in seen:
            raise ConflictingDefinitionError(
                f"{element.name} record {_key_text(element, row)} is given twice."
            )
        seen.add(key)


def _validate_metadata(element: DimensionElement, spec: FieldSpec, value: Any) -> Any:
    if value is None:
        return None
    python_type = spec.type.python_type
    ok = isinstance(value, python_type) and not (python_type is not bool and isinstance(value, bool))
    if spec.type is FieldType.FLOAT and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if spec.type is FieldType.INT and hasattr(value, "__index__") and not isinstance(value, bool):
        value, ok = int(value), True
    if not ok:
        raise DataIdError(
            f"{element.name} field {spec.name!r} must be {spec.type.value}, got {type(value).__name__} {value!r}."
        )
    if spec.type is FieldType.STRING and spec.length is not None and len(value) > spec.length:
        raise DataIdError(
            f"{element.name} field {spec.name!r} is longer than {spec.length} characters: {value!r}."
        )
    return value


def _timespan_from_value(element: DimensionElement, value: Any) -> Timespan | None:
    if value is None or isinstance(value, Timespan):
        return value
    try:
        if isinstance(value, Mapping):
            begin, end = value.get("begin"), value.get("end")
        else:
            begin, end = value
        return Timespan(
            None if begin is None else datetime_to_ns(begin), None if end is None else datetime_to_ns(end)
        )
    except (TypeError, ValueError) as err:
        raise DataIdError(
            f"{element.name} field 'timespan' must be a Timespan, {{begin: ISO time, end: ISO time}} or "
            f"[begin, end]; got {value!r} ({err})."
        ) from None
