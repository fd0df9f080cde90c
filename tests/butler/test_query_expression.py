"""Tests for the WHERE-expression parser: every construct, precedence, and the syntax-error messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from butler.errors import ExpressionError, ExpressionSyntaxError
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
    bind_names,
    identifier_nodes,
    parse_expression,
    referenced_identifiers,
)
from butler.timespan import datetime_to_ns


def parse(text: str) -> Node:
    node = parse_expression(text)
    assert node is not None
    return node


def ident(*parts: str) -> Identifier:
    return Identifier(parts, column=0)


def num(value: int | float) -> NumericLiteral:
    return NumericLiteral(value, column=0)


def eq(lhs: Node, rhs: Node) -> Comparison:
    return Comparison("=", lhs, rhs, column=0)


def syntax_error(text: str) -> ExpressionSyntaxError:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_expression(text)
    return info.value


# ---------------------------------------------------------------------------------------------------------
# Literals and identifiers.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_expression_is_none(text: str) -> None:
    assert parse_expression(text) is None


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("visit", ("visit",)),
        ("exposure.day_obs", ("exposure", "day_obs")),
        ("exposure.timespan.begin", ("exposure", "timespan", "begin")),
        ("_private1", ("_private1",)),
        ("order", ("order",)),  # Starts with the keyword OR.
        ("notes", ("notes",)),
        ("inside.andy", ("inside", "andy")),
        ("T", ("T",)),
    ],
)
def test_identifiers(text: str, parts: tuple[str, ...]) -> None:
    node = parse(text)
    assert node == Identifier(parts, column=1)
    assert isinstance(node, Identifier)
    assert node.name == text


def test_identifier_with_four_parts_is_rejected() -> None:
    err = syntax_error("visit = 1 AND a.b.c.d = 2")
    assert err.column == 15
    assert "identifier 'a.b.c.d' has 4 parts; at most 3 are allowed" in str(err)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("42", 42),
        ("0", 0),
        ("1.5", 1.5),
        ("1.", 1.0),
        (".25", 0.25),
        ("1e3", 1000.0),
        ("2.5E-2", 0.025),
        ("-7", -7),
        ("-1.5e3", -1500.0),
        ("+3", 3),
        ("- -4", 4),
    ],
)
def test_numbers(text: str, value: int | float) -> None:
    node = parse(f"x = {text}")
    assert isinstance(node, Comparison)
    assert isinstance(node.rhs, NumericLiteral)
    assert node.rhs.value == value
    assert type(node.rhs.value) is type(value)
    assert node.rhs.column == 5


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("'g'", "g"),
        ('"r"', "r"),
        ("''", ""),
        ("'it''s'", "it's"),
        ('"say ""hi"""', 'say "hi"'),
        ("'a b'", "a b"),
    ],
)
def test_strings(text: str, value: str) -> None:
    assert parse(f"band = {text}") == eq(ident("band"), StringLiteral(value, column=0))


def test_booleans_are_case_insensitive() -> None:
    assert parse("flag = true") == eq(ident("flag"), BooleanLiteral(True, column=0))
    assert parse("flag = FaLsE") == eq(ident("flag"), BooleanLiteral(False, column=0))
    assert parse("TRUE") == BooleanLiteral(True, column=0)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("T'2026-05-01T12:00:00'", datetime(2026, 5, 1, 12, tzinfo=UTC)),
        ("t'2026-05-01 12:00:00'", datetime(2026, 5, 1, 12, tzinfo=UTC)),
        ('T"2026-05-01T12:00:00Z"', datetime(2026, 5, 1, 12, tzinfo=UTC)),
        ("T'2026-05-01'", datetime(2026, 5, 1, tzinfo=UTC)),
        ("T'2026-05-01T12:00:00.25'", datetime(2026, 5, 1, 12, 0, 0, 250000, tzinfo=UTC)),
        ("T'2026-05-01T14:00:00+02:00'", datetime(2026, 5, 1, 12, tzinfo=UTC)),
        (
            "T'2026-05-01T12:00:00-05:00'",
            datetime(2026, 5, 1, 12, tzinfo=timezone(timedelta(hours=-5))),
        ),
    ],
)
def test_time_literals(text: str, expected: datetime) -> None:
    node = parse(f"t = {text}")
    assert isinstance(node, Comparison)
    literal = node.rhs
    assert isinstance(literal, TimeLiteral)
    assert literal.value == expected
    assert literal.value.tzinfo is UTC  # Always normalised to aware UTC.
    assert literal.ns == datetime_to_ns(expected)
    assert literal.column == 5


