"""The batch job: run a few quanta of a ``.qg`` file through a QuantumBackedButler, with no registry.

``pipetask run-qbb`` → `run_qbb` → `read_quanta` (only the job's quanta, their datasets and the
datastore records of their existing inputs) → `QuantumRunner` (each task built once per label, a
`QuantumBackedButler` per quantum) → files in the datastore. The final merge (``butler
transfer-from-graph``) registers what the jobs wrote. The local executor's workers run quanta
with the same `QuantumRunner`.

Nothing on this path opens the registry or imports SQLAlchemy: the datastore is built from the
``datastore:`` section of the repository's ``butler.yaml``; inputs that existed when the graph was
built are located by the records the graph carries, inputs made by upstream quanta by the paths
the datastore's file templates predict.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from butler.chained_datastore import ChainedDatastore, make_datastore
from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef
from butler.datastore import Datastore, DatastoreRecord
from butler.dimensions import DimensionUniverse
from butler.errors import ButlerError
from butler.file_datastore import FileDatastore
from butler.quantum_backed import QuantumBackedButler
from butler.repository_config import CONFIG_NAME, RepositoryConfig
from butler.storage_classes import StorageClassRegistry
from butler.timing import log_duration, peak_rss_mb

from .errors import MissingInputError, QuantumGraphError
from .execute_report import ExecutionReport, QuantumRunResult, RunStatus
from .execute_tasks import TaskFactory
from .qgraph_io import read_quanta
from .quantum import Quantum
from .quantum_execution import QuantumStatus, execute_quantum
from .quantum_graph import QuantumGraph

__all__ = ["JobDatastore", "QuantumRunner", "format_data_id", "open_job_datastore", "run_qbb"]

_LOG = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class JobDatastore:
    """The datastore a job reads and writes, and the storage classes it needs."""

    datastore: FileDatastore
    """The repository's file datastore (the first file member of a chained datastore)."""
    storage_classes: StorageClassRegistry
    root: Path
    """The repository's root directory."""


def open_job_datastore(repo: str | Path, universe: DimensionUniverse | None = None) -> JobDatastore:
    """The file datastore of the repository at ``repo``, built from its ``butler.yaml`` alone.

    Raises `ButlerError` (exit code 3 in ``run-qbb``) when the configuration is missing or invalid.
    """
    config = RepositoryConfig.load(repo)
    if config.datastore is None:
        raise ButlerError(f"Repository configuration {config.root / CONFIG_NAME} has no datastore section.")
    config_path = config.root / CONFIG_NAME
    datastore_config = config.datastore
    root = config.root
    storage_classes = StorageClassRegistry.default()
    datastore = make_datastore(
        datastore_config,
        storage_classes,
        universe or DimensionUniverse.default(),
        str(root),
        str(config_path),
    )
    return JobDatastore(_first_file_datastore(datastore, config_path), storage_classes, root)


def _first_file_datastore(datastore: Datastore, source: Path) -> FileDatastore:
    pending: list[Datastore] = [datastore]
    while pending:
        member = pending.pop(0)
        if isinstance(member, FileDatastore):
            return member
        if isinstance(member, ChainedDatastore):
            pending[:0] = list(member.children)
    raise ButlerError(f"The datastore of {source} has no file datastore; batch jobs write files.")


def format_data_id(data_id: DataCoordinate) -> str:
    """``{instrument: 'DemoCam', detector: 1}``: the required values, for messages."""
    return "{" + ", ".join(f"{key}: {value!r}" for key, value in data_id.required.items()) + "}"


