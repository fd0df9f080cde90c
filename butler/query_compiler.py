"""Compiler from WHERE-expression syntax trees to SQLAlchemy Core conditions over registry columns."""

from __future__ import annotations

import difflib
import enum
import numbers
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy
from sqlalchemy import ColumnElement

from butler.errors import ExpressionError, UnknownIdentifierError
from butler.query_expression import (
    BinaryOp,
    BindParameter,
    BooleanLiteral,
    Comparison,
    Identifier,
    InList,
    LogicalOp,
    Node,
    Not,
    NumericLiteral,
    Overlaps,
    RangeLiteral,
    StringLiteral,
    TimeLiteral,
    TimespanLiteral,
    UnaryOp,
)
from butler.timespan import Timespan, datetime_to_ns

__all__ = [
    "ColumnKind",
    "IdentifierResolver",
    "ScalarColumn",
    "TimespanColumns",
    "compile_expression",
    "unknown_identifier_error",
]

_MAX_EXPANDED_RANGE = 1000
"""Ranges with at most this many values become an ``IN`` list; longer ones ``BETWEEN`` plus a stride test."""


class ColumnKind(enum.Enum):
    """What a scalar column holds, which decides what it may be compared with."""

    INT = "int"
    FLOAT = "float"
    STRING = "string"
    BOOL = "bool"
    TIME_NS = "time_ns"
    """Integer nanoseconds since the Unix epoch (UTC); compared with time literals and datetimes."""


@dataclass(frozen=True, slots=True)
class ScalarColumn:
    """A resolved identifier holding one value per row."""

    column: ColumnElement[Any]
    """The SQL column (or expression) to use."""

    kind: ColumnKind
    """What the column holds; ``BOOL`` columns must have a SQLAlchemy ``Boolean`` type."""


@dataclass(frozen=True, slots=True)
class TimespanColumns:
    """A resolved identifier holding a half-open interval ``[begin, end)`` per row."""

    begin: ColumnElement[Any]
    """Inclusive start, BigInteger nanoseconds since the epoch; NULL means unbounded (-infinity)."""

    end: ColumnElement[Any]
    """Exclusive end, BigInteger nanoseconds since the epoch; NULL means unbounded (+infinity)."""


class IdentifierResolver(Protocol):
    """Supplies the columns for identifiers; implemented by the registry's query builder."""

    def resolve(self, parts: tuple[str, ...], column: int) -> ScalarColumn | TimespanColumns:
        """Return the columns for a dotted identifier.

        Parameters
        ----------
        parts
            The identifier's parts, e.g. ``("exposure", "day_obs")``.
        column
            Position of the identifier in the expression, for error messages.

        Raises
        ------
        UnknownIdentifierError
            If the identifier is unknown (see `unknown_identifier_error`).
        """
        ...


def unknown_identifier_error(name: str, candidates: Iterable[str], column: int) -> UnknownIdentifierError:
    """Build the error for an unknown identifier, suggesting close matches among ``candidates``."""
    message = f"Unknown identifier '{name}' in WHERE expression at column {column}"
    matches = difflib.get_close_matches(name, list(candidates), n=3)
    if matches:
        return UnknownIdentifierError(f"{message}; did you mean {' or '.join(repr(m) for m in matches)}?")
    return UnknownIdentifierError(f"{message}.")


# ---------------------------------------------------------------------------------------------------------
# Typed intermediate values.
# ---------------------------------------------------------------------------------------------------------

_NOUNS = {
    ColumnKind.INT: "an integer",
    ColumnKind.FLOAT: "a floating-point number",
    ColumnKind.STRING: "a string",
    ColumnKind.BOOL: "a boolean",
    ColumnKind.TIME_NS: "a time",
}
_SQL_TYPES: dict[ColumnKind, Callable[[], sqlalchemy.types.TypeEngine[Any]]] = {
    ColumnKind.INT: sqlalchemy.BigInteger,
    ColumnKind.FLOAT: sqlalchemy.Float,
    ColumnKind.STRING: sqlalchemy.String,
    ColumnKind.BOOL: sqlalchemy.Boolean,
    ColumnKind.TIME_NS: sqlalchemy.BigInteger,
}
_NUMERIC = frozenset({ColumnKind.INT, ColumnKind.FLOAT})
_COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITHMETIC: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


