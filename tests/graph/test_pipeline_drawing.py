"""Tests of graph.pipeline_drawing: DOT, Mermaid and SVG pictures of hand-built pipeline graphs."""

from __future__ import annotations

import itertools
import random
import re
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import networkx as nx
import pytest

from graph.errors import GraphError, PipelineCycleError
from graph.pipeline_drawing import to_dot, to_mermaid, to_svg

SVG = "{http://www.w3.org/2000/svg}"
VISIT = ("instrument", "visit", "detector")
EXPOSURE = ("instrument", "exposure", "detector")
PREREQUISITE_EDGES = {
    ("dataset:bias", "task:isr"),
    ("dataset:flat", "task:isr"),
    ("dataset:demo_refcat", "task:calibrate"),
    ("dataset:skyMap", "task:makeWarp"),
    ("dataset:skyMap", "task:assembleCoadd"),
}


def add_task(graph: nx.DiGraph, label: str, task_class: str, dimensions: tuple[str, ...]) -> str:
    key = f"task:{label}"
    graph.add_node(key, kind="task", label=label, task_class=task_class, dimensions=dimensions)
    return key


def add_dataset(
    graph: nx.DiGraph,
    name: str,
    storage_class: str,
    dimensions: tuple[str, ...],
    *,
    is_calibration: bool = False,
    is_init: bool = False,
) -> str:
    key = f"dataset:{name}"
    graph.add_node(
        key,
        kind="dataset_type",
        label=name,
        storage_class=storage_class,
        dimensions=dimensions,
        is_calibration=is_calibration,
        is_init=is_init,
    )
    return key


def connect(
    graph: nx.DiGraph,
    source: str,
    target: str,
    connection: str,
    *,
    prerequisite: bool = False,
    init: bool = False,
) -> None:
    graph.add_edge(source, target, connection=connection, prerequisite=prerequisite, init=init)


def demo_graph() -> nx.DiGraph:
    """The demo pipeline: isr -> calibrate -> gather visit summary -> warp -> coadd -> detect."""
    g = nx.DiGraph(name="DemoCam DRP")
    isr = add_task(g, "isr", "graph.demo.tasks.isr.IsrTask", EXPOSURE)
    calibrate = add_task(g, "calibrate", "graph.demo.tasks.calibrate.CalibrateTask", VISIT)
    gather = add_task(
        g,
        "consolidateVisitSummary",
        "graph.demo.tasks.gather.ConsolidateVisitSummaryTask",
        ("instrument", "visit"),
    )
    warp = add_task(
        g,
        "makeWarp",
        "graph.demo.tasks.coadd.MakeWarpTask",
        ("skymap", "tract", "patch", "instrument", "visit"),
    )
    coadd = add_task(
        g, "assembleCoadd", "graph.demo.tasks.coadd.AssembleCoaddTask", ("skymap", "tract", "patch", "band")
    )
    detect = add_task(
        g, "detection", "graph.demo.tasks.coadd.DetectionTask", ("skymap", "tract", "patch", "band")
    )
    raw = add_dataset(g, "raw", "Image", EXPOSURE)
    bias = add_dataset(g, "bias", "Image", ("instrument", "detector"), is_calibration=True)
    flat = add_dataset(g, "flat", "Image", ("instrument", "detector", "physical_filter"), is_calibration=True)
    post = add_dataset(g, "postISRCCD", "Image", EXPOSURE)
    refcat = add_dataset(g, "demo_refcat", "ArrowTable", ())
    calexp = add_dataset(g, "calexp", "Image", VISIT)
    src = add_dataset(g, "src", "ArrowTable", VISIT)
    summary = add_dataset(g, "visitSummary", "ArrowTable", ("instrument", "visit"))
    skymap = add_dataset(g, "skyMap", "Config", ("skymap",))
    direct = add_dataset(
        g, "deepCoadd_directWarp", "Image", ("skymap", "tract", "patch", "instrument", "visit")
    )
    deep = add_dataset(g, "deepCoadd", "Image", ("skymap", "tract", "patch", "band"))
    det = add_dataset(g, "deepCoadd_det", "ArrowTable", ("skymap", "tract", "patch", "band"))
    connect(g, raw, isr, "ccd_exposure")
    connect(g, bias, isr, "bias", prerequisite=True)
    connect(g, flat, isr, "flat", prerequisite=True)
    connect(g, isr, post, "output_exposure")
    connect(g, post, calibrate, "exposure")
    connect(g, refcat, calibrate, "ref_cat", prerequisite=True)
    connect(g, calibrate, calexp, "output_exposure")
    connect(g, calibrate, src, "output_catalog")
    connect(g, calexp, gather, "calexps")
    connect(g, src, gather, "sources")
    connect(g, gather, summary, "visit_summary")
    connect(g, calexp, warp, "calexp_list")
    connect(g, summary, warp, "visit_summary")
    connect(g, skymap, warp, "sky_map", prerequisite=True)
    connect(g, warp, direct, "direct")
    connect(g, direct, coadd, "input_warps")
    connect(g, skymap, coadd, "sky_map", prerequisite=True)
    connect(g, coadd, deep, "coadd")
    connect(g, deep, detect, "exposure")
    connect(g, detect, det, "output_sources")
    # Init outputs, hidden unless include_init.
    for label, task in (("isr", isr), ("calibrate", calibrate)):
        config = add_dataset(g, f"{label}_config", "Config", (), is_init=True)
        connect(g, task, config, "config", init=True)
    return g


