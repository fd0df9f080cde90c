"""Local execution of a quantum graph against a full Butler: ``pipetask run``.

graph → `pre_exec_init` (dataset types, output run, configs, init outputs, packages) → quanta in
dependency order on N worker processes (or in this process) → outputs registered in batches →
the output CHAINED collection updated if everything succeeded.

Workers execute through a `QuantumBackedButler` each, exactly as batch jobs do, and never touch
the registry; this process registers their outputs in batches with `butler.merge.merge_outputs`.
That keeps SQLite free of concurrent writers, makes registry work a few bulk transactions instead
of one per dataset, and exercises the batch path (run-qbb + merge) on every local run.
"""

from __future__ import annotations

import logging
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from butler.butler import Butler
from butler.datasets import DatasetRef
from butler.merge import merge_outputs
from butler.timing import log_duration

from .errors import QuantumGraphError
from .execute_report import ExecutionReport, QuantumRunResult, RunStatus
from .execute_scheduler import Dependencies, Scheduler
from .execute_tasks import TaskFactory
from .execute_workers import WorkerPool, WorkerSpec
from .pre_exec_init import pre_exec_init
from .qgraph_io import write_quantum_graph
from .quantum_graph import QuantumGraph
from .run_qbb import JobDatastore, QuantumRunner, format_data_id
from .transfer import update_output_chain

__all__ = ["ExecutionOptions", "Progress", "default_start_method", "execute_graph"]

_LOG = logging.getLogger(__name__)

Progress = Callable[[int], None]
"""Called with the number of quanta that just reached a final state (run, skipped, blocked, not run)."""


def default_start_method() -> str:
    """``forkserver`` where the platform has it, else ``spawn`` (never ``fork``: threads and open
    database connections of this process must not leak into workers)."""
    return "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"


@dataclass(frozen=True)
class ExecutionOptions:
    """How `execute_graph` runs a graph."""

    processes: int = 1
    """Worker processes; 1 without a timeout runs quanta in this process."""
    fail_fast: bool = False
    """Stop handing out quanta at the first failure (running ones finish); otherwise keep going."""
    timeout: float | None = None
    """Seconds a quantum may run before its worker is killed and the quantum reported failed."""
    skip_existing: bool = False
    """Quanta whose metadata dataset is already in the output run ran before: skip them."""
    clobber_outputs: bool = False
    """Remove outputs already in the output run of quanta that are to run (e.g. partial outputs of a failure)."""
    extend_run: bool = False
    """Allow an existing output run (required when it exists, unless the graph was built to extend it)."""
    register_dataset_types: bool = False
    """Register dataset types the registry lacks (otherwise missing ones are an error)."""
    clobber_config: bool = False
    """Replace a stored config of the output run that differs."""
    clobber_versions: bool = False
    """Replace a stored package list of the output run that differs."""
    merge_every: int = 1000
    """Quanta whose outputs are registered together in one batch."""
    start_method: str = field(default_factory=default_start_method)
    """How worker processes start: ``forkserver`` where available (workers fork from a server that
    imported the tasks once), else ``spawn``."""
    log_level: int = logging.WARNING
    """Logging threshold in worker processes."""


class _Executor(Protocol):
    def has_capacity(self) -> bool: ...

    def submit(self, index: int, node_id: uuid.UUID) -> None: ...

    def wait(self) -> list[tuple[int, QuantumRunResult]]: ...


class _InProcess:
    """Runs each quantum in this process when `wait` is called."""

    def __init__(self, runner: QuantumRunner, graph: QuantumGraph) -> None:
        self.runner = runner
        self.graph = graph
        self._pending: list[tuple[int, uuid.UUID]] = []

    def has_capacity(self) -> bool:
        return not self._pending

    def submit(self, index: int, node_id: uuid.UUID) -> None:
        self._pending.append((index, node_id))

    def wait(self) -> list[tuple[int, QuantumRunResult]]:
        index, node_id = self._pending.pop(0)
        return [(index, self.runner.run_quantum(self.graph, node_id))]


