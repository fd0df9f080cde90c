"""Pictures of a pipeline: DOT, Mermaid and standalone SVG text drawn from the PipelineGraph's networkx graph.

The input is a bipartite ``networkx.DiGraph`` whose nodes carry ``kind`` ("task" or "dataset_type"),
``label`` and, for tasks, ``task_class`` and ``dimensions``; for dataset types ``storage_class``,
``dimensions``, ``is_calibration``, ``is_init`` and optionally ``is_prerequisite`` (otherwise
worked out from the edges). Edges carry ``connection``, ``prerequisite`` and
``init``. Node keys are only used as identifiers; everything shown comes from the attributes.

The SVG is laid out by `pipeline_layout`, in pure Python (no Graphviz); this module only writes it.
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from .errors import GraphError, PipelineCycleError
from .pipeline_layout import (
    DETAIL_SIZE,
    FONT_FAMILY,
    LABEL_SIZE,
    LINE_GAP,
    Layout,
    NodeBox,
    lay_out,
    measure_node,
    text_width,
)

__all__ = ["to_dot", "to_mermaid", "to_svg"]

_LOG = logging.getLogger(__name__)


# -- the graph as drawn ----------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    """One task or dataset type, with what every picture shows of it."""

    key: Hashable
    is_task: bool
    label: str
    task_class: str
    dimensions: tuple[str, ...]
    storage_class: str
    is_calibration: bool
    is_init: bool
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
class _Edge:
    source: int
    target: int
    connection: str
    prerequisite: bool
    init: bool


@dataclass(slots=True)
class _Drawing:
    """The nodes and edges to draw, indexed, with a topological order."""

    nodes: list[_Node]
    edges: list[_Edge]
    order: list[int]
    title: str

    @property
    def n_tasks(self) -> int:
        return sum(node.is_task for node in self.nodes)


def _str_tuple(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(item) for item in value)


def _make_node(key: Hashable, attrs: Mapping[str, Any]) -> _Node:
    kind = attrs.get("kind")
    if kind not in ("task", "dataset_type"):
        raise GraphError(f"Pipeline graph node {key!r} has kind {kind!r}; expected 'task' or 'dataset_type'.")
    return _Node(
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


def _prepare(graph: nx.DiGraph[Any], include_init: bool, title: str | None) -> _Drawing:
    """Check the whole graph for cycles, then select what is drawn."""
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
    nodes: list[_Node] = []
    drawn: dict[Hashable, int] = {}
    for key, attrs in graph.nodes(data=True):
        node = _make_node(key, attrs)
        if node.is_init and not node.is_task and not include_init:
            continue
        drawn[key] = len(nodes)
        nodes.append(node)
    edges = [
        _Edge(
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
    return _Drawing(nodes, edges, order, title)


# -- Graphviz DOT ----------------------------------------------------------------------------------

_TASK_FILL, _TASK_STROKE = "#dbeafe", "#2563eb"
_DATA_FILL, _DATA_STROKE = "#fef9c3", "#ca8a04"
_INIT_FILL, _INIT_STROKE = "#f1f5f9", "#94a3b8"
_EDGE_COLOR, _PREREQ_COLOR, _INIT_COLOR = "#64748b", "#b45309", "#94a3b8"
_TEXT_COLOR, _DETAIL_COLOR = "#0f172a", "#475569"


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string (IDs and escString attributes)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _xml_escape(text: str) -> str:
    """Text safe inside XML/HTML content and double-quoted attributes."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _dot_html_label(label: str, details: list[str]) -> str:
    html = f"<B>{_xml_escape(label)}</B>"
    if details:
        small = "<BR/>".join(_xml_escape(line) for line in details)
        html += f'<BR/><FONT POINT-SIZE="9" COLOR="{_DETAIL_COLOR}">{small}</FONT>'
    return f"<{html}>"