def random_pipeline(n_tasks: int, seed: int = 4) -> nx.DiGraph:
    """A random pipeline: each task reads 1-3 recent dataset types and writes 1-3 new ones."""
    rng = random.Random(seed)
    g = nx.DiGraph()
    available = [add_dataset(g, f"input{i}", "Image", EXPOSURE) for i in range(5)]
    skymap = add_dataset(g, "skyMap", "Config", ("skymap",))
    for t in range(n_tasks):
        task = add_task(g, f"task{t}", f"pkg.tasks.Task{t}", VISIT)
        window = available[-30:]
        for n, dataset in enumerate(rng.sample(window, min(len(window), rng.randint(1, 3)))):
            connect(g, dataset, task, f"input{n}")
        if rng.random() < 0.2:
            connect(g, skymap, task, "sky_map", prerequisite=True)
        for n in range(rng.choice([1, 2, 2, 3, 3])):
            output = add_dataset(g, f"ds{t}_{n}", "ArrowTable", VISIT)
            connect(g, task, output, f"output{n}")
            available.append(output)
    return g


def cyclic_graph() -> nx.DiGraph:
    g = nx.DiGraph()
    a, b = add_task(g, "taskA", "p.A", ()), add_task(g, "taskB", "p.B", ())
    x, y = add_dataset(g, "dsX", "Image", ()), add_dataset(g, "dsY", "Image", ())
    raw = add_dataset(g, "raw", "Image", ())
    connect(g, raw, a, "raw")
    connect(g, a, x, "out")
    connect(g, x, b, "in")
    connect(g, b, y, "out")
    connect(g, y, a, "feedback")
    return g


def odd_names_graph() -> nx.DiGraph:
    """Labels and keys with quotes, backslashes and markup characters."""
    g = nx.DiGraph(name='Odd "pipeline" <1> & co')
    task = add_task(g, 'say "hi" & <bye>', "pkg.Weird<T>", ("a&b",))
    source = add_dataset(g, 'in\\put "1"', "Image", ())
    graph_key = add_dataset(g, "out#1 `x`", "Config", ())
    connect(g, source, task, 'conn"1')
    connect(g, task, graph_key, "out")
    return g


# -- DOT -------------------------------------------------------------------------------------------

DOT_STRING = r'"(?:[^"\\]|\\.)*"'


def dot_unquote(text: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m.group(1), m.group(1)), text[1:-1])


def parse_dot(text: str) -> tuple[dict[str, str], dict[tuple[str, str], str]]:
    """Node and edge statements of our DOT output: id -> attribute text, (id, id) -> attribute text."""
    nodes: dict[str, str] = {}
    edges: dict[tuple[str, str], str] = {}
    lines = text.splitlines()
    assert lines[0] == "digraph pipeline {" and lines[-1] == "}"
    for line in lines[1:-1]:
        if m := re.fullmatch(rf"    ({DOT_STRING}) -> ({DOT_STRING}) \[(.*)\];", line):
            edges[dot_unquote(m[1]), dot_unquote(m[2])] = m[3]
        elif m := re.fullmatch(rf"    ({DOT_STRING}) \[(.*)\];", line):
            nodes[dot_unquote(m[1])] = m[2]
        else:
            assert re.fullmatch(r"    (graph|node|edge) \[.*\];", line), line
    return nodes, edges


