"""The tables of a quantum graph being built: quanta, datasets, edges and pruned quanta, task by task.

`QuantumGraphBuilder` (in `graph.builder`) materializes the data-ID rows and hands them, with the
bulk lookups of `builder_lookups`, to a `GraphAssembly`, which visits the tasks in topological
order and finally makes the `QuantumGraph`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from butler.datasets import DatasetType
from butler.errors import ButlerError

from .builder_lookups import InputLookups
from .builder_tables import (
    D_COLUMN,
    Q_COLUMN,
    constant_strings,
    data_id_json_strings,
    ids_column,
    random_ids,
    relate,
    unique_rows,
    with_index,
)
from .errors import QuantumGraphBuildError
from .pipeline_graph import PipelineGraph
from .pipeline_graph_nodes import PACKAGES_DATASET_TYPE, TaskEdge, TaskNode
from .quantum_graph import (
    DATASTORE_RECORDS_SCHEMA,
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    PRUNED_SCHEMA,
    EdgeKind,
    QuantumGraph,
    QuantumGraphMetadata,
    dataset_schema,
    ids_to_numpy,
    quanta_schema,
)

__all__ = ["GraphAssembly", "connection_minimum", "edge_kind"]

_LOG = logging.getLogger(__name__)

_TEMPORAL = ("exposure", "visit", "day_obs")
"""Dimensions whose timespans select calibrations, in order of preference."""


def connection_minimum(task: TaskNode, edge: TaskEdge) -> int:
    connection = task.connections.connection(edge.connection_name)
    return int(getattr(connection, "minimum", 1))


def edge_kind(edge: TaskEdge) -> EdgeKind:
    """The `EdgeKind` of a pipeline-graph edge."""
    if edge.kind == "prerequisite_input":
        return EdgeKind.PREREQUISITE
    if edge.kind == "input":
        return EdgeKind.INPUT
    if edge.connection_name == "_metadata":
        return EdgeKind.METADATA
    if edge.connection_name == "_log":
        return EdgeKind.LOG
    if edge.kind == "init_input":
        return EdgeKind.INIT_INPUT
    if edge.connection_name == "_config":
        return EdgeKind.CONFIG
    if edge.kind == "init_output":
        return EdgeKind.INIT_OUTPUT
    return EdgeKind.OUTPUT


class GraphAssembly:
    """Tables of the graph being built, task by task (see `graph.builder` for the algorithm).

    Parameters
    ----------
    pipeline_graph
        The pipeline.
    lookups
        Bulk registry lookups against the materialized data-ID rows.
    dataset_types
        Resolved dataset types of the pipeline, by name.
    output_run
        RUN collection of the predicted outputs.
    clobber_outputs
        Whether outputs already in the output run are allowed.
    """

    def __init__(
        self,
        pipeline_graph: PipelineGraph,
        lookups: InputLookups,
        dataset_types: Mapping[str, DatasetType],
        output_run: str,
        clobber_outputs: bool,
    ) -> None:
        self.pipeline_graph = pipeline_graph
        self.output_run = output_run
        self.clobber_outputs = clobber_outputs
        self.lookups = lookups
        self.rows = lookups.table
        self.dataset_types = dict(dataset_types)
        self.graph_types: dict[str, DatasetType] = {}
        self.tables: dict[str, pa.Table] = {}
        """Dataset tables by parent name (final once their producer has been visited)."""
        self.quanta: dict[str, pa.Table] = {}
        self.task_dimensions: dict[str, tuple[str, ...]] = {}
        self.edges: list[pa.Table] = []
        self.init_edges: list[tuple[str, bytes, str, str, int]] = []
        self.pruned: list[pa.Table] = []
        self.referenced: dict[str, list[np.ndarray]] = {}
        """Ids of datasets read by some quantum or task, by parent dataset type name."""

    # -- datasets ---------------------------------------------------------------------------------

    def _use_type(self, edge: TaskEdge) -> str:
        """Record the dataset type an edge uses (component types included); its name in the edges table."""
        parent = self.dataset_types[edge.dataset_type_name]
        self.graph_types.setdefault(parent.name, parent)
        if edge.component:
            self.graph_types.setdefault(
                edge.full_name, parent.make_component(edge.component, edge.storage_class)
            )
        return edge.full_name

    def _add_datasets(self, name: str, table: pa.Table) -> None:
        existing = self.tables.get(name)
        self.tables[name] = table if existing is None else pa.concat_tables([existing, table])
        self.graph_types.setdefault(name, self.dataset_types[name])

    def _input_table(self, task: str, edge: TaskEdge) -> tuple[pa.Table, str]:
        """Datasets an input connection may read, and how to describe a shortage of them."""
        name = edge.dataset_type_name
        producer = self.pipeline_graph.producer_of(name)
        if producer is not None:
            return self.tables.get(name, dataset_schema(self.dataset_types[name].dimensions).empty_table()), (
                f"upstream {producer} quanta were pruned or not made"
            )
        try:
            table = self.lookups.existing(name)
        except ButlerError as err:
            raise QuantumGraphBuildError(
                f"Cannot look up {name} for {task}.{edge.connection_name}: {err}"
            ) from err
        if name not in self.tables:
            self._add_datasets(name, table)
        return table, f"not found in input collections {self.lookups.input_collections}"

    # -- one task ---------------------------------------------------------------------------------

    def add_task(self, label: str, node: TaskNode) -> None:
        """Make the quanta, outputs and edges of one task."""
        self._add_init(label, node)
        group = node.dimensions
        required = list(group.required)
        # Sorted with detector last: an exposure's or visit's quanta sit together (clustering, file blocks).
        order = sorted(required, key=lambda name: name == "detector")
        quanta = unique_rows(self.rows, group.data_id_keys, sort_keys=order)
        n = quanta.num_rows
        indexed = with_index(quanta, Q_COLUMN)
        failure = np.full(n, -1, dtype=np.int32)
        reasons: list[str] = []
        matched: list[tuple[TaskEdge, np.ndarray, np.ndarray]] = []
        for edge in node.inputs + node.prerequisite_inputs:
            q_index, dataset_ids, shortage = self._match_input(label, node, indexed, edge)
            counts = np.bincount(q_index, minlength=n)
            connection = node.connections.connection(edge.connection_name)
            if not connection.multiple and n and counts.max() > 1:
                example = quanta.slice(int(np.argmax(counts)), 1).to_pylist()[0]
                raise QuantumGraphBuildError(
                    f"{label}.{edge.connection_name} takes one {edge.dataset_type_name} per quantum but "
                    f"{int(counts.max())} match quantum {example}; declare it multiple=True or narrow the query."
                )
            minimum = connection_minimum(node, edge)
            failing = (counts < minimum) & (failure < 0)
            if failing.any():
                failure[failing] = len(reasons)
                need = f"at least {minimum}" if minimum > 1 else "a"
                reasons.append(f"needs {need} {edge.full_name} for {edge.connection_name}: {shortage}")
            matched.append((edge, q_index, dataset_ids))
        keep = failure < 0
        skipped = self._skip_and_conflicts(label, node, indexed, keep)
        kept = keep & ~skipped
        self._record_pruned(label, quanta, failure, reasons, skipped)
        m = int(kept.sum())
        if n and m < n:
            _LOG.info(
                "%s: %d of %d quanta kept (%d pruned, %d skipped).",
                label,
                m,
                n,
                int((~keep).sum()),
                int(skipped.sum()),
            )
        if m == 0:
            _LOG.warning("Task %s has no quanta.", label)
        node_ids = random_ids(m)
        position = np.full(n, -1, dtype=np.int64)
        position[kept] = np.arange(m)
        kept_quanta = quanta.filter(pa.array(kept))
        schema = quanta_schema(group)
        self.quanta[label] = pa.table([ids_column(node_ids), *kept_quanta.columns], schema=schema)
        self.task_dimensions[label] = group.required
        for edge, q_index, dataset_ids in matched:
            mask = kept[q_index]
            self._add_edges(node_ids[position[q_index[mask]]], dataset_ids[mask], edge)
        for edge in node.outputs:
            self._add_outputs(label, node, edge, kept_quanta, node_ids, indexed, skipped)

    def _match_input(
        self, label: str, node: TaskNode, indexed: pa.Table, edge: TaskEdge
    ) -> tuple[np.ndarray, np.ndarray, str]:
        """(quantum index, dataset id) pairs of one input connection, and what a shortage means."""
        self._use_type(edge)
        name = edge.dataset_type_name
        dataset_type = self.dataset_types[name]
        required = list(node.dimensions.required)
        producer = self.pipeline_graph.producer_of(name)
        if dataset_type.is_calibration and producer is None and dataset_type.dimensions.names:
            temporal = next(
                (
                    d
                    for d in _TEMPORAL
                    if d in node.dimensions.names and self.rows.schema.get_field_index(d) >= 0
                ),
                None,
            )
            if temporal is None:
                raise QuantumGraphBuildError(
                    f"{label}.{edge.connection_name} reads calibration {name}, but the task's dimensions "
                    f"{node.dimensions} have no exposure, visit or day_obs whose time selects it."
                )
            try:
                lookup, table = self.lookups.calibrations(name, temporal)
            except ButlerError as err:
                raise QuantumGraphBuildError(
                    f"Cannot look up calibration {name} for {label}.{edge.connection_name}: {err}"
                ) from err
            if name not in self.tables:
                self._add_datasets(name, table)
            keys = [k for k in lookup.column_names if k not in ("dataset_id", "run")]
            q_index, l_index = relate(
                indexed, required, with_index(lookup.select(keys), D_COLUMN), keys, self.rows
            )
            ids = ids_to_numpy(lookup.column("dataset_id"))[l_index]
            return (
                q_index,
                ids,
                f"no {name} in {self.lookups.input_collections} valid at the {temporal}'s time",
            )
        table, shortage = self._input_table(label, edge)
        keys = list(dataset_type.dimensions.required)
        q_index, d_index = relate(
            indexed, required, with_index(table.select(keys), D_COLUMN), keys, self.rows
        )
        return q_index, ids_to_numpy(table.column("dataset_id"))[d_index], shortage

    def _skip_and_conflicts(
        self, label: str, node: TaskNode, indexed: pa.Table, keep: np.ndarray
    ) -> np.ndarray:
        """Quanta to skip (all outputs exist in skip_existing_in); raises on outputs already in the output run."""
        n = indexed.num_rows
        required = list(node.dimensions.required)
        skipped = np.zeros(n, dtype=bool)
        lookups = self.lookups
        if lookups.skip_collections and n:
            found = np.zeros(n, dtype=np.int64)
            checked = [edge for edge in node.outputs if edge_kind(edge) is not EdgeKind.LOG]
            for edge in checked:
                existing = lookups.in_skip_collections(edge.dataset_type_name)
                keys = list(self.dataset_types[edge.dataset_type_name].dimensions.required)
                q_index, _ = relate(
                    indexed, required, with_index(existing.select(keys), D_COLUMN), keys, self.rows
                )
                hit = np.zeros(n, dtype=bool)
                hit[q_index] = True
                found += hit
            skipped = keep & (found == len(checked))
            partial = keep & (found > 0) & ~skipped
            if partial.any():
                example = (
                    indexed.filter(pa.array(partial)).slice(0, 1).drop_columns([Q_COLUMN]).to_pylist()[0]
                )
                _LOG.warning(
                    "%s: %d quanta have some but not all outputs in %s; they run again (e.g. %s).",
                    label,
                    int(partial.sum()),
                    lookups.skip_collections,
                    example,
                )
        if lookups.run_exists and n:
            conflicts = []
            running = keep & ~skipped
            for edge in node.outputs:
                existing = lookups.in_output_run(edge.dataset_type_name)
                keys = list(self.dataset_types[edge.dataset_type_name].dimensions.required)
                q_index, _ = relate(
                    indexed, required, with_index(existing.select(keys), D_COLUMN), keys, self.rows
                )
                clash = np.unique(q_index[running[q_index]])
                if len(clash):
                    example = indexed.take(pa.array(clash[:1])).drop_columns([Q_COLUMN]).to_pylist()[0]
                    conflicts.append(f"{len(clash)} {edge.dataset_type_name} (e.g. {example})")
            if conflicts and not self.clobber_outputs:
                raise QuantumGraphBuildError(
                    f"Outputs of {label} already exist in output run {self.output_run!r}: "
                    + "; ".join(conflicts)
                    + f". Pass --skip-existing-in {self.output_run} to skip quanta whose outputs all "
                    "exist, and/or --clobber-outputs to replace them."
                )
            if conflicts:
                _LOG.info("%s: existing outputs will be replaced: %s.", label, "; ".join(conflicts))
        return skipped

    def _record_pruned(
        self, label: str, quanta: pa.Table, failure: np.ndarray, reasons: list[str], skipped: np.ndarray
    ) -> None:
        parts = [(failure == index, reason) for index, reason in enumerate(reasons)]
        if skipped.any():
            parts.append((skipped, f"skipped: outputs already exist in {self.lookups.skip_collections}"))
        for mask, reason in parts:
            count = int(mask.sum())
            if not count:
                continue
            texts = data_id_json_strings(quanta.filter(pa.array(mask)))
            self.pruned.append(
                pa.table(
                    [
                        constant_strings(label, count),
                        pa.array(texts, pa.string()),
                        constant_strings(reason, count),
                    ],
                    schema=PRUNED_SCHEMA,
                )
            )
            _LOG.info("%s: %d quanta not made: %s.", label, count, reason)

    def _add_outputs(
        self,
        label: str,
        node: TaskNode,
        edge: TaskEdge,
        kept_quanta: pa.Table,
        node_ids: np.ndarray,
        indexed: pa.Table,
        skipped: np.ndarray,
    ) -> None:
        self._use_type(edge)
        name = edge.dataset_type_name
        dataset_type = self.dataset_types[name]
        group = dataset_type.dimensions
        m = len(node_ids)
        data = kept_quanta.select(list(group.data_id_keys))
        if group.required != node.dimensions.required and m:  # noqa: SIM102
            if unique_rows(data, group.required, sort_keys=()).num_rows != m:
                raise QuantumGraphBuildError(
                    f"{label}.{edge.connection_name} writes {name} with dimensions {group}, fewer than the "
                    f"task's {node.dimensions}: several quanta would write the same dataset."
                )
        ids = random_ids(m)
        schema = dataset_schema(group)
        predicted = pa.table(
            [
                ids_column(ids),
                constant_strings(self.output_run, m),
                pa.repeat(pa.scalar(True), m),
                *data.columns,
            ],
            schema=schema,
        )
        self._add_datasets(name, predicted)
        self._add_edges(node_ids, ids, edge)
        if skipped.any() and self.pipeline_graph.consumers_of(name):
            # Outputs of skipped quanta exist; downstream quanta read them as existing inputs.
            existing = self.lookups.in_skip_collections(name)
            keys = list(group.required)
            q_index, d_index = relate(
                indexed,
                list(node.dimensions.required),
                with_index(existing.select(keys), D_COLUMN),
                keys,
                self.rows,
            )
            rows = np.unique(d_index[skipped[q_index]])
            if len(rows):
                self._add_datasets(name, existing.take(pa.array(rows)))

    def _add_edges(self, node_ids: np.ndarray, dataset_ids: np.ndarray, edge: TaskEdge) -> None:
        count = len(node_ids)
        if not count:
            return
        if edge.is_read:
            self.referenced.setdefault(edge.dataset_type_name, []).append(dataset_ids)
        self.edges.append(
            pa.table(
                [
                    ids_column(node_ids),
                    ids_column(dataset_ids),
                    constant_strings(edge.full_name, count),
                    constant_strings(edge.connection_name, count),
                    pa.array(np.full(count, int(edge_kind(edge)), dtype=np.int8)),
                ],
                schema=EDGES_SCHEMA,
            )
        )

    # -- init datasets ----------------------------------------------------------------------------

    def _add_init(self, label: str, node: TaskNode) -> None:
        for edge in node.init_inputs:
            self._use_type(edge)
            name = edge.dataset_type_name
            if self.pipeline_graph.producer_of(name) is not None:
                table = self.tables[name]
            else:
                table = self.lookups.existing(name)
                if table.num_rows != 1:
                    raise QuantumGraphBuildError(
                        f"Init-input {name} of {label} is not in input collections {self.lookups.input_collections}."
                    )
                self._add_datasets(name, table)
            dataset_id = ids_to_numpy(table.column("dataset_id"))[:1]
            self.referenced.setdefault(name, []).append(dataset_id)
            self.init_edges.append(
                (
                    label,
                    bytes(dataset_id[0]).ljust(16, b"\0"),
                    edge.full_name,
                    edge.connection_name,
                    int(EdgeKind.INIT_INPUT),
                )
            )
        for edge in node.init_outputs:
            self._use_type(edge)
            output_id = self._init_output(edge.dataset_type_name)
            self.init_edges.append(
                (label, output_id, edge.full_name, edge.connection_name, int(edge_kind(edge)))
            )

    def _init_output(self, name: str) -> bytes:
        """Id of a run-level output: the existing one in the output run (extending it) or a new one."""
        existing = self.lookups.in_output_run(name, with_implied=True) if self.lookups.run_exists else None
        if existing is not None and existing.num_rows:
            table = existing.slice(0, 1)
        else:
            table = pa.table(
                [ids_column(random_ids(1)), pa.array([self.output_run]), pa.array([True])],
                schema=dataset_schema(self.dataset_types[name].dimensions),
            )
        self._add_datasets(name, table)
        dataset_id = ids_to_numpy(table.column("dataset_id"))[:1]
        self.referenced.setdefault(name, []).append(dataset_id)  # an existing one must stay in the graph
        return bytes(dataset_id[0]).ljust(16, b"\0")

    def add_packages(self) -> None:
        """The run's ``packages`` dataset."""
        self.graph_types.setdefault(PACKAGES_DATASET_TYPE, self.dataset_types[PACKAGES_DATASET_TYPE])
        dataset_id = self._init_output(PACKAGES_DATASET_TYPE)
        self.init_edges.append(
            ("", dataset_id, PACKAGES_DATASET_TYPE, PACKAGES_DATASET_TYPE, int(EdgeKind.PACKAGES))
        )

    # -- the graph ----------------------------------------------------------------------------------

    def finish(self, metadata: QuantumGraphMetadata) -> QuantumGraph:
        """Drop existing inputs nothing reads, attach their datastore records and make the graph."""
        edges = pa.concat_tables(self.edges) if self.edges else EDGES_SCHEMA.empty_table()
        labels, ids, names, connections, kinds = (
            zip(*self.init_edges, strict=True) if self.init_edges else ((),) * 5
        )
        init_edges = pa.table(
            [
                pa.array(labels, pa.string()),
                pa.array(ids, pa.binary(16)),
                pa.array(names, pa.string()),
                pa.array(connections, pa.string()),
                pa.array(kinds, pa.int8()),
            ],
            schema=INIT_EDGES_SCHEMA,
        )
        datasets: dict[str, pa.Table] = {}
        existing_ids: list[pa.Array] = []
        for name, table in self.tables.items():
            produced = table.column("produced")
            if not pc.all(produced).as_py():
                read = self.referenced.get(name)
                used = pc.is_in(
                    table.column("dataset_id"),
                    value_set=ids_column(np.concatenate(read)) if read else pa.array([], pa.binary(16)),
                )
                table = table.filter(pc.or_(produced, used))
            if table.num_rows:
                table = table.combine_chunks()
                datasets[name] = table
                existing_ids.append(table.filter(pc.invert(table.column("produced"))).column("dataset_id"))
        records = self.lookups.records()
        if records.num_rows:
            wanted = pa.concat_arrays([c.combine_chunks() for c in existing_ids]) if existing_ids else None
            if wanted is None:
                records = records.slice(0, 0)
            else:
                records = records.filter(pc.is_in(records.column("dataset_id"), value_set=wanted))
        return QuantumGraph(
            metadata=metadata,
            dataset_types=self.graph_types,
            task_dimensions=self.task_dimensions,
            quanta=self.quanta,
            datasets=datasets,
            edges=edges,
            init_edges=init_edges,
            datastore_records=records.cast(DATASTORE_RECORDS_SCHEMA),
            pruned=pa.concat_tables(self.pruned) if self.pruned else PRUNED_SCHEMA.empty_table(),
            universe=self.pipeline_graph.universe,
        )