def execute_graph(
    repo: str | Path,
    graph: QuantumGraph,
    options: ExecutionOptions | None = None,
    *,
    graph_path: str | Path | None = None,
    progress: Progress | None = None,
) -> ExecutionReport:
    """Run every quantum of ``graph`` against the repository at ``repo``.

    Parameters
    ----------
    repo
        The repository the graph was built against.
    graph
        The quantum graph.
    options
        Processes, failure handling, timeout, existing-output handling.
    graph_path
        The ``.qg`` file ``graph`` was read from; worker processes read their quanta from it. A
        graph built in memory is written to a temporary file when processes are used.
    progress
        Called as quanta reach a final state.

    Returns
    -------
    ExecutionReport
        Counts by task and status, and every failure; ``exit_code`` is 0 only if all succeeded.

    Raises
    ------
    QuantumGraphError
        The graph does not fit the repository (universe, existing output run without
        ``extend_run``, existing outputs without ``skip_existing``/``clobber_outputs``, unregistered
        dataset types without ``register_dataset_types``).
    TaskExecutionError
        A stored config or package list differs (see `pre_exec_init`).
    """
    options = options or ExecutionOptions()
    advance = progress or (lambda n: None)
    start = time.perf_counter()
    run = graph.metadata.output_run
    with Butler(repo) as butler, log_duration(_LOG, f"Executed {graph.quantum_count()} quanta into {run!r}"):
        registry = butler.registry
        universe = registry.universe
        if not universe.is_compatible_with(graph.metadata.universe_name, graph.metadata.universe_version):
            raise QuantumGraphError(
                f"The graph was built with dimension universe {graph.metadata.universe_name} "
                f"v{graph.metadata.universe_version}; repository {repo} uses {universe.name} v{universe.version}."
            )
        existed = registry.has_collection(run)
        if existed and not (options.extend_run or graph.metadata.extend_run):
            raise QuantumGraphError(
                f"Output run {run!r} already exists in {repo}; pass --extend-run to add to it, or use a new run."
            )
        tasks = TaskFactory(graph.metadata.pipeline_yaml)
        pre_exec_init(
            butler,
            graph,
            tasks=tasks,
            register_dataset_types=options.register_dataset_types,
            clobber_config=options.clobber_config,
            clobber_versions=options.clobber_versions,
        )
        deps = Dependencies(graph)
        scheduler = Scheduler(deps)
        report = ExecutionReport.for_labels(deps.labels)
        merger = _OutputMerger(butler, graph, options.merge_every)
        if existed:
            _handle_existing_outputs(butler, graph, deps, scheduler, options, report, merger)
            advance(report.total())
        job = JobDatastore(butler.file_datastore, butler.storage_classes, Path(repo))
        use_processes = options.processes > 1 or options.timeout is not None
        # Outputs of finished quanta are registered even if execution is interrupted.
        with tempfile.TemporaryDirectory(prefix="quanta-run-") as scratch, _flushing(merger):
            if use_processes:
                path = str(graph_path) if graph_path is not None else _write_temporary(graph, Path(scratch))
                spec = WorkerSpec(str(Path(repo).resolve()), path, options.log_level)
                with WorkerPool(
                    max(options.processes, 1),
                    spec,
                    lambda node_id: _describe(graph, node_id),
                    timeout=options.timeout,
                    start_method=options.start_method,
                    preload=sorted({type(task).__module__ for task in tasks.constructed().values()}),
                ) as pool:
                    _run_loop(pool, deps, scheduler, report, merger, options.fail_fast, advance)
            else:
                executor = _InProcess(QuantumRunner(job, tasks), graph)
                _run_loop(executor, deps, scheduler, report, merger, options.fail_fast, advance)
        if report.succeeded and graph.metadata.output:
            chain = update_output_chain(
                registry, graph.metadata.output, run, graph.metadata.input_collections
            )
            _LOG.info("Output collection %s: %s.", graph.metadata.output, ", ".join(chain))
        elif graph.metadata.output:
            _LOG.warning("Not updating %s: not every quantum succeeded.", graph.metadata.output)
    report.wall_time = time.perf_counter() - start
    return report


def _run_loop(
    executor: _Executor,
    deps: Dependencies,
    scheduler: Scheduler,
    report: ExecutionReport,
    merger: _OutputMerger,
    fail_fast: bool,
    advance: Progress,
) -> None:
    stopping = False
    while True:
        while not stopping and executor.has_capacity() and scheduler.has_ready():
            index = scheduler.pop_ready()
            executor.submit(index, deps.node_id(index))
        if scheduler.running == 0:
            break
        for index, result in executor.wait():
            report.add(result)
            merger.add(result.node_id)
            if result.status.ok:
                scheduler.mark_done(index)
                advance(1)
                continue
            blocked = scheduler.mark_failed(index)
            for position in blocked:
                report.count(deps.label(position), RunStatus.BLOCKED)
            advance(1 + len(blocked))
            if fail_fast and not stopping:
                stopping = True
                _LOG.error("Stopping at the first failure (--fail-fast); running quanta finish.")
    not_run = scheduler.pending()
    for position in not_run.tolist():
        report.count(deps.label(position), RunStatus.NOT_RUN)
    advance(len(not_run))


@contextmanager
def _flushing(merger: _OutputMerger) -> Iterator[None]:
    try:
        yield
    finally:
        merger.flush()