def test_dot_shapes_and_prerequisite_edges() -> None:
    text = to_dot(demo_graph())
    assert "rankdir=TB" in text
    nodes, edges = parse_dot(text)
    assert sum("shape=box" in attrs for attrs in nodes.values()) == 6
    assert sum("shape=ellipse" in attrs for attrs in nodes.values()) == 12
    assert "dataset:isr_config" not in nodes
    assert len(edges) == 20
    dashed = {pair for pair, attrs in edges.items() if "style=dashed" in attrs}
    assert dashed == PREREQUISITE_EDGES
    assert 'style="filled,dashed"' in nodes["dataset:demo_refcat"]
    assert 'style="filled"' in nodes["dataset:raw"]
    # Task labels: bold label, then class name and dimensions in a smaller font.
    assert "<B>isr</B>" in nodes["task:isr"]
    assert "IsrTask<BR/>{instrument, exposure, detector}" in nodes["task:isr"]
    assert 'tooltip="graph.demo.tasks.isr.IsrTask"' in nodes["task:isr"]
    # Dataset types: name, dimensions, storage class; calibrations marked and dashed.
    assert "{instrument, detector}<BR/>Image · calibration" in nodes["dataset:bias"]
    assert "filled,dashed" in nodes["dataset:bias"]
    assert "{instrument, visit, detector}<BR/>ArrowTable" in nodes["dataset:src"]


def test_dot_options_and_init() -> None:
    nodes, edges = parse_dot(to_dot(demo_graph(), show_dimensions=False, show_storage_classes=False))
    assert "{" not in nodes["dataset:calexp"] and "Image" not in nodes["dataset:calexp"]
    assert "IsrTask</FONT>" in nodes["task:isr"]
    nodes, edges = parse_dot(to_dot(demo_graph(), include_init=True))
    assert "dataset:isr_config" in nodes and "#f1f5f9" in nodes["dataset:isr_config"]
    assert "style=dotted" in edges["task:isr", "dataset:isr_config"]
    assert len(edges) == 22


def test_dot_escaping() -> None:
    g = odd_names_graph()
    text = to_dot(g)
    nodes, edges = parse_dot(text)
    assert set(nodes) == set(g.nodes)
    assert set(edges) == set(g.edges)
    task = nodes['task:say "hi" & <bye>']
    assert "<B>say &quot;hi&quot; &amp; &lt;bye&gt;</B>" in task
    assert "Weird&lt;T&gt;" in task and "{a&amp;b}" in task
    assert 'tooltip="pkg.Weird<T>"' in task
    assert r'tooltip="conn\"1"' in edges['dataset:in\\put "1"', 'task:say "hi" & <bye>']
    assert "<B>Odd &quot;pipeline&quot; &lt;1&gt; &amp; co</B>" in text
    # HTML labels stay balanced: every label=<...> closes before the statement ends.
    for attrs in nodes.values():
        label = re.search(r"label=<(.*)>$", attrs)
        assert label is not None and "<" not in re.sub(r"</?(B|BR/|FONT[^>]*)>", "", label[1])


# -- Mermaid ---------------------------------------------------------------------------------------


def test_mermaid_structure() -> None:
    text = to_mermaid(demo_graph())
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    tasks = [line for line in lines if re.fullmatch(r'    t_\w+\["[^"]*"\]', line)]
    datasets = [line for line in lines if re.fullmatch(r'    d_\w+\(\["[^"]*"\]\)', line)]
    assert len(tasks) == 6 and len(datasets) == 12
    assert '    t_isr["<b>isr</b><br/><small>IsrTask<br/>{instrument, exposure, detector}</small>"]' in lines
    assert "    d_raw --> t_isr" in lines
    prerequisite = {tuple(line.split(" -.-> ")) for line in lines if " -.-> " in line}
    assert prerequisite == {
        ("    d_bias", "t_isr"),
        ("    d_flat", "t_isr"),
        ("    d_demo_refcat", "t_calibrate"),
        ("    d_skyMap", "t_makeWarp"),
        ("    d_skyMap", "t_assembleCoadd"),
    }
    assert sum(" --> " in line for line in lines) == 15
    assert sum(line.startswith("    linkStyle ") for line in lines) == 5
    for name in ("task", "datasetType", "prerequisite"):
        assert any(line.startswith(f"    classDef {name} ") for line in lines)
    assert "stroke-dasharray" in next(line for line in lines if line.startswith("    classDef prerequisite"))
    classes = {
        m[2]: set(m[1].split(",")) for line in lines if (m := re.fullmatch(r"    class (\S+) (\w+);", line))
    }
    assert len(classes["task"]) == 6
    assert classes["prerequisite"] == {"d_bias", "d_flat", "d_demo_refcat", "d_skyMap"}