@dataclass(frozen=True, slots=True)
class _Scalar:
    """One value per row: a column, an expression, a constant or a condition."""

    expr: ColumnElement[Any]
    kind: ColumnKind
    column: int
    description: str
    """Noun phrase for messages, e.g. "the string 'a'" or "identifier 'visit', which is an integer"."""
    identifier: str | None = None
    is_condition: bool = False


@dataclass(frozen=True, slots=True)
class _Constant(_Scalar):
    """A literal or bind value; ``value`` is the Python value bound (nanoseconds for times)."""

    value: Any = None


@dataclass(frozen=True, slots=True)
class _Bound:
    """One end of an interval, or a point; ``expr`` None means unbounded."""

    expr: ColumnElement[Any] | None
    null_is_unbounded: bool = False


@dataclass(frozen=True, slots=True)
class _Interval:
    """A half-open interval from timespan columns, a time-range literal or a Timespan bind value."""

    begin: _Bound
    end: _Bound
    column: int
    description: str
    """Noun phrase for messages, e.g. "identifier 'exposure.timespan', which is a timespan"."""
    identifier: str | None = None

    def only_with_overlaps(self) -> ExpressionError:
        """The error for using this interval anywhere but in OVERLAPS."""
        if self.identifier is not None:
            subject = f"Identifier '{self.identifier}' is a timespan; it"
        else:
            subject = self.description[0].upper() + self.description[1:]
        return ExpressionError(f"{subject} can only be used with OVERLAPS (column {self.column})")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _constant(kind: ColumnKind, value: Any, column: int, description: str) -> _Constant:
    if kind is ColumnKind.BOOL:
        expr: ColumnElement[Any] = sqlalchemy.true() if value else sqlalchemy.false()
        return _Constant(expr, kind, column, description, is_condition=True, value=bool(value))
    return _Constant(sqlalchemy.literal(value, _SQL_TYPES[kind]()), kind, column, description, value=value)


def _classify(value: Any) -> tuple[ColumnKind, Any] | None:
    """Return the kind and the value to bind for a Python bind value, or None if unsupported."""
    if isinstance(value, bool):
        return ColumnKind.BOOL, value
    if isinstance(value, numbers.Integral):
        return ColumnKind.INT, int(value)
    if isinstance(value, numbers.Real):
        return ColumnKind.FLOAT, float(value)
    if isinstance(value, str):
        return ColumnKind.STRING, value
    if isinstance(value, datetime):
        return ColumnKind.TIME_NS, datetime_to_ns(value)
    return None


def _is_collection(value: Any) -> bool:
    return isinstance(value, Sequence | Set) and not isinstance(value, str | bytes)


def _precedes(lo: _Bound, hi: _Bound, *, strict: bool) -> ColumnElement[bool]:
    """``lo < hi`` (or ``<=``), true when either side is unbounded."""
    if lo.expr is None or hi.expr is None:
        return sqlalchemy.true()
    test = lo.expr < hi.expr if strict else lo.expr <= hi.expr
    unbounded = [b.expr.is_(None) for b in (lo, hi) if b.null_is_unbounded and b.expr is not None]
    return sqlalchemy.or_(*unbounded, test) if unbounded else test


# ---------------------------------------------------------------------------------------------------------
# The compiler.
# ---------------------------------------------------------------------------------------------------------


