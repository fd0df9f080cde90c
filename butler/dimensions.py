"""The dimension universe: the elements that identify data (instrument, exposure, patch, ...) and their relations."""

from __future__ import annotations

import dataclasses
import difflib
import enum
import functools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import ButlerError, DimensionNameError
from .yaml_io import safe_load

__all__ = [
    "DimensionElement",
    "DimensionGroup",
    "DimensionUniverse",
    "FieldSpec",
    "FieldType",
]


class FieldType(enum.Enum):
    """Type of a dimension key or metadata field."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"

    @property
    def python_type(self) -> type:
        """The Python type values of this field have."""
        return {FieldType.INT: int, FieldType.FLOAT: float, FieldType.STRING: str, FieldType.BOOL: bool}[self]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A key or metadata column of a dimension element."""

    name: str
    """Column name."""
    type: FieldType
    """Value type."""
    length: int | None = None
    """Maximum length for strings."""
    doc: str = ""
    """What the field means, with its unit."""


@dataclass(frozen=True, slots=True)
class DimensionElement:
    """A dimension (with a key of its own) or a join element (identified by other dimensions only)."""

    name: str
    """Unique name, also the name of the data ID key and of its key column in other tables."""
    doc: str
    """What the element represents."""
    requires: tuple[str, ...]
    """Dimensions directly required to identify this element (their requirements are implicit)."""
    implies: tuple[str, ...]
    """Dimensions whose values this element's record determines."""
    key: FieldSpec | None
    """The element's own key field; None for join elements."""
    metadata: tuple[FieldSpec, ...]
    """Further record fields."""
    has_timespan: bool
    """Whether records have a timespan."""
    has_region: bool
    """Whether records have a sky region."""
    always_join: bool
    """Whether queries join this element whenever all its required dimensions are present."""
    required_dimensions: tuple[str, ...] = field(default=())
    """All dimensions required to identify this element, excluding itself, in universe order."""

    @property
    def is_dimension(self) -> bool:
        """Whether this element is a dimension (has a key of its own)."""
        return self.key is not None

    @property
    def key_columns(self) -> tuple[str, ...]:
        """Columns of the element's primary key: required dimensions, then itself if a dimension."""
        return self.required_dimensions + ((self.name,) if self.is_dimension else ())

    @property
    def record_fields(self) -> tuple[str, ...]:
        """Names of the fields a record of this element has."""
        own_key = (self.key.name,) if self.key is not None else ()
        extra = (("timespan",) if self.has_timespan else ()) + (("region",) if self.has_region else ())
        return (
            self.required_dimensions + own_key + self.implies + tuple(m.name for m in self.metadata) + extra
        )

    def __str__(self) -> str:
        return self.name


