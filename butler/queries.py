"""Turning registry queries (dimensions, datasets, WHERE expressions) into SQL joins over the registry tables."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from .data_coordinate import validate_key_value
from .dimensions import DimensionElement, DimensionGroup, DimensionUniverse, FieldType, unknown_name_message
from .errors import DimensionNameError, ExpressionError
from .query_compiler import (
    ColumnKind,
    ScalarColumn,
    TimespanColumns,
    compile_expression,
    unknown_identifier_error,
)
from .query_expression import Node, identifier_nodes, parse_expression
from .schema import RegistryTables

__all__ = ["FieldReference", "QueryPlan", "Source", "classify_identifier"]

_KINDS = {
    FieldType.INT: ColumnKind.INT,
    FieldType.FLOAT: ColumnKind.FLOAT,
    FieldType.STRING: ColumnKind.STRING,
    FieldType.BOOL: ColumnKind.BOOL,
}


@dataclass(frozen=True, slots=True)
class FieldReference:
    """What an identifier of a WHERE expression refers to."""

    element: str
    """The element whose table holds the value (for a plain dimension, the dimension itself)."""
    column: str | None
    """The column in that table; None for the element's timespan as a whole."""
    kind: ColumnKind | None
    """Value kind of a scalar column; None for a timespan."""
    dimension: str | None = None
    """Set when the identifier is a dimension's key value (any table carrying it will do)."""


def classify_identifier(universe: DimensionUniverse, parts: tuple[str, ...], column: int) -> FieldReference:
    """Work out which element and column ``parts`` (``visit``, ``exposure.day_obs``, ...) refer to."""
    head = parts[0]
    if head not in universe:
        candidates = [*universe.dimension_names] + [
            f"{e.name}.{f}" for e in universe.elements for f in e.record_fields if f != "region"
        ]
        raise unknown_identifier_error(".".join(parts), candidates, column)
    element = universe[head]
    if len(parts) == 1:
        if not element.is_dimension:
            raise ExpressionError(f"{head!r} is a join element; name one of its fields (column {column}).")
        return _key_reference(universe, head)
    name = parts[1]
    if len(parts) == 3:
        if name == "timespan" and element.has_timespan and parts[2] in ("begin", "end"):
            return FieldReference(head, f"timespan_{parts[2]}", ColumnKind.TIME_NS)
        raise unknown_identifier_error(
            ".".join(parts), [f"{head}.timespan.begin", f"{head}.timespan.end"], column
        )
    if element.key is not None and name in (element.key.name, element.name):
        return _key_reference(universe, head)
    if name in element.required_dimensions or name in element.implies:
        return _key_reference(universe, name)
    for spec in element.metadata:
        if spec.name == name:
            return FieldReference(head, name, _KINDS[spec.type])
    if name == "timespan" and element.has_timespan:
        return FieldReference(head, None, None)
    if name == "region":
        raise ExpressionError(
            f"Regions cannot be used in WHERE expressions ({head}.region, column {column})."
        )
    raise unknown_identifier_error(
        ".".join(parts), [f"{head}.{f}" for f in element.record_fields if f != "region"], column
    )


def _key_reference(universe: DimensionUniverse, dimension: str) -> FieldReference:
    key = universe[dimension].key
    assert key is not None
    return FieldReference(dimension, dimension, _KINDS[key.type], dimension=dimension)


@dataclass
class Source:
    """A table or subquery taking part in a query, with the dimension columns it carries."""

    selectable: sa.FromClause
    """The table, alias or subquery."""
    dimensions: Mapping[str, sa.ColumnElement[Any]]
    """Dimension name -> column carrying its values."""
    element: str | None = None
    """The dimension element whose table this is, if any."""