def test_time_literal_keeps_nanoseconds() -> None:
    node = parse("t < T'2026-05-01T00:00:00.123456789'")
    assert isinstance(node, Comparison) and isinstance(node.rhs, TimeLiteral)
    assert node.rhs.value.microsecond == 123456
    assert node.rhs.nanosecond == 789
    assert node.rhs.ns == datetime_to_ns(datetime(2026, 5, 1, tzinfo=UTC)) + 123_456_789


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("T'2026-13-45'", "month must be in 1..12"),
        ("T'2026-05-01T25:00:00'", "hour must be in 0..23"),
        ("T'yesterday'", "Invalid isoformat string"),
        ("T''", "Invalid isoformat string"),
    ],
)
def test_bad_time_literals(text: str, reason: str) -> None:
    err = syntax_error(f"visit = 1 AND t > {text}")
    assert err.column == 19
    assert f"invalid time literal {text}" in str(err)
    assert reason in str(err)
    assert "T'2026-05-01T12:00:00'" in str(err)  # Shows an example of the expected format.


def test_bind_parameters() -> None:
    assert parse("visit = :my_visit") == eq(ident("visit"), BindParameter("my_visit", column=0))
    node = parse("visit = :v1")
    assert isinstance(node, Comparison) and node.rhs.column == 9


# ---------------------------------------------------------------------------------------------------------
# Operators and precedence.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "normalised"),
    [("=", "="), ("!=", "!="), ("<>", "!="), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")],
)
def test_comparison_operators(op: str, normalised: str) -> None:
    assert parse(f"visit {op} 3") == Comparison(normalised, ident("visit"), num(3), column=0)  # type: ignore[arg-type]
    assert parse(f"visit{op}3") == Comparison(normalised, ident("visit"), num(3), column=0)  # type: ignore[arg-type]


def test_comparisons_do_not_chain() -> None:
    err = syntax_error("a = b = c")
    assert err.column == 7


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (eq(ident(name), num(1)) for name in "abc")
    assert parse("a = 1 OR b = 1 AND c = 1") == LogicalOp(
        "OR", (a, LogicalOp("AND", (b, c), column=0)), column=0
    )
    assert parse("a = 1 AND b = 1 OR c = 1") == LogicalOp(
        "OR", (LogicalOp("AND", (a, b), column=0), c), column=0
    )
    assert parse("a = 1 AND (b = 1 OR c = 1)") == LogicalOp(
        "AND", (a, LogicalOp("OR", (b, c), column=0)), column=0
    )


def test_chains_are_flattened() -> None:
    node = parse("a OR b OR c OR d")
    assert node == LogicalOp("OR", tuple(ident(x) for x in "abcd"), column=0)
    node = parse("a AND b AND c")
    assert node == LogicalOp("AND", tuple(ident(x) for x in "abc"), column=0)


def test_not_binds_tighter_than_and_but_looser_than_comparison() -> None:
    a, b = eq(ident("a"), num(1)), eq(ident("b"), num(2))
    assert parse("NOT a = 1 AND b = 2") == LogicalOp("AND", (Not(a, column=0), b), column=0)
    assert parse("NOT (a = 1 AND b = 2)") == Not(LogicalOp("AND", (a, b), column=0), column=0)
    assert parse("NOT NOT a = 1") == Not(Not(a, column=0), column=0)


def test_keywords_are_case_insensitive() -> None:
    expected = parse("NOT a IN (1) AND b OVERLAPS c OR d NOT IN (2)")
    assert parse("not a in (1) and b overlaps c or d not in (2)") == expected
    assert parse("Not a In (1) AnD b OvErLaPs c oR d nOt iN (2)") == expected


