"""Bulk columnar access of the QuantumGraph: offsets, data-id columns, quantum edges."""

from __future__ import annotations

from collections.abc import Iterator

import builder_campaign as campaign
import numpy as np
import pytest

from graph.errors import QuantumGraphError
from graph.quantum_graph import QuantumGraph, uuid_from_bytes

RUN = "u/bulk/run"


@pytest.fixture(scope="module")
def graph(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuantumGraph]:
    with campaign.quantum_graph(tmp_path_factory.mktemp("qg_bulk"), RUN) as graph:
        yield graph


def test_offsets_cover_the_global_order(graph: QuantumGraph) -> None:
    offsets = graph.quantum_offsets()
    order = graph.topological_order_array()
    assert list(offsets) == graph.task_labels()
    start = 0
    for label, (first, stop) in offsets.items():
        assert first == start and stop - first == graph.quantum_count(label)
        assert [uuid_from_bytes(v) for v in order[first:stop]] == graph.node_ids(label)
        start = stop
    assert start == len(order) == graph.quantum_count()


def test_data_id_columns_match_quanta(graph: QuantumGraph) -> None:
    for label in graph.task_labels():
        columns = graph.data_id_columns(label)
        quanta = list(graph.quanta_of(label))
        for key, column in columns.items():
            assert len(column) == len(quanta)
            assert [q.data_id[key] for q in quanta] == column.tolist()
    label = graph.task_labels()[0]
    with pytest.raises(QuantumGraphError, match="has no dimension"):
        graph.data_id_columns(label, ["no_such_dimension"])


def test_quantum_edges_match_the_object_api(graph: QuantumGraph) -> None:
    upstream, downstream = graph.quantum_edges()
    assert upstream.dtype == np.int64 and downstream.dtype == np.int64
    order = [uuid_from_bytes(v) for v in graph.topological_order_array()]
    position = {node: i for i, node in enumerate(order)}
    expected = {(position[p], position[node]) for node in order for p in graph.predecessors(node)}
    found = set(zip(upstream.tolist(), downstream.tolist(), strict=True))
    assert found == expected
    assert len(found) == len(upstream)  # each pair once
    assert (upstream < downstream).all()  # the global order is a dependency order


@pytest.mark.parametrize("shared_prefix", [False, True])
def test_positions_lookup(shared_prefix: bool) -> None:
    from graph.quantum_graph import _positions

    rng = np.random.default_rng(5)
    table = [rng.bytes(16) for _ in range(50)]
    if shared_prefix:  # two ids with the same first 8 bytes: the exact fallback path
        table[1] = table[0][:8] + rng.bytes(8)
    values = [table[7], rng.bytes(16), table[1], table[0], table[0][:8] + bytes(8)]
    found = _positions(np.array(values, dtype="S16"), np.array(table, dtype="S16"))
    assert found.tolist() == [7, -1, 1, 0, -1]
    assert _positions(np.empty(0, dtype="S16"), np.array(table, dtype="S16")).tolist() == []