def test_mermaid_ids_and_escaping() -> None:
    g = odd_names_graph()
    add_task(g, "say_hi_bye", "p.T", ())  # sanitizes to a clash-free id too
    add_task(g, "say 'hi' / bye", "p.T", ())
    text = to_mermaid(g)
    ids = re.findall(r"^    (\w+)(?:\[|\(\[)", text, flags=re.MULTILINE)
    assert len(ids) == len(set(ids)) == 5
    assert all(re.fullmatch(r"[A-Za-z0-9_]+", i) for i in ids)
    assert "#quot;hi#quot; #amp; #lt;bye#gt;" in text
    assert "out#35;1 #96;x#96;" in text
    for line in text.splitlines():
        if m := re.fullmatch(r'    \w+(\[|\(\[)"(.*)"(\]|\]\))', line):
            assert '"' not in m[2]


def test_mermaid_markdown() -> None:
    text = to_mermaid(demo_graph(), markdown=True, include_init=True)
    assert text.startswith("# DemoCam DRP\n\n6 tasks, 14 dataset types.\n\n```mermaid\nflowchart TB\n")
    assert text.endswith("```\n") and text.count("```") == 2
    assert "    t_isr -.-> d_isr_config" in text
    assert "class d_isr_config,d_calibrate_config init;" in text


# -- SVG -------------------------------------------------------------------------------------------


def parse_svg(text: str) -> ET.Element:
    root = ET.fromstring(text.encode())
    assert root.tag == f"{SVG}svg"
    return root


def node_boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float, int]]:
    """Node id -> (left, top, right, bottom, layer)."""
    boxes = {}
    for group in root.iter(f"{SVG}g"):
        if "node" not in group.get("class", "").split():
            continue
        layer = int(group.get("data-layer", "-1"))
        if (rect := group.find(f"{SVG}rect")) is not None:
            x, y = float(rect.get("x", 0)), float(rect.get("y", 0))
            box = (x, y, x + float(rect.get("width", 0)), y + float(rect.get("height", 0)), layer)
        else:
            ellipse = group.find(f"{SVG}ellipse")
            assert ellipse is not None
            cx, cy = float(ellipse.get("cx", 0)), float(ellipse.get("cy", 0))
            rx, ry = float(ellipse.get("rx", 0)), float(ellipse.get("ry", 0))
            box = (cx - rx, cy - ry, cx + rx, cy + ry, layer)
        boxes[group.get("id", "")] = box
    return boxes


def check_geometry(root: ET.Element) -> None:
    """No two nodes of a layer overlap; the viewBox holds every node; edges run between their nodes."""
    boxes = node_boxes(root)
    layers: dict[int, list[tuple[float, float, float, float, int]]] = {}
    for box in boxes.values():
        layers.setdefault(box[4], []).append(box)
    for row in layers.values():
        row.sort()
        for left, right in itertools.pairwise(row):
            assert right[0] >= left[2] + 1, (left, right)
    vx, vy, vw, vh = map(float, root.get("viewBox", "").split())
    for left, top, right, bottom, _ in boxes.values():
        assert vx <= left and right <= vx + vw and vy <= top and bottom <= vy + vh
    for path in root.iter(f"{SVG}path"):
        if "edge" not in path.get("class", "").split():
            continue
        numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", path.get("d", ""))]
        source, target = boxes[path.get("data-source", "")], boxes[path.get("data-target", "")]
        assert source[3] < target[1]  # flows downwards
        end_x, end_y = numbers[-2], numbers[-1]
        assert target[0] <= end_x <= target[2] and abs(end_y - target[1]) < target[3] - target[1]
        assert all(vy <= y <= vy + vh for y in numbers[1::2])