@dataclass
class QueryPlan:
    """The joins, constraints and columns of one query, built in steps then turned into a SELECT.

    Callers add sources (e.g. dataset subqueries), the dimensions they need values for, and a WHERE
    expression; `from_clause` then joins the dimension tables required to supply all of them.
    """

    tables: RegistryTables
    dimensions: DimensionGroup
    """Every dimension that takes part (requested, from datasets, from the WHERE expression)."""
    needed: set[str] = field(default_factory=set)
    """Dimensions whose values must be available as columns."""
    needed_elements: set[str] = field(default_factory=set)
    """Elements whose own table must be joined (for metadata or timespans)."""
    sources: list[Source] = field(default_factory=list)
    expression: Node | None = None
    bind: Mapping[str, Any] = field(default_factory=dict)
    constraints: list[sa.ColumnElement[bool]] = field(default_factory=list)
    data_id: dict[str, Any] = field(default_factory=dict)
    """Dimension -> value the results must have."""
    _element_sources: dict[str, Source] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        tables: RegistryTables,
        dimensions: Iterable[str],
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        data_id: Mapping[str, Any] | None = None,
    ) -> QueryPlan:
        """Start a plan for ``dimensions`` plus whatever ``where`` and ``data_id`` mention."""
        universe = tables.universe
        expression = parse_expression(where) if where else None
        references = [
            classify_identifier(universe, node.parts, node.column) for node in identifier_nodes(expression)
        ]
        names = set(dimensions)
        data_id = dict(data_id or {})
        for key in data_id:
            if key not in universe or not universe[key].is_dimension:
                raise DimensionNameError(unknown_name_message("data ID key", key, universe.dimension_names))
            names.add(key)
        for ref in references:
            element = universe[ref.element]
            names.update([ref.element] if element.is_dimension else element.required_dimensions)
        plan = cls(tables, universe.group(names), expression=expression, bind=dict(bind or {}))
        plan.needed.update(data_id)
        for ref in references:
            if ref.dimension is not None:
                plan.needed.add(ref.dimension)
            else:
                plan.needed_elements.add(ref.element)
        plan.data_id = data_id
        return plan

    def add_source(self, source: Source) -> None:
        """Add a table or subquery (joined on the dimension columns it shares with the others)."""
        self.sources.append(source)

    def provided(self) -> dict[str, sa.ColumnElement[Any]]:
        """Dimension -> the first column carrying it, over all sources added so far."""
        columns: dict[str, sa.ColumnElement[Any]] = {}
        for source in self.sources:
            for name, column in source.dimensions.items():
                columns.setdefault(name, column)
        return columns

    def element_source(self, element: str) -> Source:
        """The source of ``element``'s own table, joining it if it is not joined yet."""
        source = self._element_sources.get(element)
        if source is None:
            source = self._table_source(self.tables.universe[element])
            self._element_sources[element] = source
            self.sources.append(source)
        return source

    def _table_source(self, element: DimensionElement) -> Source:
        table = self.tables.dimensions[element.name].alias(f"t_{element.name}")
        columns = {c: table.c[c] for c in element.key_columns + element.implies if c in self.dimensions}
        return Source(table, columns, element.name)

    # -- planning the joins --------------------------------------------------------------

    def _add_dimension_tables(self) -> None:
        universe = self.tables.universe
        for name in universe.sorted(self.needed_elements):
            self.element_source(name)
        for element in universe.elements:
            if element.always_join and set(element.required_dimensions) <= set(self.dimensions.names):
                self.element_source(element.name)
        self._add_spatial_joins()
        while (step := self._next_missing_table()) is not None:
            self.needed.add(step)
            self.element_source(step)

    def _next_missing_table(self) -> str | None:
        """The next dimension whose table must be joined, or None when the plan is complete.

        A needed required dimension not carried by any source needs its own table. An implied
        dimension in use (needed, or its table joined) needs the table of an element implying it,
        so its value is tied to the rest of the data ID rather than free.
        """
        universe = self.tables.universe
        provided = self.provided()
        in_use = self.needed | set(self._element_sources)
        for name in reversed(self.dimensions.names):
            if name in self.dimensions.implied and name in in_use:
                impliers = [e for e in self.dimensions.names if name in universe[e].implies]
                if not any(e in self._element_sources for e in impliers):
                    preferred = [e for e in impliers if e in in_use]
                    return preferred[-1] if preferred else impliers[-1]
            elif name in self.needed and name not in provided:
                return name
        return None

    def _add_spatial_joins(self) -> None:
        universe = self.tables.universe
        group = set(self.dimensions.names)
        for (a, b), table in self.tables.overlaps.items():
            a_side = [d for d in universe[a].key_columns if d in group and universe[d].has_region]
            b_side = [d for d in universe[b].key_columns if d in group and universe[d].has_region]
            if a_side and b_side:
                alias = table.alias(f"o_{a}_{b}")
                columns = {c.name: c for c in alias.c if c.name in group}
                self.sources.append(Source(alias, columns))
                self.needed.update(columns)

    def from_clause(self) -> sa.FromClause:
        """Join every source on shared dimension columns (a cross join where none are shared)."""
        self._add_dimension_tables()
        if not self.sources:
            raise ExpressionError("Query has nothing to select from.")
        joined = self.sources[0].selectable
        seen = dict(self.sources[0].dimensions)
        for source in self.sources[1:]:
            conditions = [column == seen[name] for name, column in source.dimensions.items() if name in seen]
            joined = joined.join(source.selectable, sa.and_(sa.true(), *conditions))
            for name, column in source.dimensions.items():
                seen.setdefault(name, column)
        return joined

    def where_clause(self) -> list[sa.ColumnElement[bool]]:
        """Constraints from the data ID, the WHERE expression and the caller (call after `from_clause`)."""
        provided = self.provided()
        conditions = list(self.constraints)
        universe = self.tables.universe
        for key, value in self.data_id.items():
            conditions.append(provided[key] == validate_key_value(universe[key], value))
        if self.expression is not None:
            conditions.append(compile_expression(self.expression, _PlanResolver(self), self.bind))
        return conditions

    def select(self, *columns: sa.ColumnElement[Any], distinct: bool = True) -> sa.Select[Any]:
        """A SELECT of ``columns`` over the planned joins with every constraint applied."""
        from_clause = self.from_clause()
        statement = sa.select(*columns).select_from(from_clause).where(*self.where_clause())
        return statement.distinct() if distinct else statement

    def select_dimensions(self, names: Sequence[str]) -> sa.Select[Any]:
        """A SELECT DISTINCT of the values of dimensions ``names`` (which must be in `needed`)."""
        from_clause = self.from_clause()
        provided = self.provided()
        columns = [provided[n].label(n) for n in names]
        return sa.select(*columns).select_from(from_clause).where(*self.where_clause()).distinct()


class _PlanResolver:
    """Maps identifiers of a WHERE expression to columns of a planned query."""

    def __init__(self, plan: QueryPlan) -> None:
        self._plan = plan

    def resolve(self, parts: tuple[str, ...], column: int) -> ScalarColumn | TimespanColumns:
        ref = classify_identifier(self._plan.tables.universe, parts, column)
        if ref.dimension is not None:
            assert ref.kind is not None
            return ScalarColumn(self._plan.provided()[ref.dimension], ref.kind)
        table = self._plan.element_source(ref.element).selectable
        if ref.column is None:
            return TimespanColumns(table.c.timespan_begin, table.c.timespan_end)
        assert ref.kind is not None
        return ScalarColumn(table.c[ref.column], ref.kind)


def ordered_case(column: sa.ColumnElement[Any], values: Sequence[Any]) -> sa.ColumnElement[int]:
    """An integer expression giving the position of ``column``'s value in ``values`` (search-path rank)."""
    return sa.case({value: rank for rank, value in enumerate(values)}, value=column, else_=len(values))
