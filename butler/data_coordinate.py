"""Data IDs (`DataCoordinate`) and dimension records: the values that identify a dataset or quantum."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .dimensions import DimensionElement, DimensionGroup, DimensionUniverse, FieldType, unknown_name_message
from .errors import DataIdError
from .timespan import Timespan

__all__ = ["DataCoordinate", "DataIdValue", "DimensionRecord"]

DataIdValue = int | str
"""The type of one data ID value (dimension keys are integers or strings)."""


def validate_key_value(element: DimensionElement, value: Any) -> DataIdValue:
    """Check that ``value`` has the type of ``element``'s key and return it as a plain int or str."""
    assert element.key is not None, "only dimensions have key values"
    if element.key.type is FieldType.INT:
        if isinstance(value, bool) or not hasattr(value, "__index__"):
            raise DataIdError(
                f"Data ID value for {element.name!r} must be an integer, got {type(value).__name__} {value!r}."
            )
        return int(value)
    if not isinstance(value, str):
        raise DataIdError(
            f"Data ID value for {element.name!r} must be a string, got {type(value).__name__} {value!r}."
        )
    if element.key.length is not None and len(value) > element.key.length:
        raise DataIdError(
            f"Data ID value for {element.name!r} is longer than {element.key.length} characters: {value!r}."
        )
    return str(value)


class DataCoordinate(Mapping[str, DataIdValue]):
    """An immutable, hashable data ID: values for the required (and optionally implied) dimensions of a group.

    Equality and hashing use the group and the required values only. Build one with
    `DataCoordinate.standardize`; fill implied values and records with ``Registry.expand_data_id``.
    """

    __slots__ = ("_dimensions", "_hash", "_records", "_values")

    def __init__(
        self,
        dimensions: DimensionGroup,
        values: tuple[DataIdValue, ...],
        records: Mapping[str, DimensionRecord] | None = None,
    ) -> None:
        # values: required values, optionally followed by implied values (group.data_id_keys order).
        self._dimensions = dimensions
        self._values = values
        self._records = records
        self._hash = hash((dimensions, values[: len(dimensions.required)]))

    # -- construction ---------------------------------------------------------

    @classmethod
    def standardize(
        cls,
        mapping: Mapping[str, Any] | None = None,
        *,
        universe: DimensionUniverse | None = None,
        dimensions: DimensionGroup | None = None,
        **kwargs: Any,
    ) -> DataCoordinate:
        """Validate a partial data ID (a mapping and/or keyword arguments) into a `DataCoordinate`.

        With ``dimensions`` given, keys for other known dimensions are dropped and every required
        dimension of the group must have a value; without it, the group is the keys' own closure.
        Raises `DataIdError` naming an unknown key, a value of the wrong type, or the missing keys.
        """
        values: dict[str, Any] = {}
        if isinstance(mapping, DataCoordinate):
            values.update(mapping.mapping)
            universe = universe or mapping.universe
        elif mapping is not None:
            values.update(mapping)
        values.update(kwargs)
        if dimensions is not None:
            universe = dimensions.universe
        if universe is None:
            universe = DimensionUniverse.default()
        for key in values:
            if key not in universe or not universe[key].is_dimension:
                raise DataIdError(unknown_name_message("data ID key", key, universe.dimension_names))
        if dimensions is None:
            dimensions = universe.group(values)
        missing = [name for name in dimensions.required if name not in values]
        if missing:
            raise DataIdError(
                f"Data ID {_format_mapping(values)} is missing required key(s) {', '.join(missing)} "
                f"for dimensions {dimensions}."
            )
        checked = [validate_key_value(universe[n], values[n]) for n in dimensions.required]
        if all(name in values for name in dimensions.implied):
            checked.extend(validate_key_value(universe[n], values[n]) for n in dimensions.implied)
        return cls(dimensions, tuple(checked))

    @classmethod
    def from_required_values(
        cls, dimensions: DimensionGroup, values: tuple[DataIdValue, ...]
    ) -> DataCoordinate:
        """Wrap already-validated required values (in ``dimensions.required`` order); no checks."""
        return cls(dimensions, values)

    @classmethod
    def from_full_values(cls, dimensions: DimensionGroup, values: tuple[DataIdValue, ...]) -> DataCoordinate:
        """Wrap already-validated values in ``dimensions.data_id_keys`` order; no checks."""
        return cls(dimensions, values)

    @classmethod
    def make_empty(cls, universe: DimensionUniverse) -> DataCoordinate:
        """The data ID with no dimensions."""
        return cls(universe.empty, ())

    # -- views ------------------------------------------------------------------

    @property
    def dimensions(self) -> DimensionGroup:
        """The dimensions this data ID identifies."""
        return self._dimensions

    @property
    def universe(self) -> DimensionUniverse:
        """The universe of the dimensions."""
        return self._dimensions.universe

    @property
    def has_full_values(self) -> bool:
        """Whether implied dimension values are present too."""
        return len(self._values) == len(self._dimensions.data_id_keys)

    @property
    def has_records(self) -> bool:
        """Whether dimension records are attached (see ``Registry.expand_data_id``)."""
        return self._records is not None

    @property
    def required_values(self) -> tuple[DataIdValue, ...]:
        """Values of the required dimensions, in ``dimensions.required`` order."""
        return self._values[: len(self._dimensions.required)]

    @property
    def full_values(self) -> tuple[DataIdValue, ...]:
        """Values of required then implied dimensions; raises if implied values are absent."""
        if not self.has_full_values:
            raise DataIdError(f"Data ID {self} has no implied values; expand it with the registry first.")
        return self._values

    @property
    def required(self) -> dict[str, DataIdValue]:
        """The required key-value pairs."""
        return dict(zip(self._dimensions.required, self._values, strict=False))

    @property
    def mapping(self) -> dict[str, DataIdValue]:
        """All key-value pairs present (required, plus implied when known)."""
        return dict(zip(self._dimensions.data_id_keys, self._values, strict=False))

    @property
    def records(self) -> Mapping[str, DimensionRecord]:
        """Records by element name; raises if the data ID was not expanded."""
        if self._records is None:
            raise DataIdError(f"Data ID {self} has no dimension records; expand it with the registry first.")
        return self._records

    def subset(self, dimensions: DimensionGroup) -> DataCoordinate:
        """The data ID restricted to a sub-group of its dimensions."""
        if dimensions == self._dimensions:
            return self
        mapping = self.mapping
        missing = [name for name in dimensions.required if name not in mapping]
        if missing:
            raise DataIdError(
                f"Cannot take {dimensions} from data ID {self}: no value for {', '.join(missing)}."
            )
        keys = (
            dimensions.data_id_keys
            if all(n in mapping for n in dimensions.data_id_keys)
            else dimensions.required
        )
        records = None
        if self._records is not None:
            records = {name: self._records[name] for name in dimensions.elements if name in self._records}
        return DataCoordinate(dimensions, tuple(mapping[k] for k in keys), records)

    # -- Mapping ----------------------------------------------------------------

    def __getitem__(self, key: str) -> DataIdValue:
        keys = self._dimensions.data_id_keys
        try:
            index = keys.index(key)
        except ValueError:
            raise KeyError(key) from None
        if index >= len(self._values):
            raise KeyError(f"{key!r} is implied and this data ID was not expanded")
        return self._values[index]

    def __iter__(self) -> Iterator[str]:
        return iter(self._dimensions.data_id_keys[: len(self._values)])

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DataCoordinate):
            return self._dimensions == other._dimensions and self.required_values == other.required_values
        return NotImplemented

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return _format_mapping(self.mapping)

    def to_simple(self) -> dict[str, DataIdValue]:
        """A plain dict of all values present, for JSON/YAML."""
        return self.mapping


