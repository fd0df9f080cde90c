"""Pictures of small quantum graphs: one node per quantum and per dataset, in the pipeline drawing's vocabulary.

`quantum_graph_to_networkx` describes a `QuantumGraph` the way `PipelineGraph.to_networkx` describes
a pipeline (``kind`` "task"/"dataset_type", ``label``, ``dimensions``, ...), so `pipeline_drawing`'s
`to_dot`, `to_mermaid` and `to_svg` draw it. Task nodes show the task label and the quantum's data
ID, dataset nodes the dataset type and its data ID. Large graphs are refused: a picture of more
than a few hundred quanta helps nobody.
"""

from __future__ import annotations

from typing import Any

import networkx as nx

from .errors import QuantumGraphError
from .quantum_graph import EdgeKind, QuantumGraph, uuid_from_bytes

__all__ = ["MAX_DRAWN_QUANTA", "quantum_graph_to_networkx"]

MAX_DRAWN_QUANTA = 500
"""Largest graph (in quanta) drawn."""


def _values(data_id: Any) -> tuple[str, ...]:
    return tuple(f"{key}={value}" for key, value in data_id.required.items() if key != "instrument")


def quantum_graph_to_networkx(graph: QuantumGraph, *, limit: int = MAX_DRAWN_QUANTA) -> nx.DiGraph:
    """A `networkx.DiGraph` of quanta and the datasets they read and write, for `pipeline_drawing`.

    Raises `QuantumGraphError` when the graph has more than ``limit`` quanta.
    """
    count = graph.quantum_count()
    if count > limit:
        raise QuantumGraphError(
            f"The quantum graph has {count} quanta; pictures are drawn for at most {limit}. Narrow the data "
            "query (-d) or the pipeline (#labels) to draw it."
        )
    drawing = nx.DiGraph(name=f"Quantum graph: {count} quanta in {graph.metadata.output_run}")
    for node_id in graph.topological_order():
        quantum = graph.quantum(node_id)
        task_key = f"quantum:{node_id}"
        drawing.add_node(
            task_key,
            kind="task",
            label=quantum.task_label,
            task_class="",
            dimensions=_values(quantum.data_id),
        )
        for connection, refs in quantum.inputs.items():
            for ref in refs:
                key = _add_dataset(drawing, graph, ref)
                drawing.add_edge(key, task_key, connection=connection, prerequisite=False, init=False)
        outputs = [(c, ref) for c, refs in quantum.outputs.items() for ref in refs]
        for connection, ref in outputs:
            key = _add_dataset(drawing, graph, ref)
            drawing.add_edge(task_key, key, connection=connection, prerequisite=False, init=False)
    prerequisites = graph.edges.filter(graph.edges.column("kind").to_numpy() == int(EdgeKind.PREREQUISITE))
    for node_value, dataset_value in zip(
        prerequisites.column("node_id").to_pylist(),
        prerequisites.column("dataset_id").to_pylist(),
        strict=True,
    ):
        source = f"dataset:{uuid_from_bytes(dataset_value)}"
        target = f"quantum:{uuid_from_bytes(node_value)}"
        if drawing.has_edge(source, target):
            drawing.edges[source, target]["prerequisite"] = True
    return drawing


def _add_dataset(drawing: nx.DiGraph, graph: QuantumGraph, ref: Any) -> str:
    key = f"dataset:{ref.id}"
    if key not in drawing:
        dataset_type = ref.dataset_type
        drawing.add_node(
            key,
            kind="dataset_type",
            label=dataset_type.name,
            storage_class="",
            dimensions=_values(ref.data_id),
            is_calibration=dataset_type.is_calibration,
            is_init=False,
        )
    return key