def test_keywords_are_reserved() -> None:
    err = syntax_error("and = 1")
    assert err.column == 1
    assert "unexpected 'and'" in str(err)


def test_arithmetic_precedence() -> None:
    x, y, z = ident("x"), ident("y"), ident("z")
    node = parse("x + y * z = 1")
    assert node == eq(BinaryOp("+", x, BinaryOp("*", y, z, column=0), column=0), num(1))
    node = parse("(x + y) * z = 1")
    assert node == eq(BinaryOp("*", BinaryOp("+", x, y, column=0), z, column=0), num(1))
    node = parse("x - y - z = 1")  # Left-associative.
    assert node == eq(BinaryOp("-", BinaryOp("-", x, y, column=0), z, column=0), num(1))
    node = parse("x % 2 = 0 AND y / 2 > 1.5")
    assert node == LogicalOp(
        "AND",
        (
            eq(BinaryOp("%", x, num(2), column=0), num(0)),
            Comparison(">", BinaryOp("/", y, num(2), column=0), num(1.5), column=0),
        ),
        column=0,
    )
    node = parse("x-1 = 2")
    assert node == eq(BinaryOp("-", x, num(1), column=0), num(2))


def test_unary_minus_on_identifier() -> None:
    node = parse("-x > 3")
    assert node == Comparison(">", UnaryOp("-", ident("x"), column=0), num(3), column=0)
    assert isinstance(node, Comparison) and node.lhs.column == 1 and node.lhs.operand.column == 2  # type: ignore[attr-defined]
    assert parse("-x * 2 = 1") == eq(
        BinaryOp("*", UnaryOp("-", ident("x"), column=0), num(2), column=0), num(1)
    )


# ---------------------------------------------------------------------------------------------------------
# IN lists and ranges.
# ---------------------------------------------------------------------------------------------------------


def test_in_list_items() -> None:
    node = parse("detector IN (1..10:2, 3, -4, 'a', :ids, T'2026-01-01', 2.5, TRUE)")
    assert isinstance(node, InList)
    assert not node.negated
    assert node.lhs == ident("detector")
    assert [type(item) for item in node.items] == [
        RangeLiteral,
        NumericLiteral,
        NumericLiteral,
        StringLiteral,
        BindParameter,
        TimeLiteral,
        NumericLiteral,
        BooleanLiteral,
    ]
    assert node.items[0] == RangeLiteral(1, 10, 2, column=0)
    assert node.items[2] == num(-4)
    assert [item.column for item in node.items[:3]] == [14, 23, 26]


def test_not_in() -> None:
    assert parse("visit NOT IN (1, 2)") == InList(ident("visit"), (num(1), num(2)), negated=True, column=0)
    assert parse("NOT visit IN (1, 2)") == Not(InList(ident("visit"), (num(1), num(2)), column=0), column=0)


@pytest.mark.parametrize(
    ("text", "start", "stop", "stride"),
    [
        ("1..10", 1, 10, 1),
        ("1..10:2", 1, 10, 2),
        ("1 .. 10 : 3", 1, 10, 3),
        ("-5..5", -5, 5, 1),
        ("-3..-1", -3, -1, 1),
        ("10..1", 10, 1, 1),
    ],
)
def test_ranges(text: str, start: int, stop: int, stride: int) -> None:
    node = parse(f"x IN ({text})")
    assert node == InList(ident("x"), (RangeLiteral(start, stop, stride, column=0),), column=0)


def test_range_with_zero_stride_is_rejected() -> None:
    err = syntax_error("x IN (1..5:0)")
    assert err.column == 7
    assert "stride 0" in str(err)


def test_range_outside_in_is_a_syntax_error() -> None:
    err = syntax_error("x = 1..3")
    assert err.column == 5
    assert "unexpected range 1..3" in str(err)


def test_expressions_are_not_in_list_items() -> None:
    err = syntax_error("x IN (y)")
    assert err.column == 7
    assert "identifier" not in err.expected
    assert "number" in err.expected and "range" in err.expected