class _Compiler:
    """Walks a syntax tree once; holds the resolver and bind values of one compilation."""

    def __init__(self, resolver: IdentifierResolver, bind: Mapping[str, Any]) -> None:
        self._resolver = resolver
        self._bind = bind

    def condition(self, node: Node) -> ColumnElement[bool]:
        value = self.evaluate(node)
        if isinstance(value, _Scalar):
            if value.is_condition:
                return value.expr
            if value.kind is ColumnKind.BOOL:
                return value.expr == sqlalchemy.true()
        raise ExpressionError(
            "Expression must be a condition (a comparison, IN, OVERLAPS or a boolean), "
            f"not {value.description} (column {value.column})"
        )

    def evaluate(self, node: Node) -> _Scalar | _Interval:
        match node:
            case Identifier():
                return self._identifier(node)
            case NumericLiteral() | StringLiteral() | BooleanLiteral() | TimeLiteral():
                return self._literal(node)
            case BindParameter():
                return self._bound_value(node)
            case TimespanLiteral():
                return self._time_range(node)
            case UnaryOp():
                operand = self._arithmetic_operand(node.op, node.operand)
                expr = -operand.expr if node.op == "-" else operand.expr
                return _Scalar(expr, operand.kind, node.column, f"{_NOUNS[operand.kind]} expression")
            case BinaryOp():
                return self._arithmetic(node)
            case Comparison():
                lhs, rhs = self.scalar(node.lhs), self.scalar(node.rhs)
                _check_comparable(lhs, rhs)
                return self._condition_value(_COMPARISONS[node.op](lhs.expr, rhs.expr), node)
            case InList():
                return self._condition_value(self._in_list(node), node)
            case Overlaps():
                return self._condition_value(self._overlaps(node), node)
            case LogicalOp():
                operands = [self.condition(operand) for operand in node.operands]
                combine = sqlalchemy.and_ if node.op == "AND" else sqlalchemy.or_
                return self._condition_value(combine(*operands), node)
            case Not():
                return self._condition_value(sqlalchemy.not_(self.condition(node.operand)), node)
            case RangeLiteral():
                raise ExpressionError(f"A range can only be used inside IN (...) (column {node.column})")
        raise ExpressionError(f"Unsupported expression node {type(node).__name__} (column {node.column})")

    def scalar(self, node: Node) -> _Scalar:
        value = self.evaluate(node)
        if isinstance(value, _Interval):
            raise value.only_with_overlaps()
        return value

    @staticmethod
    def _condition_value(expr: ColumnElement[bool], node: Node) -> _Scalar:
        return _Scalar(expr, ColumnKind.BOOL, node.column, "a condition", is_condition=True)

    def _identifier(self, node: Identifier) -> _Scalar | _Interval:
        resolved = self._resolver.resolve(node.parts, node.column)
        if isinstance(resolved, TimespanColumns):
            return _Interval(
                _Bound(resolved.begin, null_is_unbounded=True),
                _Bound(resolved.end, null_is_unbounded=True),
                node.column,
                f"identifier '{node.name}', which is a timespan",
                identifier=node.name,
            )
        description = f"identifier '{node.name}', which is {_NOUNS[resolved.kind]}"
        return _Scalar(resolved.column, resolved.kind, node.column, description, identifier=node.name)

    @staticmethod
    def _literal(node: NumericLiteral | StringLiteral | BooleanLiteral | TimeLiteral) -> _Constant:
        match node:
            case NumericLiteral(value=int() as value):
                return _constant(ColumnKind.INT, value, node.column, f"the integer {value}")
            case NumericLiteral(value=value):
                return _constant(ColumnKind.FLOAT, value, node.column, f"the number {value!r}")
            case StringLiteral(value=value):
                return _constant(ColumnKind.STRING, value, node.column, f"the string {_quote(value)}")
            case BooleanLiteral(value=value):
                return _constant(ColumnKind.BOOL, value, node.column, f"the boolean {str(value).upper()}")
            case TimeLiteral():
                description = f"the time T'{node.value.isoformat()}'"
                return _constant(ColumnKind.TIME_NS, node.ns, node.column, description)
        raise AssertionError(node)  # Unreachable: the annotation lists every case.

    def _lookup(self, node: BindParameter) -> Any:
        if node.name in self._bind:
            return self._bind[node.name]
        message = f"Unknown bind parameter ':{node.name}' in WHERE expression at column {node.column}"
        if not self._bind:
            raise UnknownIdentifierError(f"{message}; no bind values were given.")
        available = ", ".join(f":{name}" for name in sorted(self._bind))
        matches = difflib.get_close_matches(node.name, list(self._bind), n=1)
        hint = f"; did you mean ':{matches[0]}'?" if matches else "."
        raise UnknownIdentifierError(f"{message}; bind parameters given: {available}{hint}")

    def _bound_constant(self, value: Any, node: BindParameter, element: bool = False) -> _Constant:
        classified = _classify(value)
        prefix = (
            f"an element of bind parameter ':{node.name}'" if element else f"bind parameter ':{node.name}'"
        )
        if classified is None:
            raise ExpressionError(
                f"The value of {prefix} has unsupported type {type(value).__name__} (column {node.column})"
            )
        kind, bound = classified
        return _constant(kind, bound, node.column, f"{prefix} ({_NOUNS[kind]})")

    def _bound_value(self, node: BindParameter) -> _Scalar | _Interval:
        value = self._lookup(node)
        if isinstance(value, Timespan):
            return _interval_of(value, node.column, f"bind parameter ':{node.name}' (a Timespan)")
        if _is_collection(value):
            raise ExpressionError(
                f"Bind parameter ':{node.name}' is a {type(value).__name__}; a collection can only be used "
                f"inside IN (...) (column {node.column})"
            )
        return self._bound_constant(value, node)

    def _time_bound(self, node: TimeLiteral | BindParameter) -> int | None:
        if isinstance(node, TimeLiteral):
            return node.ns
        value = self._lookup(node)
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise ExpressionError(
                f"Bind parameter ':{node.name}' bounds a time range, so it must be a datetime or None, "
                f"not {type(value).__name__} (column {node.column})"
            )
        return datetime_to_ns(value)

    def _time_range(self, node: TimespanLiteral) -> _Interval:
        begin, end = self._time_bound(node.begin), self._time_bound(node.end)
        if begin is not None and end is not None and end < begin:
            raise ExpressionError(f"Time range ends before it begins (column {node.column})")
        return _interval_of(Timespan(begin, end), node.column, "a time range (begin, end)")

    def _arithmetic_operand(self, op: str, node: Node) -> _Scalar:
        operand = self.scalar(node)
        if operand.kind not in _NUMERIC or (op == "%" and operand.kind is not ColumnKind.INT):
            needs = "integers" if op == "%" else "numbers"
            raise ExpressionError(
                f"Cannot apply '{op}' to {operand.description}; it needs {needs} (column {operand.column})"
            )
        return operand

    def _arithmetic(self, node: BinaryOp) -> _Scalar:
        lhs = self._arithmetic_operand(node.op, node.lhs)
        rhs = self._arithmetic_operand(node.op, node.rhs)
        both_int = lhs.kind is ColumnKind.INT and rhs.kind is ColumnKind.INT
        kind = ColumnKind.INT if both_int and node.op != "/" else ColumnKind.FLOAT
        expr = _ARITHMETIC[node.op](lhs.expr, rhs.expr)
        return _Scalar(expr, kind, node.column, f"{_NOUNS[kind]} expression")

    def _in_list(self, node: InList) -> ColumnElement[bool]:
        lhs = self.scalar(node.lhs)
        values: list[Any] = []
        float_values: list[float] = []
        clauses: list[ColumnElement[bool]] = []
        for item in node.items:
            if isinstance(item, RangeLiteral):
                self._range(lhs, item, values, clauses)
                continue
            if isinstance(item, BindParameter) and _is_collection(bound := self._lookup(item)):
                constants = [self._bound_constant(element, item, element=True) for element in bound]
            else:
                value = self.scalar(item)
                if not isinstance(value, _Constant):
                    raise ExpressionError(
                        f"IN (...) lists literals, ranges and bind parameters only (column {item.column})"
                    )
                constants = [value]
            for constant in constants:
                _check_comparable(lhs, constant)
                if lhs.kind is ColumnKind.INT and constant.kind is ColumnKind.FLOAT:
                    float_values.append(constant.value)  # Bound as the column's type they would be truncated.
                else:
                    values.append(constant.value)
        if float_values:
            floats = sqlalchemy.bindparam(
                None, list(dict.fromkeys(float_values)), sqlalchemy.Float(), expanding=True
            )
            clauses.insert(0, lhs.expr.in_(floats))
        if values:
            clauses.insert(0, lhs.expr.in_(list(dict.fromkeys(values))))
        condition = sqlalchemy.or_(*clauses) if clauses else sqlalchemy.false()
        return sqlalchemy.not_(condition) if node.negated else condition

    @staticmethod
    def _range(
        lhs: _Scalar, item: RangeLiteral, values: list[Any], clauses: list[ColumnElement[bool]]
    ) -> None:
        stride = f":{item.stride}" if item.stride != 1 else ""
        text = f"the range {item.start}..{item.stop}{stride}"
        _check_comparable(lhs, _constant(ColumnKind.INT, item.start, item.column, text))
        if lhs.kind is not ColumnKind.INT:
            subject = (
                f"Identifier '{lhs.identifier}' is {_NOUNS[lhs.kind]}; cannot compare it"
                if lhs.identifier is not None
                else f"Cannot compare {lhs.description}"
            )
            raise ExpressionError(
                f"{subject} with {text}, as ranges apply to integers only (column {item.column})"
            )
        expanded = range(item.start, item.stop + 1, item.stride)
        if len(expanded) <= _MAX_EXPANDED_RANGE:
            values.extend(expanded)
            return
        clause: ColumnElement[bool] = lhs.expr.between(item.start, item.stop)
        if item.stride != 1:
            clause = sqlalchemy.and_(clause, (lhs.expr - item.start) % item.stride == 0)
        clauses.append(clause)

    def _temporal(self, node: Node) -> _Interval | _Bound:
        value = self.evaluate(node)
        if isinstance(value, _Interval):
            return value
        if value.kind is not ColumnKind.TIME_NS:
            raise ExpressionError(
                f"OVERLAPS needs timespans, time ranges or times, not {value.description} "
                f"(column {value.column})"
            )
        return _Bound(value.expr)

    def _overlaps(self, node: Overlaps) -> ColumnElement[bool]:
        lhs, rhs = self._temporal(node.lhs), self._temporal(node.rhs)
        interval, other = (rhs, lhs) if isinstance(lhs, _Bound) else (lhs, rhs)
        if not isinstance(interval, _Interval):
            raise ExpressionError(
                f"OVERLAPS needs a timespan or time range on one side (column {node.column})"
            )
        if isinstance(other, _Bound):  # A point inside [begin, end).
            return sqlalchemy.and_(
                _precedes(interval.begin, other, strict=False), _precedes(other, interval.end, strict=True)
            )
        # Half-open intervals share an instant when each starts before the other ends and
        # neither is empty.
        return sqlalchemy.and_(
            _precedes(interval.begin, other.end, strict=True),
            _precedes(other.begin, interval.end, strict=True),
            _precedes(interval.begin, interval.end, strict=True),
            _precedes(other.begin, other.end, strict=True),
        )


