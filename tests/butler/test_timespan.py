"""Tests of half-open timespans and nanosecond time conversion (butler.timespan)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from butler.timespan import Timespan, datetime_to_ns, ns_to_datetime

NS = 1_000_000_000
"""Nanoseconds per second."""


def span(begin: int | None, end: int | None) -> Timespan:
    return Timespan(begin, end)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (span(0, 10), span(5, 15), True),
        (span(0, 10), span(2, 3), True),
        (span(0, 10), span(0, 10), True),
        (span(0, 10), span(10, 20), False),  # touching: end is exclusive
        (span(0, 10), span(9, 20), True),
        (span(0, 10), span(11, 20), False),
        (span(0, 1), span(1, 2), False),
        (span(None, 10), span(9, 11), True),
        (span(None, 10), span(10, None), False),
        (span(None, 10), span(None, 0), True),
        (span(10, None), span(0, 11), True),
        (span(10, None), span(0, 10), False),
        (span(10, None), span(1000, None), True),
        (span(None, None), span(5, 6), True),
        (span(None, None), span(None, None), True),
    ],
)
def test_overlaps(a: Timespan, b: Timespan, expected: bool) -> None:
    assert a.overlaps(b) is expected
    assert b.overlaps(a) is expected


def test_overlaps_adjacent_nights() -> None:
    night1 = Timespan.from_datetimes("2024-01-01T12:00:00", "2024-01-02T12:00:00")
    night2 = Timespan.from_datetimes("2024-01-02T12:00:00", "2024-01-03T12:00:00")
    assert not night1.overlaps(night2)
    one_ns_earlier = Timespan(night2.begin_ns - 1, night2.end_ns)  # type: ignore[operator]
    assert night1.overlaps(one_ns_earlier)


@pytest.mark.parametrize("other", [span(0, 10), span(None, None), span(None, 6), span(4, None)])
def test_empty_timespan_overlaps_nothing(other: Timespan) -> None:
    empty = span(5, 5)
    assert not empty.contains(5)
    assert not empty.overlaps(other)
    assert not other.overlaps(empty)


def test_empty_timespan_does_not_overlap_itself() -> None:
    assert not span(5, 5).overlaps(span(5, 5))


def test_contains() -> None:
    t = span(10, 20)
    assert t.contains(10)
    assert t.contains(19)
    assert not t.contains(20)
    assert not t.contains(9)
    assert span(None, 20).contains(-(10**18))
    assert not span(None, 20).contains(20)
    assert span(10, None).contains(10**19)
    assert span(None, None).contains(0)


def test_end_before_begin_raises() -> None:
    with pytest.raises(ValueError, match="Timespan end 5 is before its begin 10"):
        Timespan(10, 5)
    with pytest.raises(ValueError, match="before its begin"):
        Timespan.from_datetimes("2024-01-02", "2024-01-01")


def test_unbounded_properties() -> None:
    t = Timespan(None, None)
    assert t.begin is None and t.end is None
    assert str(t) == "[-inf, +inf)"


def test_frozen_and_hashable() -> None:
    t = span(1, 2)
    assert t == span(1, 2)
    assert len({t, span(1, 2)}) == 1
    with pytest.raises(AttributeError):
        t.begin_ns = 0  # type: ignore[misc]


def test_from_datetimes_iso_strings() -> None:
    t = Timespan.from_datetimes("2024-01-01T00:00:00", "2024-01-01T00:00:30.5")
    assert t.begin_ns == 1_704_067_200 * NS
    assert t.end_ns == t.begin_ns + 30 * NS + NS // 2
    assert t.begin == datetime(2024, 1, 1, tzinfo=UTC)
    assert str(t) == "[2024-01-01T00:00:00+00:00, 2024-01-01T00:00:30.500000+00:00)"


def test_from_datetimes_naive_is_utc_and_aware_is_converted() -> None:
    naive = Timespan.from_datetimes(datetime(2024, 1, 1, 12), None)
    aware_utc = Timespan.from_datetimes(datetime(2024, 1, 1, 12, tzinfo=UTC), None)
    chile = timezone(timedelta(hours=-3))
    aware_chile = Timespan.from_datetimes(datetime(2024, 1, 1, 9, tzinfo=chile), None)
    iso_offset = Timespan.from_datetimes("2024-01-01T09:00:00-03:00", None)
    iso_z = Timespan.from_datetimes("2024-01-01T12:00:00Z", None)
    assert naive == aware_utc == aware_chile == iso_offset == iso_z
    assert naive.end_ns is None
    assert naive.begin is not None and naive.begin.tzinfo is UTC


def test_from_datetimes_bad_string() -> None:
    with pytest.raises(ValueError, match="Invalid isoformat"):
        Timespan.from_datetimes("yesterday", None)


@pytest.mark.parametrize(
    "value",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2024, 2, 29, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(1900, 6, 1, 1, 2, 3, 4, tzinfo=UTC),
        datetime(2262, 4, 11, tzinfo=UTC),
    ],
)
def test_datetime_ns_round_trip(value: datetime) -> None:
    ns = datetime_to_ns(value)
    assert ns % 1000 == 0
    assert ns_to_datetime(ns) == value
    assert datetime_to_ns(ns_to_datetime(ns)) == ns


def test_datetime_to_ns_known_values() -> None:
    assert datetime_to_ns(datetime(1970, 1, 1)) == 0
    assert datetime_to_ns("1970-01-01T00:00:01") == NS
    assert datetime_to_ns("1969-12-31T23:59:59.999999") == -1000


def test_ns_to_datetime_truncates_below_microseconds() -> None:
    assert ns_to_datetime(1_999) == datetime(1970, 1, 1, microsecond=1, tzinfo=UTC)
    assert ns_to_datetime(-1) == datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)
    assert ns_to_datetime(NS + 500).tzinfo is UTC
