"""Tests for the WHERE-expression compiler, executed against a real in-memory SQLite table."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import psycopg

from butler.errors import ExpressionError, UnknownIdentifierError
from butler.query_compiler import (
    ColumnKind,
    ScalarColumn,
    TimespanColumns,
    compile_expression,
    unknown_identifier_error,
)
from butler.query_expression import parse_expression
from butler.timespan import Timespan, datetime_to_ns

T0 = datetime(2026, 5, 1, tzinfo=UTC)
T0_NS = datetime_to_ns(T0)
HOUR_NS = 3600 * 1_000_000_000
N_ROWS = 12


@dataclass(frozen=True)
class Row:
    """One row of the test table, mirrored in Python to compute expected answers."""

    id: int
    visit: int
    detector: int
    band: str
    airmass: float
    flag: bool
    timespan: Timespan
    window: Timespan
    obs_ns: int


def make_rows() -> list[Row]:
    rows = []
    for i in range(1, N_ROWS + 1):
        begin: int | None = T0_NS + i * HOUR_NS
        end: int | None = T0_NS + (i + 1) * HOUR_NS
        if i == 10:
            begin = end = None
        elif i == 11:
            begin = None
        elif i == 12:
            end = None
        rows.append(
            Row(
                id=i,
                visit=100 + i,
                detector=i,
                band="gri"[i % 3],
                airmass=1.0 + i / 10,
                flag=i % 2 == 0,
                timespan=Timespan(begin, end),
                window=Timespan(T0_NS + 6 * HOUR_NS, T0_NS + 6 * HOUR_NS + i * HOUR_NS // 2),
                obs_ns=T0_NS + i * HOUR_NS + HOUR_NS // 2,
            )
        )
    return rows


ROWS = make_rows()
ALL_IDS = {row.id for row in ROWS}


class Resolver:
    """The registry's side of the contract, for one table."""

    def __init__(self, table: sqlalchemy.Table) -> None:
        c = table.c
        self.columns: dict[tuple[str, ...], ScalarColumn | TimespanColumns] = {
            ("visit",): ScalarColumn(c.visit, ColumnKind.INT),
            ("detector",): ScalarColumn(c.detector, ColumnKind.INT),
            ("band",): ScalarColumn(c.band, ColumnKind.STRING),
            ("airmass",): ScalarColumn(c.airmass, ColumnKind.FLOAT),
            ("flag",): ScalarColumn(c.flag, ColumnKind.BOOL),
            ("exposure", "obs_time"): ScalarColumn(c.obs_ns, ColumnKind.TIME_NS),
            ("exposure", "timespan"): TimespanColumns(c.begin_ns, c.end_ns),
            ("window", "timespan"): TimespanColumns(c.win_begin_ns, c.win_end_ns),
        }
        self.calls: list[tuple[tuple[str, ...], int]] = []

    def resolve(self, parts: tuple[str, ...], column: int) -> ScalarColumn | TimespanColumns:
        self.calls.append((parts, column))
        try:
            return self.columns[parts]
        except KeyError:
            names = [".".join(key) for key in self.columns]
            raise unknown_identifier_error(".".join(parts), names, column) from None


@dataclass
class Database:
    engine: sqlalchemy.Engine
    table: sqlalchemy.Table
    resolver: Resolver

    def compile(self, where: str, bind: Mapping[str, Any] | None = None) -> sqlalchemy.ColumnElement[bool]:
        return compile_expression(parse_expression(where), self.resolver, bind)

    def ids(self, where: str, bind: Mapping[str, Any] | None = None) -> set[int]:
        query = sqlalchemy.select(self.table.c.id).where(self.compile(where, bind))
        with self.engine.connect() as connection:
            return {row[0] for row in connection.execute(query)}


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    engine = sqlalchemy.create_engine("sqlite://")
    metadata = sqlalchemy.MetaData()
    table = sqlalchemy.Table(
        "obs",
        metadata,
        sqlalchemy.Column("id", sqlalchemy.Integer, primary_key=True),
        sqlalchemy.Column("visit", sqlalchemy.BigInteger, nullable=False),
        sqlalchemy.Column("detector", sqlalchemy.Integer, nullable=False),
        sqlalchemy.Column("band", sqlalchemy.String(8), nullable=False),
        sqlalchemy.Column("airmass", sqlalchemy.Float, nullable=False),
        sqlalchemy.Column("flag", sqlalchemy.Boolean, nullable=False),
        sqlalchemy.Column("begin_ns", sqlalchemy.BigInteger, nullable=True),
        sqlalchemy.Column("end_ns", sqlalchemy.BigInteger, nullable=True),
        sqlalchemy.Column("win_begin_ns", sqlalchemy.BigInteger, nullable=True),
        sqlalchemy.Column("win_end_ns", sqlalchemy.BigInteger, nullable=True),
        sqlalchemy.Column("obs_ns", sqlalchemy.BigInteger, nullable=False),
    )
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            table.insert(),
            [
                {
                    "id": r.id,
                    "visit": r.visit,
                    "detector": r.detector,
                    "band": r.band,
                    "airmass": r.airmass,
                    "flag": r.flag,
                    "begin_ns": r.timespan.begin_ns,
                    "end_ns": r.timespan.end_ns,
                    "win_begin_ns": r.window.begin_ns,
                    "win_end_ns": r.window.end_ns,
                    "obs_ns": r.obs_ns,
                }
                for r in ROWS
            ],
        )
    yield Database(engine, table, Resolver(table))
    engine.dispose()