def test_svg_shapes_edges_and_styles(tmp_path: Path) -> None:
    text = to_svg(demo_graph())
    (tmp_path / "demo.svg").write_text(text)
    root = parse_svg(text)
    tasks = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node task"]
    datasets = [g for g in root.iter(f"{SVG}g") if g.get("class") == "node dataset-type"]
    assert len(tasks) == 6 and all(len(g.findall(f"{SVG}rect")) == 1 for g in tasks)
    assert len(datasets) == 12 and all(len(g.findall(f"{SVG}ellipse")) == 1 for g in datasets)
    assert all(g.find(f"{SVG}rect").get("fill") == "#dbeafe" for g in tasks)  # type: ignore[union-attr]
    names = {g.find(f"{SVG}text").text: g for g in tasks + datasets}  # type: ignore[union-attr]
    dashed = {name for name, g in names.items() if g.find(f"{SVG}ellipse[@stroke-dasharray]") is not None}
    assert dashed == {"bias", "flat", "demo_refcat", "skyMap"}
    assert [t.text for t in names["isr"].findall(f"{SVG}text")] == [
        "isr",
        "IsrTask",
        "{instrument, exposure, detector}",
    ]
    assert names["isr"].find(f"{SVG}title").text == "graph.demo.tasks.isr.IsrTask"  # type: ignore[union-attr]
    edges = [p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split()]
    assert len(edges) == 20
    by_name = {p.find(f"{SVG}title").text: p for p in edges}  # type: ignore[union-attr]
    assert len(by_name) == 20
    for tip, path in by_name.items():
        prerequisite = any(
            tip.startswith(f"{s.split(':')[1]} → {t.split(':')[1]} ") for s, t in PREREQUISITE_EDGES
        )
        assert (path.get("stroke-dasharray") is not None) == prerequisite, tip
        assert path.get("marker-end", "").startswith("url(#quanta-arrow-")
        assert re.fullmatch(r"M[\d.]+,[\d.]+( [CL][\d.,\s]+)+", path.get("d", ""))
    markers = {m.get("id") for m in root.iter(f"{SVG}marker")}
    assert {"quanta-arrow-normal", "quanta-arrow-prerequisite"} <= markers
    legend = next(g for g in root.iter(f"{SVG}g") if g.get("class") == "legend")
    legend_text = [t.text for t in legend.iter(f"{SVG}text")]
    assert {"task", "dataset type", "prerequisite input"} <= set(legend_text)
    title = root.find(f"{SVG}title")
    assert title is not None and title.text == "DemoCam DRP"
    check_geometry(root)


def test_svg_layers_follow_the_data_flow() -> None:
    root = parse_svg(to_svg(demo_graph()))
    layer = {
        g.find(f"{SVG}text").text: int(g.get("data-layer", -1))
        for g in root.iter(f"{SVG}g")
        if g.get("data-layer")
    }  # type: ignore[union-attr]
    assert layer["raw"] == 0 and layer["isr"] == 1 and layer["postISRCCD"] == 2 and layer["calibrate"] == 3
    # Overall inputs sit just above their first consumer, not at the top.
    assert layer["bias"] == 0 and layer["demo_refcat"] == 2 and layer["skyMap"] == layer["makeWarp"] - 1


def test_svg_init_and_options() -> None:
    root = parse_svg(
        to_svg(demo_graph(), include_init=True, show_dimensions=False, show_storage_classes=False)
    )
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "isr_config" in texts and "init" in texts
    assert not any(t and t.startswith("{") for t in texts)
    edges = [p for p in root.iter(f"{SVG}path") if p.get("class") == "edge init"]
    assert len(edges) == 2 and all(p.get("stroke-dasharray") for p in edges)
    check_geometry(root)


def test_svg_escaping() -> None:
    text = to_svg(odd_names_graph())
    root = parse_svg(text)
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert 'Odd "pipeline" <1> & co' in texts
    assert 'say "hi" & <bye>' in texts and "Weird<T>" in texts and 'in\\put "1"' in texts
    check_geometry(root)