def _describe(graph: QuantumGraph, node_id: uuid.UUID) -> tuple[str, str]:
    quantum = graph.quantum(node_id)
    return quantum.task_label, format_data_id(quantum.data_id)


def _write_temporary(graph: QuantumGraph, directory: Path) -> str:
    path = directory / "graph.qg"
    write_quantum_graph(graph, path)
    return str(path)


class _OutputMerger:
    """Registers the outputs of finished quanta in batches (files that exist; idempotent)."""

    def __init__(self, butler: Butler, graph: QuantumGraph, batch: int) -> None:
        self.butler = butler
        self.graph = graph
        self.batch = max(batch, 1)
        self._pending: list[uuid.UUID] = []
        self.registered = 0

    def add(self, node_id: uuid.UUID) -> None:
        self._pending.append(node_id)
        if len(self._pending) >= self.batch:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        refs: list[DatasetRef] = [ref for node_id in self._pending for ref in self.graph.outputs_of(node_id)]
        self._pending = []
        merged = merge_outputs(
            self.butler.registry, self.butler.file_datastore, self.butler.storage_classes, refs
        )
        self.registered += merged.registered


def _handle_existing_outputs(
    butler: Butler,
    graph: QuantumGraph,
    deps: Dependencies,
    scheduler: Scheduler,
    options: ExecutionOptions,
    report: ExecutionReport,
    merger: _OutputMerger,
) -> None:
    """In an existing output run: skip quanta that ran (``skip_existing``), clobber or refuse partial outputs."""
    datastore, storage_classes = butler.file_datastore, butler.storage_classes
    run = graph.metadata.output_run

    def exists(ref: DatasetRef) -> bool:
        storage_class = storage_classes[ref.dataset_type.storage_class_name]
        return datastore.artifacts_exist(datastore.predict_records(ref, storage_class))

    # Quanta whose metadata is registered had their outputs registered too; others that ran (files
    # of an interrupted earlier execution) are registered with this graph's outputs.
    registered_metadata = {
        label: {
            ref.data_id for ref in butler.registry.query_datasets(f"{label}_metadata", run, find_first=False)
        }
        for label in deps.labels
        if f"{label}_metadata" in graph.dataset_types
    }
    conflicts: list[tuple[uuid.UUID, list[DatasetRef]]] = []
    with log_duration(_LOG, "Checked existing outputs"):
        for index in range(len(deps)):
            node_id = deps.node_id(index)
            quantum = graph.quantum(node_id)
            metadata = quantum.metadata_output
            if options.skip_existing and metadata is not None and exists(metadata):
                scheduler.mark_done(index)
                report.count(quantum.task_label, RunStatus.SKIPPED)
                if metadata.data_id not in registered_metadata.get(quantum.task_label, ()):
                    merger.add(node_id)
                continue
            present = [ref for ref in quantum.all_output_refs() if exists(ref)]
            if present:
                conflicts.append((node_id, present))
    if not conflicts:
        return
    if not options.clobber_outputs:
        node_id, refs = conflicts[0]
        label, data_id = _describe(graph, node_id)
        raise QuantumGraphError(
            f"{len(conflicts)} quanta to run already have outputs in run {graph.metadata.output_run!r} "
            f"(e.g. {label} {data_id}: {', '.join(sorted({r.dataset_type.name for r in refs}))}); pass "
            "--skip-existing to skip quanta that finished, --clobber-outputs to replace partial outputs, "
            "or use a new output run."
        )
    _clobber(butler, graph.metadata.output_run, [ref for _, refs in conflicts for ref in refs])


def _clobber(butler: Butler, run: str, refs: list[DatasetRef]) -> None:
    """Remove existing outputs: registered ones with their registry entries, others as bare files."""
    by_type: dict[str, list[DatasetRef]] = {}
    for ref in refs:
        by_type.setdefault(ref.dataset_type.name, []).append(ref)
    registered: list[DatasetRef] = []
    files_only: list[DatasetRef] = []
    for name, group in by_type.items():
        stored = {ref.data_id: ref for ref in butler.registry.query_datasets(name, run, find_first=False)}
        for ref in group:
            (registered if ref.data_id in stored else files_only).append(stored.get(ref.data_id, ref))
    _LOG.warning(
        "Removing %d existing output(s) from run %r (%d registered) before running again.",
        len(refs),
        run,
        len(registered),
    )
    if registered:
        butler.prune_datasets(registered)
    datastore, storage_classes = butler.file_datastore, butler.storage_classes
    for ref in files_only:
        storage_class = storage_classes[ref.dataset_type.storage_class_name]
        datastore.remove_artifacts(datastore.predict_records(ref, storage_class))
