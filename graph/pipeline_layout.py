"""Pipeline picture layout: sizes and places of the nodes and edges `pipeline_drawing.to_svg` draws.

Pure Python (no Graphviz), all iterative: layers from a topological order (overall inputs pulled
down to their first reader), dummy vertices on edges that skip layers (shared by the long edges
of one source, so they draw as one trunk), barycenter sweeps with transpositions against
crossings, then x coordinates minimizing a weighted sum of squared edge slants, row by row
(isotonic regression keeps each row's order and gaps).
"""

from __future__ import annotations

import itertools
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DETAIL_SIZE",
    "FONT_FAMILY",
    "LABEL_SIZE",
    "LINE_GAP",
    "Layout",
    "NodeBox",
    "lay_out",
    "measure_node",
    "text_width",
]

# -- text metrics ----------------------------------------------------------------------------------

FONT_FAMILY = "DejaVu Sans, Verdana, Helvetica, Arial, sans-serif"
"""CSS font family the widths of `text_width` approximate."""
LABEL_SIZE = 13.0
"""Font size (pixels) of a node's label."""
DETAIL_SIZE = 10.5
"""Font size (pixels) of a node's detail lines."""
LINE_GAP = 3.0
"""Extra space (pixels) above each detail line."""
_CHAR_WIDTHS = {
    **dict.fromkeys("ijl.,:;'|!", 0.30),
    **dict.fromkeys("frt()[] ", 0.40),
    **dict.fromkeys("csz_-·", 0.55),
    **dict.fromkeys("0123456789{}", 0.64),
    **dict.fromkeys("mwMW", 0.95),
}


def text_width(text: str, size: float, bold: bool = False) -> float:
    """Approximate rendered width of ``text`` in a DejaVu/Verdana-like sans font (`FONT_FAMILY`).

    Parameters
    ----------
    text
        One line of text.
    size
        Font size in pixels.
    bold
        Whether the text is set in bold (about 8% wider).
    """
    em = sum(_CHAR_WIDTHS.get(c, 0.72 if c.isupper() else 0.62) for c in text)
    return em * size * (1.08 if bold else 1.0)


@dataclass(slots=True)
class NodeBox:
    """Size of one drawn node: its text lines and outline (pixels)."""

    width: float
    """Outline width: of the rounded box, or the ellipse's horizontal diameter."""
    height: float
    """Outline height: of the rounded box, or the ellipse's vertical diameter."""
    label: str
    """First line, set bold at `LABEL_SIZE`."""
    details: list[str]
    """Further lines, set at `DETAIL_SIZE`."""

    @property
    def text_height(self) -> float:
        """Height of the block of text lines."""
        return LABEL_SIZE + len(self.details) * (DETAIL_SIZE + LINE_GAP)


def measure_node(label: str, details: list[str], *, ellipse: bool) -> NodeBox:
    """The outline fitting a node's centred text lines.

    Parameters
    ----------
    label
        The bold first line.
    details
        Smaller lines under the label.
    ellipse
        Fit an ellipse (dataset types) rather than a rounded box (tasks).
    """
    box = NodeBox(0.0, 0.0, label, details)
    half_widths = [text_width(label, LABEL_SIZE, bold=True) / 2] + [
        text_width(line, DETAIL_SIZE) / 2 for line in details
    ]
    if not ellipse:
        box.width = 2 * max(half_widths) + 24
        box.height = box.text_height + 16
        return box
    # An ellipse around the centred lines: fix the vertical radius, then find the smallest
    # horizontal radius leaving every line's corners inside (with a margin).
    ry = box.text_height / 2 * 1.3 + 6
    rx, top = 0.0, -box.text_height / 2
    for n, half in enumerate(half_widths):
        bottom = top + (LABEL_SIZE if n == 0 else DETAIL_SIZE + LINE_GAP)
        y = max(abs(top), abs(bottom))
        rx = max(rx, (half + 6) / (1 - (y / ry) ** 2) ** 0.5)
        top = bottom
    box.width, box.height = 2 * rx, 2 * ry
    return box