def test_svg_bundles_long_edges_from_one_source() -> None:
    """A dataset read by every task of a long chain draws one trunk, not one line per reader."""
    g = nx.DiGraph()
    common = add_dataset(g, "skyMap", "Config", ("skymap",))
    previous = add_dataset(g, "raw", "Image", ())
    for t in range(40):
        task = add_task(g, f"t{t}", "p.T", ())
        connect(g, previous, task, "input")
        connect(g, common, task, "sky_map", prerequisite=True)
        previous = add_dataset(g, f"d{t}", "Image", ())
        connect(g, task, previous, "output")
    text = to_svg(g)
    root = parse_svg(text)
    assert len(list(root.iterfind(f".//{SVG}path[@class='trunk']"))) == 1
    assert len(text) < 200_000
    check_geometry(root)
    # The chain itself stays upright.
    keys = list(g.nodes)  # drawn node ids are node-<index in the graph's node order>
    centres = {keys[int(i.removeprefix("node-"))]: (b[0] + b[2]) / 2 for i, b in node_boxes(root).items()}
    chain = [x for key, x in centres.items() if key.startswith("task:")]
    assert max(chain) - min(chain) < 40


def test_svg_random_pipeline_geometry() -> None:
    g = random_pipeline(40, seed=11)
    root = parse_svg(to_svg(g))
    assert len(node_boxes(root)) == g.number_of_nodes()
    assert (
        len([p for p in root.iter(f"{SVG}path") if "edge" in p.get("class", "").split()])
        == g.number_of_edges()
    )
    check_geometry(root)


def test_empty_and_single_node() -> None:
    for drawing in (to_svg(nx.DiGraph()), to_svg(nx.DiGraph(), title="nothing")):
        parse_svg(drawing)
    g = nx.DiGraph()
    add_task(g, "lonely", "p.Lonely", ())
    check_geometry(parse_svg(to_svg(g)))
    assert parse_dot(to_dot(g))[0].keys() == {"task:lonely"}
    assert '    t_lonely["' in to_mermaid(g)


# -- errors and scale ------------------------------------------------------------------------------


@pytest.mark.parametrize("draw", [to_dot, to_mermaid, to_svg])
def test_cycle_is_named(draw: object) -> None:
    with pytest.raises(
        PipelineCycleError, match=r"cycle (taskA|dsX|taskB|dsY)( -> (taskA|dsX|taskB|dsY)){4}"
    ):
        draw(cyclic_graph())  # type: ignore[operator]


def test_unknown_node_kind() -> None:
    g = nx.DiGraph()
    g.add_node("mystery", kind="quantum", label="mystery")
    with pytest.raises(GraphError, match=r"'mystery' has kind 'quantum'; expected 'task' or 'dataset_type'"):
        to_svg(g)


def test_prerequisite_attribute_is_honoured() -> None:
    g = nx.DiGraph()
    task = add_task(g, "t", "p.T", ())
    dataset = add_dataset(g, "refs", "ArrowTable", ())
    g.nodes[dataset]["is_prerequisite"] = True
    connect(g, dataset, task, "refs")
    nodes, _ = parse_dot(to_dot(g))
    assert "filled,dashed" in nodes[dataset]


def test_deep_chain_needs_no_recursion() -> None:
    depth = sys.getrecursionlimit() + 200
    g = nx.DiGraph()
    previous = add_dataset(g, "d_start", "Image", ())
    for t in range(depth // 2):
        task = add_task(g, f"t{t}", "p.T", ())
        connect(g, previous, task, "input")
        previous = add_dataset(g, f"d{t}", "Image", ())
        connect(g, task, previous, "output")
    assert to_svg(g).count('class="node task"') == depth // 2
    connect(g, previous, "task:t0", "loop")
    with pytest.raises(PipelineCycleError):
        to_dot(g)


def test_large_pipeline_draws_quickly() -> None:
    g = random_pipeline(300)
    assert 900 <= g.number_of_nodes() <= 1100
    start = time.perf_counter()
    svg = to_svg(g)
    elapsed = time.perf_counter() - start
    to_dot(g)
    to_mermaid(g)
    assert elapsed < 2.0, f"to_svg took {elapsed:.2f} s for {g.number_of_nodes()} nodes"
    root = parse_svg(svg)
    check_geometry(root)


if __name__ == "__main__":  # pragma: no cover - writes the demo picture for a person to look at
    Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/pipeline_drawing_demo.svg").write_text(
        to_svg(demo_graph())
    )
