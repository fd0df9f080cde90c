"""After a run: which quanta of a graph succeeded, failed (and why), were blocked, or did not run (``pipetask report``).

A quantum's state follows from its ``<label>_metadata`` and ``<label>_log`` datasets, which the
executors write (graph/quantum_execution.py): the metadata only on success, the log on success
and on failure. So

* succeeded: the metadata dataset exists;
* failed: the log exists but not the metadata; the exception comes from the log's last ERROR record;
* blocked: neither exists, and an upstream quantum failed or was blocked, or the file of an input
  that existed when the graph was built is gone (the job stops with `MissingInputError`, exit
  code 3, before the task runs, so it leaves no log). An input an upstream quantum was to write
  but did not (it found no work) blocks nothing: the executors leave it out and run the quantum;
* not run: neither exists and nothing upstream explains it (the job never ran, was killed, or
  the workflow is still running).

Where "exists" is looked up (`ReportSource`): in the registry (after ``butler transfer-from-graph``
or a local ``pipetask run``), in the datastore's files (predicted paths, before the merge), or
both (``auto``: the registry first, then the files of what is not registered). States are
computed for the whole graph at once with numpy over the edge table; only the logs of failed
quanta (and the existing inputs of quanta that did not run) are looked at one by one.
"""

from __future__ import annotations

import enum
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from butler.butler import Butler
from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef
from butler.datastore import DatastoreError, DatastoreRecord
from butler.errors import ButlerError
from butler.log_records import ButlerLogRecords
from butler.timing import log_duration

from .quantum_graph import EdgeKind, QuantumGraph, ids_to_array, ids_to_numpy, uuid_from_bytes

__all__ = [
    "QuantumFailure",
    "QuantumState",
    "ReportSource",
    "RunReport",
    "TaskSummary",
    "existing_dataset_ids",
    "failure_from_log",
    "failure_rows",
    "index_ids",
    "isin_ids",
    "refs_of_datasets",
    "report_run",
    "summary_rows",
    "unique_ids",
]

_LOG = logging.getLogger(__name__)


class QuantumState(enum.IntEnum):
    """What became of one quantum."""

    SUCCEEDED = 0
    FAILED = 1
    BLOCKED = 2
    NOT_RUN = 3


class ReportSource(enum.Enum):
    """Where the existence of metadata/log datasets is looked up."""

    AUTO = "auto"
    """The registry, then the files of predicted outputs that are not registered."""
    REGISTRY = "registry"
    """Only the registry (after ``butler transfer-from-graph``, or a local run)."""
    FILES = "files"
    """Only the datastore's files at their predicted paths (before the merge)."""


@dataclass
class QuantumFailure:
    """One failed quantum and what its log says."""

    node_id: str
    data_id: dict[str, Any]
    exception_type: str
    """Class name of the exception ("" when the log does not say)."""
    message: str
    """The exception's message (or the last ERROR message of the log)."""


@dataclass
class TaskSummary:
    """The quanta of one task by state."""

    label: str
    expected: int = 0
    """Quanta in the graph."""
    succeeded: int = 0
    failed: int = 0
    blocked: int = 0
    not_run: int = 0
    failures: list[QuantumFailure] = field(default_factory=list)
    """Failed quanta with their exceptions (at most ``max_failures`` of them; ``failed`` counts all)."""
    blocked_by_missing_input: int = 0
    """How many of the blocked quanta lack the file of an input that existed when the graph was built."""