class QuantumRunner:
    """Runs quanta of a graph through per-quantum `QuantumBackedButler`\\ s over one datastore.

    Tasks are constructed once per label (their init-inputs read through the datastore). A
    quantum whose metadata dataset already exists has run before and is SKIPPED; outputs left by
    an earlier attempt that failed or was killed (files only: jobs register nothing) are removed
    before it runs again, so a retried job completes.

    Parameters
    ----------
    job
        The datastore to read and write.
    tasks
        Makes the tasks from the graph's pipeline.
    """

    def __init__(self, job: JobDatastore, tasks: TaskFactory) -> None:
        self.job = job
        self.datastore = job.datastore
        self.storage_classes = job.storage_classes
        self.tasks = tasks

    # -- one quantum ------------------------------------------------------------------------------

    def run_quantum(self, graph: QuantumGraph, node_id: uuid.UUID) -> QuantumRunResult:
        """Run one quantum of ``graph``; every failure becomes a FAILED result, never an exception."""
        start = time.perf_counter()
        quantum = graph.quantum(node_id)
        data_id = format_data_id(quantum.data_id)

        def result(
            status: RunStatus, error: str | None = None, infrastructure: bool = False
        ) -> QuantumRunResult:
            return QuantumRunResult(
                node_id,
                quantum.task_label,
                data_id,
                status,
                error,
                infrastructure,
                time.perf_counter() - start,
                peak_rss_mb(),
            )

        try:
            outputs = quantum.all_output_refs()
            if quantum.metadata_output is not None and self._exists(quantum.metadata_output):
                _LOG.info("%s %s ran before (its metadata exists); skipping it.", quantum.task_label, data_id)
                return result(RunStatus.SKIPPED)
            self._remove_leftovers(quantum.task_label, data_id, outputs)
            adjusted, inputs = self._resolve_inputs(graph, quantum)
            task = self.tasks.task(quantum.task_label, lambda label: self._init_inputs(graph, label))
            butler = QuantumBackedButler(self.datastore, self.storage_classes, inputs, outputs)
            outcome = execute_quantum(task, adjusted, butler, raise_on_failure=False)
        except MissingInputError as err:
            _LOG.error("%s %s cannot run: %s", quantum.task_label, data_id, err)
            return result(RunStatus.FAILED, f"{type(err).__name__}: {err}", infrastructure=True)
        except (ButlerError, OSError) as err:
            _LOG.exception("%s %s: the datastore failed.", quantum.task_label, data_id)
            return result(RunStatus.FAILED, f"{type(err).__name__}: {err}", infrastructure=True)
        except Exception as err:
            _LOG.exception("%s %s failed outside its task's run.", quantum.task_label, data_id)
            return result(RunStatus.FAILED, f"{type(err).__name__}: {err}")
        if outcome.status is QuantumStatus.FAILED:
            _LOG.error("%s %s failed: %s", quantum.task_label, data_id, outcome.error)
            return result(RunStatus.FAILED, outcome.error)
        status = RunStatus.NO_WORK if outcome.status is QuantumStatus.NO_WORK else RunStatus.SUCCEEDED
        _LOG.info(
            "%s %s %s in %.2f s (peak memory %.0f MB).",
            quantum.task_label,
            data_id,
            status.value,
            outcome.wall_time,
            outcome.max_rss_mb,
        )
        return result(status)

    def _records(
        self, graph: QuantumGraph, refs: Sequence[DatasetRef]
    ) -> dict[uuid.UUID, list[DatastoreRecord]]:
        """Records the graph carries (existing inputs); the rest are predicted from file templates."""
        known = graph.records_of(ref.id for ref in refs)
        for ref in refs:
            if ref.id not in known:
                known[ref.id] = self._predict(graph, ref)
        return known

    def _predict(self, graph: QuantumGraph, ref: DatasetRef) -> list[DatastoreRecord]:
        parent = _parent_ref(graph, ref)
        storage_class = self.storage_classes[parent.dataset_type.storage_class_name]
        return self.datastore.predict_records(parent, storage_class)

    def _exists(self, ref: DatasetRef) -> bool:
        storage_class = self.storage_classes[ref.dataset_type.storage_class_name]
        return self.datastore.artifacts_exist(self.datastore.predict_records(ref, storage_class))

    def _remove_leftovers(self, label: str, data_id: str, outputs: Iterable[DatasetRef]) -> None:
        leftovers: list[DatastoreRecord] = []
        for ref in outputs:
            storage_class = self.storage_classes[ref.dataset_type.storage_class_name]
            records = self.datastore.predict_records(ref, storage_class)
            leftovers.extend(r for r in records if self.datastore.artifacts_exist([r]))
        if leftovers:
            _LOG.warning(
                "%s %s: removing %d file(s) an earlier failed attempt left (e.g. %s).",
                label,
                data_id,
                len(leftovers),
                leftovers[0].path,
            )
            self.datastore.remove_artifacts(leftovers)

    def _resolve_inputs(
        self, graph: QuantumGraph, quantum: Quantum
    ) -> tuple[Quantum, dict[DatasetRef, list[DatastoreRecord]]]:
        """The quantum without inputs upstream quanta did not write, and the records of the rest.

        An input that existed when the graph was built (the graph has its records) but whose file
        is gone raises `MissingInputError`. An input an upstream quantum was to write but did not
        (it found no work, or returned None for it) is dropped, as in Rubin's executors; the
        connection's ``minimum`` then decides whether the quantum still has work.
        """
        refs = quantum.all_input_refs()
        existing = graph.records_of(ref.id for ref in refs)
        records: dict[DatasetRef, list[DatastoreRecord]] = {}
        missing: list[str] = []
        dropped: set[uuid.UUID] = set()
        for ref in refs:
            parent = _parent_ref(graph, ref)
            if parent in records:
                continue
            found = existing.get(ref.id)
            if found is not None:
                if self.datastore.artifacts_exist(found):
                    records[parent] = found
                else:
                    paths = ", ".join(str(uri) for uri in self.datastore.uris(found).values())
                    missing.append(f"{ref.dataset_type.name} {format_data_id(ref.data_id)} ({paths})")
                continue
            predicted = self._predict(graph, ref)
            if self.datastore.artifacts_exist(predicted):
                records[parent] = predicted
            else:
                dropped.add(ref.id)
        if missing:
            raise MissingInputError(
                f"Quantum {quantum.task_label} {format_data_id(quantum.data_id)} ({quantum.id}): "
                f"input file(s) missing: {'; '.join(missing)}."
            )
        if not dropped:
            return quantum, records
        _LOG.info(
            "%s %s: %d input(s) were not produced upstream and are left out.",
            quantum.task_label,
            format_data_id(quantum.data_id),
            len(dropped),
        )
        inputs = {
            connection: [ref for ref in refs_ if ref.id not in dropped]
            for connection, refs_ in quantum.inputs.items()
        }
        return dataclasses.replace(quantum, inputs=inputs), records

    def _init_inputs(self, graph: QuantumGraph, label: str) -> dict[str, Any]:
        refs = graph.init_input_refs(label)
        if not refs:
            return {}
        records = self._records(graph, list(refs.values()))
        inputs = {_parent_ref(graph, ref): records[ref.id] for ref in refs.values()}
        butler = QuantumBackedButler(self.datastore, self.storage_classes, inputs, [])
        objects = {}
        for connection, ref in refs.items():
            if not butler.exists(_parent_ref(graph, ref)):
                raise MissingInputError(
                    f"Init-input {ref.dataset_type.name} of task {label!r} is missing in run {ref.run!r}; "
                    "run 'pipetask pre-exec-init-qbb' before the jobs."
                )
            objects[connection] = butler.get(ref)
        return objects

    # -- several quanta ---------------------------------------------------------------------------

    def run(
        self, graph: QuantumGraph, node_ids: Iterable[uuid.UUID] | None = None, *, keep_going: bool = False
    ) -> ExecutionReport:
        """Run ``node_ids`` (default: every quantum of ``graph``) in dependency order.

        A quantum downstream of a failure is BLOCKED. Without ``keep_going`` the first failure
        stops the job and the remaining quanta are NOT_RUN; with it, quanta independent of the
        failure still run.
        """
        start = time.perf_counter()
        wanted = set(node_ids) if node_ids is not None else None
        order = [n for n in graph.topological_order() if wanted is None or n in wanted]
        report = ExecutionReport.for_labels(graph.task_labels())
        unusable: set[uuid.UUID] = set()
        stopped = False
        for node_id in order:
            if stopped:
                report.count(graph.label_of(node_id), RunStatus.NOT_RUN)
                continue
            blockers = [p for p in graph.predecessors(node_id) if p in unusable]
            if blockers:
                quantum = graph.quantum(node_id)
                result = QuantumRunResult(
                    node_id,
                    quantum.task_label,
                    format_data_id(quantum.data_id),
                    RunStatus.BLOCKED,
                    f"upstream quantum {blockers[0]} failed",
                )
                _LOG.warning("%s", result.describe())
            else:
                result = self.run_quantum(graph, node_id)
            report.add(result)
            if not result.status.ok:
                unusable.add(node_id)
                stopped = not keep_going
        report.wall_time = time.perf_counter() - start
        return report