def where(predicate: Callable[[Row], bool]) -> set[int]:
    return {row.id for row in ROWS if predicate(row)}


def at(hours: float) -> str:
    """A time literal ``hours`` after T0."""
    return f"T'{(T0 + timedelta(hours=hours)).isoformat()}'"


# ---------------------------------------------------------------------------------------------------------
# Comparisons and logic.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "predicate"),
    [
        ("detector = 3", lambda r: r.detector == 3),
        ("detector != 3", lambda r: r.detector != 3),
        ("detector <> 3", lambda r: r.detector != 3),
        ("detector < 3", lambda r: r.detector < 3),
        ("detector <= 3", lambda r: r.detector <= 3),
        ("detector > 10", lambda r: r.detector > 10),
        ("detector >= 10", lambda r: r.detector >= 10),
        ("3 < detector", lambda r: r.detector > 3),
        ("visit = 105", lambda r: r.visit == 105),
        ("band = 'g'", lambda r: r.band == "g"),
        ('band = "r"', lambda r: r.band == "r"),
        ("band < 'i'", lambda r: r.band < "i"),
        ("airmass > 1.55", lambda r: r.airmass > 1.55),
        ("airmass >= 2", lambda r: r.airmass >= 2),
        ("detector < 4.5", lambda r: r.detector < 4.5),
        ("visit = detector + 100", lambda r: True),
        ("band = 'x'", lambda r: False),
    ],
)
def test_comparisons(db: Database, text: str, predicate: Callable[[Row], bool]) -> None:
    assert db.ids(text) == where(predicate)


@pytest.mark.parametrize(
    ("text", "predicate"),
    [
        ("detector < 5 AND band = 'g'", lambda r: r.detector < 5 and r.band == "g"),
        ("detector < 3 OR detector > 10", lambda r: r.detector < 3 or r.detector > 10),
        ("NOT detector < 10", lambda r: not r.detector < 10),
        ("NOT (detector < 3 OR detector > 10)", lambda r: not (r.detector < 3 or r.detector > 10)),
        (
            "band = 'g' OR band = 'r' AND detector > 6",
            lambda r: r.band == "g" or (r.band == "r" and r.detector > 6),
        ),
        (
            "(band = 'g' OR band = 'r') AND detector > 6",
            lambda r: r.band in "gr" and r.detector > 6,
        ),
        ("not band = 'g' and not band = 'r'", lambda r: r.band == "i"),
        ("NOT NOT detector = 2", lambda r: r.detector == 2),
    ],
)
def test_logic(db: Database, text: str, predicate: Callable[[Row], bool]) -> None:
    assert db.ids(text) == where(predicate)


@pytest.mark.parametrize(
    ("text", "predicate"),
    [
        ("flag", lambda r: r.flag),
        ("NOT flag", lambda r: not r.flag),
        ("flag AND detector < 5", lambda r: r.flag and r.detector < 5),
        ("flag = TRUE", lambda r: r.flag),
        ("flag != true", lambda r: not r.flag),
        ("TRUE", lambda r: True),
        ("FALSE", lambda r: False),
        ("FALSE OR detector = 1", lambda r: r.detector == 1),
    ],
)
def test_booleans(db: Database, text: str, predicate: Callable[[Row], bool]) -> None:
    assert db.ids(text) == where(predicate)


