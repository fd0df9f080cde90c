"""Clustering: single-quantum and dimension clustering on a small in-memory graph, and dispatch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pytest
from synthetic_qgraph import make_qgraph

from bps.clustering import (
    ClusterAssignment,
    ClusteredQuantumGraph,
    _make_names_unique,
    cluster_quanta,
    safe_name_part,
)
from bps.clustering_algorithms import dimension_clustering, single_quantum_clustering
from bps.config import BpsConfig
from bps.config_models import ClusterSpec
from bps.errors import ClusteringError
from graph.quantum_graph import QuantumGraph, uuid_from_bytes


@dataclass
class FakeConfig:
    """The two things clustering asks of a BpsConfig."""

    clusters: Mapping[str, ClusterSpec] = field(default_factory=dict)
    algorithm: str = "single_quantum"

    def get(self, key: str, *, default: object = None) -> object:
        assert key == "clusterAlgorithm"
        return self.algorithm


def spec(
    name: str = "step1",
    pipetasks: tuple[str, ...] = ("isr", "calibrate"),
    dimensions: tuple[str, ...] = ("visit", "detector"),
    equal: tuple[tuple[str, str], ...] = (("visit", "exposure"),),
    method: str | None = None,
    max_clusters: int | None = None,
    max_size: int | None = None,
) -> ClusterSpec:
    return ClusterSpec(name, pipetasks, dimensions, equal, method, max_clusters, max_size)  # type: ignore[arg-type]


def fake(clusters: Mapping[str, ClusterSpec] | None = None, algorithm: str = "single_quantum") -> BpsConfig:
    return cast(BpsConfig, FakeConfig(dict(clusters or {}), algorithm))


def dims(*specs: ClusterSpec) -> BpsConfig:
    return fake({s.name: s for s in specs}, "dimensions")


def members(cqg: ClusteredQuantumGraph, qgraph: QuantumGraph) -> dict[str, set[tuple[str, int, int]]]:
    """Cluster name -> {(task, visit-or-exposure, detector)} of its quanta."""
    offsets = qgraph.quantum_offsets()
    described: list[tuple[str, int, int]] = []
    for label, (start, stop) in offsets.items():
        columns = qgraph.data_id_columns(label)
        first = columns.get("exposure", columns.get("visit"))
        assert first is not None
        detector = columns.get("detector", np.full(stop - start, -1))
        described.extend((label, int(a), int(b)) for a, b in zip(first, detector, strict=True))
    return {
        cqg.names[c]: {described[int(q)] for q in cqg.members[cqg.offsets[c] : cqg.offsets[c + 1]]}
        for c in range(len(cqg))
    }


def cluster_edges(cqg: ClusteredQuantumGraph) -> set[tuple[str, str]]:
    parents, children = cqg.edges()
    return {(cqg.names[a], cqg.names[b]) for a, b in zip(parents.tolist(), children.tolist(), strict=True)}


def test_single_quantum_clustering() -> None:
    qgraph = make_qgraph()
    cqg = single_quantum_clustering(qgraph, fake())
    assert len(cqg) == qgraph.quantum_count() == 14
    assert cqg.label_counts() == {"isr": 6, "calibrate": 6, "summary": 2}
    assert cqg.quanta_counts() == {"isr": 6, "calibrate": 6, "summary": 2}
    first = cqg.cluster(0)
    # The instrument (one value, a string) is left out of names but kept in the tags.
    assert first.name == "isr_0_1"
    assert dict(first.tags) == {"instrument": "Cam", "detector": "0", "exposure": "1"}
    assert dict(first.quanta_counts) == {"isr": 1}
    assert first.node_ids == (str(uuid_from_bytes(qgraph.topological_order_array()[0])),)
    assert len(set(cqg.names)) == len(cqg)
    assert ("isr_0_1", "calibrate_0_1") in cluster_edges(cqg)
    assert ("calibrate_2_2", "summary_2") in cluster_edges(cqg)
    assert len(cluster_edges(cqg)) == 12


def test_dimension_clustering_groups_equal_dimension_values() -> None:
    qgraph = make_qgraph()
    cqg = dimension_clustering(qgraph, dims(spec()))
    assert cqg.label_counts() == {"step1": 6, "summary": 2}
    found = members(cqg, qgraph)
    assert found["step1_1_0"] == {("isr", 1, 0), ("calibrate", 1, 0)}
    step1 = next(c for c in cqg.clusters() if c.name == "step1_2_1")
    assert dict(step1.tags) == {"visit": "2", "detector": "1"}
    assert dict(step1.quanta_counts) == {"isr": 1, "calibrate": 1}
    assert len(step1.node_ids) == 2
    assert cluster_edges(cqg) == {(f"step1_{v}_{d}", f"summary_{v}") for v in (1, 2) for d in (0, 1, 2)}


def test_dimension_clustering_per_visit_and_several_definitions() -> None:
    qgraph = make_qgraph()
    cqg = dimension_clustering(
        qgraph,
        dims(
            spec("isrs", ("isr",), ("exposure",), ()), spec("rest", ("calibrate", "summary"), ("visit",), ())
        ),
    )
    assert cqg.names == ["isrs_1", "isrs_2", "rest_1", "rest_2"]
    assert cluster_edges(cqg) == {("isrs_1", "rest_1"), ("isrs_2", "rest_2")}
    assert cqg.cluster(2).quanta_counts == {"calibrate": 3, "summary": 1}


def test_missing_dimension_names_task_and_dimension() -> None:
    with pytest.raises(ClusteringError, match="task 'isr' has no dimension 'visit'.*equalDimensions"):
        dimension_clustering(make_qgraph(), dims(spec(equal=())))


def test_bad_definitions() -> None:
    qgraph = make_qgraph()
    with pytest.raises(
        ClusteringError, match="cluster.step1.pipetasks: task 'nope' is not in the quantum graph"
    ):
        dimension_clustering(qgraph, dims(spec(pipetasks=("isr", "nope"))))
    with pytest.raises(ClusteringError, match="'isr' is in two cluster definitions: cluster.a and cluster.b"):
        dimension_clustering(qgraph, dims(spec("a"), spec("b", ("isr",), ("exposure",))))
    with pytest.raises(ClusteringError, match="cluster.summary: the cluster label is also a task label"):
        dimension_clustering(qgraph, dims(spec("summary")))


def test_cycle_is_refused_naming_the_clusters() -> None:
    # isr and summary of a visit in one cluster, calibrate outside: cluster -> calibrate -> cluster.
    with pytest.raises(
        ClusteringError, match=r"cycle between clusters (step1_1|calibrate_\d_1) -> .*labels calibrate, step1"
    ):
        dimension_clustering(make_qgraph(), dims(spec(pipetasks=("isr", "summary"), dimensions=("visit",))))


@pytest.mark.parametrize(
    ("method", "dimensions"), [("sink", ("visit", "detector")), ("source", ("exposure", "detector"))]
)
def test_find_dependency_method(method: str, dimensions: tuple[str, ...]) -> None:
    # Only the sink (calibrate) or source (isr) needs the dimensions; the other task follows the edges.
    qgraph = make_qgraph()
    cqg = dimension_clustering(qgraph, dims(spec(dimensions=dimensions, equal=(), method=method)))
    found = members(cqg, qgraph)
    assert found["step1_2_1"] == {("isr", 2, 1), ("calibrate", 2, 1)}
    assert cqg.label_counts() == {"step1": 6, "summary": 2}


def test_find_dependency_conflict() -> None:
    # Sources are calibrate quanta (per detector); summary is fed by three of them.
    config = dims(
        spec(pipetasks=("calibrate", "summary"), dimensions=("visit", "detector"), equal=(), method="source")
    )
    with pytest.raises(ClusteringError, match="task 'summary' would be in clusters step1_1_0, step1_1_1"):
        dimension_clustering(make_qgraph(), config)


def test_partition_max_size_keeps_connected_quanta_together() -> None:
    qgraph = make_qgraph(detectors=(0, 1, 2, 3))
    cqg = dimension_clustering(qgraph, dims(spec(dimensions=("visit",), max_size=4)))
    found = members(cqg, qgraph)
    assert cqg.label_counts() == {"step1": 4, "summary": 2}
    assert found["step1_1_0"] == {("isr", 1, 0), ("calibrate", 1, 0), ("isr", 1, 1), ("calibrate", 1, 1)}
    assert found["step1_1_1"] == {("isr", 1, 2), ("calibrate", 1, 2), ("isr", 1, 3), ("calibrate", 1, 3)}
    assert dict(next(c for c in cqg.clusters() if c.name == "step1_2_1").tags) == {
        "visit": "2",
        "partition": "1",
    }
    cqg = dimension_clustering(qgraph, dims(spec(dimensions=("visit",), max_clusters=8)))
    assert cqg.label_counts()["step1"] == 8  # 4 pieces per visit, one detector each


def test_names_are_safe_and_unique() -> None:
    assert safe_name_part("a b/c:d") == "a-b-c-d"
    qgraph = make_qgraph(instrument="My Cam/2")
    cqg = dimension_clustering(
        qgraph, dims(spec(pipetasks=("summary",), dimensions=("instrument",), equal=()))
    )
    assert "step1_My-Cam-2" in cqg.names
    assert cqg.cluster(cqg.names.index("step1_My-Cam-2")).tags == {"instrument": "My Cam/2"}
    names = ["a", "b", "a", "a_2", "a"]
    _make_names_unique(names)
    assert names == ["a", "b", "a_3", "a_2", "a_4"]


@pytest.mark.parametrize(
    "name",
    [
        "single_quantum",
        "single_quantum_clustering",
        "lsst.ctrl.bps.quantum_clustering_funcs.single_quantum_clustering",
        "bps.clustering_algorithms.single_quantum_clustering",
    ],
)
def test_dispatch_by_name(name: str) -> None:
    assert len(cluster_quanta(make_qgraph(), fake(algorithm=name))) == 14


def test_dispatch_dimensions_and_unknown() -> None:
    config = fake({"step1": spec()}, "lsst.ctrl.bps.quantum_clustering_funcs.dimension_clustering")
    assert len(cluster_quanta(make_qgraph(), config)) == 8
    with pytest.raises(ClusteringError, match="'nope' is not a known clustering algorithm.*dimensions"):
        cluster_quanta(make_qgraph(), fake(algorithm="nope"))
    with pytest.raises(ClusteringError, match="cannot import module 'no_such_module'"):
        cluster_quanta(make_qgraph(), fake(algorithm="no_such_module.func"))


@pytest.mark.parametrize(
    "config",
    [
        fake(),
        dims(spec()),
        dims(spec(dimensions=("visit",), max_size=3)),
        dims(spec(equal=(), method="sink")),
    ],
)
def test_empty_graph(config: BpsConfig) -> None:
    cqg = cluster_quanta(make_qgraph(visits=()), config)
    assert len(cqg) == 0 and cqg.label_counts() == {} and len(cqg.edges()[0]) == 0


def test_assignment_checks() -> None:
    qgraph = make_qgraph(visits=(1,), detectors=(0,), tasks=("isr",))

    def assignment(cluster_of: list[int], names: list[str]) -> ClusterAssignment:
        return ClusterAssignment(
            cluster_of=np.array(cluster_of),
            labels=["x"],
            label_of=np.zeros(len(names), dtype=np.int32),
            names=names,
            tag_keys=[()],
            tag_text=[""] * len(names),
        )

    with pytest.raises(ClusteringError, match="placed 2 quanta; the graph has 1"):
        ClusteredQuantumGraph.from_assignment(qgraph, assignment([0, 0], ["x_1"]))
    with pytest.raises(ClusteringError, match="without a cluster"):
        ClusteredQuantumGraph.from_assignment(qgraph, assignment([-1], ["x_1"]))
    with pytest.raises(ClusteringError, match="clusters without quanta: x_2"):
        ClusteredQuantumGraph.from_assignment(qgraph, assignment([0], ["x_1", "x_2"]))
    cqg = ClusteredQuantumGraph.from_assignment(qgraph, assignment([0], ["x_1"]))
    assert cqg.cluster(0).quanta_counts == {"isr": 1} and cqg.label(0) == "x"