def to_dot(
    graph: nx.DiGraph[Any],
    *,
    show_dimensions: bool = True,
    show_storage_classes: bool = True,
    include_init: bool = False,
    title: str | None = None,
) -> str:
    """Graphviz DOT text for a pipeline graph.

    Tasks are rounded boxes (label, then class name and dimensions in a smaller font), dataset
    types ellipses (name, dimensions, storage class); prerequisite inputs have dashed edges and a
    dashed outline, calibrations a dashed outline and the word "calibration".

    Parameters
    ----------
    graph
        Bipartite task / dataset-type graph (see the module docstring for its attributes).
    show_dimensions, show_storage_classes
        Whether node labels list dimensions and storage classes.
    include_init
        Also draw init-input/output dataset types (``<label>_config``, ``packages``) and their edges.
    title
        Graph title; defaults to the graph's ``name`` attribute or "Pipeline".

    Raises
    ------
    PipelineCycleError
        If the graph has a cycle (the message names it).
    """
    drawing = _prepare(graph, include_init, title)
    lines = [
        "digraph pipeline {",
        f'    graph [rankdir=TB, labelloc=t, fontname="Helvetica", fontsize=16, nodesep=0.3, ranksep=0.45, label={_dot_html_label(drawing.title, [])}];',
        f'    node [fontname="Helvetica", fontsize=12, penwidth=1.3, fontcolor="{_TEXT_COLOR}"];',
        f'    edge [color="{_EDGE_COLOR}", arrowsize=0.7, penwidth=1.2];',
    ]
    for i in drawing.order:
        node = drawing.nodes[i]
        label = _dot_html_label(node.label, node.details(show_dimensions, show_storage_classes))
        if node.is_task:
            attrs = f'shape=box, style="rounded,filled", fillcolor="{_TASK_FILL}", color="{_TASK_STROKE}"'
            attrs += f", tooltip={_dot_quote(node.task_class or node.label)}"
        else:
            fill, stroke = (_INIT_FILL, _INIT_STROKE) if node.is_init else (_DATA_FILL, _DATA_STROKE)
            style = "filled,dashed" if node.dashed else "filled"
            attrs = f'shape=ellipse, style="{style}", fillcolor="{fill}", color="{stroke}"'
        lines.append(f"    {_dot_quote(str(node.key))} [{attrs}, label={label}];")
    for edge in drawing.edges:
        attrs = f"tooltip={_dot_quote(edge.connection)}"
        if edge.prerequisite:
            attrs = f'style=dashed, color="{_PREREQ_COLOR}", {attrs}'
        elif edge.init:
            attrs = f'style=dotted, color="{_INIT_COLOR}", {attrs}'
        source, target = drawing.nodes[edge.source].key, drawing.nodes[edge.target].key
        lines.append(f"    {_dot_quote(str(source))} -> {_dot_quote(str(target))} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid ---------------------------------------------------------------------------------------

_MERMAID_ESCAPES = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;", "\n": " "}
)


def _mermaid_ids(nodes: list[_Node]) -> list[str]:
    ids: list[str] = []
    taken: set[str] = set()
    for node in nodes:
        base = ("t_" if node.is_task else "d_") + re.sub(r"[^A-Za-z0-9_]", "_", node.label)
        candidate, n = base, 1
        while candidate in taken:
            n += 1
            candidate = f"{base}_{n}"
        taken.add(candidate)
        ids.append(candidate)
    return ids