# -- layout ----------------------------------------------------------------------------------------

_RANK_GAP = 46.0
_NODE_GAP = 26.0
_DUMMY_GAP = 10.0
_DUMMY_WIDTH = 6.0


@dataclass(slots=True)
class Layout:
    """Vertices (real nodes first, then dummies on long edges) placed in layers.

    Vertex ``v < n_real`` is node ``v`` of the input; coordinates are pixels, x of vertex centres
    (any origin: callers shift them), y from the top of the first row.
    """

    n_real: int
    """Number of real nodes; vertices from here on are dummies."""
    layer: list[int]
    """Per vertex, its row (0 at the top)."""
    width: list[float]
    """Per vertex, its width (node outline, or the width reserved for an edge passing through)."""
    x: list[float]
    """Per vertex, the x coordinate of its centre."""
    rows: list[list[int]]
    """Per row, its vertices from left to right."""
    row_top: list[float]
    """Per row, the y coordinate of its top."""
    row_height: list[float]
    """Per row, its height (of its tallest node)."""
    up: list[list[int]]
    """Per vertex, its neighbours in the row above."""
    down: list[list[int]]
    """Per vertex, its neighbours in the row below."""
    chains: list[list[int]]
    """Per drawn edge, the vertices it passes: source, dummies, target."""
    trunks: list[list[int]]
    """Per node with edges skipping layers, the dummies its long edges share, top to bottom."""


def _assign_layers(n: int, edges: Sequence[tuple[int, int]], order: Sequence[int]) -> list[int]:
    preds: list[list[int]] = [[] for _ in range(n)]
    succs: list[list[int]] = [[] for _ in range(n)]
    for source, target in edges:
        preds[target].append(source)
        succs[source].append(target)
    layer = [0] * n
    for v in order:
        layer[v] = max((layer[u] + 1 for u in preds[v]), default=0)
    # Overall inputs sit just above their first consumer, not all at the top.
    for v in reversed(order):
        if not preds[v] and succs[v]:
            layer[v] = min(layer[w] for w in succs[v]) - 1
    return layer


def _crossings(rows: list[list[int]], pos: list[int], down: list[list[int]]) -> int:
    """Edge crossings between consecutive rows (inversion count with a Fenwick tree)."""
    total = 0
    for row_index in range(len(rows) - 1):
        size = len(rows[row_index + 1])
        tree = [0] * (size + 1)
        pairs = sorted((pos[u], pos[w]) for u in rows[row_index] for w in down[u])
        for seen, (_, b) in enumerate(pairs):
            i, not_greater = b + 1, 0
            while i > 0:
                not_greater += tree[i]
                i -= i & -i
            total += seen - not_greater
            i = b + 1
            while i <= size:
                tree[i] += 1
                i += i & -i
    return total


