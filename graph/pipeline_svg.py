"""SVG pictures of a pipeline: the `Drawing` of a pipeline graph, laid out by `pipeline_layout`, as standalone SVG text."""

from __future__ import annotations

import itertools
import logging
import time
from typing import Any

import networkx as nx

from .pipeline_drawing_model import (
    DATA_FILL,
    DATA_STROKE,
    DETAIL_COLOR,
    EDGE_COLOR,
    INIT_COLOR,
    INIT_FILL,
    INIT_STROKE,
    PREREQ_COLOR,
    TASK_FILL,
    TASK_STROKE,
    TEXT_COLOR,
    Drawing,
    DrawnEdge,
    prepare_drawing,
    xml_escape,
)
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

__all__ = ["to_svg"]

_LOG = logging.getLogger(__name__)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _spread(count: int, half_width: float) -> list[float]:
    """Port offsets for ``count`` edges leaving (or entering) one side of a node."""
    if count <= 1:
        return [0.0] * count
    span = min(2 * half_width, (count - 1) * 16.0)
    return [-span / 2 + j * span / (count - 1) for j in range(count)]


def _ports(
    drawing: Drawing, boxes: list[NodeBox], layout: Layout, cx: list[float], cy: list[float]
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
    "normal": (EDGE_COLOR, ""),
    "prerequisite": (PREREQ_COLOR, ' stroke-dasharray="6 4"'),
    "init": (INIT_COLOR, ' stroke-dasharray="2 3"'),
}


def _edge_elements(
    drawing: Drawing, boxes: list[NodeBox], layout: Layout, cx: list[float], cy: list[float], top: float
) -> list[str]:
    """One ``<path>`` per edge, plus one per trunk shared by several long edges (drawn once)."""
    starts, ends = _ports(drawing, boxes, layout, cx, cy)

    def kind_of(edge: DrawnEdge) -> str:
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
            f'marker-end="url(#quanta-arrow-{kind})"><title>{xml_escape(tip)}</title></path>'
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
        f'font-weight="bold" fill="{TEXT_COLOR}">{xml_escape(box.label)}</text>'
    )
    for line in box.details:
        y += DETAIL_SIZE + LINE_GAP
        out.append(
            f'<text x="{_f(cx)}" y="{_f(y)}" text-anchor="middle" font-size="{DETAIL_SIZE}" '
            f'fill="{DETAIL_COLOR}">{xml_escape(line)}</text>'
        )
    return out


def _legend(include_init: bool) -> tuple[list[str], float]:
    """Legend items in a row starting at (0, 0); returns the SVG and its width."""
    out: list[str] = []
    x = 0.0

    def label(text: str) -> None:
        nonlocal x
        out.append(f'<text x="{_f(x)}" y="4" font-size="11" fill="{DETAIL_COLOR}">{xml_escape(text)}</text>')
        x += text_width(text, 11) + 22

    out.append(
        f'<rect x="0" y="-9" width="30" height="18" rx="5" fill="{TASK_FILL}" stroke="{TASK_STROKE}" stroke-width="1.5"/>'
    )
    x += 36
    label("task")
    for dashed, text in ((False, "dataset type"), (True, "prerequisite / calibration")):
        dash = ' stroke-dasharray="5 3"' if dashed else ""
        out.append(
            f'<ellipse cx="{_f(x + 17)}" cy="0" rx="17" ry="9" fill="{DATA_FILL}" stroke="{DATA_STROKE}" stroke-width="1.5"{dash}/>'
        )
        x += 40
        label(text)
    kinds = [
        ("normal", EDGE_COLOR, "", "input / output"),
        ("prerequisite", PREREQ_COLOR, ' stroke-dasharray="6 4"', "prerequisite input"),
    ]
    if include_init:
        kinds.append(("init", INIT_COLOR, ' stroke-dasharray="2 3"', "init-input / output"))
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
        As for `pipeline_drawing.to_dot`.

    Raises
    ------
    PipelineCycleError
        If the graph has a cycle.
    """
    start = time.perf_counter()
    drawing = prepare_drawing(graph, include_init, title)
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
        f"<title>{xml_escape(drawing.title)}</title>",
        "<defs>",
    ]
    for kind, color in (("normal", EDGE_COLOR), ("prerequisite", PREREQ_COLOR), ("init", INIT_COLOR)):
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
        f'<text x="{_f(pad)}" y="{_f(pad + 16)}" font-size="18" font-weight="bold" fill="{TEXT_COLOR}">{xml_escape(drawing.title)}</text>'
    )
    out.append(
        f'<text x="{_f(pad)}" y="{_f(pad + 34)}" font-size="11.5" fill="{DETAIL_COLOR}">{summary}</text>'
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
        out.append(f"<title>{xml_escape(tip)}</title>")
        if node.is_task:
            out.append(
                f'<rect x="{_f(x - box.width / 2)}" y="{_f(y - box.height / 2)}" width="{_f(box.width)}" '
                f'height="{_f(box.height)}" rx="8" fill="{TASK_FILL}" stroke="{TASK_STROKE}"/>'
            )
        else:
            fill, stroke = (INIT_FILL, INIT_STROKE) if node.is_init else (DATA_FILL, DATA_STROKE)
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
