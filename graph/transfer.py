"""The final job of a run: register every predicted output of a quantum graph whose file exists (``butler transfer-from-graph``).

Batch jobs (``pipetask run-qbb``) write files but never touch the registry; this merge brings
their outputs in through `butler.merge.merge_outputs`: every predicted output of the graph
(regular outputs, ``<label>_metadata``, ``<label>_log``, init outputs, configs and ``packages``)
whose file exists is registered with its datastore records; what is registered already is
skipped; what is missing (a failed or never-run quantum) is counted, never registered. It runs
the same whether the workflow succeeded or not, and a second run changes nothing.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from butler.butler import Butler
from butler.collections import ChainMode, CollectionType
from butler.datasets import DatasetType
from butler.errors import MissingDatasetTypeError
from butler.merge import merge_outputs
from butler.registry import Registry
from butler.timing import log_duration

from .errors import QuantumGraphError
from .quantum_graph import EdgeKind, QuantumGraph

__all__ = [
    "RUN_LEVEL",
    "TaskTransferCounts",
    "TransferReport",
    "output_dataset_types",
    "transfer_from_graph",
    "update_output_chain",
]

_LOG = logging.getLogger(__name__)

RUN_LEVEL = ""
"""Key of `TransferReport.by_task` for datasets that belong to the run, not a task (``packages``)."""

_QUANTUM_OUTPUT_KINDS = (int(EdgeKind.OUTPUT), int(EdgeKind.METADATA), int(EdgeKind.LOG))
_INIT_OUTPUT_KINDS = (int(EdgeKind.INIT_OUTPUT), int(EdgeKind.CONFIG), int(EdgeKind.PACKAGES))


@dataclass
class TaskTransferCounts:
    """What the merge found for the predicted outputs of one task."""

    registered: int = 0
    """Datasets registered now (their files exist)."""
    already_present: int = 0
    """Datasets registered already (an earlier merge, or the local executor)."""
    missing: int = 0
    """Predicted outputs with no file (the quantum failed, was blocked, or did not run); not registered."""

    @property
    def predicted(self) -> int:
        """Every predicted output of the task."""
        return self.registered + self.already_present + self.missing


@dataclass
class TransferReport:
    """What `transfer_from_graph` did."""

    output_run: str
    """The RUN collection the outputs went into."""
    by_task: dict[str, TaskTransferCounts] = field(default_factory=dict)
    """Counts per task label, in the graph's task order; `RUN_LEVEL` for ``packages``."""
    dataset_types_registered: list[str] = field(default_factory=list)
    """Dataset types registered by this call (``register_dataset_types``)."""
    run_registered: bool = False
    """Whether the output run was created by this call."""
    output_chain: str | None = None
    """The CHAINED output collection, when it was updated."""
    chain: tuple[str, ...] = ()
    """Its children after the update."""

    @property
    def total(self) -> TaskTransferCounts:
        """The counts summed over tasks."""
        return TaskTransferCounts(
            sum(c.registered for c in self.by_task.values()),
            sum(c.already_present for c in self.by_task.values()),
            sum(c.missing for c in self.by_task.values()),
        )


def output_dataset_types(graph: QuantumGraph) -> dict[str, str]:
    """Dataset type name -> label of the task producing it (`RUN_LEVEL` for ``packages``).

    Covers every kind of predicted output: regular outputs, metadata and log datasets (from the
    edge table), init outputs, configs and packages (from the init-edge table). Columnar: one
    pass over the edges plus one small membership test per task.
    """
    producers: dict[str, str] = {}
    init = graph.init_edges
    init = init.filter(pc.is_in(init.column("kind"), value_set=pa.array(_INIT_OUTPUT_KINDS, pa.int8())))
    for task, name in zip(
        init.column("task").to_pylist(), init.column("dataset_type").to_pylist(), strict=True
    ):
        producers[name] = task or RUN_LEVEL
    edges = graph.edges
    edges = edges.filter(pc.is_in(edges.column("kind"), value_set=pa.array(_QUANTUM_OUTPUT_KINDS, pa.int8())))
    if edges.num_rows == 0:
        return producers
    # One producing node per dataset type is enough: every dataset type has a single producer.
    first = edges.group_by("dataset_type", use_threads=False).aggregate([("node_id", "first")])
    names = first.column("dataset_type").to_pylist()
    nodes = first.column("node_id_first")
    for label in graph.task_labels():
        mine = pc.is_in(nodes, value_set=graph.quanta[label].column("node_id")).to_numpy(zero_copy_only=False)
        for index in np.flatnonzero(mine):
            producers[names[index]] = label
    return producers


