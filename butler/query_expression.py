"""Parser for the WHERE-expression language of registry queries: text in, a typed syntax tree out."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, cast

import lark

from butler.errors import ExpressionSyntaxError
from butler.timespan import datetime_to_ns

__all__ = [
    "BinaryOp",
    "BindParameter",
    "BooleanLiteral",
    "Comparison",
    "Identifier",
    "InList",
    "LogicalOp",
    "Node",
    "Not",
    "NumericLiteral",
    "Overlaps",
    "RangeLiteral",
    "StringLiteral",
    "TimeLiteral",
    "TimespanLiteral",
    "UnaryOp",
    "bind_names",
    "identifier_nodes",
    "parse_expression",
    "referenced_identifiers",
]

_MAX_IDENTIFIER_PARTS = 3


# ---------------------------------------------------------------------------------------------------------
# Syntax tree.
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Node:
    """Base of every syntax-tree node.

    Nodes compare equal when their structure is equal; positions are ignored.
    """

    column: int = field(kw_only=True, compare=False)
    """1-based position of the node's first character in the expression text
    (for a single-line expression, its column)."""


@dataclass(frozen=True, slots=True)
class Identifier(Node):
    """A dotted name such as ``visit``, ``exposure.day_obs`` or ``exposure.timespan.begin``."""

    parts: tuple[str, ...]
    """The dot-separated parts, 1 to 3 of them."""

    @property
    def name(self) -> str:
        """The name as written, parts joined by dots."""
        return ".".join(self.parts)


@dataclass(frozen=True, slots=True)
class NumericLiteral(Node):
    """An integer or floating-point number."""

    value: int | float


@dataclass(frozen=True, slots=True)
class StringLiteral(Node):
    """A quoted string (quotes removed, doubled quotes unescaped)."""

    value: str


@dataclass(frozen=True, slots=True)
class BooleanLiteral(Node):
    """``TRUE`` or ``FALSE``."""

    value: bool


@dataclass(frozen=True, slots=True)
class TimeLiteral(Node):
    """A timestamp ``T'2026-05-01T12:00:00'``; naive times are UTC."""

    value: datetime
    """Aware UTC datetime (microsecond precision)."""

    nanosecond: int = 0
    """Nanoseconds beyond ``value``'s microseconds (0-999), from fractional seconds with >6 digits."""

    @property
    def ns(self) -> int:
        """The instant in nanoseconds since the Unix epoch."""
        return datetime_to_ns(self.value) + self.nanosecond


@dataclass(frozen=True, slots=True)
class RangeLiteral(Node):
    """An integer range ``start..stop:stride`` inside ``IN (...)``; ``stop`` is inclusive."""

    start: int
    stop: int
    stride: int = 1


@dataclass(frozen=True, slots=True)
class BindParameter(Node):
    """A bind parameter ``:name`` whose value is supplied when the expression is compiled."""

    name: str


@dataclass(frozen=True, slots=True)
class TimespanLiteral(Node):
    """A time range ``(begin, end)`` used with ``OVERLAPS``; each bound a time literal or bind parameter."""

    begin: TimeLiteral | BindParameter
    end: TimeLiteral | BindParameter


@dataclass(frozen=True, slots=True)
class UnaryOp(Node):
    """Unary ``-`` or ``+`` applied to a non-literal operand."""

    op: Literal["-", "+"]
    operand: Node


@dataclass(frozen=True, slots=True)
class BinaryOp(Node):
    """Arithmetic: ``+ - * / %``."""

    op: Literal["+", "-", "*", "/", "%"]
    lhs: Node
    rhs: Node


@dataclass(frozen=True, slots=True)
class Comparison(Node):
    """A comparison; ``<>`` is normalised to ``!=``."""

    op: Literal["=", "!=", "<", "<=", ">", ">="]
    lhs: Node
    rhs: Node


@dataclass(frozen=True, slots=True)
class InList(Node):
    """``lhs IN (items)`` or, when ``negated``, ``lhs NOT IN (items)``."""

    lhs: Node
    items: tuple[Node, ...]
    """Literals, ranges and bind parameters."""

    negated: bool = False


@dataclass(frozen=True, slots=True)
class Overlaps(Node):
    """``lhs OVERLAPS rhs`` between timespans, time ranges and times."""

    lhs: Node
    rhs: Node


@dataclass(frozen=True, slots=True)
class LogicalOp(Node):
    """``AND`` or ``OR`` of two or more operands (chains are flattened)."""

    op: Literal["AND", "OR"]
    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not(Node):
    """``NOT operand``."""

    operand: Node


