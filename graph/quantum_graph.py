"""The quantum graph: columnar tables of quanta, datasets and edges that the builder makes and jobs run.

A `QuantumGraph` is immutable after construction. Everything lives in pyarrow tables:

``quanta[label]``
    ``node_id`` (fixed_size_binary(16)) then one column per dimension of the task, required then
    implied (``DimensionGroup.data_id_keys`` order; int64 or string, named as the dimension).
``datasets[name]``
    per (parent) dataset type: ``dataset_id`` (binary16), ``run`` (string), ``produced`` (bool: a
    predicted output of this graph) then the dataset type's ``data_id_keys`` columns.
``edges``
    ``node_id``, ``dataset_id``, ``dataset_type`` (the name the task reads: ``calexp.wcs`` for a
    component, whose rows live in ``datasets["calexp"]``), ``connection``, ``kind`` (`EdgeKind`).
``init_edges``
    ``task``, ``dataset_id``, ``dataset_type``, ``connection``, ``kind``; ``packages`` has task "".
    The config edge's connection is ``_config`` (as in the pipeline graph).
``datastore_records``
    one row per `DatastoreRecord` of every existing input (``produced`` false).
``pruned``
    ``task``, ``data_id`` (JSON object), ``reason``: quanta the builder did not make, and why.

The object API builds `Quantum` and `DatasetRef` objects on demand for a few nodes at a time; id
lookups go through sorted numpy arrays of the 16-byte ids (``S16``) and `numpy.searchsorted`.
Schemas, `EdgeKind`, `QuantumGraphMetadata` and the id helpers live in `quantum_graph_schema` and
are re-exported here.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping

import numpy as np
import pyarrow as pa

from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef, DatasetType
from butler.datastore import DatastoreRecord
from butler.dimensions import DimensionGroup, DimensionUniverse

from .arrow_arrays import contiguous, empty_table, string_array, take, to_numpy, unique
from .errors import QuantumGraphError
from .quantum import Quantum
from .quantum_graph_schema import (
    DATASTORE_RECORDS_SCHEMA,
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    PRUNED_SCHEMA,
    UUID_TYPE,
    EdgeKind,
    IdIndex,
    QuantumGraphMetadata,
    RowIndex,
    dataset_schema,
    ids_to_array,
    ids_to_numpy,
    quanta_schema,
    uuid_from_bytes,
)

__all__ = [
    "DATASTORE_RECORDS_SCHEMA",
    "EDGES_SCHEMA",
    "INIT_EDGES_SCHEMA",
    "PRUNED_SCHEMA",
    "UUID_TYPE",
    "EdgeKind",
    "QuantumGraph",
    "QuantumGraphMetadata",
    "dataset_schema",
    "ids_to_array",
    "ids_to_numpy",
    "quanta_schema",
    "uuid_from_bytes",
]

_READ_KINDS = (EdgeKind.INPUT, EdgeKind.PREREQUISITE)
_WRITE_KINDS = (EdgeKind.OUTPUT, EdgeKind.METADATA, EdgeKind.LOG)


class QuantumGraph:
    """Quanta, datasets and edges of a pipeline run over a data query; immutable, columnar inside.

    Parameters
    ----------
    metadata
        How the graph was built.
    dataset_types
        Every dataset type of the graph (component types that tasks read included), by name.
    task_dimensions
        Required dimension names of each task's quanta, by label, in topological order.
    quanta, datasets, edges, init_edges, datastore_records, pruned
        The tables described in the module docstring (`quanta_schema`, `dataset_schema`,
        `EDGES_SCHEMA`, ...).
    universe
        Dimension universe; the default universe if not given.
    """

    def __init__(
        self,
        *,
        metadata: QuantumGraphMetadata,
        dataset_types: Mapping[str, DatasetType],
        task_dimensions: Mapping[str, tuple[str, ...]],
        quanta: Mapping[str, pa.Table],
        datasets: Mapping[str, pa.Table],
        edges: pa.Table,
        init_edges: pa.Table,
        datastore_records: pa.Table | None = None,
        pruned: pa.Table | None = None,
        universe: DimensionUniverse | None = None,
    ) -> None:
        self.metadata = metadata
        self.universe = universe or DimensionUniverse.default()
        self.dataset_types: dict[str, DatasetType] = dict(dataset_types)
        self.task_dimensions: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in task_dimensions.items()}
        missing = [label for label in self.task_dimensions if label not in quanta]
        extra = [label for label in quanta if label not in self.task_dimensions]
        if missing or extra:
            raise QuantumGraphError(
                f"Quanta tables do not match the task labels: missing {missing}, unknown {extra}."
            )
        self.quanta: dict[str, pa.Table] = {label: quanta[label] for label in self.task_dimensions}
        self.datasets: dict[str, pa.Table] = dict(datasets)
        for name in self.datasets:
            if name not in self.dataset_types:
                raise QuantumGraphError(f"Dataset table {name!r} has no dataset type in the graph.")
        self.edges = edges
        self.init_edges = init_edges
        self.datastore_records = (
            datastore_records if datastore_records is not None else empty_table(DATASTORE_RECORDS_SCHEMA)
        )
        self.pruned = pruned if pruned is not None else empty_table(PRUNED_SCHEMA)
        self._groups = {label: self.universe.group(dims) for label, dims in self.task_dimensions.items()}
        self._labels = list(self.task_dimensions)
        self._dataset_names = list(self.datasets)
        self._node_index: IdIndex | None = None
        self._dataset_index: IdIndex | None = None
        self._edges_by_node: RowIndex | None = None
        self._edges_by_dataset: RowIndex | None = None
        self._edge_columns: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._records_index: RowIndex | None = None

    # -- counts and ids -------------------------------------------------------------------------

    def task_labels(self) -> list[str]:
        """Task labels in topological order."""
        return list(self._labels)

    def quantum_count(self, label: str | None = None) -> int:
        """Number of quanta of task ``label``, or of the whole graph."""
        if label is None:
            return sum(int(table.num_rows) for table in self.quanta.values())
        return int(self._quanta_table(label).num_rows)

    def dataset_count(self, name: str | None = None) -> int:
        """Number of datasets of type ``name`` (a parent name), or in the whole graph."""
        if name is None:
            return sum(table.num_rows for table in self.datasets.values())
        return self.datasets[name].num_rows if name in self.datasets else 0

    def node_ids(self, label: str | None = None) -> list[uuid.UUID]:
        """Node ids of task ``label`` (or of every task, in task order)."""
        labels = [label] if label is not None else self._labels
        return [
            uuid_from_bytes(value)
            for name in labels
            for value in ids_to_numpy(self._quanta_table(name).column("node_id"))
        ]

    def topological_order(self) -> list[uuid.UUID]:
        """Every node id, each after all quanta it depends on.

        Quanta are listed task by task in the pipeline's topological order, which is a valid
        dependency order: every edge goes from an upstream task's quantum to a downstream one's.
        """
        return self.node_ids()

    def topological_order_array(self) -> np.ndarray:
        """`topological_order` as an ``S16`` numpy array (no Python object per quantum)."""
        columns = [ids_to_numpy(self.quanta[label].column("node_id")) for label in self._labels]
        return np.concatenate(columns) if columns else np.empty(0, dtype="S16")

    def label_of(self, node_id: uuid.UUID) -> str:
        """Task label of a quantum."""
        return self._labels[self._locate_node(node_id)[0]]

    # -- bulk (columnar) access -----------------------------------------------------------------

    def quantum_offsets(self) -> dict[str, tuple[int, int]]:
        """``[start, stop)`` of each task's quanta in the global order of `topological_order_array`."""
        offsets: dict[str, tuple[int, int]] = {}
        start = 0
        for label in self._labels:
            stop = start + int(self.quanta[label].num_rows)
            offsets[label] = (start, stop)
            start = stop
        return offsets

    def data_id_columns(self, label: str, dimensions: Iterable[str] | None = None) -> dict[str, np.ndarray]:
        """Data-id columns of task ``label``'s quanta as numpy arrays (int64, or object for strings).

        ``dimensions`` defaults to every data-id key of the task; a key the task lacks is an error.
        """
        table = self._quanta_table(label)
        keys = list(dimensions) if dimensions is not None else list(self._groups[label].data_id_keys)
        missing = [key for key in keys if key not in table.column_names or key == "node_id"]
        if missing:
            raise QuantumGraphError(
                f"Task {label!r} has no dimension(s) {', '.join(missing)} "
                f"(its data-id keys: {', '.join(self._groups[label].data_id_keys)})."
            )
        columns: dict[str, np.ndarray] = {}
        for key in keys:
            column = contiguous(table.column(key))
            if pa.types.is_integer(column.type):
                columns[key] = to_numpy(column)
            else:
                # to_pylist, not to_numpy: that imports pandas (about 0.5 s) for string columns.
                values = np.empty(len(column), dtype=object)
                values[:] = column.to_pylist()
                columns[key] = values
        return columns

    def quantum_edges(self) -> tuple[np.ndarray, np.ndarray]:
        """Quantum dependencies as ``(upstream, downstream)`` int64 index arrays, each pair once.

        Indexes are positions in `topological_order_array` (see `quantum_offsets`); a pair means
        the downstream quantum reads (as input or prerequisite) a dataset the upstream one writes.
        Works on the edge columns with sorted-array lookups; no per-quantum Python object is made.
        """
        node_ids, dataset_ids, kinds = self._edge_arrays()
        count = self.quantum_count()
        empty = np.empty(0, dtype=np.int64)
        read_rows = np.flatnonzero(np.isin(kinds, [int(k) for k in _READ_KINDS]))
        write_rows = np.flatnonzero(np.isin(kinds, [int(k) for k in _WRITE_KINDS]))
        if len(read_rows) == 0 or len(write_rows) == 0:
            return empty, empty.copy()
        producer = _positions(dataset_ids[read_rows], dataset_ids[write_rows])
        matched = producer >= 0
        if not matched.any():
            return empty, empty.copy()
        producer_rows = write_rows[producer[matched]]
        reader_rows = read_rows[matched]
        index = _positions(
            node_ids[np.concatenate([producer_rows, reader_rows])], self.topological_order_array()
        )
        if (index < 0).any():
            raise QuantumGraphError("An edge refers to a quantum that is not in the graph's quanta tables.")
        keys = unique(index[: len(producer_rows)] * count + index[len(producer_rows) :])
        upstream, downstream = np.divmod(keys, count)
        return upstream, downstream

    # -- single quanta ----------------------------------------------------------------------------

    def quanta_of(self, label: str) -> Iterator[Quantum]:
        """`Quantum` objects of task ``label``, built one at a time."""
        for value in ids_to_numpy(self._quanta_table(label).column("node_id")):
            yield self.quantum(uuid_from_bytes(value))

    def quantum(self, node_id: uuid.UUID) -> Quantum:
        """The `Quantum` of ``node_id``: refs by connection, metadata/log outputs and init inputs."""
        table_index, row = self._locate_node(node_id)
        label = self._labels[table_index]
        data_id = self._data_id(self.quanta[label], row, self._groups[label])
        inputs: dict[str, list[DatasetRef]] = {}
        outputs: dict[str, list[DatasetRef]] = {}
        metadata_output = log_output = None
        for connection, kind, ref in self._edge_refs(node_id):
            if kind in _READ_KINDS:
                inputs.setdefault(connection, []).append(ref)
            elif kind == EdgeKind.OUTPUT:
                outputs.setdefault(connection, []).append(ref)
            elif kind == EdgeKind.METADATA:
                metadata_output = ref
            elif kind == EdgeKind.LOG:
                log_output = ref
        init_inputs = {
            connection: ref
            for connection, kind, ref in self._init_edge_refs(label)
            if kind == EdgeKind.INIT_INPUT
        }
        return Quantum(
            label,
            data_id,
            inputs,
            outputs,
            metadata_output=metadata_output,
            log_output=log_output,
            init_inputs=init_inputs,
            id=node_id,
        )

    def inputs_of(self, node_id: uuid.UUID) -> list[DatasetRef]:
        """Refs a quantum reads (regular and prerequisite inputs)."""
        self._locate_node(node_id)
        return [ref for _, kind, ref in self._edge_refs(node_id) if kind in _READ_KINDS]

    def outputs_of(self, node_id: uuid.UUID) -> list[DatasetRef]:
        """Refs a quantum writes, metadata and log included."""
        self._locate_node(node_id)
        return [ref for _, kind, ref in self._edge_refs(node_id) if kind in _WRITE_KINDS]

    def predecessors(self, node_id: uuid.UUID) -> list[uuid.UUID]:
        """Quanta producing some input of ``node_id``."""
        return self._neighbours(node_id, _READ_KINDS, _WRITE_KINDS)

    def successors(self, node_id: uuid.UUID) -> list[uuid.UUID]:
        """Quanta reading some output of ``node_id``."""
        return self._neighbours(node_id, _WRITE_KINDS, _READ_KINDS)

    def _neighbours(
        self, node_id: uuid.UUID, own: tuple[EdgeKind, ...], other: tuple[EdgeKind, ...]
    ) -> list[uuid.UUID]:
        self._locate_node(node_id)
        by_node, by_dataset = self._edge_indexes()
        node_ids, dataset_ids, kinds = self._edge_arrays()
        rows = by_node.rows_of(node_id.bytes)
        found: dict[bytes, None] = {}
        for dataset_id in dict.fromkeys(dataset_ids[rows[np.isin(kinds[rows], own)]].tolist()):
            their = by_dataset.rows_of(dataset_id)
            for value in node_ids[their[np.isin(kinds[their], other)]].tolist():
                found[value] = None
        return [uuid_from_bytes(value) for value in found]

    # -- datasets ---------------------------------------------------------------------------------

    def ref(self, dataset_id: uuid.UUID, dataset_type: str | None = None) -> DatasetRef:
        """The ref of one dataset in the graph (as ``dataset_type``, e.g. a component, if given)."""
        located = self._dataset_idx().find(dataset_id.bytes)
        if located is None:
            raise QuantumGraphError(f"Dataset {dataset_id} is not in the quantum graph.")
        name = self._dataset_names[located[0]]
        return self._make_ref(dataset_type or name, name, located[1], dataset_id)

    def records_of(self, dataset_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, list[DatastoreRecord]]:
        """Datastore records of existing inputs, by dataset id (ids without records are left out)."""
        if self._records_index is None:
            self._records_index = RowIndex(ids_to_numpy(self.datastore_records.column("dataset_id")))
        result: dict[uuid.UUID, list[DatastoreRecord]] = {}
        for dataset_id in dataset_ids:
            rows = self._records_index.rows_of(dataset_id.bytes)
            if len(rows) == 0:
                continue
            # A row or two per dataset: slices are cheaper than a take.
            result[dataset_id] = [
                DatastoreRecord.from_row({**row, "dataset_id": dataset_id})
                for index in rows.tolist()
                for row in self.datastore_records.slice(index, 1).to_pylist()
            ]
        return result

    def init_refs(self, label: str) -> dict[str, DatasetRef]:
        """Init-input, init-output and config refs of task ``label`` by connection (config: ``_config``)."""
        self._quanta_table(label)
        return {connection: ref for connection, _, ref in self._init_edge_refs(label)}

    def init_input_refs(self, label: str) -> dict[str, DatasetRef]:
        """Init-input refs of task ``label`` by connection."""
        return {c: r for c, kind, r in self._init_edge_refs(label) if kind == EdgeKind.INIT_INPUT}

    def init_output_refs(self, label: str) -> dict[str, DatasetRef]:
        """Init-output refs of task ``label`` by connection, the config (``_config``) included."""
        return {
            c: r
            for c, kind, r in self._init_edge_refs(label)
            if kind in (EdgeKind.INIT_OUTPUT, EdgeKind.CONFIG)
        }

    def packages_ref(self) -> DatasetRef:
        """The ``packages`` init output of the run."""
        kinds = to_numpy(self.init_edges.column("kind"))
        rows = take(self.init_edges, np.flatnonzero(kinds == int(EdgeKind.PACKAGES)))
        if rows.num_rows != 1:
            raise QuantumGraphError(f"The graph has {rows.num_rows} packages edges; expected one.")
        dataset_id = uuid_from_bytes(ids_to_numpy(rows.column("dataset_id"))[0])
        return self.ref(dataset_id, rows.column("dataset_type")[0].as_py())

    def all_output_refs(self) -> Iterator[DatasetRef]:
        """Every predicted output (init outputs, configs, packages, metadata and logs included)."""
        for name, table in self.datasets.items():
            rows = np.flatnonzero(to_numpy(table.column("produced")))
            if len(rows) == 0:
                continue
            yield from self._refs_of_rows(name, table, rows)

    def _refs_of_rows(self, name: str, table: pa.Table, rows: np.ndarray) -> Iterator[DatasetRef]:
        dataset_type = self.dataset_types[name]
        group = dataset_type.dimensions
        part = take(table, rows)
        ids = ids_to_numpy(part.column("dataset_id"))
        runs = part.column("run").to_pylist()
        columns = [part.column(key).to_pylist() for key in group.data_id_keys]
        for index in range(part.num_rows):
            values = tuple(column[index] for column in columns)
            yield DatasetRef(
                dataset_type,
                DataCoordinate.from_full_values(group, values),
                runs[index],
                uuid_from_bytes(ids[index]),
            )

    # -- subgraphs --------------------------------------------------------------------------------

    def subgraph(self, node_ids: Iterable[uuid.UUID]) -> QuantumGraph:
        """A graph of only ``node_ids``, their edges, their datasets, init datasets of their tasks and
        the datastore records of their existing inputs (what a job needs)."""
        import pyarrow.compute as pc  # not needed on a batch job's path (it reads with read_quanta)

        wanted = unique(np.array([i.bytes for i in node_ids], dtype="S16"))
        node_index = self._node_idx()
        present = node_index.contains(wanted)
        if not present.all():
            unknown = [str(uuid_from_bytes(v)) for v in wanted[~present][:5]]
            raise QuantumGraphError(f"Node id(s) not in the quantum graph: {', '.join(unknown)}.")
        wanted_ids = ids_to_array(wanted)
        quanta: dict[str, pa.Table] = {}
        keep_labels: set[str] = set()
        for label, table in self.quanta.items():
            quanta[label] = table.filter(pc.is_in(table.column("node_id"), value_set=wanted_ids))
            if quanta[label].num_rows:
                keep_labels.add(label)
        edges = self.edges.filter(pc.is_in(self.edges.column("node_id"), value_set=wanted_ids))
        init_mask = pc.is_in(self.init_edges.column("task"), string_array(sorted(keep_labels | {""})))
        init_edges = self.init_edges.filter(init_mask)
        dataset_ids = pa.concat_arrays(
            [contiguous(edges.column("dataset_id")), contiguous(init_edges.column("dataset_id"))]
        )
        datasets: dict[str, pa.Table] = {}
        for name, table in self.datasets.items():
            found = table.filter(pc.is_in(table.column("dataset_id"), value_set=dataset_ids))
            if found.num_rows:
                datasets[name] = found
        records = self.datastore_records.filter(
            pc.is_in(self.datastore_records.column("dataset_id"), value_set=dataset_ids)
        )
        used_types = set(datasets) | set(edges.column("dataset_type").to_pylist())
        used_types |= set(init_edges.column("dataset_type").to_pylist())
        return QuantumGraph(
            metadata=self.metadata,
            dataset_types={k: v for k, v in self.dataset_types.items() if k in used_types},
            task_dimensions=self.task_dimensions,
            quanta=quanta,
            datasets=datasets,
            edges=edges,
            init_edges=init_edges,
            datastore_records=records,
            pruned=empty_table(PRUNED_SCHEMA),
            universe=self.universe,
        )

    # -- internals --------------------------------------------------------------------------------

    def _quanta_table(self, label: str) -> pa.Table:
        try:
            return self.quanta[label]
        except KeyError:
            raise QuantumGraphError(
                f"No task labeled {label!r} in the quantum graph (tasks: {', '.join(self._labels) or 'none'})."
            ) from None

    def _node_idx(self) -> IdIndex:
        if self._node_index is None:
            self._node_index = IdIndex(
                [ids_to_numpy(self.quanta[label].column("node_id")) for label in self._labels]
            )
        return self._node_index

    def _dataset_idx(self) -> IdIndex:
        if self._dataset_index is None:
            self._dataset_index = IdIndex(
                [ids_to_numpy(self.datasets[name].column("dataset_id")) for name in self._dataset_names]
            )
        return self._dataset_index

    def _edge_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Node ids, dataset ids (``S16``) and kinds of the edges, as contiguous numpy arrays (made once)."""
        if self._edge_columns is None:
            self._edge_columns = (
                ids_to_numpy(self.edges.column("node_id")),
                ids_to_numpy(self.edges.column("dataset_id")),
                to_numpy(self.edges.column("kind")).astype(np.int8, copy=False),
            )
        return self._edge_columns

    def _edge_indexes(self) -> tuple[RowIndex, RowIndex]:
        if self._edges_by_node is None or self._edges_by_dataset is None:
            node_ids, dataset_ids, _ = self._edge_arrays()
            self._edges_by_node = RowIndex(node_ids)
            self._edges_by_dataset = RowIndex(dataset_ids)
        return self._edges_by_node, self._edges_by_dataset

    def _locate_node(self, node_id: uuid.UUID) -> tuple[int, int]:
        located = self._node_idx().find(node_id.bytes)
        if located is None:
            raise QuantumGraphError(f"Quantum {node_id} is not in the quantum graph.")
        return located

    def _data_id(self, table: pa.Table, row: int, group: DimensionGroup) -> DataCoordinate:
        values = tuple(table.column(key)[row].as_py() for key in group.data_id_keys)
        return DataCoordinate.from_full_values(group, values)

    def _make_ref(self, dataset_type_name: str, parent: str, row: int, dataset_id: uuid.UUID) -> DatasetRef:
        table = self.datasets[parent]
        dataset_type = self._dataset_type(dataset_type_name, parent)
        data_id = self._data_id(table, row, self.dataset_types[parent].dimensions)
        return DatasetRef(dataset_type, data_id, table.column("run")[row].as_py(), dataset_id)

    def _dataset_type(self, name: str, parent: str) -> DatasetType:
        dataset_type = self.dataset_types.get(name)
        if dataset_type is None:
            parent_type = self.dataset_types[parent]
            component = name.partition(".")[2]
            if not component:
                raise QuantumGraphError(f"Dataset type {name!r} is not in the quantum graph.")
            # The butler looks the component's storage class up; only the name matters here.
            dataset_type = parent_type.make_component(component, parent_type.storage_class_name)
        return dataset_type

    def _edge_refs(self, node_id: uuid.UUID) -> list[tuple[str, EdgeKind, DatasetRef]]:
        by_node, _ = self._edge_indexes()
        rows = by_node.rows_of(node_id.bytes)
        return self._refs_of_edge_rows(self.edges, rows)

    def _init_edge_refs(self, label: str) -> list[tuple[str, EdgeKind, DatasetRef]]:
        tasks = self.init_edges.column("task").to_pylist()  # a few rows per task
        rows = np.array([i for i, task in enumerate(tasks) if task == label], dtype=np.int64)
        return self._refs_of_edge_rows(self.init_edges, rows)

    def _refs_of_edge_rows(self, edges: pa.Table, rows: np.ndarray) -> list[tuple[str, EdgeKind, DatasetRef]]:
        if len(rows) == 0:
            return []
        # A few rows per quantum: read them one by one rather than take a table (fixed costs dominate).
        if edges is self.edges:
            _, all_ids, all_kinds = self._edge_arrays()
        else:
            all_ids, all_kinds = ids_to_numpy(edges.column("dataset_id")), to_numpy(edges.column("kind"))
        ids = all_ids[rows]
        kinds = all_kinds[rows].tolist()
        positions = rows.tolist()
        names = [edges.column("dataset_type")[i].as_py() for i in positions]
        connections = [edges.column("connection")[i].as_py() for i in positions]
        index = self._dataset_idx()
        result = []
        for dataset_id, name, connection, kind in zip(ids, names, connections, kinds, strict=True):
            located = index.find(dataset_id)
            if located is None:
                raise QuantumGraphError(
                    f"Edge {connection!r} refers to dataset {uuid_from_bytes(dataset_id)}, which is not in the graph."
                )
            parent = self._dataset_names[located[0]]
            ref = self._make_ref(name, parent, located[1], uuid_from_bytes(dataset_id))
            result.append((connection, EdgeKind(kind), ref))
        return result

    # -- summaries --------------------------------------------------------------------------------

    def pruned_summary(self) -> dict[str, dict[str, int]]:
        """Pruned quanta counted by task and reason."""
        summary: dict[str, dict[str, int]] = {}
        if self.pruned.num_rows == 0:
            return summary
        grouped = self.pruned.group_by(["task", "reason"]).aggregate([("data_id", "count")])
        for row in grouped.to_pylist():
            summary.setdefault(row["task"], {})[row["reason"]] = row["data_id_count"]
        return summary

    def __repr__(self) -> str:
        counts = ", ".join(f"{label}: {self.quantum_count(label)}" for label in self._labels)
        return f"QuantumGraph({self.metadata.output_run!r}, {{{counts}}})"


def _positions(values: np.ndarray, value_set: np.ndarray) -> np.ndarray:
    """Position of each ``S16`` value in ``value_set`` (whose values are distinct), -1 when absent.

    Sorts on the first 8 bytes as uint64 (much faster than sorting 16-byte strings) and checks all
    16 bytes of each match; falls back to an Arrow hash lookup if two ids share their first 8 bytes.
    """
    result = np.full(len(values), -1, dtype=np.int64)
    if len(values) == 0 or len(value_set) == 0:
        return result
    table = np.ascontiguousarray(value_set, dtype="S16").view(np.uint64).reshape(-1, 2)
    wanted = np.ascontiguousarray(values, dtype="S16").view(np.uint64).reshape(-1, 2)
    order = np.argsort(table[:, 0])
    keys = table[order, 0]
    if (keys[1:] == keys[:-1]).any():
        import pyarrow.compute as pc  # rare: two ids with the same first 8 bytes

        found = pc.index_in(ids_to_array(values), value_set=ids_to_array(value_set))
        positions: np.ndarray = found.fill_null(-1).to_numpy().astype(np.int64)
        return positions
    query_order = np.argsort(wanted[:, 0])
    slots = np.minimum(np.searchsorted(keys, wanted[query_order, 0]), len(keys) - 1)
    candidate = np.empty(len(values), dtype=np.int64)
    candidate[query_order] = order[slots]
    same = (table[candidate] == wanted).all(axis=1)
    result[same] = candidate[same]
    return result
