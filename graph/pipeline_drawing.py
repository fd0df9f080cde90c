"""Pictures of a pipeline: DOT, Mermaid and standalone SVG text drawn from the PipelineGraph's networkx graph.

The input is a bipartite ``networkx.DiGraph`` whose nodes carry ``kind`` ("task" or "dataset_type"),
``label`` and, for tasks, ``task_class`` and ``dimensions``; for dataset types ``storage_class``,
``dimensions``, ``is_calibration``, ``is_init`` and optionally ``is_prerequisite`` (otherwise
worked out from the edges). Edges carry ``connection``, ``prerequisite`` and
``init``. Node keys are only used as identifiers; everything shown comes from the attributes.

`to_svg` (re-exported here) lives in `pipeline_svg`, laid out by `pipeline_layout` in pure Python
(no Graphviz); `pipeline_drawing_model` selects what every picture shows and holds the colours.
"""

from __future__ import annotations

import re
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
    DrawnNode,
    prepare_drawing,
    xml_escape,
)
from .pipeline_svg import to_svg

__all__ = ["to_dot", "to_mermaid", "to_svg"]


# -- Graphviz DOT ----------------------------------------------------------------------------------


def _dot_quote(text: str) -> str:
    """A DOT double-quoted string (IDs and escString attributes)."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _dot_html_label(label: str, details: list[str]) -> str:
    html = f"<B>{xml_escape(label)}</B>"
    if details:
        small = "<BR/>".join(xml_escape(line) for line in details)
        html += f'<BR/><FONT POINT-SIZE="9" COLOR="{DETAIL_COLOR}">{small}</FONT>'
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
    drawing = prepare_drawing(graph, include_init, title)
    lines = [
        "digraph pipeline {",
        f'    graph [rankdir=TB, labelloc=t, fontname="Helvetica", fontsize=16, nodesep=0.3, ranksep=0.45, label={_dot_html_label(drawing.title, [])}];',
        f'    node [fontname="Helvetica", fontsize=12, penwidth=1.3, fontcolor="{TEXT_COLOR}"];',
        f'    edge [color="{EDGE_COLOR}", arrowsize=0.7, penwidth=1.2];',
    ]
    for i in drawing.order:
        node = drawing.nodes[i]
        label = _dot_html_label(node.label, node.details(show_dimensions, show_storage_classes))
        if node.is_task:
            attrs = f'shape=box, style="rounded,filled", fillcolor="{TASK_FILL}", color="{TASK_STROKE}"'
            attrs += f", tooltip={_dot_quote(node.task_class or node.label)}"
        else:
            fill, stroke = (INIT_FILL, INIT_STROKE) if node.is_init else (DATA_FILL, DATA_STROKE)
            style = "filled,dashed" if node.dashed else "filled"
            attrs = f'shape=ellipse, style="{style}", fillcolor="{fill}", color="{stroke}"'
        lines.append(f"    {_dot_quote(str(node.key))} [{attrs}, label={label}];")
    for edge in drawing.edges:
        attrs = f"tooltip={_dot_quote(edge.connection)}"
        if edge.prerequisite:
            attrs = f'style=dashed, color="{PREREQ_COLOR}", {attrs}'
        elif edge.init:
            attrs = f'style=dotted, color="{INIT_COLOR}", {attrs}'
        source, target = drawing.nodes[edge.source].key, drawing.nodes[edge.target].key
        lines.append(f"    {_dot_quote(str(source))} -> {_dot_quote(str(target))} [{attrs}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# -- Mermaid ---------------------------------------------------------------------------------------

_MERMAID_ESCAPES = str.maketrans(
    {"#": "#35;", '"': "#quot;", "<": "#lt;", ">": "#gt;", "&": "#amp;", "`": "#96;", "\n": " "}
)


def _mermaid_ids(nodes: list[DrawnNode]) -> list[str]:
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
    drawing = prepare_drawing(graph, include_init, title)
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
            styled.append(f"    linkStyle {n} stroke:{PREREQ_COLOR}")
    lines.extend(styled)
    lines += [
        f"    classDef task fill:{TASK_FILL},stroke:{TASK_STROKE},color:{TEXT_COLOR};",
        f"    classDef datasetType fill:{DATA_FILL},stroke:{DATA_STROKE},color:{TEXT_COLOR};",
        f"    classDef prerequisite fill:{DATA_FILL},stroke:{DATA_STROKE},color:{TEXT_COLOR},stroke-dasharray:5 3;",
        f"    classDef init fill:{INIT_FILL},stroke:{INIT_STROKE},color:{TEXT_COLOR};",
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
