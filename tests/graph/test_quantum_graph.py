"""The QuantumGraph model: tables, object API on demand, dependency order, subgraphs."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import builder_campaign as campaign
import numpy as np
import pyarrow as pa
import pytest

from graph.errors import QuantumGraphError
from graph.qgraph_drawing import quantum_graph_to_networkx
from graph.quantum_graph import (
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    EdgeKind,
    QuantumGraph,
    QuantumGraphMetadata,
    dataset_schema,
    ids_to_array,
    ids_to_numpy,
    quanta_schema,
    uuid_from_bytes,
)

RUN = "u/model/run"


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuantumGraph]:
    with campaign.quantum_graph(tmp_path_factory.mktemp("qg_model"), RUN) as graph:
        yield graph


def test_tables_follow_the_schemas(graph: QuantumGraph) -> None:
    universe = graph.universe
    for label, table in graph.quanta.items():
        assert table.schema == quanta_schema(universe.group(graph.task_dimensions[label]))
    for name, table in graph.datasets.items():
        assert table.schema == dataset_schema(graph.dataset_types[name].dimensions)
    assert graph.edges.schema == EDGES_SCHEMA and graph.init_edges.schema == INIT_EDGES_SCHEMA
    assert graph.task_labels() == ["isr", "calibrate", "summary"]
    assert graph.task_dimensions["calibrate"] == ("instrument", "detector", "visit")
    kinds = set(graph.edges.column("kind").to_pylist())
    assert kinds == {EdgeKind.INPUT, EdgeKind.PREREQUISITE, EdgeKind.OUTPUT, EdgeKind.METADATA, EdgeKind.LOG}


def test_quantum_objects_on_demand(graph: QuantumGraph) -> None:
    node_id = graph.node_ids("calibrate")[0]
    quantum = graph.quantum(node_id)
    assert quantum.id == node_id and quantum.task_label == "calibrate" == graph.label_of(node_id)
    assert set(quantum.inputs) == {"post_isr", "refcat"}
    assert set(quantum.outputs) == {"calexp", "src"}
    assert (
        quantum.metadata_output is not None
        and quantum.metadata_output.dataset_type.name == "calibrate_metadata"
    )
    assert {r.id for r in graph.inputs_of(node_id)} == {r.id for r in quantum.all_input_refs()}
    assert {r.id for r in graph.outputs_of(node_id)} == {r.id for r in quantum.all_output_refs()}
    assert [q.id for q in graph.quanta_of("summary")] == graph.node_ids("summary")
    with pytest.raises(QuantumGraphError, match="is not in the quantum graph"):
        graph.quantum(uuid.uuid4())
    with pytest.raises(QuantumGraphError, match="No task labeled 'nope'"):
        graph.quantum_count("nope")


def test_neighbours_and_dependency_order(graph: QuantumGraph) -> None:
    summary = graph.node_ids("summary")[0]
    calibrates = graph.predecessors(summary)
    assert len(calibrates) == 4 and {graph.label_of(n) for n in calibrates} == {"calibrate"}
    for calibrate in calibrates:
        assert summary in graph.successors(calibrate)
        (isr,) = graph.predecessors(calibrate)
        assert graph.label_of(isr) == "isr"
    assert graph.predecessors(isr) == []
    order = graph.topological_order()
    assert len(order) == len(set(order)) == graph.quantum_count()
    position = {node: i for i, node in enumerate(order)}
    for node in order:
        assert all(position[p] < position[node] for p in graph.predecessors(node))
    array = graph.topological_order_array()
    assert [uuid_from_bytes(v) for v in array] == order


def test_records_init_refs_and_outputs(graph: QuantumGraph) -> None:
    isr = next(graph.quanta_of("isr"))
    raw, bias = isr.inputs["raw"][0], isr.inputs["bias"][0]
    records = graph.records_of([raw.id, bias.id, isr.outputs["post_isr"][0].id])
    assert set(records) == {raw.id}  # the campaign gives records to raws only; outputs have none yet
    assert records[raw.id][0].dataset_id == raw.id
    assert set(graph.init_refs("summary")) == {"_config", "src_schema"}
    assert (
        graph.init_input_refs("summary")["src_schema"].id
        == graph.init_output_refs("calibrate")["src_schema"].id
    )
    outputs = list(graph.all_output_refs())
    names = {ref.dataset_type.name for ref in outputs}
    assert {"packages", "isr_config", "postISRCCD", "isr_log", "visitSummary", "src_schema"} <= names
    assert "raw" not in names and all(ref.run == RUN for ref in outputs)
    assert graph.packages_ref().id in {ref.id for ref in outputs}


def test_subgraph_has_what_a_job_needs(graph: QuantumGraph) -> None:
    isr = graph.node_ids("isr")[:2]
    summary = graph.node_ids("summary")[0]
    sub = graph.subgraph([*isr, summary])
    assert sub.quantum_count() == 3 and sub.quantum_count("calibrate") == 0
    assert sub.task_labels() == graph.task_labels()
    for node_id in [*isr, summary]:
        original, copy = graph.quantum(node_id), sub.quantum(node_id)
        assert copy.inputs == original.inputs and copy.outputs == original.outputs
        assert copy.data_id == original.data_id and copy.init_inputs == original.init_inputs
    raws = [ref.id for n in isr for ref in graph.quantum(n).inputs["raw"]]
    assert set(sub.records_of(raws)) == set(raws)
    assert sub.datastore_records.num_rows == len(raws)
    assert sub.packages_ref() == graph.packages_ref()
    with pytest.raises(QuantumGraphError, match="not in the quantum graph"):
        graph.subgraph([uuid.uuid4()])


def test_ids_round_trip_including_trailing_zero_bytes() -> None:
    ids = [uuid.UUID(bytes=bytes(15) + b"\1"), uuid.UUID(bytes=b"\1" + bytes(15)), uuid.uuid4()]
    array = ids_to_array(ids)
    values = ids_to_numpy(array)
    assert [uuid_from_bytes(v) for v in values] == ids
    assert ids_to_array(values).equals(array)
    chunked = pa.chunked_array([array.slice(0, 1), array.slice(1)])
    assert list(ids_to_numpy(chunked)) == list(values)
    assert ids_to_numpy(pa.array([], pa.binary(16))).dtype == np.dtype("S16")


def test_metadata_defaults() -> None:
    metadata = QuantumGraphMetadata(universe_name="quanta", universe_version=2, output_run="r")
    assert metadata.created and metadata.user and metadata.quanta_version
    assert QuantumGraphMetadata.model_validate_json(metadata.model_dump_json()) == metadata


def test_quantum_level_drawing(graph: QuantumGraph) -> None:
    drawing = quantum_graph_to_networkx(graph)
    tasks = [n for n, data in drawing.nodes(data=True) if data["kind"] == "task"]
    assert len(tasks) == graph.quantum_count()
    prerequisites = [e for e in drawing.edges(data=True) if e[2]["prerequisite"]]
    assert len(prerequisites) == 2 * graph.quantum_count("isr") + graph.quantum_count("calibrate")
    with pytest.raises(QuantumGraphError, match="pictures are drawn for at most 10"):
        quantum_graph_to_networkx(graph, limit=10)