@dataclass
class RunReport:
    """States of every quantum of a graph, summed by task."""

    output_run: str
    source: str
    """Where existence was looked up (a `ReportSource` value)."""
    tasks: list[TaskSummary] = field(default_factory=list)
    """One summary per task, in the graph's task order."""

    @property
    def complete(self) -> bool:
        """Whether every quantum succeeded."""
        return all(t.succeeded == t.expected for t in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping (``pipetask report --json``)."""
        return {
            "output_run": self.output_run,
            "source": self.source,
            "tasks": [asdict(t) for t in self.tasks],
        }


def report_run(
    butler: Butler,
    graph: QuantumGraph,
    *,
    source: ReportSource = ReportSource.AUTO,
    max_failures: int | None = 100,
) -> RunReport:
    """The state of every quantum of ``graph`` in ``butler``'s repository, summed per task.

    Parameters
    ----------
    butler
        The repository the graph ran against.
    graph
        The whole graph.
    source
        Where metadata/log datasets are looked up (see `ReportSource`).
    max_failures
        Per task, read the logs of at most this many failed quanta (None: all of them).
    """
    with log_duration(_LOG, f"Reported on {graph.quantum_count()} quanta"):
        return _Reporter(butler, graph, source).report(max_failures)


class _Reporter:
    """The columnar state computation: one array slot per quantum, in task order."""

    def __init__(self, butler: Butler, graph: QuantumGraph, source: ReportSource) -> None:
        self.butler = butler
        self.graph = graph
        self.source = source
        self.labels = graph.task_labels()
        self.nodes = graph.topological_order_array()
        counts = [graph.quantum_count(label) for label in self.labels]
        self.task_of = np.repeat(np.arange(len(self.labels), dtype=np.int32), counts)
        edges = graph.edges
        self.edge_nodes = index_ids(ids_to_numpy(edges.column("node_id")), self.nodes)
        self.edge_datasets = ids_to_numpy(edges.column("dataset_id"))
        self.edge_kinds = edges.column("kind").to_numpy(zero_copy_only=False)

    def _kind(self, *kinds: EdgeKind) -> np.ndarray:
        return np.isin(self.edge_kinds, [int(k) for k in kinds])

    def _has_dataset(self, kind: EdgeKind, among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(per-quantum flag: its ``kind`` dataset exists, the existing dataset ids of that kind).

        Only the quanta flagged in ``among`` (default: all) are looked at.
        """
        mask = self._kind(kind)
        if among is not None:
            mask &= among[self.edge_nodes]
        ids = self.edge_datasets[mask]
        names = pc.unique(self.graph.edges.column("dataset_type").filter(pa.array(mask))).to_pylist()
        exists = existing_dataset_ids(self.butler, self.graph, ids, self.source, dataset_types=names)
        flag = np.zeros(len(self.nodes), dtype=bool)
        flag[self.edge_nodes[mask][isin_ids(ids, exists)]] = True
        return flag, exists

    def report(self, max_failures: int | None) -> RunReport:
        succeeded, _ = self._has_dataset(EdgeKind.METADATA)
        logged, existing_logs = self._has_dataset(EdgeKind.LOG, among=~succeeded)
        state = np.full(len(self.nodes), int(QuantumState.NOT_RUN), dtype=np.int8)
        state[logged] = int(QuantumState.FAILED)
        state[succeeded] = int(QuantumState.SUCCEEDED)
        missing_input = self._propagate_blocked(state)
        report = RunReport(self.graph.metadata.output_run, self.source.value)
        for index, label in enumerate(self.labels):
            mine = self.task_of == index
            counts = np.bincount(state[mine], minlength=len(QuantumState))
            report.tasks.append(
                TaskSummary(
                    label,
                    expected=int(mine.sum()),
                    succeeded=int(counts[QuantumState.SUCCEEDED]),
                    failed=int(counts[QuantumState.FAILED]),
                    blocked=int(counts[QuantumState.BLOCKED]),
                    not_run=int(counts[QuantumState.NOT_RUN]),
                    blocked_by_missing_input=int((missing_input & mine).sum()),
                )
            )
        failed = np.flatnonzero(state == int(QuantumState.FAILED))
        self._add_failures(report, failed, existing_logs, max_failures)
        return report

    def _propagate_blocked(self, state: np.ndarray) -> np.ndarray:
        """Mark BLOCKED the not-run quanta downstream of a failure or lacking an existing input's file.

        Every quantum edge goes from an earlier task to a later one, so one pass over the tasks in
        order settles each quantum after all its producers. Returns the quanta blocked by a
        missing input file.
        """
        writes = self._kind(EdgeKind.OUTPUT, EdgeKind.METADATA, EdgeKind.LOG)
        reads = self._kind(EdgeKind.INPUT, EdgeKind.PREREQUISITE)
        out_ids, out_nodes = self.edge_datasets[writes], self.edge_nodes[writes]
        in_ids, in_nodes = self.edge_datasets[reads], self.edge_nodes[reads]
        where = index_ids(in_ids, out_ids)
        produced = where >= 0
        # (producer slot, consumer slot) of every quantum-to-quantum edge; (dataset, consumer slot)
        # of every input that existed when the graph was built.
        producer, consumer = out_nodes[where[produced]], in_nodes[produced]
        existing_ids, existing_consumer = in_ids[~produced], in_nodes[~produced]
        check_files = self.source is not ReportSource.REGISTRY
        missing_input = np.zeros(len(self.nodes), dtype=bool)
        bad = [int(QuantumState.FAILED), int(QuantumState.BLOCKED)]
        not_run = int(QuantumState.NOT_RUN)
        for index in range(len(self.labels)):
            if check_files:
                mask = (self.task_of[existing_consumer] == index) & (state[existing_consumer] == not_run)
                if mask.any():
                    ids = existing_ids[mask]
                    lacking = existing_consumer[mask][isin_ids(ids, self._missing_files(unique_ids(ids)))]
                    state[lacking] = int(QuantumState.BLOCKED)
                    missing_input[lacking] = True
            mask = self.task_of[consumer] == index
            if mask.any():
                p, c = producer[mask], consumer[mask]
                blocked = c[np.isin(state[p], bad) & (state[c] == not_run)]
                state[blocked] = int(QuantumState.BLOCKED)
        return missing_input

    def _missing_files(self, dataset_ids: np.ndarray) -> np.ndarray:
        """Those of ``dataset_ids`` (existing inputs, located by the graph's records) whose files are gone."""
        datastore = self.butler.file_datastore
        table = self.graph.datastore_records
        ids = ids_to_numpy(table.column("dataset_id"))
        mask = isin_ids(ids, dataset_ids) & pc.equal(table.column("datastore_name"), datastore.name).to_numpy(
            zero_copy_only=False
        )
        rows = table.filter(pa.array(mask)).to_pylist()
        gone = {
            value
            for value, row in zip(ids[mask], rows, strict=True)
            if not datastore.artifacts_exist(
                [DatastoreRecord.from_row({**row, "dataset_id": uuid_from_bytes(value)})]
            )
        }
        return np.array(sorted(gone), dtype="S16")

    def _add_failures(
        self, report: RunReport, failed: np.ndarray, existing_logs: np.ndarray, max_failures: int | None
    ) -> None:
        by_task: dict[int, list[int]] = {}
        for slot in failed.tolist():
            chosen = by_task.setdefault(int(self.task_of[slot]), [])
            if max_failures is None or len(chosen) < max_failures:
                chosen.append(slot)
        log_mask = self._kind(EdgeKind.LOG)
        log_ids, log_nodes = self.edge_datasets[log_mask], self.edge_nodes[log_mask]
        for index, slots in by_task.items():
            wanted = np.isin(log_nodes, slots)
            chosen = log_ids[wanted][isin_ids(log_ids[wanted], existing_logs)]
            slot_of = {
                uuid_from_bytes(dataset_id): int(slot)
                for dataset_id, slot in zip(log_ids[wanted], log_nodes[wanted], strict=True)
            }
            names = (
                [f"{self.labels[index]}_log"] if f"{self.labels[index]}_log" in self.graph.datasets else None
            )
            refs = sorted(
                refs_of_datasets(self.graph, chosen, dataset_types=names),
                key=lambda ref: ref.data_id.required_values,
            )
            for ref in refs:
                node_id = uuid_from_bytes(self.nodes[slot_of[ref.id]])
                exception_type, message = _read_failure(self.butler, ref)
                report.tasks[index].failures.append(
                    QuantumFailure(str(node_id), dict(ref.data_id.mapping), exception_type, message)
                )


# -- existence ----------------------------------------------------------------------------------------


def isin_ids(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Boolean mask of which of ``values`` are in ``among`` (both ``S16`` id arrays).

    An Arrow hash lookup: `numpy.isin` sorts 16-byte strings and is several times slower.
    """
    if len(values) == 0 or len(among) == 0:
        return np.zeros(len(values), dtype=bool)
    mask: np.ndarray = pc.is_in(ids_to_array(values), value_set=ids_to_array(among)).to_numpy(
        zero_copy_only=False
    )
    return mask


def index_ids(values: np.ndarray, among: np.ndarray) -> np.ndarray:
    """Position in ``among`` of each of ``values`` (``S16`` id arrays), -1 where absent."""
    if len(values) == 0 or len(among) == 0:
        return np.full(len(values), -1, dtype=np.int64)
    positions = pc.index_in(ids_to_array(values), value_set=ids_to_array(among))
    result: np.ndarray = positions.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return result


def unique_ids(values: np.ndarray) -> np.ndarray:
    """The distinct ids of an ``S16`` array (in first-seen order)."""
    if len(values) == 0:
        return np.empty(0, dtype="S16")
    return ids_to_numpy(pc.unique(ids_to_array(values)))


def existing_dataset_ids(
    butler: Butler,
    graph: QuantumGraph,
    dataset_ids: np.ndarray,
    source: ReportSource = ReportSource.AUTO,
    *,
    dataset_types: Iterable[str] | None = None,
) -> np.ndarray:
    """Which of ``dataset_ids`` (an ``S16`` array of datasets of the graph) exist, as an ``S16`` array.

    The registry is asked once per dataset type for the datasets of the graph's output run; the
    files of the rest are looked for at their predicted paths (with ``source`` AUTO or FILES).
    ``dataset_types`` (parent names), when the caller knows them, spares a search of every
    dataset table of the graph.
    """
    wanted = unique_ids(np.asarray(dataset_ids, dtype="S16"))
    if len(wanted) == 0:
        return wanted
    names = _parent_names(dataset_types) if dataset_types is not None else None
    found: list[np.ndarray] = []
    if source is not ReportSource.FILES:
        registered = _registered_ids(butler, graph, wanted, names)
        found.append(registered)
        wanted = wanted[~isin_ids(wanted, registered)]
    if source is not ReportSource.REGISTRY and len(wanted):
        datastore = butler.file_datastore
        present = []
        for ref in refs_of_datasets(graph, wanted, dataset_types=names):
            storage_class = butler.storage_classes[ref.dataset_type.storage_class_name]
            if datastore.with_file_sizes(datastore.predict_records(ref, storage_class)) is not None:
                present.append(ref.id.bytes)
        found.append(np.array(present, dtype="S16"))
    return np.concatenate(found) if found else np.empty(0, dtype="S16")


def _parent_names(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(name.partition(".")[0] for name in names))


def _tables_holding(graph: QuantumGraph, wanted: np.ndarray, names: list[str] | None) -> list[str]:
    """Names of the dataset tables of the graph that hold some of ``wanted``."""
    if names is not None:
        return [name for name in names if name in graph.datasets]
    return [
        name
        for name, table in graph.datasets.items()
        if isin_ids(ids_to_numpy(table.column("dataset_id")), wanted).any()
    ]


def _registered_ids(
    butler: Butler, graph: QuantumGraph, wanted: np.ndarray, names: list[str] | None
) -> np.ndarray:
    """The ids among ``wanted`` registered in the registry (one query per dataset type involved)."""
    registry = butler.registry
    run = graph.metadata.output_run
    if not registry.has_collection(run):
        return np.empty(0, dtype="S16")
    found = []
    for name in _tables_holding(graph, wanted, names):
        try:
            refs = registry.query_datasets(name, run, find_first=False)
        except ButlerError:  # the dataset type is not registered: nothing of it is
            continue
        found.append(np.array([ref.id.bytes for ref in refs], dtype="S16"))
    registered: np.ndarray = np.concatenate(found) if found else np.empty(0, dtype="S16")
    result: np.ndarray = registered[isin_ids(registered, wanted)]
    return result


def refs_of_datasets(
    graph: QuantumGraph, dataset_ids: np.ndarray, *, dataset_types: Iterable[str] | None = None
) -> Iterator[DatasetRef]:
    """Refs of the graph's datasets among ``dataset_ids`` (``S16``), built a dataset type at a time.

    ``dataset_types`` (parent names) limits the dataset tables searched.
    """
    wanted = np.asarray(dataset_ids, dtype="S16")
    names = _parent_names(dataset_types) if dataset_types is not None else list(graph.datasets)
    for name in names:
        table = graph.datasets.get(name)
        if table is None:
            continue
        mask = isin_ids(ids_to_numpy(table.column("dataset_id")), wanted)
        if not mask.any():
            continue
        part = table.filter(pa.array(mask))
        dataset_type = graph.dataset_types[name]
        group = dataset_type.dimensions
        ids = ids_to_numpy(part.column("dataset_id"))
        runs = part.column("run").to_pylist()
        columns = [part.column(key).to_pylist() for key in group.data_id_keys]
        for row in range(part.num_rows):
            data_id = DataCoordinate.from_full_values(group, tuple(column[row] for column in columns))
            yield DatasetRef(dataset_type, data_id, runs[row], uuid_from_bytes(ids[row]))


# -- failures ---------------------------------------------------------------------------------------

_ERROR_LEVELS = ("ERROR", "CRITICAL")
_FAILED_ON = re.compile(r"failed on \{.*?\}: (?P<type>[A-Za-z_][\w.]*): (?P<message>.*)\Z", re.DOTALL)
"""``Task <label> failed on {<data ID>}: <Type>: <message>`` (graph/quantum_execution.py)."""
_EXCEPTION = re.compile(
    r"(?:^|: )(?P<type>[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Failure|Found|Timeout)): "
    r"(?P<message>.*)\Z",
    re.DOTALL,
)


def failure_from_log(records: Iterable[Any]) -> tuple[str, str]:
    """(exception type, message) of a failed quantum from its log records.

    Uses the last ERROR (or CRITICAL) record: its ``exception_type``/``exception_message``
    fields when the record has them, else a ``<Type>: <message>`` at the start of its message or
    after ``": "`` (``"Task calibrate failed on {...}: ValueError: bad"``), else ("", the message).
    """
    errors = [r for r in records if getattr(r, "level", "") in _ERROR_LEVELS]
    if not errors:
        return "", "(no ERROR record in the log)"
    for record in reversed(errors):
        exception_type = getattr(record, "exception_type", None)
        if exception_type:
            return str(exception_type), str(getattr(record, "exception_message", "") or record.message)
        match = _FAILED_ON.search(record.message) or _EXCEPTION.search(record.message)
        if match:
            return match["type"], match["message"]
    return "", str(errors[-1].message)


def _read_failure(butler: Butler, ref: DatasetRef) -> tuple[str, str]:
    """Read a log dataset through the file datastore (registered or not) and extract the failure."""
    datastore = butler.file_datastore
    storage_class = butler.storage_classes[ref.dataset_type.storage_class_name]
    records = datastore.with_file_sizes(datastore.predict_records(ref, storage_class))
    if records is None:
        return "", f"(the log file of {ref.dataset_type.name} {ref.data_id} is gone)"
    try:
        logs = datastore.get(ref, records, storage_class)
    except (DatastoreError, OSError, ValueError) as err:
        return "", f"(cannot read the log: {err})"
    if not isinstance(logs, ButlerLogRecords):
        return "", f"(the log dataset holds a {type(logs).__name__})"
    return failure_from_log(logs)


def summary_rows(report: RunReport) -> list[dict[str, Any]]:
    """One row per task plus a total row, for a table."""
    rows: list[dict[str, Any]] = [
        {
            "task": t.label,
            "expected": t.expected,
            "succeeded": t.succeeded,
            "failed": t.failed,
            "blocked": t.blocked,
            "not run": t.not_run,
        }
        for t in report.tasks
    ]
    totals = {
        key: sum(row[key] for row in rows)
        for key in ("expected", "succeeded", "failed", "blocked", "not run")
    }
    rows.append({"task": "TOTAL", **totals})
    return rows


def failure_rows(report: RunReport, limit: int | None = None) -> Sequence[dict[str, Any]]:
    """One row per failed quantum (task, data ID, exception type, message)."""
    rows = [
        {"task": t.label, "data_id": f.data_id, "exception": f.exception_type, "message": f.message}
        for t in report.tasks
        for f in t.failures
    ]
    return rows if limit is None else rows[:limit]