class DimensionRecord:
    """An immutable row of a dimension element's table: keys, implied values, metadata, timespan, region."""

    __slots__ = ("_values", "element")

    def __init__(self, element: DimensionElement, values: Mapping[str, Any]) -> None:
        self.element = element
        self._values = dict(values)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(
                f"{self.element.name} records have no field {name!r}; fields: {', '.join(self._values)}"
            ) from None

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    @property
    def key_values(self) -> tuple[DataIdValue, ...]:
        """Values of the element's key columns (`DimensionElement.key_columns` order)."""
        keys = self.element.required_dimensions
        own = (self._values[self.element.key.name],) if self.element.key is not None else ()
        return tuple(self._values[k] for k in keys) + own

    @property
    def timespan(self) -> Timespan | None:
        """The record's timespan, if the element has one."""
        value = self._values.get("timespan")
        return value if isinstance(value, Timespan) else None

    def to_dict(self) -> dict[str, Any]:
        """The field values as a new dict."""
        return dict(self._values)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DimensionRecord):
            return NotImplemented
        return self.element.name == other.element.name and _comparable(self._values) == _comparable(
            other._values
        )

    def __hash__(self) -> int:
        return hash((self.element.name, self.key_values))

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self._values.items() if k != "region")
        return f"{self.element.name}({fields})"


def _comparable(values: Mapping[str, Any]) -> dict[str, Any]:
    """Values with regions replaced by their encoded bytes, so records compare by value."""
    return {k: (v.encode() if k == "region" and v is not None else v) for k, v in values.items()}


def _format_mapping(values: Mapping[str, Any]) -> str:
    return "{" + ", ".join(f"{k}: {v!r}" for k, v in values.items()) + "}"