def transfer_from_graph(
    butler: Butler,
    graph: QuantumGraph,
    *,
    register_dataset_types: bool = False,
    update_chain: bool = False,
    batch_size: int = 50_000,
) -> TransferReport:
    """Register every predicted output of ``graph`` whose file exists in ``butler``'s datastore.

    Parameters
    ----------
    butler
        A full butler on the repository the jobs wrote into.
    graph
        The quantum graph the jobs ran (whole; see `graph.qgraph_io.read_quantum_graph`).
    register_dataset_types
        Register the graph's output dataset types that are missing (otherwise a missing one is an
        error naming it; ``pipetask pre-exec-init-qbb`` registers them before the jobs run).
    update_chain
        Create or update the graph's CHAINED output collection (``metadata.output``) as
        ``[output_run, *input_collections]``; an existing chain gets the run prepended unless it
        holds it already.
    batch_size
        Datasets per registry transaction.

    Returns
    -------
    TransferReport
        Counts registered / already present / missing per task.

    Raises
    ------
    QuantumGraphError
        An output dataset type is not registered (and ``register_dataset_types`` is false) or is
        registered with another definition, or the output collection exists and is not CHAINED.
    """
    metadata = graph.metadata
    registry = butler.registry
    producers = output_dataset_types(graph)
    report = TransferReport(output_run=metadata.output_run)
    report.by_task = {label: TaskTransferCounts() for label in [*graph.task_labels(), RUN_LEVEL]}
    with log_duration(_LOG, f"Transferred the outputs of a {graph.quantum_count()}-quanta graph"):
        types = [graph.dataset_types[name] for name in producers]
        report.dataset_types_registered = _check_dataset_types(registry, types, register_dataset_types)
        report.run_registered = registry.register_run(metadata.output_run)
        refs = graph.all_output_refs()
        for label, group in itertools.groupby(
            refs, key=lambda ref: producers.get(ref.dataset_type.name, RUN_LEVEL)
        ):
            merged = merge_outputs(
                registry, butler.file_datastore, butler.storage_classes, group, batch_size=batch_size
            )
            counts = report.by_task.setdefault(label, TaskTransferCounts())
            counts.registered += merged.registered
            counts.already_present += merged.already_registered
            counts.missing += merged.missing
        if update_chain and metadata.output:
            report.output_chain = metadata.output
            report.chain = update_output_chain(
                registry, metadata.output, metadata.output_run, metadata.input_collections
            )
    if not report.by_task[RUN_LEVEL].predicted:
        del report.by_task[RUN_LEVEL]
    total = report.total
    _LOG.info(
        "Transfer into %s: %d registered, %d already present, %d missing.",
        metadata.output_run,
        total.registered,
        total.already_present,
        total.missing,
    )
    return report


def _check_dataset_types(registry: Registry, types: Iterable[DatasetType], register: bool) -> list[str]:
    """Check the output dataset types against the registry, then register the missing ones.

    Returns the names newly registered; nothing is registered when a check fails.
    """
    missing, different = [], []
    for dataset_type in sorted(types, key=lambda t: t.name):
        try:
            existing = registry.get_dataset_type(dataset_type.name)
        except MissingDatasetTypeError:
            missing.append(dataset_type)
            continue
        diffs = existing.differences(dataset_type)
        if diffs:
            different.append(f"{dataset_type.name} ({'; '.join(diffs)})")
    if different:
        raise QuantumGraphError(
            f"Output dataset type(s) of the graph differ from the registered ones: {', '.join(different)}."
        )
    if missing and not register:
        raise QuantumGraphError(
            f"Output dataset type(s) {', '.join(t.name for t in missing)} are not registered; run "
            "'pipetask pre-exec-init-qbb' first or pass --register-dataset-types."
        )
    with registry.transaction():
        for dataset_type in missing:
            registry.register_dataset_type(dataset_type)
    return [t.name for t in missing]


def update_output_chain(
    registry: Registry, output: str, output_run: str, input_collections: Iterable[str]
) -> tuple[str, ...]:
    """Make CHAINED ``output`` search ``output_run`` first; returns the chain's children.

    A new chain is ``[output_run, *input_collections]`` (the chain itself left out of its inputs);
    an existing one gets ``output_run`` prepended unless it holds it already, so calling this
    again changes nothing.
    """
    with registry.transaction():
        if not registry.has_collection(output):
            registry.register_collection(output, CollectionType.CHAINED)
            children = [output_run, *(c for c in input_collections if c not in (output, output_run))]
            registry.set_collection_chain(output, children)
            return tuple(children)
        kind = registry.get_collection_type(output)
        if kind is not CollectionType.CHAINED:
            raise QuantumGraphError(
                f"Output collection {output!r} is a {kind.name} collection; expected a CHAINED one."
            )
        chain = registry.get_collection_chain(output)
        if output_run in chain:
            return chain
        return registry.update_collection_chain(output, [output_run], ChainMode.PREPEND)