def _parent_ref(graph: QuantumGraph, ref: DatasetRef) -> DatasetRef:
    """The ref of the whole dataset a component ref belongs to (records and files are the parent's)."""
    if ref.dataset_type.component is None:
        return ref
    try:
        parent_type = graph.dataset_types[ref.dataset_type.parent_name]
    except KeyError:
        raise QuantumGraphError(
            f"The graph has component {ref.dataset_type.name} but not its parent dataset type."
        ) from None
    return DatasetRef(parent_type, ref.data_id, ref.run, ref.id)


def run_qbb(
    repo: str | Path, graph_path: str | Path, node_ids: Sequence[uuid.UUID], *, keep_going: bool = False
) -> ExecutionReport:
    """Read ``node_ids`` from the graph file and run them against the repository's datastore.

    Raises `QuantumGraphFileError` for an unreadable graph and `ButlerError` for an unusable
    datastore configuration (both infrastructure: exit code 3); quantum failures are in the report.
    """
    with log_duration(_LOG, f"Ran {len(node_ids)} quantum/quanta of {graph_path}"):
        graph = read_quanta(graph_path, node_ids)
        job = open_job_datastore(repo, graph.universe)
        runner = QuantumRunner(job, TaskFactory(graph.metadata.pipeline_yaml, str(graph_path)))
        return runner.run(graph, node_ids, keep_going=keep_going)