def _interval_of(timespan: Timespan, column: int, description: str) -> _Interval:
    def bound(ns: int | None) -> _Bound:
        return _Bound(None if ns is None else sqlalchemy.literal(ns, sqlalchemy.BigInteger()))

    return _Interval(bound(timespan.begin_ns), bound(timespan.end_ns), column, description)


def _check_comparable(lhs: _Scalar, rhs: _Scalar) -> None:
    if (rhs.kind in _NUMERIC and lhs.kind in _NUMERIC) or rhs.kind is lhs.kind:
        return
    if lhs.identifier is None and rhs.identifier is not None:
        lhs, rhs = rhs, lhs
    if lhs.identifier is not None:
        raise ExpressionError(
            f"Identifier '{lhs.identifier}' is {_NOUNS[lhs.kind]}; cannot compare it with {rhs.description} "
            f"(column {rhs.column})"
        )
    raise ExpressionError(f"Cannot compare {lhs.description} with {rhs.description} (column {rhs.column})")


def compile_expression(
    node: Node | None, resolver: IdentifierResolver, bind: Mapping[str, Any] | None = None
) -> ColumnElement[bool]:
    """Compile a parsed WHERE expression into a SQLAlchemy condition.

    Parameters
    ----------
    node
        The tree from `~butler.query_expression.parse_expression`; None (no constraint) compiles to TRUE.
    resolver
        Supplies the column(s) for each identifier.
    bind
        Values of the bind parameters, by name without the colon. Scalars (int, float, str, bool,
        datetime), `~butler.timespan.Timespan` (with OVERLAPS) and, inside ``IN (...)``, collections.

    Returns
    -------
    ColumnElement[bool]
        A condition for a ``WHERE`` clause over the columns the resolver returned.

    Raises
    ------
    ExpressionError
        If the expression is not a condition or compares values of incompatible types.
    UnknownIdentifierError
        If a bind parameter has no value (the resolver raises it for unknown identifiers).
    """
    if node is None:
        return sqlalchemy.true()
    return _Compiler(resolver, bind or {}).condition(node)