def _order_rows(rows: list[list[int]], up: list[list[int]], down: list[list[int]], sweeps: int = 10) -> None:
    """Order each row against crossings: barycenter sweeps (up and down) each followed by
    transpositions of neighbours, keeping the ordering with the fewest crossings."""
    pos = [0] * len(up)
    size = [1] * len(up)

    def number(row: list[int]) -> None:
        for i, v in enumerate(row):
            pos[v] = i
            size[v] = len(row)

    def sort_row(row: list[int], neighbours: list[list[int]]) -> None:
        # Positions as fractions of their row's length, so rows of different sizes compare.
        keys = {
            v: (
                sum((pos[u] + 0.5) / size[u] for u in neighbours[v]) / len(neighbours[v])
                if neighbours[v]
                else (pos[v] + 0.5) / size[v]
            )
            for v in row
        }
        row.sort(key=keys.__getitem__)
        number(row)

    def pair_crossings(left: int, right: int) -> int:
        # Sorted positions + bisect: a node shared by N tasks would otherwise cost N^2 per pair.
        count = 0
        for neighbours in (up, down):
            if neighbours[left] and neighbours[right]:
                after = sorted(pos[b] for b in neighbours[right])
                count += sum(bisect_left(after, pos[a]) for a in neighbours[left])
        return count

    def transpose() -> None:
        for _ in range(4):
            improved = False
            for row in rows:
                for i in range(len(row) - 1):
                    u, v = row[i], row[i + 1]
                    if pair_crossings(v, u) < pair_crossings(u, v):
                        row[i], row[i + 1] = v, u
                        pos[u], pos[v] = i + 1, i
                        improved = True
            if not improved:
                return

    for row in rows:
        number(row)
    for row in rows[1:]:
        sort_row(row, up)
    best, best_rows, stale = _crossings(rows, pos, down), [list(r) for r in rows], 0
    for sweep in range(sweeps):
        if best == 0:
            break
        for row in rows[1:] if sweep % 2 else reversed(rows[:-1]):
            sort_row(row, up if sweep % 2 else down)
        transpose()
        count = _crossings(rows, pos, down)
        if count < best:
            best, best_rows, stale = count, [list(r) for r in rows], 0
        else:
            stale += 1
            if stale >= 4:
                break
    rows[:] = best_rows


def _isotonic(values: list[float], weights: list[float]) -> list[float]:
    """Weighted least-squares non-decreasing fit (pool adjacent violators)."""
    means: list[float] = []
    totals: list[float] = []
    counts: list[int] = []
    for value, weight in zip(values, weights, strict=True):
        means.append(value)
        totals.append(weight)
        counts.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            mean, total, count = means.pop(), totals.pop(), counts.pop()
            means[-1] = (means[-1] * totals[-1] + mean * total) / (totals[-1] + total)
            totals[-1] += total
            counts[-1] += count
    fitted: list[float] = []
    for mean, count in zip(means, counts, strict=True):
        fitted.extend([mean] * count)
    return fitted


def _place_rows(layout: Layout, passes: int = 24) -> None:
    """x coordinates minimizing the sum over links of ``weight * (x_u - x_v) ** 2``, rows kept in
    order and apart.

    Block coordinate descent: each row in turn gets its exact optimum given the other rows (a
    weighted isotonic regression), alternating top-down and bottom-up. The weights make long
    edges straight (dummy-dummy links weigh most) and let dead ends (overall inputs, final
    outputs such as metadata) follow their task rather than pull it off the main flow.
    """
    n_real, width, x = layout.n_real, layout.width, layout.x
    dead_end = [not layout.up[v] or not layout.down[v] for v in range(n_real)]

    def link_weight(u: int, v: int) -> float:
        if u >= n_real and v >= n_real:
            return 4.0
        if (u < n_real and dead_end[u]) or (v < n_real and dead_end[v]):
            return 0.1
        return 1.0 if u < n_real and v < n_real else 0.25

    links = [[(u, link_weight(u, v)) for u in layout.up[v] + layout.down[v]] for v in range(len(x))]
    offsets: list[list[float]] = []
    for row in layout.rows:
        offset = [0.0]
        for a, b in itertools.pairwise(row):
            gap = _NODE_GAP if a < n_real and b < n_real else _DUMMY_GAP
            offset.append(offset[-1] + (width[a] + width[b]) / 2 + gap)
        offsets.append(offset)
        for v, o in zip(row, offset, strict=True):
            x[v] = o - offset[-1] / 2

    def place(row_index: int) -> None:
        row, offset = layout.rows[row_index], offsets[row_index]
        targets, weights = [], []
        for v, o in zip(row, offset, strict=True):
            total = sum(w for _, w in links[v])
            if total:
                targets.append(sum(w * x[u] for u, w in links[v]) / total - o)
                weights.append(total)
            else:
                targets.append(x[v] - o)
                weights.append(1e-3)
        for v, o, fit in zip(row, offset, _isotonic(targets, weights), strict=True):
            x[v] = fit + o

    n_rows = len(layout.rows)
    for n in range(passes):
        for r in range(n_rows) if n % 2 == 0 else range(n_rows - 1, -1, -1):
            place(r)
    _straighten(layout)


