"""The pipeline as every picture shows it: nodes and edges selected from a pipeline graph, in order, and their colours.

`prepare_drawing` reads the bipartite ``networkx.DiGraph`` of `PipelineGraph.to_networkx` (attributes
described in `pipeline_drawing`), refuses cycles and keeps what is drawn; `pipeline_drawing` writes it
as DOT or Mermaid, `pipeline_svg` as SVG.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .errors import GraphError, PipelineCycleError

__all__ = [
    "DATA_FILL",
    "DATA_STROKE",
    "DETAIL_COLOR",
    "EDGE_COLOR",
    "INIT_COLOR",
    "INIT_FILL",
    "INIT_STROKE",
    "PREREQ_COLOR",
    "TASK_FILL",
    "TASK_STROKE",
    "TEXT_COLOR",
    "DrawnEdge",
    "DrawnNode",
    "Drawing",
    "prepare_drawing",
    "xml_escape",
]

# -- colours ---------------------------------------------------------------------------------------

TASK_FILL = "#dbeafe"
"""Fill of task boxes."""
TASK_STROKE = "#2563eb"
"""Outline of task boxes."""
DATA_FILL = "#fef9c3"
"""Fill of dataset type ellipses."""
DATA_STROKE = "#ca8a04"
"""Outline of dataset type ellipses."""
INIT_FILL = "#f1f5f9"
"""Fill of init-input/output dataset types."""
INIT_STROKE = "#94a3b8"
"""Outline of init-input/output dataset types."""
EDGE_COLOR = "#64748b"
"""Regular input and output edges."""
PREREQ_COLOR = "#b45309"
"""Prerequisite-input edges."""
INIT_COLOR = "#94a3b8"
"""Init-input/output edges."""
TEXT_COLOR = "#0f172a"
"""Labels and titles."""
DETAIL_COLOR = "#475569"
"""Detail lines under labels, summaries and the legend."""


def xml_escape(text: str) -> str:
    """Text safe inside XML/HTML content and double-quoted attributes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


# -- the graph as drawn ----------------------------------------------------------------------------


@dataclass(slots=True)
class DrawnNode:
    """One task or dataset type, with what every picture shows of it."""

    key: Hashable
    """Node key in the networkx graph (an identifier only)."""
    is_task: bool
    """A task (else a dataset type)."""
    label: str
    """Task label or dataset type name, shown as the node's title."""
    task_class: str
    """Import path of the task class (empty for dataset types)."""
    dimensions: tuple[str, ...]
    """Dimensions shown under the label."""
    storage_class: str
    """Storage class of a dataset type (empty if unknown or a task)."""
    is_calibration: bool
    """A calibration dataset type."""
    is_init: bool
    """An init-input/output dataset type."""
    is_prerequisite: bool = False
    """A dataset type nothing in the pipeline writes, read only as a prerequisite input."""

    def details(self, show_dimensions: bool, show_storage_classes: bool) -> list[str]:
        """Secondary text lines, shown smaller under the label."""
        lines: list[str] = []
        if self.is_task and self.task_class:
            lines.append(self.task_class.rsplit(".", 1)[-1])
        if show_dimensions:
            lines.append("{" + ", ".join(self.dimensions) + "}")
        if not self.is_task:
            tags = [self.storage_class] if show_storage_classes and self.storage_class else []
            if self.is_calibration:
                tags.append("calibration")
            if self.is_init:
                tags.append("init")
            if tags:
                lines.append(" · ".join(tags))
        return lines

    @property
    def dashed(self) -> bool:
        """Whether the outline is dashed (prerequisite inputs and calibrations)."""
        return not self.is_task and (self.is_prerequisite or self.is_calibration)


@dataclass(slots=True, frozen=True)
class DrawnEdge:
    """One arrow between two drawn nodes."""

    source: int
    """Index of the source in `Drawing.nodes`."""
    target: int
    """Index of the target in `Drawing.nodes`."""
    connection: str
    """Connection name(s), shown on hover."""
    prerequisite: bool
    """A prerequisite-input edge."""
    init: bool
    """An init-input/output edge."""