def test_no_expression_matches_everything(db: Database) -> None:
    assert db.ids("") == ALL_IDS
    assert db.ids("   ") == ALL_IDS


@pytest.mark.parametrize(
    ("text", "predicate"),
    [
        ("detector % 2 = 0", lambda r: r.detector % 2 == 0),
        ("visit - 100 = detector", lambda r: True),
        ("detector * 2 > 20", lambda r: r.detector * 2 > 20),
        ("detector / 2 = 1.5", lambda r: r.detector == 3),  # True division.
        ("airmass * 10 >= 15", lambda r: r.airmass * 10 >= 15 - 1e-9),
        ("-detector < -10", lambda r: -r.detector < -10),
        ("+detector = 1", lambda r: r.detector == 1),
        ("(detector + 1) * 2 = 8", lambda r: (r.detector + 1) * 2 == 8),
        ("detector + 1 * 2 = 8", lambda r: r.detector + 2 == 8),
        ("detector = 2 * 3 - 1", lambda r: r.detector == 5),
    ],
)
def test_arithmetic(db: Database, text: str, predicate: Callable[[Row], bool]) -> None:
    assert db.ids(text) == where(predicate)


# ---------------------------------------------------------------------------------------------------------
# IN lists and ranges.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("detector IN (1, 3, 5)", {1, 3, 5}),
        ("detector IN (3)", {3}),
        ("detector NOT IN (1, 3, 5)", ALL_IDS - {1, 3, 5}),
        ("band IN ('g', 'r')", where(lambda r: r.band in "gr")),
        ("band NOT IN ('g')", where(lambda r: r.band != "g")),
        ("airmass IN (1.1, 1.2)", {1, 2}),
        ("detector IN (1..4)", {1, 2, 3, 4}),
        ("detector IN (1..10:2)", {1, 3, 5, 7, 9}),
        ("detector IN (2..12:5)", {2, 7, 12}),
        ("detector IN (1..3, 10..20)", {1, 2, 3, 10, 11, 12}),
        ("detector IN (-5..2)", {1, 2}),
        ("detector IN (5..5)", {5}),
        ("detector IN (10..1)", set()),
        ("detector NOT IN (10..1)", ALL_IDS),
        ("detector NOT IN (1..10:3)", ALL_IDS - {1, 4, 7, 10}),
        ("detector IN (1..3, 7, 9..12:2)", {1, 2, 3, 7, 9, 11}),
        ("detector IN (-1, 1)", {1}),
        ("detector IN (2.5, 3, 4.0)", {3, 4}),
        ("detector + 1 IN (2, 3)", {1, 2}),
        ("NOT detector IN (1..11)", {12}),
        ("exposure.obs_time IN (T'2026-05-01T01:30:00', T'2026-05-01T02:30:00Z')", {1, 2}),
        ("flag IN (TRUE)", where(lambda r: r.flag)),
    ],
)
def test_in_lists(db: Database, text: str, expected: set[int]) -> None:
    assert db.ids(text) == expected


@pytest.mark.parametrize(
    ("ranges", "python_ranges"),
    [
        ("-3000..3000:3", [range(-3000, 3001, 3)]),
        ("1..5000:4", [range(1, 5001, 4)]),
        ("2..5000", [range(2, 5001)]),
        ("-10000..-1", [range(-10000, 0)]),
        ("1..1000, 4..8000:4", [range(1, 1001), range(4, 8001, 4)]),
    ],
)
def test_large_ranges_use_between(db: Database, ranges: str, python_ranges: list[range]) -> None:
    expected = where(lambda r: any(r.detector in rng for rng in python_ranges))
    assert db.ids(f"detector IN ({ranges})") == expected
    assert db.ids(f"detector NOT IN ({ranges})") == ALL_IDS - expected
    sql = str(db.compile(f"detector IN ({ranges})").compile(dialect=sqlite.dialect()))
    assert "BETWEEN" in sql


def test_small_ranges_expand_to_an_in_list(db: Database) -> None:
    sql = str(db.compile("detector IN (1..1000)").compile(dialect=sqlite.dialect()))
    assert "BETWEEN" not in sql and " IN " in sql


