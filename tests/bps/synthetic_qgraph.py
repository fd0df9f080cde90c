"""A small in-memory QuantumGraph for the bps tests: isr -> calibrate -> summary, no registry.

``isr`` (instrument, exposure, detector) writes ``postISRCCD``; ``calibrate`` (instrument, visit,
detector) reads the exposure with the visit's id and writes ``calexp``; ``summary`` (instrument,
visit) reads every ``calexp`` of the visit. Every quantum also reads an input nobody produces and
writes a metadata dataset. Only the quanta and edge tables are filled (what clustering reads).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import pyarrow as pa

from butler.dimensions import DimensionUniverse
from graph.quantum_graph import (
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    EdgeKind,
    QuantumGraph,
    QuantumGraphMetadata,
    quanta_schema,
)

EXPOSURE = ("instrument", "exposure", "detector")
VISIT_DETECTOR = ("instrument", "visit", "detector")
VISIT = ("instrument", "visit")
INSTRUMENT = "Cam"


def make_qgraph(
    visits: Sequence[int] = (1, 2),
    detectors: Sequence[int] = (0, 1, 2),
    *,
    tasks: Iterable[str] = ("isr", "calibrate", "summary"),
    instrument: str = INSTRUMENT,
) -> QuantumGraph:
    """The graph for ``visits`` x ``detectors`` (one exposure per visit, same id)."""
    universe = DimensionUniverse.default()
    wanted = list(tasks)
    dims = {"isr": EXPOSURE, "calibrate": VISIT_DETECTOR, "summary": VISIT}
    rows: dict[str, list[dict[str, object]]] = {label: [] for label in wanted}
    edges: list[tuple[bytes, bytes, str, str, int]] = []
    outputs: dict[tuple[str, int, int], bytes] = {}

    def add(
        label: str, values: dict[str, object], reads: list[bytes], writes: dict[tuple[str, int, int], str]
    ) -> None:
        node = uuid.uuid4().bytes
        rows[label].append({"node_id": node, "instrument": instrument, **values})
        edges.append((node, uuid.uuid4().bytes, "external", "external", int(EdgeKind.PREREQUISITE)))
        for dataset in reads:
            edges.append((node, dataset, "in", "in", int(EdgeKind.INPUT)))
        for key, name in writes.items():
            outputs[key] = uuid.uuid4().bytes
            edges.append((node, outputs[key], name, name, int(EdgeKind.OUTPUT)))
        edges.append((node, uuid.uuid4().bytes, f"{label}_metadata", "_metadata", int(EdgeKind.METADATA)))

    for visit in visits:
        for detector in detectors:
            if "isr" in wanted:
                add(
                    "isr",
                    {"exposure": visit, "detector": detector},
                    [],
                    {("post", visit, detector): "postISRCCD"},
                )
        for detector in detectors:
            if "calibrate" in wanted:
                reads = [outputs[("post", visit, detector)]] if ("post", visit, detector) in outputs else []
                add(
                    "calibrate",
                    {"visit": visit, "detector": detector},
                    reads,
                    {("calexp", visit, detector): "calexp"},
                )
        if "summary" in wanted:
            reads = [outputs[("calexp", visit, d)] for d in detectors if ("calexp", visit, d) in outputs]
            add("summary", {"visit": visit}, reads, {("summary", visit, 0): "visitSummary"})
    quanta = {}
    for label in wanted:
        schema = quanta_schema(universe.group(dims[label]))
        columns = []
        for field in schema:
            default: object = (
                "r" if field.name == "band" else "Cam-r" if field.name == "physical_filter" else 20250101
            )
            columns.append([row.get(field.name, default) for row in rows[label]])
        quanta[label] = pa.Table.from_arrays(columns, schema=schema)
    edge_table = pa.Table.from_arrays(
        [[edge[i] for edge in edges] for i in range(len(EDGES_SCHEMA))], schema=EDGES_SCHEMA
    )
    return QuantumGraph(
        metadata=QuantumGraphMetadata(
            universe_name=universe.name, universe_version=universe.version, output_run="u/test/run"
        ),
        dataset_types={},
        task_dimensions={label: universe.group(dims[label]).required for label in wanted},
        quanta=quanta,
        datasets={},
        edges=edge_table,
        init_edges=INIT_EDGES_SCHEMA.empty_table(),
        universe=universe,
    )