def _children(node: Node) -> list[Node]:
    children: list[Node] = []
    for f in dataclasses.fields(node):
        value = getattr(node, f.name)
        if isinstance(value, Node):
            children.append(value)
        elif isinstance(value, tuple):
            children.extend(item for item in value if isinstance(item, Node))
    return children


def _walk(node: Node | None) -> list[Node]:
    result: list[Node] = []
    stack = [] if node is None else [node]
    while stack:
        current = stack.pop()
        result.append(current)
        stack.extend(reversed(_children(current)))
    return result


def referenced_identifiers(node: Node | None) -> set[tuple[str, ...]]:
    """Return the parts of every identifier in the tree (the caller decides which tables to join)."""
    return {n.parts for n in _walk(node) if isinstance(n, Identifier)}


def identifier_nodes(node: Node | None) -> list[Identifier]:
    """Return the identifiers of the tree in source order, with their columns (for error messages)."""
    return [n for n in _walk(node) if isinstance(n, Identifier)]


def bind_names(node: Node | None) -> set[str]:
    """Return the names (without the colon) of every bind parameter in the tree."""
    return {n.name for n in _walk(node) if isinstance(n, BindParameter)}


# ---------------------------------------------------------------------------------------------------------
# Grammar.
# ---------------------------------------------------------------------------------------------------------

_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> not_
         | predicate
?predicate: sum_expr COMPARISON sum_expr -> comparison
          | sum_expr _IN LPAR in_items RPAR -> in_list
          | sum_expr NOT _IN LPAR in_items RPAR -> not_in_list
          | sum_expr _OVERLAPS sum_expr -> overlaps
          | sum_expr
?sum_expr: sum_expr ADD_OP product -> arithmetic
         | product
?product: product MUL_OP unary -> arithmetic
        | unary
?unary: ADD_OP unary -> unary
      | atom
?atom: IDENTIFIER -> identifier
     | value
     | LPAR or_expr RPAR -> parens
     | LPAR or_expr (COMMA or_expr)+ RPAR -> time_range
?value: NUMBER -> number
      | STRING -> string
      | TIME -> time
      | TRUE -> true
      | FALSE -> false
      | BIND -> bind
in_items: in_item (COMMA in_item)*
?in_item: value
        | ADD_OP NUMBER -> unary
        | RANGE -> range_literal