# ---------------------------------------------------------------------------------------------------------
# Bind parameters.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "bind", "expected"),
    [
        ("detector = :d", {"d": 4}, {4}),
        ("band = :b", {"b": "i"}, where(lambda r: r.band == "i")),
        ("airmass > :a", {"a": 2.05}, {11, 12}),
        ("flag = :f", {"f": False}, where(lambda r: not r.flag)),
        ("detector IN (:ids)", {"ids": [1, 2, 3]}, {1, 2, 3}),
        ("detector IN (:ids)", {"ids": (4, 5)}, {4, 5}),
        ("detector IN (:ids)", {"ids": {6, 7}}, {6, 7}),
        ("detector IN (:ids)", {"ids": frozenset({8})}, {8}),
        ("detector IN (:ids)", {"ids": range(1, 4)}, {1, 2, 3}),
        ("detector IN (:ids)", {"ids": []}, set()),
        ("detector NOT IN (:ids)", {"ids": []}, ALL_IDS),
        ("detector NOT IN (:ids)", {"ids": [1, 2]}, ALL_IDS - {1, 2}),
        ("detector IN (:ids, 12, 1..2, :one)", {"ids": [5], "one": 7}, {1, 2, 5, 7, 12}),
        ("band IN (:bands)", {"bands": ["g", "r"]}, where(lambda r: r.band in "gr")),
        ("detector = :d + 1", {"d": 1}, {2}),
        ("detector = :param_1 OR detector = :detector_1", {"param_1": 1, "detector_1": 2}, {1, 2}),
        ("detector IN (:d) OR detector = :d", {"d": 3}, {3}),
        ("exposure.obs_time < :t", {"t": T0 + timedelta(hours=3)}, {1, 2}),
        ("exposure.obs_time < :t", {"t": datetime(2026, 5, 1, 3)}, {1, 2}),  # Naive is UTC.
        ("exposure.obs_time IN (:ts)", {"ts": [T0 + timedelta(hours=4.5)]}, {4}),
    ],
)
def test_binds(db: Database, text: str, bind: dict[str, Any], expected: set[int]) -> None:
    assert db.ids(text, bind) == expected


def test_missing_bind_lists_the_given_names(db: Database) -> None:
    with pytest.raises(UnknownIdentifierError) as info:
        db.compile("detector = :detectr", {"detector": 1, "band": "g"})
    assert str(info.value) == (
        "Unknown bind parameter ':detectr' in WHERE expression at column 12; "
        "bind parameters given: :band, :detector; did you mean ':detector'?"
    )
    with pytest.raises(UnknownIdentifierError, match="no bind values were given"):
        db.compile("detector = :d")


def test_collection_bind_outside_in_is_an_error(db: Database) -> None:
    with pytest.raises(
        ExpressionError, match=r"Bind parameter ':ids' is a list; a collection can only be used"
    ):
        db.compile("detector = :ids", {"ids": [1, 2]})


@pytest.mark.parametrize("value", [None, object(), b"bytes", {"a": 1}])
def test_unsupported_bind_values(db: Database, value: Any) -> None:
    with pytest.raises(ExpressionError, match="unsupported type"):
        db.compile("detector = :d", {"d": value})


def test_bind_list_elements_are_type_checked(db: Database) -> None:
    with pytest.raises(ExpressionError) as info:
        db.compile("detector IN (:ids)", {"ids": [1, "two"]})
    assert str(info.value) == (
        "Identifier 'detector' is an integer; cannot compare it with an element of bind parameter ':ids' "
        "(a string) (column 14)"
    )


# ---------------------------------------------------------------------------------------------------------
# Times and OVERLAPS.
# ---------------------------------------------------------------------------------------------------------


def test_time_comparisons(db: Database) -> None:
    assert db.ids("exposure.obs_time = T'2026-05-01T01:30:00'") == {1}
    assert db.ids("exposure.obs_time = T'2026-05-01T03:30:00+02:00'") == {1}
    assert db.ids(f"exposure.obs_time < {at(3)}") == {1, 2}
    assert db.ids(f"exposure.obs_time >= {at(11.5)}") == {11, 12}
    assert db.ids("exposure.obs_time > T'2026-05-01T01:30:00.000000001'") == ALL_IDS - {1}


def row_overlaps(row: Row, other: Timespan) -> bool:
    return row.timespan.overlaps(other)


