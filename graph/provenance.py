"""Provenance from the quantum graph plus the repository (LDM-556 §1.6): what a dataset was made from, and what was made from it.

* `dataset_origin`: the quantum (task, data ID, node id) that produced a dataset, the inputs it
  was predicted to read, and which of them it actually read, as recorded by the job in the
  quantum's metadata dataset (``quantum.actual_inputs``: dataset UUID strings) when it records them.
* `derived_datasets`: every dataset derived from some datasets (a raw, a calibration) through the
  quanta of the graph, transitively. An iterative breadth-first traversal over the edge table
  with numpy (one pass over the edges per generation), never a per-quantum object graph.

A dataset the graph did not produce (a raw, a calibration) has no producing quantum; a dataset
that is not in the graph at all is an error naming the graph.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from butler.butler import Butler
from butler.datasets import DatasetRef
from butler.datastore import DatastoreError
from butler.task_metadata import TaskMetadata
from butler.timing import log_duration

from .errors import QuantumGraphError
from .quantum_graph import EdgeKind, QuantumGraph, ids_to_array, ids_to_numpy, uuid_from_bytes
from .report import ReportSource, existing_dataset_ids, index_ids, isin_ids, refs_of_datasets, unique_ids

__all__ = [
    "ACTUAL_INPUTS_KEY",
    "DatasetOrigin",
    "DerivedDataset",
    "InputRecord",
    "dataset_origin",
    "derived_datasets",
    "derived_table",
]

_LOG = logging.getLogger(__name__)

ACTUAL_INPUTS_KEY = "quantum.actual_inputs"
"""Key of the quantum metadata listing the UUIDs (strings) of the inputs the job actually read."""

_READS = (int(EdgeKind.INPUT), int(EdgeKind.PREREQUISITE))
_WRITES = (int(EdgeKind.OUTPUT), int(EdgeKind.METADATA), int(EdgeKind.LOG))
_KIND_NAMES = {kind.value: kind.name.lower() for kind in EdgeKind}


@dataclass
class InputRecord:
    """One predicted input of the quantum that produced a dataset."""

    dataset_id: str
    dataset_type: str
    data_id: dict[str, Any]
    run: str
    kind: str
    """``input`` or ``prerequisite`` (``init_input`` for a dataset made at init)."""
    read: bool | None
    """Whether the job read it (None: the job did not record what it read)."""


@dataclass
class DatasetOrigin:
    """Where one dataset came from."""

    dataset_id: str
    dataset_type: str
    data_id: dict[str, Any]
    run: str
    registered: bool
    """Whether the dataset is in the registry (in the graph's output run, for a produced one)."""
    task: str | None = None
    """Label of the producing task; None for a dataset the graph did not produce."""
    node_id: str | None = None
    """The producing quantum (None for an init output, made once per run)."""
    quantum_data_id: dict[str, Any] | None = None
    inputs: list[InputRecord] = field(default_factory=list)
    """Predicted inputs of the producing quantum (or init inputs of the producing task)."""
    actual_inputs_recorded: bool = False
    """Whether the quantum's metadata lists the inputs it read (then each input's ``read`` is set)."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


@dataclass
class DerivedDataset:
    """A dataset derived (transitively) from the datasets asked about."""

    dataset_id: str
    dataset_type: str
    data_id: dict[str, Any]
    generation: int
    """1 for outputs of quanta reading the starting datasets, 2 for the next quanta, ..."""
    kind: str
    """``output``, ``metadata`` or ``log``."""
    registered: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready mapping."""
        return asdict(self)


# -- what a dataset came from ---------------------------------------------------------------------


def dataset_origin(butler: Butler, graph: QuantumGraph, dataset_id: uuid.UUID) -> DatasetOrigin:
    """The producing quantum of a dataset of ``graph`` and its inputs (predicted, and read when recorded).

    Raises `QuantumGraphError` if the dataset is not in the graph.
    """
    ref = graph.ref(dataset_id)
    key = np.array([dataset_id.bytes], dtype="S16")
    registered = bool(
        len(
            existing_dataset_ids(
                butler, graph, key, ReportSource.REGISTRY, dataset_types=[ref.dataset_type.name]
            )
        )
    )
    if not registered:
        registered = butler.registry.get_dataset(dataset_id) is not None
    origin = DatasetOrigin(
        str(dataset_id), ref.dataset_type.name, dict(ref.data_id.mapping), ref.run, registered
    )
    edges = graph.edges
    rows = np.flatnonzero(
        (ids_to_numpy(edges.column("dataset_id")) == key[0])
        & np.isin(edges.column("kind").to_numpy(zero_copy_only=False), _WRITES)
    )
    if len(rows):
        node_id = uuid_from_bytes(ids_to_numpy(edges.column("node_id"))[rows[0]])
        quantum = graph.quantum(node_id)
        origin.task, origin.node_id = quantum.task_label, str(node_id)
        origin.quantum_data_id = dict(quantum.data_id.mapping)
        actual = _actual_inputs(butler, quantum.metadata_output)
        origin.actual_inputs_recorded = actual is not None
        for connection_refs, kind in _inputs_with_kinds(graph, node_id):
            for input_ref in connection_refs:
                origin.inputs.append(_input_record(input_ref, kind, actual))
        return origin
    init = graph.init_edges
    init_rows = np.flatnonzero(ids_to_numpy(init.column("dataset_id")) == key[0])
    for row in init_rows.tolist():
        if init.column("kind")[row].as_py() == int(EdgeKind.INIT_INPUT):
            continue
        task = init.column("task")[row].as_py()
        origin.task = task or None
        if task:
            for input_ref in graph.init_input_refs(task).values():
                origin.inputs.append(_input_record(input_ref, "init_input", None))
    return origin


def _inputs_with_kinds(graph: QuantumGraph, node_id: uuid.UUID) -> list[tuple[list[DatasetRef], str]]:
    """The quantum's input refs, split into regular and prerequisite inputs (from the edge kinds)."""
    edges = graph.edges
    mask = ids_to_numpy(edges.column("node_id")) == np.array([node_id.bytes], dtype="S16")[0]
    kinds = edges.column("kind").to_numpy(zero_copy_only=False)[mask]
    prerequisite_ids = {
        uuid_from_bytes(value) for value in ids_to_numpy(edges.column("dataset_id"))[mask][kinds == 1]
    }
    refs = graph.inputs_of(node_id)
    return [
        ([r for r in refs if r.id not in prerequisite_ids], "input"),
        ([r for r in refs if r.id in prerequisite_ids], "prerequisite"),
    ]


def _input_record(ref: DatasetRef, kind: str, actual: set[uuid.UUID] | None) -> InputRecord:
    return InputRecord(
        str(ref.id),
        ref.dataset_type.name,
        dict(ref.data_id.mapping),
        ref.run,
        kind,
        None if actual is None else ref.id in actual,
    )


def _actual_inputs(butler: Butler, metadata_ref: DatasetRef | None) -> set[uuid.UUID] | None:
    """The ids the quantum recorded as read, from its metadata dataset (None when not recorded)."""
    if metadata_ref is None:
        return None
    datastore = butler.file_datastore
    storage_class = butler.storage_classes[metadata_ref.dataset_type.storage_class_name]
    records = datastore.with_file_sizes(datastore.predict_records(metadata_ref, storage_class))
    if records is None:
        return None
    try:
        metadata = datastore.get(metadata_ref, records, storage_class)
    except (DatastoreError, OSError, ValueError) as err:
        _LOG.warning("Cannot read %s: %s", metadata_ref, err)
        return None
    if not isinstance(metadata, TaskMetadata):
        return None
    try:
        values = metadata[ACTUAL_INPUTS_KEY]
    except KeyError:
        return None
    try:
        return {uuid.UUID(str(value)) for value in values}
    except (TypeError, ValueError):
        _LOG.warning("%s of %s is not a list of UUIDs: %r", ACTUAL_INPUTS_KEY, metadata_ref, values)
        return None


# -- what was made from a dataset ------------------------------------------------------------------------


def derived_table(
    graph: QuantumGraph, dataset_ids: list[uuid.UUID], *, include_metadata: bool = False
) -> pa.Table:
    """Every dataset derived from ``dataset_ids`` through the graph's quanta, transitively.

    Returns a table with columns ``dataset_id`` (binary16), ``dataset_type``, ``kind`` (int8,
    `EdgeKind`) and ``generation`` (int32), in generation order. The traversal follows
    metadata and log outputs too (a task may read them); they are in the result only with
    ``include_metadata``.
    """
    edges = graph.edges
    kinds = edges.column("kind").to_numpy(zero_copy_only=False)
    datasets = ids_to_numpy(edges.column("dataset_id"))
    reads, writes = np.isin(kinds, _READS), np.isin(kinds, _WRITES)
    # Arrow arrays of the big columns, made once: each generation only hashes the small frontier.
    read_ids = edges.column("dataset_id").filter(pa.array(reads))
    read_nodes = ids_to_numpy(edges.column("node_id").filter(pa.array(reads)))
    write_rows = np.flatnonzero(writes)
    write_nodes = edges.column("node_id").filter(pa.array(writes))
    frontier = unique_ids(np.array([i.bytes for i in dataset_ids], dtype="S16"))
    seen_nodes: list[np.ndarray] = []
    seen_datasets = [frontier]
    found_rows: list[np.ndarray] = []
    generations: list[np.ndarray] = []
    generation = 0
    with log_duration(_LOG, "Traversed the graph for derived datasets", logging.DEBUG):
        while len(frontier):
            generation += 1
            consumers = unique_ids(read_nodes[_member(read_ids, frontier)])
            if seen_nodes:
                consumers = consumers[~isin_ids(consumers, np.concatenate(seen_nodes))]
            if not len(consumers):
                break
            seen_nodes.append(consumers)
            rows = write_rows[_member(write_nodes, consumers)]
            rows = rows[~isin_ids(datasets[rows], np.concatenate(seen_datasets))]
            # One row per dataset (a dataset has one producer, but be safe).
            rows = rows[index_ids(datasets[rows], datasets[rows]) == np.arange(len(rows))]
            found_rows.append(rows)
            generations.append(np.full(len(rows), generation, dtype=np.int32))
            frontier = datasets[rows]
            seen_datasets.append(frontier)
    all_rows = np.concatenate(found_rows) if found_rows else np.empty(0, dtype=np.int64)
    all_generations = np.concatenate(generations) if generations else np.empty(0, dtype=np.int32)
    if not include_metadata:
        keep = kinds[all_rows] == int(EdgeKind.OUTPUT)
        all_rows, all_generations = all_rows[keep], all_generations[keep]
    return pa.table(
        {
            "dataset_id": ids_to_array(datasets[all_rows]),
            "dataset_type": edges.column("dataset_type").take(pa.array(all_rows)),
            "kind": pa.array(kinds[all_rows], pa.int8()),
            "generation": pa.array(all_generations, pa.int32()),
        }
    )


def _member(column: pa.ChunkedArray | pa.Array, ids: np.ndarray) -> np.ndarray:
    """Mask of the rows of a binary(16) Arrow column whose value is among ``ids`` (``S16``)."""
    mask: np.ndarray = pc.is_in(column, value_set=ids_to_array(ids)).to_numpy(zero_copy_only=False)
    return mask


def derived_datasets(
    butler: Butler, graph: QuantumGraph, dataset_id: uuid.UUID, *, include_metadata: bool = False
) -> list[DerivedDataset]:
    """Datasets derived from ``dataset_id`` through ``graph``, with their data IDs and registry state.

    Raises `QuantumGraphError` if the dataset is not in the graph.
    """
    graph.ref(dataset_id)  # raises if it is not in the graph
    table = derived_table(graph, [dataset_id], include_metadata=include_metadata)
    ids = ids_to_numpy(table.column("dataset_id"))
    names = sorted(set(table.column("dataset_type").to_pylist()))
    registered = existing_dataset_ids(butler, graph, ids, ReportSource.REGISTRY, dataset_types=names)
    refs = {ref.id: ref for ref in refs_of_datasets(graph, ids, dataset_types=names)}
    generations = table.column("generation").to_pylist()
    kinds = table.column("kind").to_pylist()
    is_registered = isin_ids(ids, registered).tolist()
    result = []
    for value, generation, kind, present in zip(ids, generations, kinds, is_registered, strict=True):
        ref = refs.get(uuid_from_bytes(value))
        if ref is None:
            raise QuantumGraphError(
                f"Edge to dataset {uuid_from_bytes(value)} has no dataset row in the graph."
            )
        result.append(
            DerivedDataset(
                str(ref.id),
                ref.dataset_type.name,
                dict(ref.data_id.mapping),
                generation,
                _KIND_NAMES[kind],
                present,
            )
        )
    return result