def to_mermaid(
    graph: nx.DiGraph[Any],
    *,
    show_dimensions: bool = True,
    show_storage_classes: bool = True,
    include_init: bool = False,
    title: str | None = None,
    markdown: bool = False,
) -> str:
    """Mermaid flowchart text for a pipeline graph.

    Tasks are rectangles, dataset types stadiums; prerequisite inputs use dotted edges (``-.->``).
    Node ids are sanitized labels (``t_isr``, ``d_raw``); label text is entity-escaped.

    Parameters
    ----------
    graph, show_dimensions, show_storage_classes, include_init, title
        As for `to_dot`.
    markdown
        Return a small Markdown document (a heading, a summary line and a fenced ``mermaid`` block)
        instead of the bare flowchart.

    Raises
    ------
    PipelineCycleError
        If the graph has a cycle.
    """
    drawing = _prepare(graph, include_init, title)
    ids = _mermaid_ids(drawing.nodes)
    lines = ["flowchart TB"]
    for i in drawing.order:
        node = drawing.nodes[i]
        text = f"<b>{node.label.translate(_MERMAID_ESCAPES)}</b>"
        details = [
            line.translate(_MERMAID_ESCAPES) for line in node.details(show_dimensions, show_storage_classes)
        ]
        if details:
            text += "<br/><small>" + "<br/>".join(details) + "</small>"
        lines.append(f'    {ids[i]}["{text}"]' if node.is_task else f'    {ids[i]}(["{text}"])')
    styled: list[str] = []
    for n, edge in enumerate(drawing.edges):
        arrow = "-.->" if edge.prerequisite or edge.init else "-->"
        lines.append(f"    {ids[edge.source]} {arrow} {ids[edge.target]}")
        if edge.prerequisite:
            styled.append(f"    linkStyle {n} stroke:{_PREREQ_COLOR}")
    lines.extend(styled)
    lines += [
        f"    classDef task fill:{_TASK_FILL},stroke:{_TASK_STROKE},color:{_TEXT_COLOR};",
        f"    classDef datasetType fill:{_DATA_FILL},stroke:{_DATA_STROKE},color:{_TEXT_COLOR};",
        f"    classDef prerequisite fill:{_DATA_FILL},stroke:{_DATA_STROKE},color:{_TEXT_COLOR},stroke-dasharray:5 3;",
        f"    classDef init fill:{_INIT_FILL},stroke:{_INIT_STROKE},color:{_TEXT_COLOR};",
    ]
    classes: dict[str, list[str]] = {"task": [], "datasetType": [], "prerequisite": [], "init": []}
    for i, node in enumerate(drawing.nodes):
        name = (
            "task"
            if node.is_task
            else "init"
            if node.is_init
            else "prerequisite"
            if node.dashed
            else "datasetType"
        )
        classes[name].append(ids[i])
    lines.extend(f"    class {','.join(members)} {name};" for name, members in classes.items() if members)
    chart = "\n".join(lines) + "\n"
    if not markdown:
        return chart
    summary = f"{drawing.n_tasks} tasks, {len(drawing.nodes) - drawing.n_tasks} dataset types."
    return f"# {drawing.title}\n\n{summary}\n\n```mermaid\n{chart}```\n"


# -- SVG: drawing ----------------------------------------------------------------------------------


def _f(value: float) -> str:
    return f"{value:.1f}"


def _spread(count: int, half_width: float) -> list[float]:
    """Port offsets for ``count`` edges leaving (or entering) one side of a node."""
    if count <= 1:
        return [0.0] * count
    span = min(2 * half_width, (count - 1) * 16.0)
    return [-span / 2 + j * span / (count - 1) for j in range(count)]