class DimensionUniverse:
    """The complete, versioned set of dimension elements a repository uses.

    Load the packaged universe with `DimensionUniverse.default()`.
    """

    def __init__(
        self,
        name: str,
        version: int,
        elements: Iterable[DimensionElement],
        spatial_joins: Iterable[tuple[str, str]] = (),
    ) -> None:
        self.name = name
        self.version = version
        self._elements: dict[str, DimensionElement] = {}
        for element in elements:
            self._elements[element.name] = self._with_required_closure(element)
        self.spatial_joins: tuple[tuple[str, str], ...] = tuple(spatial_joins)
        for pair in self.spatial_joins:
            for name in pair:
                if name not in self._elements or not self._elements[name].has_region:
                    raise ButlerError(
                        f"Dimension universe: spatial join {list(pair)} names {name!r}, which is not an element "
                        "with a region."
                    )
        self._order = {name: index for index, name in enumerate(self._elements)}
        self._groups: dict[frozenset[str], DimensionGroup] = {}

    def _with_required_closure(self, element: DimensionElement) -> DimensionElement:
        closure: set[str] = set()
        for name in element.requires + element.implies:
            if name not in self._elements:
                raise ButlerError(
                    f"Dimension universe: element {element.name!r} refers to {name!r}, "
                    "which is not defined before it."
                )
        for name in element.requires:
            closure.add(name)
            closure.update(self._elements[name].required_dimensions)
        ordered = tuple(n for n in self._elements if n in closure)
        return dataclasses.replace(element, required_dimensions=ordered)

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str = "<config>") -> DimensionUniverse:
        """Build a universe from a parsed YAML mapping; errors name ``source`` and the key."""
        try:
            elements = [_element_from_config(name, spec or {}) for name, spec in config["elements"].items()]
            joins = [(a, b) for a, b in config.get("spatial_joins", [])]
            return cls(str(config["name"]), int(config["version"]), elements, joins)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ButlerError(f"Invalid dimension universe in {source}: {err!r}") from err

    @classmethod
    def from_file(cls, path: str | Path) -> DimensionUniverse:
        """Load a universe from a YAML file."""
        with open(path) as stream:
            return cls.from_config(safe_load(stream), str(path))

    @staticmethod
    @functools.cache
    def default() -> DimensionUniverse:
        """The universe shipped with quanta."""
        text = resources.files("butler").joinpath("data/dimensions.yaml").read_text()
        return DimensionUniverse.from_config(safe_load(text), "butler/data/dimensions.yaml")

    # -- lookup -----------------------------------------------------------------

    def __getitem__(self, name: str) -> DimensionElement:
        try:
            return self._elements[name]
        except KeyError:
            raise DimensionNameError(
                unknown_name_message("dimension element", name, self._elements)
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._elements

    @property
    def elements(self) -> tuple[DimensionElement, ...]:
        """All elements in universe (dependency) order."""
        return tuple(self._elements.values())

    @property
    def dimensions(self) -> tuple[DimensionElement, ...]:
        """Elements that are dimensions (have their own key), in universe order."""
        return tuple(e for e in self._elements.values() if e.is_dimension)

    @property
    def dimension_names(self) -> tuple[str, ...]:
        """Names of all dimensions, in universe order."""
        return tuple(e.name for e in self.dimensions)

    def sorted(self, names: Iterable[str]) -> tuple[str, ...]:
        """Sort element names into universe order (unknown names raise `DimensionNameError`)."""
        names = set(names)
        for name in names:
            if name not in self._elements:
                self[name]  # raises with a suggestion
        return tuple(sorted(names, key=self._order.__getitem__))

    def group(self, names: Iterable[str]) -> DimensionGroup:
        """The `DimensionGroup` of the given dimensions plus everything they require or imply.

        A single name may be given as a plain string.
        """
        key = frozenset([names] if isinstance(names, str) else names)
        group = self._groups.get(key)
        if group is None:
            group = DimensionGroup(self, key)
            self._groups[key] = group
        return group

    @property
    def empty(self) -> DimensionGroup:
        """The group with no dimensions."""
        return self.group(())

    def is_compatible_with(self, name: str, version: int) -> bool:
        """Whether a repository made with universe ``name``/``version`` can be used with this one."""
        return name == self.name and version == self.version

    def __repr__(self) -> str:
        return f"DimensionUniverse({self.name!r}, version={self.version})"


class DimensionGroup:
    """An immutable set of dimensions closed under requirement and implication.

    ``required`` dimensions identify a data ID; ``implied`` ones are determined by them.
    Build with `DimensionUniverse.group`.
    """

    __slots__ = ("_hash", "elements", "implied", "names", "required", "universe")

    def __init__(self, universe: DimensionUniverse, names: frozenset[str]) -> None:
        closure: set[str] = set()
        implied: set[str] = set()
        pending = list(names)
        while pending:
            name = pending.pop()
            if name in closure:
                continue
            element = universe[name]
            if not element.is_dimension:
                raise DimensionNameError(
                    f"{name!r} is a join element, not a dimension; use its dimensions "
                    f"{list(element.required_dimensions)} instead."
                )
            closure.add(name)
            pending.extend(element.required_dimensions)
            pending.extend(element.implies)
            implied.update(element.implies)
        self.universe = universe
        self.names: tuple[str, ...] = universe.sorted(closure)
        self.implied: tuple[str, ...] = tuple(n for n in self.names if n in implied)
        self.required: tuple[str, ...] = tuple(n for n in self.names if n not in implied)
        self.elements: tuple[str, ...] = tuple(
            e.name
            for e in universe.elements
            if e.name in closure or (not e.is_dimension and set(e.required_dimensions) <= closure)
        )
        self._hash = hash(self.names)

    @property
    def data_id_keys(self) -> tuple[str, ...]:
        """Required then implied dimension names: the order of a full data ID's values."""
        return self.required + self.implied

    def __contains__(self, name: object) -> bool:
        return name in self.names

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def issubset(self, other: DimensionGroup) -> bool:
        """Whether every dimension of this group is in ``other``."""
        return set(self.names) <= set(other.names)

    def union(self, *others: DimensionGroup | Iterable[str]) -> DimensionGroup:
        """The smallest group containing this one and ``others``."""
        names = set(self.names)
        for other in others:
            names.update(other.names if isinstance(other, DimensionGroup) else other)
        return self.universe.group(names)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DimensionGroup) and self.names == other.names

    def __hash__(self) -> int:
        return self._hash

    def __repr__(self) -> str:
        return "{" + ", ".join(self.names) + "}"


def unknown_name_message(kind: str, name: str, candidates: Iterable[str]) -> str:
    """A "no such X" message with the closest candidates as suggestions."""
    candidates = list(candidates)
    close = difflib.get_close_matches(name, candidates, n=3)
    hint = (
        f"; did you mean {' or '.join(repr(c) for c in close)}?"
        if close
        else f"; known: {', '.join(candidates)}."
    )
    return f"Unknown {kind} {name!r}{hint}"


def _field_from_config(spec: Mapping[str, Any]) -> FieldSpec:
    return FieldSpec(
        name=str(spec["name"]),
        type=FieldType(spec["type"]),
        length=spec.get("length"),
        doc=str(spec.get("doc", "")),
    )


def _element_from_config(name: str, spec: Mapping[str, Any]) -> DimensionElement:
    allowed = {"doc", "key", "requires", "implies", "metadata", "timespan", "region", "always_join"}
    unknown = set(spec) - allowed
    if unknown:
        raise ValueError(
            f"element {name!r} has unknown keys {sorted(unknown)}; expected some of {sorted(allowed)}"
        )
    return DimensionElement(
        name=name,
        doc=str(spec.get("doc", "")),
        requires=tuple(spec.get("requires", ())),
        implies=tuple(spec.get("implies", ())),
        key=_field_from_config(spec["key"]) if "key" in spec else None,
        metadata=tuple(_field_from_config(m) for m in spec.get("metadata", ())),
        has_timespan=bool(spec.get("timespan", False)),
        has_region=bool(spec.get("region", False)),
        always_join=bool(spec.get("always_join", False)),
    )