def test_empty_in_list_is_rejected() -> None:
    err = syntax_error("x IN ()")
    assert err.column == 7
    assert "unexpected ')'" in str(err)


# ---------------------------------------------------------------------------------------------------------
# OVERLAPS.
# ---------------------------------------------------------------------------------------------------------


def test_overlaps_forms() -> None:
    ts = ident("exposure", "timespan")
    node = parse("exposure.timespan OVERLAPS (T'2026-05-01', T'2026-05-02')")
    begin = TimeLiteral(datetime(2026, 5, 1, tzinfo=UTC), column=0)
    end = TimeLiteral(datetime(2026, 5, 2, tzinfo=UTC), column=0)
    assert node == Overlaps(ts, TimespanLiteral(begin, end, column=0), column=0)
    assert isinstance(node, Overlaps) and node.rhs.column == 28
    assert parse("exposure.timespan OVERLAPS T'2026-05-01'") == Overlaps(ts, begin, column=0)
    assert parse("exposure.timespan overlaps :ts") == Overlaps(ts, BindParameter("ts", column=0), column=0)
    assert parse("exposure.timespan OVERLAPS visit.timespan") == Overlaps(
        ts, ident("visit", "timespan"), column=0
    )
    node = parse("exposure.timespan OVERLAPS (:begin, T'2026-05-02')")
    assert node == Overlaps(ts, TimespanLiteral(BindParameter("begin", column=0), end, column=0), column=0)


def test_overlaps_binds_tighter_than_and() -> None:
    node = parse("a OVERLAPS b AND NOT c OVERLAPS d")
    assert node == LogicalOp(
        "AND",
        (
            Overlaps(ident("a"), ident("b"), column=0),
            Not(Overlaps(ident("c"), ident("d"), column=0), column=0),
        ),
        column=0,
    )


@pytest.mark.parametrize(
    "text",
    [
        "t OVERLAPS (1, 2)",
        "t OVERLAPS (T'2026-05-01', T'2026-05-02', T'2026-05-03')",
        "t OVERLAPS (T'2026-05-01', 'x')",
        "x = (1, 2)",
    ],
)
def test_bad_time_ranges(text: str) -> None:
    err = syntax_error(text)
    assert err.column == text.index("(") + 1
    assert "time range (begin, end)" in str(err)


# ---------------------------------------------------------------------------------------------------------
# Positions, identifiers and binds of a tree.
# ---------------------------------------------------------------------------------------------------------


def test_columns_are_recorded() -> None:
    node = parse("visit = 1 AND  NOT band = 'g'")
    assert isinstance(node, LogicalOp)
    first, second = node.operands
    assert node.column == 1 and first.column == 1
    assert isinstance(second, Not) and second.column == 16
    assert isinstance(second.operand, Comparison)
    assert second.operand.column == 20 and second.operand.rhs.column == 27


def test_nodes_are_frozen_and_ignore_columns_in_equality() -> None:
    node = parse("visit = 1")
    assert node == parse("  visit   =   1")
    assert hash(node) == hash(parse("  visit   =   1"))
    with pytest.raises(AttributeError):
        node.column = 3  # type: ignore[misc]


def test_referenced_identifiers_and_bind_names() -> None:
    node = parse(
        "instrument = :instrument AND exposure.day_obs IN (20260501, :days) AND "
        "(NOT detector.purpose = 'SCIENCE' OR exposure.timespan OVERLAPS (:t0, T'2026-05-02')) "
        "AND visit + 1 > :v"
    )
    assert referenced_identifiers(node) == {
        ("instrument",),
        ("exposure", "day_obs"),
        ("detector", "purpose"),
        ("exposure", "timespan"),
        ("visit",),
    }
    assert bind_names(node) == {"instrument", "days", "t0", "v"}
    names = [(n.name, n.column) for n in identifier_nodes(parse("b = 1 OR (a IN (1) AND b.c OVERLAPS d)"))]
    assert names == [("b", 1), ("a", 11), ("b.c", 24), ("d", 37)]
    assert identifier_nodes(None) == []
    assert referenced_identifiers(None) == set()
    assert bind_names(None) == set()