QUERY_SPANS = [
    (2.0, 3.0),  # Exactly row 2.
    (2.5, 4.5),
    (3.0, 3.0),  # Empty at an hour boundary.
    (0.0, 1.0),  # Ends where row 1 begins: half-open, no overlap with row 1.
    (13.0, 14.0),  # After every bounded row.
    (-5.0, -4.0),
    (None, 1.5),
    (11.5, None),
    (None, None),
]


@pytest.mark.parametrize(("begin", "end"), QUERY_SPANS)
def test_overlaps_time_range_literal(db: Database, begin: float | None, end: float | None) -> None:
    span = Timespan(
        None if begin is None else T0_NS + int(begin * HOUR_NS),
        None if end is None else T0_NS + int(end * HOUR_NS),
    )
    expected = where(lambda r: row_overlaps(r, span))
    bind = {"b": span.begin, "e": span.end}
    assert db.ids("exposure.timespan OVERLAPS (:b, :e)", bind) == expected
    assert db.ids("(:b, :e) OVERLAPS exposure.timespan", bind) == expected
    assert db.ids("exposure.timespan OVERLAPS :span", {"span": span}) == expected
    assert db.ids(":span OVERLAPS exposure.timespan", {"span": span}) == expected
    if begin is not None and end is not None:
        assert db.ids(f"exposure.timespan OVERLAPS ({at(begin)}, {at(end)})") == expected
    # Unbounded rows (10, 11, 12) exercise the NULL-bound branches.
    if begin is None and end is None:
        assert expected == ALL_IDS


@pytest.mark.parametrize("hours", [0.5, 1.0, 1.5, 2.0, 11.99, 12.0, 12.5, 100.0, -100.0])
def test_overlaps_point(db: Database, hours: float) -> None:
    point = T0_NS + int(hours * HOUR_NS)
    expected = where(lambda r: r.timespan.contains(point))
    assert db.ids(f"exposure.timespan OVERLAPS {at(hours)}") == expected
    assert db.ids(f"{at(hours)} OVERLAPS exposure.timespan") == expected
    when = T0 + timedelta(hours=hours)
    assert db.ids("exposure.timespan OVERLAPS :t", {"t": when}) == expected
    assert 10 in expected  # The row unbounded on both sides contains every instant.


def test_overlaps_between_timespan_columns(db: Database) -> None:
    expected = where(lambda r: r.timespan.overlaps(r.window))
    assert expected and expected != ALL_IDS
    assert db.ids("exposure.timespan OVERLAPS window.timespan") == expected
    assert db.ids("window.timespan OVERLAPS exposure.timespan") == expected


def test_overlaps_with_a_time_column_as_point(db: Database) -> None:
    expected = where(lambda r: r.timespan.contains(r.obs_ns))
    assert db.ids("exposure.timespan OVERLAPS exposure.obs_time") == expected
    assert db.ids("window.timespan OVERLAPS exposure.obs_time") == where(
        lambda r: r.window.contains(r.obs_ns)
    )


def test_overlaps_combined_with_other_conditions(db: Database) -> None:
    text = f"exposure.timespan OVERLAPS ({at(2)}, {at(6)}) AND NOT band = 'g' AND detector IN (1..12:2)"
    span = Timespan(T0_NS + 2 * HOUR_NS, T0_NS + 6 * HOUR_NS)
    assert db.ids(text) == where(
        lambda r: r.timespan.overlaps(span) and r.band != "g" and r.detector % 2 == 1
    )