def _ports(
    drawing: _Drawing, boxes: list[NodeBox], layout: Layout, cx: list[float], cy: list[float]
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Where each edge leaves its source and enters its target, spread along the outline.

    Ports are per neighbouring vertex, so edges sharing a trunk also share where they leave.
    """
    x = layout.x
    points: dict[tuple[int, int], tuple[float, float]] = {}
    for v, node in enumerate(drawing.nodes):
        box = boxes[v]
        for neighbours, side in ((layout.down[v], 1.0), (layout.up[v], -1.0)):
            half = box.width / 2 * (0.6 if node.is_task else 0.5)
            ordered = sorted(neighbours, key=lambda u: (x[u], u))
            for u, dx in zip(ordered, _spread(len(ordered), half), strict=True):
                if node.is_task:
                    dy = box.height / 2
                else:
                    rx, ry = box.width / 2, box.height / 2
                    dy = ry * max(0.0, 1 - (dx / rx) ** 2) ** 0.5
                points[v, u] = (cx[v] + dx, cy[v] + side * dy)
    starts = [points[chain[0], chain[1]] for chain in layout.chains]
    ends = [points[chain[-1], chain[-2]] for chain in layout.chains]
    return starts, ends


_EDGE_STYLES = {
    "normal": (_EDGE_COLOR, ""),
    "prerequisite": (_PREREQ_COLOR, ' stroke-dasharray="6 4"'),
    "init": (_INIT_COLOR, ' stroke-dasharray="2 3"'),
}


def _edge_elements(
    drawing: _Drawing, boxes: list[NodeBox], layout: Layout, cx: list[float], cy: list[float], top: float
) -> list[str]:
    """One ``<path>`` per edge, plus one per trunk shared by several long edges (drawn once)."""
    starts, ends = _ports(drawing, boxes, layout, cx, cy)

    def kind_of(edge: _Edge) -> str:
        return "prerequisite" if edge.prerequisite else "init" if edge.init else "normal"

    def through(v: int) -> list[tuple[float, float, bool]]:
        row_top = top + layout.row_top[layout.layer[v]]
        return [(cx[v], row_top, False), (cx[v], row_top + layout.row_height[layout.layer[v]], True)]

    out: list[str] = []
    users: dict[int, list[int]] = {}
    for n, chain in enumerate(layout.chains):
        if len(chain) > 2:
            users.setdefault(chain[0], []).append(n)
    shared = {source for source, edges in users.items() if len(edges) > 1}
    for source in shared:
        edges = users[source]
        longest = max(edges, key=lambda n: len(layout.chains[n]))
        points = [(*starts[longest], False)]
        for v in layout.chains[longest][1:-1]:
            points.extend(through(v))
        kinds = {kind_of(drawing.edges[n]) for n in edges}
        color, dash = _EDGE_STYLES[kinds.pop() if len(kinds) == 1 else "normal"]
        out.append(f'<path class="trunk" d="{_edge_path(points)}" stroke="{color}"{dash}/>')
    for n, edge in enumerate(drawing.edges):
        chain = layout.chains[n]
        if edge.source in shared and len(chain) > 2:
            points = through(chain[-2])[1:]
        else:
            points = [(*starts[n], False)]
            for v in chain[1:-1]:
                points.extend(through(v))
        points.append((*ends[n], False))
        kind = kind_of(edge)
        color, dash = _EDGE_STYLES[kind]
        names = f"{drawing.nodes[edge.source].label} → {drawing.nodes[edge.target].label}"
        tip = f"{names} ({edge.connection})" if edge.connection else names
        out.append(
            f'<path class="edge {kind}" data-source="node-{edge.source}" data-target="node-{edge.target}" '
            f'd="{_edge_path(points)}" stroke="{color}"{dash} '
            f'marker-end="url(#quanta-arrow-{kind})"><title>{_xml_escape(tip)}</title></path>'
        )
    return out


def _edge_path(points: list[tuple[float, float, bool]]) -> str:
    """Cubic Bézier through the points with vertical tangents; straight along dummy rows."""
    x0, y0, _ = points[0]
    parts = [f"M{_f(x0)},{_f(y0)}"]
    for (xa, ya, _), (xb, yb, straight) in itertools.pairwise(points):
        if straight:
            parts.append(f"L{_f(xb)},{_f(yb)}")
        else:
            k = (yb - ya) * 0.5
            parts.append(f"C{_f(xa)},{_f(ya + k)} {_f(xb)},{_f(yb - k)} {_f(xb)},{_f(yb)}")
    return " ".join(parts)


def _text_lines(cx: float, cy: float, box: NodeBox) -> list[str]:
    out = []
    y = cy - box.text_height / 2 + LABEL_SIZE * 0.8
    out.append(
        f'<text x="{_f(cx)}" y="{_f(y)}" text-anchor="middle" font-size="{LABEL_SIZE}" '
        f'font-weight="bold" fill="{_TEXT_COLOR}">{_xml_escape(box.label)}</text>'
    )
    for line in box.details:
        y += DETAIL_SIZE + LINE_GAP
        out.append(
            f'<text x="{_f(cx)}" y="{_f(y)}" text-anchor="middle" font-size="{DETAIL_SIZE}" '
            f'fill="{_DETAIL_COLOR}">{_xml_escape(line)}</text>'
        )
    return out


def _legend(include_init: bool) -> tuple[list[str], float]:
    """Legend items in a row starting at (0, 0); returns the SVG and its width."""
    out: list[str] = []
    x = 0.0

    def label(text: str) -> None:
        nonlocal x
        out.append(
            f'<text x="{_f(x)}" y="4" font-size="11" fill="{_DETAIL_COLOR}">{_xml_escape(text)}</text>'
        )
        x += text_width(text, 11) + 22

    out.append(
        f'<rect x="0" y="-9" width="30" height="18" rx="5" fill="{_TASK_FILL}" stroke="{_TASK_STROKE}" stroke-width="1.5"/>'
    )
    x += 36
    label("task")
    for dashed, text in ((False, "dataset type"), (True, "prerequisite / calibration")):
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<ellipse cx="{_f(x + 17)}" cy="0" rx="17" ry="9" fill="{_DATA_FILL}" stroke="{_DATA_STROKE}" stroke-width="1.5"{dash}/>'
        )
        x += 40
        label(text)
    kinds = [
        ("normal", _EDGE_COLOR, "", "input / output"),
        ("prerequisite", _PREREQ_COLOR, ' stroke-dasharray="6 4"', "prerequisite input"),
    ]
    if include_init:
        kinds.append(("init", _INIT_COLOR, ' stroke-dasharray="2 3"', "init-input / output"))
    for kind, color, dash, text in kinds:
        out.append(
            f'<path d="M{_f(x)},0 L{_f(x + 30)},0" fill="none" stroke="{color}" stroke-width="1.4"{dash} marker-end="url(#quanta-arrow-{kind})"/>'
        )
        x += 38
        label(text)
    return out, x - 22


def to_svg(
    graph: nx.DiGraph[Any],
    *,
    show_dimensions: bool = True,
    show_storage_classes: bool = True,
    include_init: bool = False,
    title: str | None = None,
) -> str:
    """A standalone SVG picture of a pipeline graph, laid out without external tools.

    Tasks are rounded light-blue boxes, dataset types light-yellow ellipses (dashed for
    prerequisite inputs and calibrations); data flows top to bottom along curved arrows, dashed
    for prerequisite inputs. A title, a summary line and a legend head the picture; hovering a
    node or edge shows its task class or connection name.

    Parameters
    ----------
    graph, show_dimensions, show_storage_classes, include_init, title
        As for `to_dot`.

    Raises
    ------
    PipelineCycleError
        If the graph has a cycle.
    """
    start = time.perf_counter()
    drawing = _prepare(graph, include_init, title)
    boxes = [
        measure_node(
            node.label, node.details(show_dimensions, show_storage_classes), ellipse=not node.is_task
        )
        for node in drawing.nodes
    ]
    layout = lay_out(boxes, [(edge.source, edge.target) for edge in drawing.edges], drawing.order)
    pad, header = 24.0, 78.0
    legend, legend_width = _legend(include_init)
    title_width = text_width(drawing.title, 18, bold=True)
    left = min((layout.x[v] - layout.width[v] / 2 for v in range(len(layout.x))), default=0.0)
    right = max((layout.x[v] + layout.width[v] / 2 for v in range(len(layout.x))), default=0.0)
    content_width = max(right - left, legend_width, title_width)
    shift = pad - left + (content_width - (right - left)) / 2
    cx = [x + shift for x in layout.x]
    top = pad + header
    cy = [
        top + layout.row_top[layout.layer[v]] + layout.row_height[layout.layer[v]] / 2 for v in range(len(cx))
    ]
    height = top + (layout.row_top[-1] + layout.row_height[-1] if layout.rows else 0.0) + pad
    width = content_width + 2 * pad

    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_f(width)}" height="{_f(height)}" '
        f'viewBox="0 0 {_f(width)} {_f(height)}" font-family="{FONT_FAMILY}">',
        f"<title>{_xml_escape(drawing.title)}</title>",
        "<defs>",
    ]
    for kind, color in (("normal", _EDGE_COLOR), ("prerequisite", _PREREQ_COLOR), ("init", _INIT_COLOR)):
        out.append(
            f'<marker id="quanta-arrow-{kind}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="9" markerHeight="9" '
            f'markerUnits="userSpaceOnUse" orient="auto"><path d="M0,1 L10,5 L0,9 z" fill="{color}"/></marker>'
        )
    out.append("</defs>")
    out.append(
        f'<rect class="background" x="0" y="0" width="{_f(width)}" height="{_f(height)}" fill="#ffffff"/>'
    )
    n_data = len(drawing.nodes) - drawing.n_tasks
    summary = f"{drawing.n_tasks} tasks · {n_data} dataset types"
    out.append(
        f'<text x="{_f(pad)}" y="{_f(pad + 16)}" font-size="18" font-weight="bold" fill="{_TEXT_COLOR}">{_xml_escape(drawing.title)}</text>'
    )
    out.append(
        f'<text x="{_f(pad)}" y="{_f(pad + 34)}" font-size="11.5" fill="{_DETAIL_COLOR}">{summary}</text>'
    )
    out.append(f'<g class="legend" transform="translate({_f(pad)},{_f(pad + 56)})">')
    out.extend(legend)
    out.append("</g>")

    out.append('<g class="edges" fill="none" stroke-width="1.4">')
    out.extend(_edge_elements(drawing, boxes, layout, cx, cy, top))
    out.append("</g>")

    out.append('<g class="nodes" stroke-width="1.5">')
    for v, node in enumerate(drawing.nodes):
        box, x, y = boxes[v], cx[v], cy[v]
        kind = "task" if node.is_task else "dataset-type"
        out.append(f'<g class="node {kind}" id="node-{v}" data-layer="{layout.layer[v]}">')
        tip = node.task_class or node.label if node.is_task else node.label
        out.append(f"<title>{_xml_escape(tip)}</title>")
        if node.is_task:
            out.append(
                f'<rect x="{_f(x - box.width / 2)}" y="{_f(y - box.height / 2)}" width="{_f(box.width)}" '
                f'height="{_f(box.height)}" rx="8" fill="{_TASK_FILL}" stroke="{_TASK_STROKE}"/>'
            )
        else:
            fill, stroke = (_INIT_FILL, _INIT_STROKE) if node.is_init else (_DATA_FILL, _DATA_STROKE)
            dash = ' stroke-dasharray="5 3"' if node.dashed else ""
            out.append(
                f'<ellipse cx="{_f(x)}" cy="{_f(y)}" rx="{_f(box.width / 2)}" ry="{_f(box.height / 2)}" '
                f'fill="{fill}" stroke="{stroke}"{dash}/>'
            )
        out.extend(_text_lines(x, y, box))
        out.append("</g>")
    out.append("</g>")
    out.append("</svg>")
    _LOG.debug(
        "Drew %d nodes (%d with dummies) in %.3f s.",
        len(drawing.nodes),
        len(layout.x),
        time.perf_counter() - start,
    )
    return "\n".join(out) + "\n"