_OR: "OR"i
_AND: "AND"i
NOT: "NOT"i
_IN: "IN"i
_OVERLAPS: "OVERLAPS"i
TRUE: "TRUE"i
FALSE: "FALSE"i
COMPARISON: /!=|<>|<=|>=|=|<|>/
ADD_OP: /[+-]/
MUL_OP: /[*\/%]/
LPAR: "("
RPAR: ")"
COMMA: ","
TIME.3: /[Tt](?:'[^'\n]*'|"[^"\n]*")/
RANGE.2: /-?\d+\s*\.\.\s*-?\d+(?:\s*:\s*\d+)?/
NUMBER: /(?:\d+\.\d*(?!\.)|\.\d+|\d+)(?:[eE][+-]?\d+)?/
STRING: /'(?:[^'\n]|'')*'|"(?:[^"\n]|"")*"/
BIND: /:[A-Za-z_][A-Za-z0-9_]*/
IDENTIFIER: /[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*/

%ignore /\s+/
"""

# Readable names for the parser's terminals, in the order they are listed in messages.
_TERMINAL_NAMES: dict[str, tuple[str, ...]] = {
    "IDENTIFIER": ("identifier",),
    "NUMBER": ("number",),
    "STRING": ("string",),
    "TIME": ("time literal",),
    "RANGE": ("range",),
    "BIND": ("bind parameter",),
    "TRUE": ("TRUE",),
    "FALSE": ("FALSE",),
    "LPAR": ("'('",),
    "NOT": ("NOT",),
    "ADD_OP": ("'+'", "'-'"),
    "MUL_OP": ("'*'", "'/'", "'%'"),
    "COMPARISON": ("comparison operator",),
    "_IN": ("IN",),
    "_OVERLAPS": ("OVERLAPS",),
    "_AND": ("AND",),
    "_OR": ("OR",),
    "COMMA": ("','",),
    "RPAR": ("')'",),
    "$END": ("end of expression",),
}

_FRACTION_RE = re.compile(r"(\d\d:\d\d:\d\d)[.,](\d+)")


class _SemanticSyntaxError(Exception):
    """Raised by the tree builder for well-tokenised but invalid input; carries a 0-based offset."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


def _pos(token: lark.Token) -> int:
    return (token.start_pos or 0) + 1  # The lexer always sets start_pos.


def _parse_time(token: lark.Token) -> TimeLiteral:
    text = str(token)[2:-1].strip()
    nanosecond = 0
    match = _FRACTION_RE.search(text)
    if match is not None:  # datetime keeps microseconds; keep nanoseconds aside.
        digits = match.group(2)
        nanosecond = int(digits[6:9].ljust(3, "0")) if len(digits) > 6 else 0
        text = text[: match.start(2)] + digits[:6] + text[match.end(2) :]
    try:
        value = datetime.fromisoformat(text)
    except ValueError as err:
        raise _SemanticSyntaxError(
            f"invalid time literal {token} ({err}); expected ISO 8601 such as T'2026-05-01T12:00:00'",
            _pos(token) - 1,
        ) from None
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return TimeLiteral(value, nanosecond, column=_pos(token))


def _unquote(text: str) -> str:
    quote = text[0]
    return text[1:-1].replace(quote * 2, quote)


class _TreeBuilder(lark.Transformer[lark.Token, Node]):
    """Turns parser callbacks into syntax-tree nodes; stateless, so one instance serves every parse."""

    def or_expr(self, items: list[Node]) -> Node:
        return LogicalOp("OR", tuple(items), column=items[0].column)

    def and_expr(self, items: list[Node]) -> Node:
        return LogicalOp("AND", tuple(items), column=items[0].column)

    def not_(self, items: list[Any]) -> Node:
        return Not(items[1], column=_pos(items[0]))

    def comparison(self, items: list[Any]) -> Node:
        lhs, op, rhs = items
        return Comparison("!=" if op == "<>" else str(op), lhs, rhs, column=lhs.column)  # type: ignore[arg-type]

    def in_list(self, items: list[Any]) -> Node:
        return InList(items[0], items[2], negated=False, column=items[0].column)

    def not_in_list(self, items: list[Any]) -> Node:
        return InList(items[0], items[3], negated=True, column=items[0].column)

    def in_items(self, items: list[Any]) -> tuple[Node, ...]:
        return tuple(item for item in items if isinstance(item, Node))

    def overlaps(self, items: list[Node]) -> Node:
        return Overlaps(items[0], items[1], column=items[0].column)

    def arithmetic(self, items: list[Any]) -> Node:
        lhs, op, rhs = items
        return BinaryOp(str(op), lhs, rhs, column=lhs.column)  # type: ignore[arg-type]

    def unary(self, items: list[Any]) -> Node:
        op, operand = items
        if isinstance(operand, lark.Token):  # A signed number inside IN (...).
            operand = self.number([operand])
        if isinstance(operand, NumericLiteral):
            return NumericLiteral(-operand.value if op == "-" else operand.value, column=_pos(op))
        return UnaryOp(str(op), operand, column=_pos(op))  # type: ignore[arg-type]

    def identifier(self, items: list[lark.Token]) -> Node:
        (token,) = items
        parts = tuple(str(token).split("."))
        if len(parts) > _MAX_IDENTIFIER_PARTS:
            raise _SemanticSyntaxError(
                f"identifier '{token}' has {len(parts)} parts; at most {_MAX_IDENTIFIER_PARTS} are allowed",
                _pos(token) - 1,
            )
        return Identifier(parts, column=_pos(token))

    def number(self, items: list[lark.Token]) -> NumericLiteral:
        (token,) = items
        text = str(token)
        value: int | float = float(text) if any(c in text for c in ".eE") else int(text)
        return NumericLiteral(value, column=_pos(token))

    def string(self, items: list[lark.Token]) -> Node:
        return StringLiteral(_unquote(str(items[0])), column=_pos(items[0]))

    def time(self, items: list[lark.Token]) -> Node:
        return _parse_time(items[0])

    def true(self, items: list[lark.Token]) -> Node:
        return BooleanLiteral(True, column=_pos(items[0]))

    def false(self, items: list[lark.Token]) -> Node:
        return BooleanLiteral(False, column=_pos(items[0]))

    def bind(self, items: list[lark.Token]) -> Node:
        return BindParameter(str(items[0])[1:], column=_pos(items[0]))

    def range_literal(self, items: list[lark.Token]) -> Node:
        (token,) = items
        start, _, rest = str(token).partition("..")
        stop, _, stride_text = rest.partition(":")  # int() ignores the spaces the terminal allows.
        stride = int(stride_text) if stride_text else 1
        if stride <= 0:
            raise _SemanticSyntaxError(
                f"range {token} has stride {stride}; it must be positive", _pos(token) - 1
            )
        return RangeLiteral(int(start), int(stop), stride, column=_pos(token))

    def parens(self, items: list[Any]) -> Node:
        node: Node = items[1]
        return node

    def time_range(self, items: list[Any]) -> Node:
        lpar = items[0]
        elements = [item for item in items if isinstance(item, TimeLiteral | BindParameter)]
        if len(elements) != 2 or len(elements) != sum(isinstance(item, Node) for item in items):
            raise _SemanticSyntaxError(
                "a parenthesised list outside IN must be a time range (begin, end) of two time literals "
                "or bind parameters",
                _pos(lpar) - 1,
            )
        return TimespanLiteral(elements[0], elements[1], column=_pos(lpar))


@functools.cache
def _parser() -> lark.Lark:
    return lark.Lark(_GRAMMAR, parser="lalr", lexer="basic", transformer=_TreeBuilder())


# ---------------------------------------------------------------------------------------------------------
# Errors.
# ---------------------------------------------------------------------------------------------------------


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _syntax_error(
    text: str, offset: int, problem: str, expected: tuple[str, ...] = ()
) -> ExpressionSyntaxError:
    line, column = _line_col(text, offset)
    where = f"column {column}" if "\n" not in text else f"line {line}, column {column}"
    source_line = text.splitlines()[line - 1] if text.strip() else text
    message = (
        f"Syntax error in WHERE expression at {where}: {problem}\n  {source_line}\n  {' ' * (column - 1)}^"
    )
    return ExpressionSyntaxError(message, line=line, column=column, expected=expected)


def _expected_names(terminals: set[str] | frozenset[str] | None) -> tuple[str, ...]:
    names: list[str] = []
    for terminal, readable in _TERMINAL_NAMES.items():
        if terminals and terminal in terminals:
            names.extend(readable)
    return tuple(names)


def _acceptable(err: lark.exceptions.UnexpectedInput) -> tuple[str, ...]:
    # Ask a copy of the parser which terminals it would accept here (LALR tables over-report).
    interactive = getattr(err, "interactive_parser", None)
    if interactive is None:
        return _expected_names(getattr(err, "expected", None))
    return _expected_names(interactive.accepts())


def _describe_expected(expected: tuple[str, ...]) -> str:
    if not expected:
        return ""
    return f"; expected {expected[0]}" if len(expected) == 1 else f"; expected one of: {', '.join(expected)}"


def _translate(text: str, err: lark.exceptions.UnexpectedInput) -> ExpressionSyntaxError:
    if isinstance(err, lark.exceptions.UnexpectedToken):
        token = err.token
        expected = _acceptable(err)
        if token.type == "$END":
            offset, what = len(text.rstrip()), "end of expression"
        else:
            offset = token.start_pos if token.start_pos is not None else 0
            if token.type == "STRING":
                what = f"string {token}"
            elif token.type == "TIME":
                what = f"time literal {token}"
            elif token.type == "RANGE":
                what = f"range {token}"
            else:
                what = f"'{token}'"
        return _syntax_error(text, offset, f"unexpected {what}{_describe_expected(expected)}", expected)
    if isinstance(err, lark.exceptions.UnexpectedCharacters):
        offset = err.pos_in_stream or 0
        char = text[offset]
        if char in "'\"":
            before = text[max(offset - 2, 0) : offset].rjust(2)
            is_time = before[1] in "Tt" and not (before[0].isalnum() or before[0] in "_.")
            start = offset - 1 if is_time else offset
            what = "time literal" if start < offset else "string"
            return _syntax_error(text, start, f"unterminated {what} (strings cannot span lines)")
        expected = _acceptable(err)
        return _syntax_error(
            text, offset, f"unexpected character {char!r}{_describe_expected(expected)}", expected
        )
    return _syntax_error(text, len(text.rstrip()), str(err))


def parse_expression(text: str) -> Node | None:
    """Parse a WHERE expression.

    Parameters
    ----------
    text
        The expression, e.g. ``"instrument = 'DemoCam' AND visit IN (1..10:2)"``.

    Returns
    -------
    Node | None
        The syntax tree, or None when ``text`` is empty or only whitespace (no constraint).

    Raises
    ------
    ExpressionSyntaxError
        If the text is not a valid expression; the message shows the text with a caret under the problem.
    """
    if not text.strip():
        return None
    try:
        tree = _parser().parse(text)
    except _SemanticSyntaxError as err:
        raise _syntax_error(text, err.offset, err.message) from None
    except lark.exceptions.UnexpectedInput as err:
        raise _translate(text, err) from None
    return cast(Node, tree)  # Every rule of the grammar produces a Node.
