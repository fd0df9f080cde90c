"""The quantum-graph builder on a DemoCam repository: the graph the by-hand test assembles, built and run.

The repository is built with the butler commands a user types (as in test_democam_tasks). The graph
of the demo pipeline for ``band = 'g'`` must have the quanta the by-hand enumeration has, the
validity-correct calibrations, datastore records for every existing input, and must run to the
end quantum by quantum in ``topological_order()`` with `execute_quantum` against a real Butler.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from democam_repository import EXAMPLES, build_democam_repository

from butler.butler import Butler
from graph.builder import QuantumGraphBuilder
from graph.init_outputs import write_init_outputs
from graph.pipeline import Pipeline
from graph.pipeline_graph import PipelineGraph
from graph.quantum_execution import QuantumStatus, execute_quantum
from graph.quantum_graph import QuantumGraph

RUN = "u/demo/qgraph"
INPUTS = "DemoCam/defaults"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DemoCam repository built the way docs/democam.md tells a user to."""
    return build_democam_repository(tmp_path_factory.mktemp("democam_qgraph"))


@pytest.fixture(scope="module")
def pipeline_graph() -> PipelineGraph:
    return PipelineGraph.from_pipeline(Pipeline.from_yaml(str(EXAMPLES / "demo_pipeline.yaml")))


@pytest.fixture(scope="module")
def built(repo: Path, pipeline_graph: PipelineGraph) -> Iterator[tuple[Butler, QuantumGraph]]:
    with Butler(repo, collections=[INPUTS]) as butler:
        graph = QuantumGraphBuilder(pipeline_graph, butler, [INPUTS], RUN, "band = 'g'").build()
        yield butler, graph


def test_quanta_are_what_the_by_hand_test_enumerates(built: tuple[Butler, QuantumGraph]) -> None:
    butler, graph = built
    registry = butler.registry
    visits = sorted(r.id for r in registry.query_dimension_records("visit", where="band = 'g'"))
    overlaps = registry.query_data_ids(["visit", "patch"], where="band = 'g' AND skymap = 'demo-rings'")
    warps = {(d["visit"], d["tract"], d["patch"]) for d in overlaps}
    patches = {(tract, patch) for _, tract, patch in warps}
    counts = {label: graph.quantum_count(label) for label in graph.task_labels()}
    assert counts == {
        "isr": len(visits) * 4,
        "calibrate": len(visits) * 4,
        "consolidateVisitSummary": len(visits),
        "makeWarp": len(warps),
        "assembleCoadd": len(patches),
        "detectCoadd": len(patches),
    }
    made = {(q.data_id["visit"], q.data_id["tract"], q.data_id["patch"]) for q in graph.quanta_of("makeWarp")}
    assert made == warps
    assert graph.pruned.num_rows == 0
    assert graph.metadata.output_run == RUN and graph.metadata.where == "band = 'g'"


def test_calibrations_are_the_valid_ones(built: tuple[Butler, QuantumGraph]) -> None:
    butler, graph = built
    flats: set[uuid.UUID] = set()
    for quantum in graph.quanta_of("isr"):
        data_id = dict(quantum.data_id.required)
        for name in ("bias", "flat"):
            (ref,) = quantum.inputs[name]
            expected = butler.find_dataset(name, data_id, collections=[INPUTS])
            assert expected is not None and ref.id == expected.id, (name, data_id)
        flats.add(quantum.inputs["flat"][0].id)
    # The two g visits straddle the 2026-01-01 curated-calibration epoch: both flat epochs are used.
    epochs = {ref.run for ref in (graph.ref(i) for i in flats)}
    assert len(epochs) == 2


def test_every_existing_input_has_datastore_records(built: tuple[Butler, QuantumGraph]) -> None:
    _, graph = built
    existing = [
        i
        for name, table in graph.datasets.items()
        for i, produced in zip(
            table.column("dataset_id").to_pylist(), table.column("produced").to_pylist(), strict=True
        )
        if not produced
    ]
    assert existing
    records = graph.records_of(uuid.UUID(bytes=i) for i in existing)
    assert set(records) == {uuid.UUID(bytes=i) for i in existing}
    raw = next(graph.quanta_of("isr")).inputs["raw"][0]
    assert records[raw.id][0].path.endswith(".fits") or records[raw.id][0].path


def test_every_quantum_runs_in_topological_order(
    built: tuple[Butler, QuantumGraph], repo: Path, pipeline_graph: PipelineGraph
) -> None:
    _, graph = built
    with Butler(repo, collections=[RUN, INPUTS], run=RUN) as butler:
        pipeline_graph.register_dataset_types(butler.registry)
        tasks = {
            label: node.task_class(config=node.config, name=label)
            for label, node in pipeline_graph.tasks.items()
        }
        write_init_outputs(butler, tasks.values(), RUN)
        order = graph.topological_order()
        assert len(order) == graph.quantum_count()
        statuses = {}
        for node_id in order:
            quantum = graph.quantum(node_id)
            outcome = execute_quantum(tasks[quantum.task_label], quantum, butler)
            statuses[node_id] = outcome.status
        # A patch the g visits barely touch has no background to measure: detectCoadd finds no work
        # there. Everything else succeeds.
        for node_id, status in statuses.items():
            assert status is QuantumStatus.SUCCEEDED or (
                status is QuantumStatus.NO_WORK and graph.label_of(node_id) == "detectCoadd"
            ), (graph.label_of(node_id), status)
        idle = [n for n, status in statuses.items() if status is QuantumStatus.NO_WORK]
        assert len(idle) < graph.quantum_count("detectCoadd")
        failed_outputs = {ref.id for n in idle for ref in graph.quantum(n).outputs["detections"]}
        for ref in graph.all_output_refs():
            if ref.dataset_type.name.endswith("_config") or ref.dataset_type.name == "packages":
                continue
            if ref.id in failed_outputs:
                continue
            assert butler.exists(ref), ref
        detections = butler.registry.query_datasets("deepCoadd_det", RUN)
        assert len(detections) == graph.quantum_count("detectCoadd") - len(idle)