def _straighten(layout: Layout) -> None:
    """Put the dummies of each long edge on one vertical line when their rows leave room for it."""
    n_real, width, x = layout.n_real, layout.width, layout.x
    row_of = {v: (r, i) for r, row in enumerate(layout.rows) for i, v in enumerate(row)}

    def bounds(v: int) -> tuple[float, float]:
        r, i = row_of[v]
        row = layout.rows[r]
        lo, hi = float("-inf"), float("inf")
        if i > 0:
            u = row[i - 1]
            lo = x[u] + (width[u] + width[v]) / 2 + (_NODE_GAP if u < n_real else _DUMMY_GAP)
        if i + 1 < len(row):
            w = row[i + 1]
            hi = x[w] - (width[w] + width[v]) / 2 - (_NODE_GAP if w < n_real else _DUMMY_GAP)
        return lo, hi

    for dummies in layout.trunks:
        limits = [bounds(v) for v in dummies]
        lo, hi = max(b[0] for b in limits), min(b[1] for b in limits)
        if lo <= hi:
            target = min(max(sum(x[v] for v in dummies) / len(dummies), lo), hi)
            for v in dummies:
                x[v] = target


def lay_out(boxes: Sequence[NodeBox], edges: Sequence[tuple[int, int]], order: Sequence[int]) -> Layout:
    """Place the nodes of an acyclic graph in rows, top to bottom, with few crossings and straight edges.

    Parameters
    ----------
    boxes
        Per node, its measured outline (see `measure_node`).
    edges
        ``(source, target)`` node indices; ``Layout.chains`` follows this order.
    order
        A topological order of the nodes (the starting order within each row).
    """
    n_real = len(boxes)
    layers = _assign_layers(n_real, edges, order)
    layout = Layout(
        n_real=n_real,
        layer=list(layers),
        width=[box.width for box in boxes],
        x=[],
        rows=[[] for _ in range(max(layers, default=-1) + 1)],
        row_top=[],
        row_height=[],
        up=[[] for _ in range(n_real)],
        down=[[] for _ in range(n_real)],
        chains=[],
        trunks=[],
    )
    # Edges skipping layers pass dummy vertices; long edges from one source share them (a bus),
    # so a dataset read by many later tasks draws one trunk with branches, not parallel lines.
    trunks: dict[int, list[int]] = {}
    links: set[tuple[int, int]] = set()
    for source, target in edges:
        trunk = trunks.setdefault(source, [])
        chain = [source]
        for level in range(layers[source] + 1, layers[target]):
            if len(trunk) < level - layers[source]:
                layout.layer.append(level)
                layout.width.append(_DUMMY_WIDTH)
                layout.up.append([])
                layout.down.append([])
                trunk.append(len(layout.layer) - 1)
            chain.append(trunk[level - layers[source] - 1])
        chain.append(target)
        for a, b in itertools.pairwise(chain):
            if (a, b) not in links:
                links.add((a, b))
                layout.down[a].append(b)
                layout.up[b].append(a)
        layout.chains.append(chain)
    layout.trunks = [trunk for trunk in trunks.values() if trunk]
    # Start from the topological order (dummies after real nodes), then reduce crossings.
    for v in order:
        layout.rows[layers[v]].append(v)
    for v in range(n_real, len(layout.layer)):
        layout.rows[layout.layer[v]].append(v)
    _order_rows(layout.rows, layout.up, layout.down)
    layout.x = [0.0] * len(layout.layer)
    _place_rows(layout)
    top = 0.0
    for row in layout.rows:
        height = max((boxes[v].height for v in row if v < n_real), default=20.0)
        layout.row_top.append(top)
        layout.row_height.append(height)
        top += height + _RANK_GAP
    return layout