def test_deeply_nested_expressions() -> None:
    text = " OR ".join(f"visit = {i}" for i in range(2000))
    node = parse(text)
    assert isinstance(node, LogicalOp) and len(node.operands) == 2000
    nested = "(" * 200 + "visit = 1" + ")" * 200
    assert parse(nested) == eq(ident("visit"), num(1))
    assert referenced_identifiers(parse("NOT " * 3000 + "x")) == {("x",)}


# ---------------------------------------------------------------------------------------------------------
# Syntax errors.
# ---------------------------------------------------------------------------------------------------------


def test_syntax_error_message_shows_the_text_and_a_caret() -> None:
    err = syntax_error("visit = AND detector = 1")
    assert str(err) == (
        "Syntax error in WHERE expression at column 9: unexpected 'AND'; expected one of: identifier, "
        "number, string, time literal, bind parameter, TRUE, FALSE, '(', '+', '-'\n"
        "  visit = AND detector = 1\n"
        "          ^"
    )
    assert (err.line, err.column) == (1, 9)
    assert err.expected == (
        "identifier",
        "number",
        "string",
        "time literal",
        "bind parameter",
        "TRUE",
        "FALSE",
        "'('",
        "'+'",
        "'-'",
    )
    assert isinstance(err, ExpressionError)


@pytest.mark.parametrize(
    ("text", "column", "unexpected", "must_expect"),
    [
        ("visit = ", 8, "end of expression", "identifier"),
        ("visit = 1 AND", 14, "end of expression", "NOT"),
        ("(visit = 1", 11, "end of expression", "')'"),
        ("visit = 1)", 10, "')'", "end of expression"),
        ("visit 1", 7, "'1'", "comparison operator"),
        ("visit IN 3", 10, "'3'", "'('"),
        ("visit IN (1, )", 14, "')'", "range"),
        ("visit IN (1 2)", 13, "'2'", "','"),
        ("visit = 1 band = 'g'", 11, "'band'", "AND"),
        ("visit = 'a' 'b'", 13, "string 'b'", "OR"),
        ("visit == 1", 8, "'='", "identifier"),
        ("NOT", 4, "end of expression", "identifier"),
        ("visit NOT = 1", 11, "'='", "IN"),
    ],
)
def test_syntax_errors(text: str, column: int, unexpected: str, must_expect: str) -> None:
    err = syntax_error(text)
    assert err.column == column
    assert err.line == 1
    assert f"at column {column}: unexpected {unexpected}" in str(err)
    assert err.expected, "the expected list must not be empty"
    assert must_expect in err.expected
    assert str(err).endswith("\n  " + text + "\n  " + " " * (column - 1) + "^")


def test_expected_list_reflects_the_parser_state_after_reductions() -> None:
    err = syntax_error("visit # 1")
    assert err.column == 7
    assert "unexpected character '#'" in str(err)
    assert "','" not in err.expected  # Only valid inside parentheses.
    assert "comparison operator" in err.expected and "end of expression" in err.expected


@pytest.mark.parametrize(
    ("text", "column", "what"),
    [
        ("band = 'abc", 8, "string"),
        ('band = "abc', 8, "string"),
        ("t > T'2026-05-01", 5, "time literal"),
        ("band = 'a\nb'", 8, "string"),
    ],
)
def test_unterminated_strings(text: str, column: int, what: str) -> None:
    err = syntax_error(text)
    assert err.column == column
    assert f"unterminated {what}" in str(err)


def test_multiline_expression_errors_give_line_and_column() -> None:
    err = syntax_error("visit = 1\n  AND AND band = 'g'")
    assert (err.line, err.column) == (2, 7)
    message = str(err)
    assert message.startswith("Syntax error in WHERE expression at line 2, column 7: unexpected 'AND'")
    assert message.endswith("\n    AND AND band = 'g'\n        ^")


def test_multiline_expression_parses() -> None:
    node = parse("visit = 1\n  AND band = 'g'")
    assert isinstance(node, LogicalOp)
    assert node.operands[1].column == 17  # Offset into the text, newline included.
