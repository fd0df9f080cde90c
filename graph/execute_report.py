"""What running quanta did: one result per quantum, counted by task, and the exit code it earns.

Shared by the local executor (`graph.execute`) and the batch job (`graph.run_qbb`); it imports
nothing beyond the standard library so the job's import path stays short.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

__all__ = [
    "EXIT_FAILED",
    "EXIT_INFRASTRUCTURE",
    "EXIT_OK",
    "ExecutionReport",
    "QuantumRunResult",
    "RunStatus",
]

EXIT_OK = 0
"""Every quantum succeeded (or found no work, or had run before)."""
EXIT_FAILED = 1
"""A quantum raised (the task's own failure), or quanta were blocked or not run because of one."""
EXIT_INFRASTRUCTURE = 3
"""Something outside the tasks failed: unreadable graph, missing input file, unusable datastore."""


class RunStatus(enum.Enum):
    """How one quantum ended in an execution."""

    SUCCEEDED = "succeeded"
    NO_WORK = "no_work"
    """The task found nothing to do; counts as success (metadata written)."""
    SKIPPED = "skipped"
    """Its metadata output already existed (``--skip-existing``, or a retried job): not run again."""
    FAILED = "failed"
    """The task raised, timed out, or its worker died; or an input file was missing."""
    BLOCKED = "blocked"
    """Not run because a quantum it depends on failed."""
    NOT_RUN = "not_run"
    """Not run because execution stopped early (``--fail-fast``, or a job without ``--keep-going``)."""

    @property
    def ok(self) -> bool:
        """Whether this status counts as success."""
        return self in (RunStatus.SUCCEEDED, RunStatus.NO_WORK, RunStatus.SKIPPED)


@dataclass(frozen=True, slots=True)
class QuantumRunResult:
    """The outcome of one quantum (small and picklable: workers send it to the parent)."""

    node_id: uuid.UUID
    """Node id in the quantum graph."""
    label: str
    """Task label."""
    data_id: str
    """The quantum's data ID, formatted for messages."""
    status: RunStatus
    error: str | None = None
    """``Type: message`` of the failure (``timeout: ...`` for a timeout); None unless FAILED or BLOCKED."""
    infrastructure: bool = False
    """The failure lies outside the task (missing input file, unusable datastore): exit code 3."""
    wall_time: float = 0.0
    """Seconds spent on the quantum (reading, running, writing)."""
    max_rss_mb: float = 0.0
    """Peak resident memory of the process that ran it, MB."""

    def describe(self) -> str:
        """``label {data ID}: status[: error]`` for logs and summaries."""
        text = f"{self.label} {self.data_id}: {self.status.value}"
        return f"{text}: {self.error}" if self.error else text


@dataclass
class ExecutionReport:
    """Counts of quantum results by task and status, with every failure kept in full.

    Blocked quanta are counted, not kept one by one (downstream of an early failure there can be
    millions); `failures` holds the FAILED results.
    """

    labels: list[str] = field(default_factory=list)
    """Task labels in pipeline order (the rows of `summary_rows`)."""
    counts: dict[str, dict[RunStatus, int]] = field(default_factory=dict)
    """Task label -> status -> number of quanta."""
    failures: list[QuantumRunResult] = field(default_factory=list)
    """Every FAILED result, in the order they happened."""
    wall_time: float = 0.0
    """Seconds the whole execution took."""

    @classmethod
    def for_labels(cls, labels: Iterable[str]) -> ExecutionReport:
        """An empty report with a row per task label."""
        labels = list(labels)
        return cls(labels=labels, counts={label: {} for label in labels})

    def add(self, result: QuantumRunResult) -> None:
        """Count one result (keeping it if it failed)."""
        self.count(result.label, result.status)
        if result.status is RunStatus.FAILED:
            self.failures.append(result)

    def count(self, label: str, status: RunStatus, number: int = 1) -> None:
        """Count ``number`` quanta of task ``label`` that ended with ``status``."""
        if label not in self.counts:
            self.labels.append(label)
            self.counts[label] = {}
        by_status = self.counts[label]
        by_status[status] = by_status.get(status, 0) + number

    def total(self, status: RunStatus | None = None) -> int:
        """Quanta with ``status`` (all quanta if None)."""
        return sum(
            number
            for by_status in self.counts.values()
            for key, number in by_status.items()
            if status is None or key is status
        )

    @property
    def succeeded(self) -> bool:
        """Whether every quantum succeeded, found no work, or was skipped as already done."""
        return all(status.ok for by_status in self.counts.values() for status in by_status)

    @property
    def exit_code(self) -> int:
        """0 if all succeeded; 3 if a failure lies outside the tasks; 1 otherwise."""
        if self.succeeded:
            return EXIT_OK
        if any(result.infrastructure for result in self.failures):
            return EXIT_INFRASTRUCTURE
        return EXIT_FAILED

    def summary_rows(self) -> list[tuple[str, Mapping[RunStatus, int]]]:
        """(label, counts by status) per task in pipeline order, then a ``TOTAL`` row."""
        rows: list[tuple[str, Mapping[RunStatus, int]]] = [
            (label, dict(self.counts.get(label, {}))) for label in self.labels
        ]
        rows.append(("TOTAL", {status: self.total(status) for status in RunStatus}))
        return rows

    def format_summary(self) -> str:
        """A table: one row per task, a column per status that occurred (``no work`` etc.)."""
        shown = [s for s in RunStatus if self.total(s) or s in (RunStatus.SUCCEEDED, RunStatus.FAILED)]
        headers = ["task", *(status.value.replace("_", " ") for status in shown)]
        body = [
            [label, *(str(by_status.get(status, 0)) for status in shown)]
            for label, by_status in self.summary_rows()
        ]
        widths = [max(len(row[i]) for row in [headers, *body]) for i in range(len(headers))]
        lines = []
        for row in [headers, *body]:
            cells = [row[0].ljust(widths[0])] + [
                cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
        return "\n".join(lines)
