"""Structured log records captured while a quantum runs (stored as JSON lines)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass

__all__ = ["ButlerLogRecord", "ButlerLogRecords"]


@dataclass(frozen=True, slots=True)
class ButlerLogRecord:
    """One log message with where and when it was emitted."""

    name: str
    """Logger name."""
    level: str
    """Level name (INFO, WARNING, ...)."""
    message: str
    """The formatted message."""
    created: float
    """Seconds since the epoch."""
    filename: str = ""
    lineno: int = 0
    process: int = 0

    @classmethod
    def from_record(cls, record: logging.LogRecord) -> ButlerLogRecord:
        """Capture a standard-library log record."""
        return cls(
            record.name,
            record.levelname,
            record.getMessage(),
            record.created,
            record.filename,
            record.lineno,
            record.process or 0,
        )


class ButlerLogRecords:
    """An ordered collection of `ButlerLogRecord`; also a logging handler target via `handler`."""

    def __init__(self, records: Iterable[ButlerLogRecord] = ()) -> None:
        self._records = list(records)

    def append(self, record: ButlerLogRecord) -> None:
        """Add one record."""
        self._records.append(record)

    def __iter__(self) -> Iterator[ButlerLogRecord]:
        return iter(self._records)

    def __len__(self) -> int:
        return len(self._records)

    def __getitem__(self, index: int) -> ButlerLogRecord:
        return self._records[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ButlerLogRecords):
            return self._records == other._records
        return NotImplemented

    def to_json_lines(self) -> str:
        """One JSON object per line."""
        return "".join(json.dumps(asdict(r)) + "\n" for r in self._records)

    @classmethod
    def from_json_lines(cls, text: str) -> ButlerLogRecords:
        """Inverse of `to_json_lines`; a line that is not a log record raises ValueError naming it."""
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = ButlerLogRecord(**json.loads(line))
            except (json.JSONDecodeError, TypeError) as err:
                raise ValueError(f"line {number} is not a log record: {err}") from err
            if not (
                isinstance(record.name, str)
                and isinstance(record.message, str)
                and isinstance(record.level, str)
                and isinstance(record.created, int | float)
            ):
                raise ValueError(f"line {number} has fields of the wrong type: {line!r}")
            records.append(record)
        return cls(records)

    def handler(self, level: int = logging.INFO) -> logging.Handler:
        """A logging handler that appends every record it sees here."""
        target = self

        class _Capture(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                target.append(ButlerLogRecord.from_record(record))

        return _Capture(level)
