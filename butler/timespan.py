"""Half-open time intervals, stored in the registry as integer nanoseconds since the Unix epoch (UTC)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = ["Timespan", "datetime_to_ns", "ns_to_datetime"]

_NS_PER_US = 1_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def datetime_to_ns(value: datetime | str) -> int:
    """Convert a datetime (naive values are taken as UTC) or ISO string to nanoseconds since the epoch."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * _NS_PER_US


def ns_to_datetime(ns: int) -> datetime:
    """Convert nanoseconds since the epoch to an aware UTC datetime (microsecond precision)."""
    seconds, remainder = divmod(ns, 1_000_000_000)
    return datetime.fromtimestamp(seconds, tz=UTC).replace(microsecond=remainder // _NS_PER_US)


@dataclass(frozen=True, slots=True)
class Timespan:
    """A half-open interval ``[begin, end)`` in nanoseconds since the epoch.

    ``None`` for either bound means unbounded on that side.
    """

    begin_ns: int | None
    """Inclusive start, nanoseconds since 1970-01-01T00:00:00 UTC; None is -infinity."""

    end_ns: int | None
    """Exclusive end, nanoseconds since the epoch; None is +infinity."""

    def __post_init__(self) -> None:
        if self.begin_ns is not None and self.end_ns is not None and self.end_ns < self.begin_ns:
            raise ValueError(f"Timespan end {self.end_ns} is before its begin {self.begin_ns}.")

    @classmethod
    def from_datetimes(cls, begin: datetime | str | None, end: datetime | str | None) -> Timespan:
        """Build a timespan from datetimes or ISO strings (naive values are UTC)."""
        return cls(
            None if begin is None else datetime_to_ns(begin),
            None if end is None else datetime_to_ns(end),
        )

    @property
    def begin(self) -> datetime | None:
        """Start as an aware UTC datetime, or None if unbounded."""
        return None if self.begin_ns is None else ns_to_datetime(self.begin_ns)

    @property
    def end(self) -> datetime | None:
        """End as an aware UTC datetime, or None if unbounded."""
        return None if self.end_ns is None else ns_to_datetime(self.end_ns)

    @property
    def is_empty(self) -> bool:
        """Whether the interval contains no instant (begin == end)."""
        return self.begin_ns is not None and self.begin_ns == self.end_ns

    def overlaps(self, other: Timespan) -> bool:
        """Whether the two half-open intervals share any instant (an empty interval overlaps nothing)."""
        if self.is_empty or other.is_empty:
            return False
        starts_before_other_ends = (
            self.begin_ns is None or other.end_ns is None or self.begin_ns < other.end_ns
        )
        other_starts_before_end = (
            other.begin_ns is None or self.end_ns is None or other.begin_ns < self.end_ns
        )
        return starts_before_other_ends and other_starts_before_end

    def contains(self, ns: int) -> bool:
        """Whether the instant ``ns`` lies inside the interval."""
        return (self.begin_ns is None or self.begin_ns <= ns) and (self.end_ns is None or ns < self.end_ns)

    def __str__(self) -> str:
        begin = "-inf" if self.begin is None else self.begin.isoformat()
        end = "+inf" if self.end is None else self.end.isoformat()
        return f"[{begin}, {end})"