@pytest.mark.parametrize(
    ("text", "bind", "message"),
    [
        (
            f"exposure.obs_time OVERLAPS {at(1)}",
            {},
            "OVERLAPS needs a timespan or time range on one side (column 1)",
        ),
        (
            "detector OVERLAPS exposure.timespan",
            {},
            "OVERLAPS needs timespans, time ranges or times, not identifier 'detector', which is an integer "
            "(column 1)",
        ),
        (
            "exposure.timespan OVERLAPS 'yesterday'",
            {},
            "OVERLAPS needs timespans, time ranges or times, not the string 'yesterday' (column 28)",
        ),
        (
            f"exposure.timespan OVERLAPS ({at(2)}, {at(1)})",
            {},
            "Time range ends before it begins (column 28)",
        ),
        (
            "exposure.timespan OVERLAPS (:b, :e)",
            {"b": T0, "e": "tomorrow"},
            "Bind parameter ':e' bounds a time range, so it must be a datetime or None, not str (column 33)",
        ),
    ],
)
def test_overlaps_errors(db: Database, text: str, bind: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        db.compile(text, bind)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "bind", "message"),
    [
        (
            "exposure.timespan = 1",
            {},
            "Identifier 'exposure.timespan' is a timespan; it can only be used with OVERLAPS (column 1)",
        ),
        (
            "exposure.timespan < exposure.timespan",
            {},
            "Identifier 'exposure.timespan' is a timespan; it can only be used with OVERLAPS (column 1)",
        ),
        (
            "detector IN (:span)",
            {"span": Timespan(1, 2)},
            "Bind parameter ':span' (a Timespan) can only be used with OVERLAPS (column 14)",
        ),
        (
            f"detector = ({at(1)}, {at(2)})",
            {},
            "A time range (begin, end) can only be used with OVERLAPS (column 12)",
        ),
    ],
)
def test_timespans_outside_overlaps(db: Database, text: str, bind: dict[str, Any], message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        db.compile(text, bind)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------------------
# Type errors.
# ---------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "detector = 'a'",
            "Identifier 'detector' is an integer; cannot compare it with the string 'a' (column 12)",
        ),
        (
            "'a' = detector",
            "Identifier 'detector' is an integer; cannot compare it with the string 'a' (column 1)",
        ),
        ("band = 1", "Identifier 'band' is a string; cannot compare it with the integer 1 (column 8)"),
        ("band > 1.5", "Identifier 'band' is a string; cannot compare it with the number 1.5 (column 8)"),
        (
            "band = detector",
            "Identifier 'band' is a string; cannot compare it with identifier 'detector', "
            "which is an integer (column 8)",
        ),
        (
            "exposure.obs_time > '2026-05-01'",
            "Identifier 'exposure.obs_time' is a time; cannot compare it with the string '2026-05-01' "
            "(column 21)",
        ),
        (
            "exposure.obs_time > 5",
            "Identifier 'exposure.obs_time' is a time; cannot compare it with the integer 5 (column 21)",
        ),
        (
            "detector < T'2026-05-01'",
            "Identifier 'detector' is an integer; cannot compare it with the time "
            "T'2026-05-01T00:00:00+00:00' (column 12)",
        ),
        ("flag = 1", "Identifier 'flag' is a boolean; cannot compare it with the integer 1 (column 8)"),
        ("1 = 'a'", "Cannot compare the integer 1 with the string 'a' (column 5)"),
        (
            "detector + 1 = 'it''s'",
            "Cannot compare an integer expression with the string 'it''s' (column 16)",
        ),
        (
            "detector IN (1, 'b', 3)",
            "Identifier 'detector' is an integer; cannot compare it with the string 'b' (column 17)",
        ),
        (
            "band IN (1..3)",
            "Identifier 'band' is a string; cannot compare it with the range 1..3 (column 10)",
        ),
        (
            "airmass IN (1..3:2)",
            "Identifier 'airmass' is a floating-point number; cannot compare it with the range 1..3:2, as "
            "ranges apply to integers only (column 13)",
        ),
        (
            "band + 1 = 2",
            "Cannot apply '+' to identifier 'band', which is a string; it needs numbers (column 1)",
        ),
        (
            "-band = 'a'",
            "Cannot apply '-' to identifier 'band', which is a string; it needs numbers (column 2)",
        ),
        (
            "airmass % 2 = 0",
            "Cannot apply '%' to identifier 'airmass', which is a floating-point number; it needs integers "
            "(column 1)",
        ),
        ("detector * 'x' = 1", "Cannot apply '*' to the string 'x'; it needs numbers (column 12)"),
        (
            "band = :b",
            "Identifier 'band' is a string; cannot compare it with bind parameter ':b' (an integer) "
            "(column 8)",
        ),
    ],
)
def test_type_errors(db: Database, text: str, message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        db.compile(text, {"b": 3})
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("detector", "identifier 'detector', which is an integer (column 1)"),
        ("detector + 1", "an integer expression (column 1)"),
        ("'abc'", "the string 'abc' (column 1)"),
        ("flag OR detector", "identifier 'detector', which is an integer (column 9)"),
        ("NOT band", "identifier 'band', which is a string (column 5)"),
        ("exposure.timespan", "identifier 'exposure.timespan', which is a timespan (column 1)"),
        (":span", "bind parameter ':span' (a Timespan) (column 1)"),
        ("(:b, :b)", "a time range (begin, end) (column 1)"),
    ],
)
def test_expression_must_be_a_condition(db: Database, text: str, what: str) -> None:
    with pytest.raises(ExpressionError) as info:
        db.compile(text, {"span": Timespan(None, 5), "b": None})
    assert str(info.value) == (
        f"Expression must be a condition (a comparison, IN, OVERLAPS or a boolean), not {what}"
    )