@dataclass(slots=True)
class Drawing:
    """The nodes and edges to draw, indexed, with a topological order."""

    nodes: list[DrawnNode]
    """Nodes drawn, in the networkx graph's order."""
    edges: list[DrawnEdge]
    """Edges between drawn nodes."""
    order: list[int]
    """Node indices in a topological order."""
    title: str
    """Title of the picture."""

    @property
    def n_tasks(self) -> int:
        """Number of task nodes."""
        return sum(node.is_task for node in self.nodes)


def _str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _make_node(key: Hashable, attrs: Mapping[str, Any]) -> DrawnNode:
    kind = attrs.get("kind")
    if kind not in ("task", "dataset_type"):
        raise GraphError(f"Pipeline graph node {key!r} has kind {kind!r}; expected 'task' or 'dataset_type'.")
    return DrawnNode(
        key=key,
        is_task=kind == "task",
        label=str(attrs.get("label", key)),
        task_class=str(attrs.get("task_class") or ""),
        dimensions=_str_tuple(attrs.get("dimensions")),
        storage_class=str(attrs.get("storage_class") or ""),
        is_calibration=bool(attrs.get("is_calibration", False)),
        is_init=bool(attrs.get("is_init", False)),
        is_prerequisite=bool(attrs.get("is_prerequisite", False)),
    )


def _topological_order(n: int, edges: list[tuple[int, int]]) -> list[int] | None:
    """Kahn's algorithm (iterative); None when the graph has a cycle."""
    succs: list[list[int]] = [[] for _ in range(n)]
    indegree = [0] * n
    for u, v in edges:
        succs[u].append(v)
        indegree[v] += 1
    ready = [v for v in range(n) if indegree[v] == 0]
    ready.reverse()
    order: list[int] = []
    while ready:
        u = ready.pop()
        order.append(u)
        for v in reversed(succs[u]):
            indegree[v] -= 1
            if indegree[v] == 0:
                ready.append(v)
    return order if len(order) == n else None


def prepare_drawing(graph: nx.DiGraph[Any], include_init: bool, title: str | None) -> Drawing:
    """Check the whole graph for cycles, then select what is drawn.

    Parameters
    ----------
    graph
        Bipartite task / dataset-type graph (attributes as described in `pipeline_drawing`).
    include_init
        Keep init-input/output dataset types and their edges.
    title
        Picture title; defaults to the graph's ``name`` (or ``label``) attribute, else "Pipeline".

    Raises
    ------
    PipelineCycleError
        If the graph has a cycle (the message names it).
    GraphError
        If a node's ``kind`` is neither "task" nor "dataset_type".
    """
    keys = list(graph.nodes)
    index = {key: i for i, key in enumerate(keys)}
    all_edges = [(index[u], index[v]) for u, v in graph.edges]
    if _topological_order(len(keys), all_edges) is None:
        cycle = nx.find_cycle(graph)
        names = [str(graph.nodes[u].get("label", u)) for u, *_ in cycle]
        names.append(names[0])
        raise PipelineCycleError(
            f"Cannot draw the pipeline: its tasks and dataset types form a cycle {' -> '.join(names)}; "
            "a pipeline graph must be acyclic."
        )
    nodes: list[DrawnNode] = []
    drawn: dict[Hashable, int] = {}
    for key, attrs in graph.nodes(data=True):
        node = _make_node(key, attrs)
        if node.is_init and not node.is_task and not include_init:
            continue
        drawn[key] = len(nodes)
        nodes.append(node)
    edges = [
        DrawnEdge(
            drawn[u],
            drawn[v],
            str(attrs.get("connection", "")),
            bool(attrs.get("prerequisite", False)),
            bool(attrs.get("init", False)),
        )
        for u, v, attrs in graph.edges(data=True)
        if u in drawn and v in drawn and (include_init or not attrs.get("init", False))
    ]
    produced = {e.target for e in edges}
    read_normally = {e.source for e in edges if not e.prerequisite}
    for e in edges:
        if e.prerequisite and e.source not in produced and e.source not in read_normally:
            nodes[e.source].is_prerequisite = True
    order = _topological_order(len(nodes), [(e.source, e.target) for e in edges])
    if order is None:  # pragma: no cover - a subgraph of an acyclic graph is acyclic
        raise PipelineCycleError("Cannot draw the pipeline: the selected nodes form a cycle.")
    if title is None:
        name = graph.graph.get("name") or graph.graph.get("label")
        title = str(name) if name else "Pipeline"
    return Drawing(nodes, edges, order, title)
