"""Building a `QuantumGraph` from a `PipelineGraph` and a data query, in a few bulk registry queries.

The algorithm ("all dimensions", as in Rubin's pipe_base):

1. One data-ID query over the union of every task's and every regular dataset type's dimensions,
   constrained by the WHERE expression and by the existence of the pipeline's overall regular
   inputs in the input collections, is materialized in a temporary table and fetched as one
   pyarrow table (spatial joins are SQL: the registry materializes region overlaps).
2. Tasks are visited in topological order. A task's quanta are the distinct projections of those
   rows onto its dimensions. Each input connection is matched to datasets by joining on shared
   dimension columns (through the rows where the task's own data IDs lack a join key). Existing
   inputs come from one find-first lookup per dataset type joined to the temporary table, with
   their datastore records; calibrations from one lookup per dataset type by validity range over
   the exposure/visit timespans; datasets made upstream from the upstream task's predicted outputs.
3. Quanta with fewer datasets than a connection's ``minimum`` are pruned with a reason; their
   outputs never exist, so pruning propagates downstream. ``skip_existing_in`` drops quanta whose
   outputs all exist (their outputs become existing inputs downstream); outputs already in the
   output run are an error unless ``clobber_outputs``.
4. Outputs, node ids and edges are numpy/pyarrow arrays; UUIDs are drawn in bulk.

As in Rubin, a data ID in no row of the query makes no quantum: with coadd tasks in the pipeline a
detector that overlaps no patch gets no isr quantum either. Build such pipelines step by step
(``pipeline.yaml#step1``) where that matters.

The columnar helpers live in `builder_tables`, the registry lookups in `builder_lookups`, the
per-task assembly of the tables in `builder_assembly`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

from butler.butler import Butler
from butler.collections import CollectionType
from butler.dimensions import DimensionGroup, unknown_name_message
from butler.errors import ButlerError, InvalidQueryError
from butler.registry import Registry
from butler.timing import log_duration

from .builder_assembly import GraphAssembly, connection_minimum
from .builder_lookups import InputLookups
from .errors import GraphError, QuantumGraphBuildError
from .pipeline_graph import PipelineGraph
from .quantum_graph import (
    QuantumGraph,
    QuantumGraphMetadata,
)

__all__ = ["QuantumGraphBuilder", "default_output_run"]

_LOG = logging.getLogger(__name__)

_TEMPORAL = ("exposure", "visit", "day_obs")
"""Dimensions whose timespans select calibrations, in order of preference."""


def default_output_run(output: str, now: datetime | None = None) -> str:
    """The RUN collection name used when only ``--output`` is given: ``<output>/<UTC timestamp>``."""
    moment = now or datetime.now(UTC)
    return f"{output}/{moment.strftime('%Y%m%dT%H%M%SZ')}"


class QuantumGraphBuilder:
    """Makes the quanta of a pipeline over the data selected by a query.

    Parameters
    ----------
    pipeline_graph
        The configured, checked pipeline.
    butler
        Butler of the data repository (only its registry is used), or the registry itself.
    input_collections
        Collections to search for inputs, in order.
    output_run
        RUN collection the outputs are predicted in.
    where, bind
        The data query (WHERE expression over dimensions) and values of its bind identifiers.
    skip_existing_in
        Collections where existing outputs make quanta unnecessary: a quantum whose outputs
        (metadata included) all exist there is left out and its outputs are used as existing inputs.
    clobber_outputs
        Allow outputs that already exist in the output run (the executor replaces them).
    extend_run
        The output run exists and the graph adds to it.
    output
        CHAINED collection to record in the metadata (created or updated later, on success).
    pipeline_yaml
        The expanded pipeline YAML recorded in the metadata.
    """

    def __init__(
        self,
        pipeline_graph: PipelineGraph,
        butler: Butler | Registry,
        input_collections: Sequence[str],
        output_run: str,
        where: str = "",
        bind: Mapping[str, Any] | None = None,
        *,
        skip_existing_in: Sequence[str] = (),
        clobber_outputs: bool = False,
        extend_run: bool = False,
        output: str | None = None,
        pipeline_yaml: str = "",
    ) -> None:
        self.pipeline_graph = pipeline_graph
        self.registry = butler if isinstance(butler, Registry) else butler.registry
        self.input_collections = (
            [input_collections] if isinstance(input_collections, str) else list(input_collections)
        )
        self.output_run = output_run
        self.where = where
        self.bind = dict(bind or {})
        self.skip_existing_in = (
            [skip_existing_in] if isinstance(skip_existing_in, str) else list(skip_existing_in)
        )
        self.clobber_outputs = clobber_outputs
        self.extend_run = extend_run
        self.output = output
        self.pipeline_yaml = pipeline_yaml

    # -- checks before querying -------------------------------------------------------------------

    def _check_collections(self) -> tuple[bool, list[str]]:
        """Refuse unknown inputs and a misused output run; (output run exists, skip collections that exist)."""
        registry = self.registry
        if not self.input_collections:
            raise QuantumGraphBuildError("No input collections given; name at least one with -i/--input.")
        for name in self.input_collections:
            if not registry.has_collection(name):
                raise QuantumGraphBuildError(
                    unknown_name_message("input collection", name, registry.query_collections())
                )
        run_exists = registry.has_collection(self.output_run)
        if run_exists and registry.get_collection_type(self.output_run) is not CollectionType.RUN:
            raise QuantumGraphBuildError(
                f"Output run {self.output_run!r} exists and is a "
                f"{registry.get_collection_type(self.output_run).name} collection, not a RUN."
            )
        if run_exists and not self.extend_run:
            raise QuantumGraphBuildError(
                f"Output run {self.output_run!r} already exists; pass --extend-run to add to it, or "
                "choose a new output run."
            )
        if self.extend_run and not run_exists:
            raise QuantumGraphBuildError(
                f"--extend-run was given but output run {self.output_run!r} does not exist."
            )
        if self.output is not None and registry.has_collection(self.output):
            kind = registry.get_collection_type(self.output)
            if kind is not CollectionType.CHAINED:
                raise QuantumGraphBuildError(
                    f"Output collection {self.output!r} exists and is a {kind.name} collection, not CHAINED."
                )
        skip = [name for name in self.skip_existing_in if registry.has_collection(name)]
        for name in self.skip_existing_in:
            if name not in skip:
                _LOG.info(
                    "--skip-existing-in collection %r does not exist (yet); nothing is skipped for it.", name
                )
        return run_exists, skip

    def _all_dimensions(self) -> DimensionGroup:
        """Union of task dimensions and dimensions of every regular (non-prerequisite, non-init) dataset type."""
        universe = self.pipeline_graph.universe
        names: set[str] = set()
        for node in self.pipeline_graph.tasks.values():
            names.update(node.dimensions.names)
            for edge in node.inputs + node.outputs:
                names.update(universe.group(edge.dimensions).names)
        return universe.group(names)

    def _constraint_datasets(self) -> list[str]:
        """Overall regular inputs (with dimensions) whose existence constrains the data-ID query.

        Inputs read only through connections with ``minimum=0`` do not constrain it.
        """
        names = []
        for name, node in self.pipeline_graph.overall_inputs().items():
            if node.is_prerequisite or node.is_init or not node.dimensions.names:
                continue
            required = False
            for label in node.consumers:
                task = self.pipeline_graph.tasks[label]
                for edge in task.inputs:
                    if edge.dataset_type_name == name and connection_minimum(task, edge) > 0:
                        required = True
            if required:
                names.append(name)
        return names

    # -- build ---------------------------------------------------------------------------------------

    def build(self) -> QuantumGraph:
        """Query the registry and assemble the graph.

        Raises
        ------
        QuantumGraphBuildError
            Unknown input collection, misused output run, bad data query, nothing selected (the
            message says which constraint left nothing), outputs already in the output run, ...
        """
        registry = self.registry
        with log_duration(_LOG, "Built the quantum graph"):
            run_exists, skip = self._check_collections()
            try:
                dataset_types = self.pipeline_graph.resolve(registry)
            except GraphError as err:
                raise QuantumGraphBuildError(f"Cannot build the quantum graph: {err}") from err
            dimensions = self._all_dimensions()
            constraints = self._constraint_datasets()
            try:
                with registry.materialize_data_ids(
                    dimensions.names,
                    datasets=constraints,
                    collections=self.input_collections,
                    where=self.where,
                    bind=self.bind,
                ) as rows:
                    with log_duration(_LOG, "Fetched the data-ID rows of the graph"):
                        table = rows.table()
                    _LOG.info("The data query selected %d rows over %s.", table.num_rows, dimensions)
                    if table.num_rows == 0:
                        reasons = registry.explain_empty_data_ids(
                            dimensions.names,
                            datasets=constraints,
                            collections=self.input_collections,
                            where=self.where,
                            bind=self.bind,
                        )
                        raise QuantumGraphBuildError(
                            "The data query selects nothing to process: " + "; ".join(reasons) + "."
                        )
                    registered = {t.name for t in registry.query_dataset_types(list(dataset_types))}
                    lookups = InputLookups(
                        rows,
                        table,
                        dataset_types,
                        self.input_collections,
                        self.output_run,
                        run_exists,
                        skip,
                        registered,
                    )
                    assembly = GraphAssembly(
                        self.pipeline_graph, lookups, dataset_types, self.output_run, self.clobber_outputs
                    )
                    pool = pa.default_memory_pool()
                    for label, node in self.pipeline_graph.tasks.items():
                        with log_duration(_LOG, f"Made the quanta of {label}", logging.DEBUG):
                            assembly.add_task(label, node)
                        pool.release_unused()  # joins leave large freed blocks; give them back
                    assembly.add_packages()
            except InvalidQueryError as err:
                raise QuantumGraphBuildError(f"Invalid data query {self.where!r}: {err}") from err
            except ButlerError as err:
                raise QuantumGraphBuildError(f"Cannot build the quantum graph: {err}") from err
            graph = assembly.finish(self._metadata(skip))
        counts = ", ".join(f"{label} {graph.quantum_count(label)}" for label in graph.task_labels())
        _LOG.info("Quantum graph: %d quanta (%s).", graph.quantum_count(), counts)
        return graph

    def _metadata(self, skip: Sequence[str]) -> QuantumGraphMetadata:
        universe = self.registry.universe
        return QuantumGraphMetadata(
            universe_name=universe.name,
            universe_version=universe.version,
            pipeline_yaml=self.pipeline_yaml,
            input_collections=tuple(self.input_collections),
            output_run=self.output_run,
            output=self.output,
            where=self.where,
            bind=self.bind,
            skip_existing_in=tuple(self.skip_existing_in),
            clobber_outputs=self.clobber_outputs,
            extend_run=self.extend_run,
        )