# ---------------------------------------------------------------------------------------------------------
# Identifiers and the resolver contract.
# ---------------------------------------------------------------------------------------------------------


def test_unknown_identifier_suggests_close_matches(db: Database) -> None:
    with pytest.raises(UnknownIdentifierError) as info:
        db.compile("detectr = 1")
    assert (
        str(info.value)
        == "Unknown identifier 'detectr' in WHERE expression at column 1; did you mean 'detector'?"
    )
    with pytest.raises(UnknownIdentifierError) as info:
        db.compile("band = 'g' AND exposure.timespn OVERLAPS T'2026-05-01'")
    assert str(info.value).startswith(
        "Unknown identifier 'exposure.timespn' in WHERE expression at column 16; "
        "did you mean 'exposure.timespan'"
    )


def test_unknown_identifier_error_helper() -> None:
    err = unknown_identifier_error("viist", ["visit", "detector"], 7)
    assert isinstance(err, UnknownIdentifierError)
    assert str(err) == "Unknown identifier 'viist' in WHERE expression at column 7; did you mean 'visit'?"
    err = unknown_identifier_error("band", ["bands", "brand", "detector"], 2)
    assert "at column 2; did you mean " in str(err)
    assert "'bands'" in str(err) and "'brand'" in str(err) and "detector" not in str(err)
    err = unknown_identifier_error("zzz", ["visit"], 1)
    assert str(err) == "Unknown identifier 'zzz' in WHERE expression at column 1."


def test_resolver_receives_parts_and_columns(db: Database) -> None:
    resolver = Resolver(db.table)
    compile_expression(parse_expression("band = 'g' AND exposure.timespan OVERLAPS T'2026-05-01'"), resolver)
    assert resolver.calls == [(("band",), 1), (("exposure", "timespan"), 16)]


def test_none_compiles_to_true(db: Database) -> None:
    assert db.ids("") == ALL_IDS
    condition = compile_expression(None, db.resolver)
    assert str(condition.compile(dialect=sqlite.dialect())) == "1"


# ---------------------------------------------------------------------------------------------------------
# Dialects.
# ---------------------------------------------------------------------------------------------------------


def test_renders_for_postgresql(db: Database) -> None:
    text = (
        "flag AND NOT band IN ('g', :b) AND detector IN (1..5000:2, :ids) AND detector % 3 != 1 "
        f"AND exposure.timespan OVERLAPS ({at(1)}, :e) AND exposure.timespan OVERLAPS window.timespan "
        "AND airmass / 2 < 1"
    )
    condition = db.compile(text, {"b": "r", "ids": [2, 4], "e": None})
    sql = str(condition.compile(dialect=postgresql.dialect()))  # type: ignore[no-untyped-call]
    assert "BETWEEN" in sql and "IS NULL" in sql and "%%" in sql
    # The same condition runs on SQLite.
    span = Timespan(T0_NS + HOUR_NS, None)
    expected = where(
        lambda r: (
            r.flag
            and r.band not in ("g", "r")
            and (r.detector % 2 == 1 or r.detector in (2, 4))
            and r.detector % 3 != 1
            and r.timespan.overlaps(span)
            and r.timespan.overlaps(r.window)
            and r.airmass / 2 < 1
        )
    )
    assert db.ids(text, {"b": "r", "ids": [2, 4], "e": None}) == expected


def test_float_values_in_an_integer_in_list_keep_their_type(db: Database) -> None:
    # psycopg 3 casts bound values to the column's type; 2.5::INTEGER would round to 3.
    condition = db.compile("detector IN (2.5, 3)")
    dialect = psycopg.dialect()  # type: ignore[no-untyped-call]
    sql = str(condition.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))
    assert sql.count("::INTEGER") == 1
    assert db.ids("detector IN (2.5, 3)") == {3}
