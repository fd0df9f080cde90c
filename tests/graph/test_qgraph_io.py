"""The ``.qg`` file: round trips, per-job subgraph reads, error detection, atomic writes, speed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

import graph.qgraph_blocks as qgraph_blocks
from butler.datasets import DatasetType
from butler.dimensions import DimensionUniverse
from graph.errors import QuantumGraphError, QuantumGraphFileError
from graph.qgraph_format import MAGIC, PREAMBLE_SIZE, QgFileReader
from graph.qgraph_io import (
    read_dependency_order,
    read_header,
    read_quanta,
    read_quantum_graph,
    write_quantum_graph,
)
from graph.quantum_graph import (
    DATASTORE_RECORDS_SCHEMA,
    EDGES_SCHEMA,
    INIT_EDGES_SCHEMA,
    PRUNED_SCHEMA,
    EdgeKind,
    QuantumGraph,
    QuantumGraphMetadata,
    dataset_schema,
    ids_to_array,
    ids_to_numpy,
    quanta_schema,
)

REPO_ROOT = Path(__file__).parents[2]
RUN = "u/test/run"
BANDS = ["g", "r", "i"]


# -- a synthetic DRP-shaped graph, built columnar ---------------------------------------------------


class _Builder:
    """Accumulates columnar tables for `synthetic_graph`."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.universe = DimensionUniverse.default()
        self.quanta: dict[str, pa.Table] = {}
        self.task_dimensions: dict[str, tuple[str, ...]] = {}
        self.datasets: dict[str, list[pa.Table]] = {}
        self.dataset_types: dict[str, DatasetType] = {}
        self.edges: list[pa.Table] = []
        self.init_edges: list[pa.Table] = []
        self.records: list[pa.Table] = []

    def ids(self, count: int) -> np.ndarray:
        return np.frombuffer(self.rng.bytes(16 * count), dtype="S16").copy()

    def _table(self, schema: pa.Schema, ids: np.ndarray, values: dict[str, object]) -> pa.Table:
        count = len(ids)
        arrays = [ids_to_array(ids)]
        for field in list(schema)[1:]:
            value = values[field.name]
            if isinstance(value, pa.Array):
                arrays.append(value)
            elif isinstance(value, np.ndarray):
                arrays.append(pa.array(value, field.type))
            else:
                arrays.append(pa.array([value] * count, field.type))
        return pa.Table.from_arrays(arrays, schema=schema)

    def task(
        self, label: str, dimensions: tuple[str, ...], values: dict[str, object], count: int
    ) -> np.ndarray:
        group = self.universe.group(dimensions)
        node_ids = self.ids(count)
        self.quanta[label] = self._table(quanta_schema(group), node_ids, values)
        self.task_dimensions[label] = group.required
        return node_ids

    def dataset_type(
        self, name: str, dimensions: tuple[str, ...], storage_class: str, **kwargs: bool
    ) -> None:
        self.dataset_types[name] = DatasetType(name, self.universe.group(dimensions), storage_class, **kwargs)

    def datasets_of(
        self, name: str, values: dict[str, object], count: int, *, produced: bool, run: str = RUN
    ) -> np.ndarray:
        dataset_ids = self.ids(count)
        group = self.dataset_types[name].dimensions
        table = self._table(dataset_schema(group), dataset_ids, {**values, "run": run, "produced": produced})
        self.datasets.setdefault(name, []).append(table)
        if not produced:
            self.records.append(
                pa.Table.from_arrays(
                    [
                        ids_to_array(dataset_ids),
                        pa.array(["FileDatastore"] * count),
                        pa.array([""] * count),
                        pa.array([f"{name}/{index}.fits" for index in range(count)]),
                        pa.array(["butler.formatters.FitsImageFormatter"] * count),
                        pa.array(["ExposureF"] * count),
                        pa.array([None] * count, pa.string()),
                        pa.array(np.arange(count, dtype=np.int64) + 1000),
                    ],
                    schema=DATASTORE_RECORDS_SCHEMA,
                )
            )
        return dataset_ids

    def edge(
        self,
        node_ids: np.ndarray,
        dataset_ids: np.ndarray,
        dataset_type: str,
        connection: str,
        kind: EdgeKind,
    ) -> None:
        count = len(node_ids)
        self.edges.append(
            pa.Table.from_arrays(
                [
                    ids_to_array(node_ids),
                    ids_to_array(dataset_ids),
                    pa.array([dataset_type] * count),
                    pa.array([connection] * count),
                    pa.array(np.full(count, int(kind), np.int8)),
                ],
                schema=EDGES_SCHEMA,
            )
        )

    def outputs(
        self,
        label: str,
        node_ids: np.ndarray,
        values: dict[str, object],
        dimensions: tuple[str, ...],
        outputs: dict[str, str],
    ) -> dict[str, np.ndarray]:
        """Outputs named ``connection -> dataset type`` plus the task's metadata and log."""
        result = {}
        self.dataset_type(f"{label}_metadata", dimensions, "TaskMetadata")
        self.dataset_type(f"{label}_log", dimensions, "ButlerLogRecords")
        for connection, name, kind in [
            *[(c, n, EdgeKind.OUTPUT) for c, n in outputs.items()],
            ("_metadata", f"{label}_metadata", EdgeKind.METADATA),
            ("_log", f"{label}_log", EdgeKind.LOG),
        ]:
            ids = self.datasets_of(name, values, len(node_ids), produced=True)
            self.edge(node_ids, ids, name, connection, kind)
            result[name] = ids
        return result

    def init(
        self, task: str, dataset_type: str, connection: str, kind: EdgeKind, dataset_id: np.ndarray
    ) -> None:
        self.init_edges.append(
            pa.Table.from_arrays(
                [
                    pa.array([task]),
                    ids_to_array(dataset_id),
                    pa.array([dataset_type]),
                    pa.array([connection]),
                    pa.array([int(kind)], pa.int8()),
                ],
                schema=INIT_EDGES_SCHEMA,
            )
        )


def synthetic_graph(
    visits: int,
    detectors: int,
    *,
    patches: int = 4,
    inputs_per_patch: int = 6,
    pruned: int = 3,
    seed: int = 1,
    universe_version: int | None = None,
) -> QuantumGraph:
    """isr (exposure x detector) → calibrate (visit x detector) → gather (visit) and coadd (patch).

    isr reads raw (existing, with records) and bias/flat prerequisites (existing calibrations);
    gather reads the ``calexp.wcs`` component; coadd reads ``inputs_per_patch`` calexps per patch.
    Every task has a config init output; calibrate has an init output gather reads as init input.
    """
    b = _Builder(seed)
    count = visits * detectors
    v = np.repeat(np.arange(visits), detectors)
    d = np.tile(np.arange(detectors), visits)
    filters = pa.array([f"{band}_filter" for band in BANDS])
    per_visit = {
        "instrument": "Cam",
        "band": pa.array(BANDS).take(pa.array(v % 3)),
        "physical_filter": filters.take(pa.array(v % 3)),
        "day_obs": 20240101 + v // 50,
    }
    vd = {**per_visit, "detector": d, "exposure": 1000 + v, "visit": 1000 + v}
    b.dataset_type("raw", ("instrument", "exposure", "detector"), "Exposure")
    b.dataset_type("bias", ("instrument", "detector"), "ExposureF", is_calibration=True)
    b.dataset_type("flat", ("instrument", "physical_filter", "detector"), "ExposureF", is_calibration=True)
    b.dataset_type("postISRCCD", ("instrument", "exposure", "detector"), "Exposure")
    b.dataset_type("calexp", ("instrument", "visit", "detector"), "ExposureF")
    b.dataset_types["calexp.wcs"] = b.dataset_types["calexp"].make_component("wcs", "Wcs")
    b.dataset_type("visitSummary", ("instrument", "visit"), "ExposureCatalog")
    b.dataset_type("deepCoadd", ("skymap", "tract", "patch", "band"), "ExposureF")
    b.dataset_type("src_schema", (), "SourceCatalog")
    b.dataset_type("packages", (), "Packages")

    raw = b.datasets_of("raw", vd, count, produced=False, run="Cam/raw/all")
    bias = b.datasets_of(
        "bias",
        {"instrument": "Cam", "detector": np.arange(detectors)},
        detectors,
        produced=False,
        run="Cam/calib",
    )
    flat_filter = np.repeat(np.arange(3), detectors)
    flat = b.datasets_of(
        "flat",
        {
            "instrument": "Cam",
            "detector": np.tile(np.arange(detectors), 3),
            "physical_filter": filters.take(pa.array(flat_filter)),
            "band": pa.array(BANDS).take(pa.array(flat_filter)),
        },
        3 * detectors,
        produced=False,
        run="Cam/calib",
    )
    # An existing dataset no edge uses: it must survive a round trip (in the extras block).
    b.datasets_of(
        "bias", {"instrument": "Cam", "detector": np.array([detectors])}, 1, produced=False, run="Cam/old"
    )

    isr = b.task("isr", ("instrument", "exposure", "detector"), vd, count)
    b.edge(isr, raw, "raw", "ccdExposure", EdgeKind.INPUT)
    b.edge(isr, bias[d], "bias", "bias", EdgeKind.PREREQUISITE)
    b.edge(isr, flat[(v % 3) * detectors + d], "flat", "flat", EdgeKind.PREREQUISITE)
    post = b.outputs(
        "isr", isr, vd, ("instrument", "exposure", "detector"), {"outputExposure": "postISRCCD"}
    )["postISRCCD"]

    calibrate = b.task("calibrate", ("instrument", "visit", "detector"), vd, count)
    b.edge(calibrate, post, "postISRCCD", "exposure", EdgeKind.INPUT)
    calexp = b.outputs(
        "calibrate", calibrate, vd, ("instrument", "visit", "detector"), {"outputExposure": "calexp"}
    )["calexp"]

    visit_values = {
        **{k: (val[::detectors] if isinstance(val, np.ndarray) else val) for k, val in per_visit.items()}
    }
    visit_values["band"] = pa.array(BANDS).take(pa.array(np.arange(visits) % 3))
    visit_values["physical_filter"] = filters.take(pa.array(np.arange(visits) % 3))
    visit_values["visit"] = 1000 + np.arange(visits)
    gather = b.task("gather", ("instrument", "visit"), visit_values, visits)
    b.edge(np.repeat(gather, detectors), calexp, "calexp.wcs", "wcs", EdgeKind.INPUT)
    b.outputs("gather", gather, visit_values, ("instrument", "visit"), {"summary": "visitSummary"})

    tracts, patch_numbers = np.zeros(patches, np.int64), np.arange(patches)
    patch_values = {
        "skymap": "rings",
        "tract": tracts,
        "patch": patch_numbers,
        "band": pa.array(BANDS).take(pa.array(patch_numbers % 3)),
    }
    coadd = b.task("coadd", ("skymap", "tract", "patch", "band"), patch_values, patches)
    if patches and count:
        chosen = np.random.default_rng(seed).integers(0, count, size=(patches, inputs_per_patch))
        for column in range(inputs_per_patch):
            b.edge(coadd, calexp[chosen[:, column]], "calexp", f"calexp{column}", EdgeKind.INPUT)
    b.outputs("coadd", coadd, patch_values, ("skymap", "tract", "patch", "band"), {"coadd": "deepCoadd"})

    for label in ("isr", "calibrate", "gather", "coadd"):
        b.dataset_type(f"{label}_config", (), "Config")
        config_id = b.datasets_of(f"{label}_config", {}, 1, produced=True)
        b.init(label, f"{label}_config", "_config", EdgeKind.CONFIG, config_id)
    schema_id = b.datasets_of("src_schema", {}, 1, produced=True)
    b.init("calibrate", "src_schema", "outputSchema", EdgeKind.INIT_OUTPUT, schema_id)
    b.init("gather", "src_schema", "inputSchema", EdgeKind.INIT_INPUT, schema_id)
    b.init("", "packages", "packages", EdgeKind.PACKAGES, b.datasets_of("packages", {}, 1, produced=True))

    universe = b.universe
    pruned_table = pa.table(
        {
            "task": ["calibrate"] * pruned,
            "data_id": [
                json.dumps({"instrument": "Cam", "visit": 5000 + i, "detector": 0}) for i in range(pruned)
            ],
            "reason": ["no raw"] * pruned,
        },
        schema=PRUNED_SCHEMA,
    )
    metadata = QuantumGraphMetadata(
        universe_name=universe.name,
        universe_version=universe.version if universe_version is None else universe_version,
        pipeline_yaml="description: synthetic\ntasks:\n  isr: {class: x.Isr}\n",
        input_collections=("Cam/raw/all", "Cam/calib"),
        output_run=RUN,
        output="u/test",
        where="instrument = 'Cam'",
        bind={"x": 1},
    )
    return QuantumGraph(
        metadata=metadata,
        dataset_types=b.dataset_types,
        task_dimensions=b.task_dimensions,
        quanta=b.quanta,
        datasets={name: pa.concat_tables(parts).combine_chunks() for name, parts in b.datasets.items()},
        edges=pa.concat_tables(b.edges).combine_chunks(),
        init_edges=pa.concat_tables(b.init_edges).combine_chunks(),
        datastore_records=pa.concat_tables(b.records).combine_chunks(),
        pruned=pruned_table,
        universe=universe,
    )


# -- comparisons ---------------------------------------------------------------------------------------


def _sorted(table: pa.Table) -> pa.Table:
    """``table`` in a canonical row order (every column a sort key), one chunk."""
    keys = [(name, "ascending") for name in table.column_names]
    return table.take(pc.sort_indices(table, sort_keys=keys)).combine_chunks() if table.num_rows else table


def assert_tables_equal(left: pa.Table, right: pa.Table, what: str) -> None:
    assert left.schema.equals(right.schema), f"{what}: {left.schema} != {right.schema}"
    assert _sorted(left).equals(_sorted(right)), f"{what}: rows differ"


def assert_graphs_equal(left: QuantumGraph, right: QuantumGraph) -> None:
    assert left.metadata == right.metadata
    assert left.task_dimensions == right.task_dimensions
    assert list(left.task_dimensions) == list(right.task_dimensions)
    assert left.dataset_types == right.dataset_types
    assert set(left.quanta) == set(right.quanta)
    for label in left.quanta:
        assert_tables_equal(left.quanta[label], right.quanta[label], f"quanta[{label}]")
    assert set(left.datasets) == set(right.datasets)
    for name in left.datasets:
        assert_tables_equal(left.datasets[name], right.datasets[name], f"datasets[{name}]")
    assert_tables_equal(left.edges, right.edges, "edges")
    assert_tables_equal(left.init_edges, right.init_edges, "init_edges")
    assert_tables_equal(left.datastore_records, right.datastore_records, "datastore_records")
    assert_tables_equal(left.pruned, right.pruned, "pruned")


@pytest.fixture
def small_graph() -> QuantumGraph:
    return synthetic_graph(visits=7, detectors=5, patches=4)


@pytest.fixture
def small_file(tmp_path: Path, small_graph: QuantumGraph) -> Path:
    path = tmp_path / "small.qg"
    write_quantum_graph(small_graph, path, block_size=8, page_size=16)
    return path


# -- round trips -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block_size,page_size", [(8, 16), (1000, 8192), (1, 1)])
def test_round_trip(tmp_path: Path, small_graph: QuantumGraph, block_size: int, page_size: int) -> None:
    path = tmp_path / "graph.qg"
    write_quantum_graph(small_graph, path, block_size=block_size, page_size=page_size)
    back = read_quantum_graph(path)
    assert_graphs_equal(small_graph, back)
    assert back.datastore_records.num_rows == small_graph.datastore_records.num_rows > 0
    # The object API works on what was read.
    node = small_graph.node_ids("gather")[2]
    assert back.quantum(node) == small_graph.quantum(node)
    assert [r.data_id for r in back.inputs_of(node)] == [r.data_id for r in small_graph.inputs_of(node)]
    assert back.records_of([r.id for r in back.inputs_of(small_graph.node_ids("isr")[0])])
    assert back.packages_ref() == small_graph.packages_ref()


def test_round_trip_of_empty_graph(tmp_path: Path) -> None:
    graph = synthetic_graph(visits=0, detectors=3, patches=0, pruned=0)
    path = tmp_path / "empty.qg"
    write_quantum_graph(graph, path)
    assert_graphs_equal(graph, read_quantum_graph(path))
    assert read_header(path).counts["quanta"] == 0
    assert len(read_dependency_order(path)) == 0


def test_round_trip_of_graph_without_tasks(tmp_path: Path) -> None:
    universe = DimensionUniverse.default()
    graph = QuantumGraph(
        metadata=QuantumGraphMetadata(
            universe_name=universe.name, universe_version=universe.version, output_run=RUN
        ),
        dataset_types={},
        task_dimensions={},
        quanta={},
        datasets={},
        edges=EDGES_SCHEMA.empty_table(),
        init_edges=INIT_EDGES_SCHEMA.empty_table(),
    )
    path = tmp_path / "nothing.qg"
    write_quantum_graph(graph, path)
    assert_graphs_equal(graph, read_quantum_graph(path))
    assert read_quanta(path, []).quantum_count() == 0
    with pytest.raises(QuantumGraphError, match="not in quantum graph"):
        read_quanta(path, [uuid.uuid4()])


def test_ids_with_trailing_zero_bytes(tmp_path: Path, small_graph: QuantumGraph) -> None:
    """numpy ``S16`` strips trailing NULs when it hands out elements; ids ending in zeros still work."""
    isr = small_graph.quanta["isr"]
    new_ids = [uuid.UUID(bytes=b"\x11" * 8 + b"\0" * 8), uuid.UUID(int=1 << 120)]
    new_ids += [uuid.uuid4() for _ in range(isr.num_rows - 2)]
    renamed = dict(zip(ids_to_numpy(isr.column("node_id")).tolist(), new_ids, strict=True))
    edge_nodes = [
        renamed[key].bytes if key in renamed else key.ljust(16, b"\0")
        for key in ids_to_numpy(small_graph.edges.column("node_id")).tolist()
    ]
    graph = QuantumGraph(
        metadata=small_graph.metadata,
        dataset_types=small_graph.dataset_types,
        task_dimensions=small_graph.task_dimensions,
        quanta={**small_graph.quanta, "isr": isr.set_column(0, "node_id", ids_to_array(new_ids))},
        datasets=small_graph.datasets,
        edges=small_graph.edges.set_column(0, "node_id", pa.array(edge_nodes, pa.binary(16))),
        init_edges=small_graph.init_edges,
        datastore_records=small_graph.datastore_records,
        pruned=small_graph.pruned,
    )
    path = tmp_path / "zeros.qg"
    write_quantum_graph(graph, path, block_size=2, page_size=2)
    assert_graphs_equal(graph, read_quantum_graph(path))
    assert_graphs_equal(graph.subgraph(new_ids[:2]), read_quanta(path, new_ids[:2]))


def test_blocks_group_quanta_by_task_and_data_id(small_file: Path, small_graph: QuantumGraph) -> None:
    with QgFileReader(small_file) as reader:
        blocks = reader.header["blocks"]
        quanta_blocks = [n for n, kind in enumerate(blocks["kind"]) if kind == "quanta"]
        assert [blocks["task"][n] for n in quanta_blocks[:5]] == ["isr"] * 5
        first = reader.sections(quanta_blocks[0])
        table = first["quanta/isr"].table()
        assert table.num_rows == 8
        assert table.column("detector").to_pylist() == [0, 0, 0, 0, 0, 0, 0, 1]
        # Self-contained: every edge's dataset row is in the block; raw inputs have their records.
        edge_ids = set(ids_to_numpy(first["edges"].table().column("dataset_id")).tolist())
        rows = {
            value
            for name, section in first.items()
            if name.startswith("datasets/")
            for value in ids_to_numpy(section.table().column("dataset_id")).tolist()
        }
        assert edge_ids == rows
        raw_ids = set(ids_to_numpy(first["datasets/raw"].table().column("dataset_id")).tolist())
        assert raw_ids <= set(ids_to_numpy(first["records"].table().column("dataset_id")).tolist())
    header = read_header(small_file)
    assert header.quantum_counts == {"isr": 35, "calibrate": 35, "gather": 7, "coadd": 4}
    assert header.counts["quanta"] == 81
    assert header.metadata == small_graph.metadata
    assert header.format_version == (1, 0)
    assert header.file_size == small_file.stat().st_size


# -- per-job reads ---------------------------------------------------------------------------------------


def test_read_quanta_matches_subgraph(small_file: Path, small_graph: QuantumGraph) -> None:
    wanted = [
        small_graph.node_ids("isr")[3],
        small_graph.node_ids("isr")[30],
        small_graph.node_ids("calibrate")[3],
        small_graph.node_ids("gather")[1],
        small_graph.node_ids("coadd")[0],
    ]
    part = read_quanta(small_file, wanted)
    assert_graphs_equal(small_graph.subgraph(wanted), part)
    assert sorted(part.topological_order()) == sorted(wanted)
    # Existing inputs carry their records; predicted ones have none.
    isr_inputs = part.inputs_of(wanted[0])
    records = part.records_of(r.id for r in isr_inputs)
    assert set(records) == {r.id for r in isr_inputs}
    assert records[isr_inputs[0].id][0].path.endswith(".fits")
    assert part.records_of(r.id for r in part.inputs_of(wanted[2])) == {}
    # Init refs of the tasks read, and packages.
    assert set(part.init_refs("gather")) == {"_config", "inputSchema"}
    assert part.packages_ref() == small_graph.packages_ref()
    assert part.pruned.num_rows == 0


def test_read_one_quantum(small_file: Path, small_graph: QuantumGraph) -> None:
    node = small_graph.node_ids("calibrate")[17]
    part = read_quanta(small_file, [node])
    assert part.quantum_count() == 1
    assert part.quantum(node) == small_graph.quantum(node)
    assert set(part.datasets) == {
        "postISRCCD",
        "calexp",
        "calibrate_metadata",
        "calibrate_log",
        "calibrate_config",
        "src_schema",
        "packages",
    }
    assert_graphs_equal(small_graph.subgraph([node]), part)


def test_read_quanta_unknown_node(small_file: Path, small_graph: QuantumGraph) -> None:
    known = small_graph.node_ids("isr")[0]
    for unknown in (uuid.UUID(int=0), uuid.UUID(int=2**128 - 1), uuid.uuid4()):
        with pytest.raises(QuantumGraphError, match=str(unknown)) as info:
            read_quanta(small_file, [known, unknown])
        assert not isinstance(info.value, QuantumGraphFileError)
        assert str(small_file) in str(info.value)


def test_dependency_order(small_file: Path, small_graph: QuantumGraph) -> None:
    order = read_dependency_order(small_file)
    assert sorted(order.tolist()) == sorted(small_graph.topological_order_array().tolist())
    position = {value: index for index, value in enumerate(order.tolist())}
    for node in small_graph.node_ids():
        for before in small_graph.predecessors(node):
            assert position[before.bytes.rstrip(b"\0")] < position[node.bytes.rstrip(b"\0")]
    # gather and coadd depend on calibrate only: they share the third level.
    first_gather = min(position[n.bytes.rstrip(b"\0")] for n in small_graph.node_ids("gather"))
    assert first_gather == 70


# -- errors ----------------------------------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    for read in (read_quantum_graph, read_header, read_dependency_order):
        with pytest.raises(QuantumGraphFileError, match=r"missing\.qg does not exist") as info:
            read(tmp_path / "missing.qg")
        assert info.value.exit_code == 3


def test_not_a_qg_file(tmp_path: Path) -> None:
    for content in (b"", b"tasks:\n  isr: x\n" * 20, b"\x89QGRAPX\n" + b"\0" * 200):
        path = tmp_path / "pipeline.yaml"
        path.write_bytes(content)
        with pytest.raises(QuantumGraphFileError, match="pipeline.yaml is not a quantum graph"):
            read_quantum_graph(path)


@pytest.mark.parametrize(
    "keep", [3, 8, 11, 12, 100, PREAMBLE_SIZE, PREAMBLE_SIZE + 10, "half", "header", "last"]
)
def test_truncated_file(small_file: Path, keep: int | str) -> None:
    data = small_file.read_bytes()
    with QgFileReader(small_file) as reader:
        header_offset = reader.preamble.header_offset
    size = {"half": len(data) // 2, "header": header_offset + 5, "last": len(data) - 1}.get(str(keep), keep)
    assert isinstance(size, int)
    small_file.write_bytes(data[:size])
    for read in (read_quantum_graph, read_header):
        with pytest.raises(QuantumGraphFileError, match=rf"small\.qg is truncated: {size} "):
            read(small_file)


def test_block_shorter_than_recorded(small_file: Path, small_graph: QuantumGraph) -> None:
    # A file whose size is right but whose block table promises more than a block holds.
    reader = QgFileReader(small_file)
    reader._lengths[3] = reader.file_size  # as if the header said so
    with pytest.raises(QuantumGraphFileError, match=r"truncated: block 3 \(quanta of task 'isr'\) has"):
        reader.block(3)
    reader.close()


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))


def test_corrupted_block(small_file: Path, small_graph: QuantumGraph) -> None:
    with QgFileReader(small_file) as reader:
        offset = reader.header["blocks"]["offset"][6] + 20
    _flip(small_file, offset)
    with pytest.raises(
        QuantumGraphFileError,
        match=r"small\.qg is corrupted: block 6 \(quanta of task 'calibrate'\) fails its checksum",
    ):
        read_quantum_graph(small_file)
    # The header is fine, and a job whose quanta live elsewhere still runs.
    assert read_header(small_file).counts["quanta"] == 81
    read_quanta(small_file, [small_graph.node_ids("isr")[0]])


def test_corrupted_header_and_preamble(small_file: Path) -> None:
    data = small_file.read_bytes()
    with QgFileReader(small_file) as reader:
        header_offset = reader.preamble.header_offset
    _flip(small_file, header_offset + 7)
    with pytest.raises(QuantumGraphFileError, match="the header fails its checksum"):
        read_header(small_file)
    for offset in (16, 50, 90):  # universe name, header offset, header digest
        small_file.write_bytes(data)
        _flip(small_file, offset)
        with pytest.raises(QuantumGraphFileError, match="the preamble fails its checksum"):
            read_quantum_graph(small_file)


def test_appended_data(small_file: Path) -> None:
    with small_file.open("ab") as stream:
        stream.write(b"junk")
    with pytest.raises(QuantumGraphFileError, match="corrupted: .* where the preamble records"):
        read_header(small_file)


def test_incompatible_format_version(small_file: Path) -> None:
    data = bytearray(small_file.read_bytes())
    data[8:10] = (2).to_bytes(2, "little")
    small_file.write_bytes(bytes(data))
    with pytest.raises(QuantumGraphFileError, match=r"format version 2\.0; this software reads version 1\.x"):
        read_quantum_graph(small_file)


def test_incompatible_universe(tmp_path: Path) -> None:
    graph = synthetic_graph(visits=2, detectors=2, universe_version=1)
    path = tmp_path / "old.qg"
    write_quantum_graph(graph, path)
    for read in (read_quantum_graph, read_header):
        with pytest.raises(
            QuantumGraphFileError,
            match="old.qg was built with dimension universe 'quanta' version 1; this software uses 'quanta' version 2",
        ):
            read(path)
    with pytest.raises(QuantumGraphFileError, match="version 1"):
        read_quanta(path, graph.node_ids("isr")[:1])
    header = read_header(path, check_universe=False)
    assert not header.universe_compatible and header.universe_version == 1


def test_graph_inconsistent_on_write(tmp_path: Path, small_graph: QuantumGraph) -> None:
    edges = small_graph.edges
    bad = edges.set_column(
        1, "dataset_id", ids_to_array(np.frombuffer(os.urandom(16 * edges.num_rows), "S16"))
    )
    graph = QuantumGraph(
        metadata=small_graph.metadata,
        dataset_types=small_graph.dataset_types,
        task_dimensions=small_graph.task_dimensions,
        quanta=small_graph.quanta,
        datasets=small_graph.datasets,
        edges=bad,
        init_edges=small_graph.init_edges,
    )
    with pytest.raises(QuantumGraphError, match="an edge to dataset .* which is not in it"):
        write_quantum_graph(graph, tmp_path / "bad.qg")
    assert list(tmp_path.iterdir()) == []


# -- atomic writes ---------------------------------------------------------------------------------------


def test_failed_write_leaves_nothing(
    tmp_path: Path, small_graph: QuantumGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = qgraph_blocks.encode_sections
    calls = []

    def failing(sections):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 4:
            raise OSError("disk full")
        return real(sections)

    monkeypatch.setattr(qgraph_blocks, "encode_sections", failing)
    with pytest.raises(OSError, match="disk full"):
        write_quantum_graph(small_graph, tmp_path / "graph.qg", block_size=8)
    assert list(tmp_path.iterdir()) == []
    # An existing file is left as it was.
    monkeypatch.setattr(qgraph_blocks, "encode_sections", real)
    write_quantum_graph(small_graph, tmp_path / "graph.qg")
    before = (tmp_path / "graph.qg").read_bytes()
    calls.clear()
    monkeypatch.setattr(qgraph_blocks, "encode_sections", failing)
    with pytest.raises(OSError, match="disk full"):
        write_quantum_graph(small_graph, tmp_path / "graph.qg", block_size=8)
    assert list(tmp_path.iterdir()) == [tmp_path / "graph.qg"]
    assert (tmp_path / "graph.qg").read_bytes() == before


def test_unwritable_directory(tmp_path: Path, small_graph: QuantumGraph) -> None:
    with pytest.raises(QuantumGraphFileError, match="Cannot write quantum graph file .*nowhere/graph.qg"):
        write_quantum_graph(small_graph, tmp_path / "nowhere" / "graph.qg")


def test_write_replaces_existing_file(tmp_path: Path, small_graph: QuantumGraph) -> None:
    path = tmp_path / "graph.qg"
    path.write_text("old")
    write_quantum_graph(small_graph, path)
    assert path.read_bytes().startswith(MAGIC)
    assert [p.name for p in tmp_path.iterdir()] == ["graph.qg"]


# -- scale -----------------------------------------------------------------------------------------------

_ONE_QUANTUM_SCRIPT = """
import sys, time, uuid
def peak_kb():  # VmHWM, not ru_maxrss: that survives exec and would report the parent's peak
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
start = time.perf_counter()
import graph.qgraph_io as io
imported = time.perf_counter()
before = peak_kb()
node = uuid.UUID(sys.argv[2])
part = io.read_quanta(sys.argv[1], [node])
elapsed = time.perf_counter() - imported
after = peak_kb()
light = not any(name in sys.modules for name in ("click", "pandas"))
assert part.quantum_count() == 1
print(elapsed * 1000, (imported - start) * 1000, before / 1024, after / 1024, light, "sqlalchemy" in sys.modules)
"""


def measure(tmp_path: Path, visits: int, detectors: int) -> dict[str, float]:
    """Write, read whole and read one quantum of a synthetic graph; print and return the figures."""
    graph = synthetic_graph(visits=visits, detectors=detectors, patches=visits // 2, inputs_per_patch=20)
    path = tmp_path / "big.qg"
    start = time.perf_counter()
    write_quantum_graph(graph, path)
    write_s = time.perf_counter() - start
    start = time.perf_counter()
    back = read_quantum_graph(path)
    read_s = time.perf_counter() - start
    assert back.quantum_count() == graph.quantum_count()
    node = graph.node_ids("calibrate")[len(graph.node_ids("calibrate")) // 2]
    start = time.perf_counter()
    for _ in range(10):
        read_quanta(path, [node])
    one_ms = (time.perf_counter() - start) * 100
    result = subprocess.run(
        [sys.executable, "-c", _ONE_QUANTUM_SCRIPT, str(path), str(node)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    cold_ms, import_ms, before_mb, after_mb, light, sqlalchemy = result.stdout.split()
    assert light == "True", "read_quanta imported click or pandas"
    figures = {
        "quanta": graph.quantum_count(),
        "file_mb": path.stat().st_size / 1e6,
        "write_s": write_s,
        "read_s": read_s,
        "one_quantum_ms": one_ms,
        "one_quantum_cold_ms": float(cold_ms),
        "one_quantum_extra_mb": float(after_mb) - float(before_mb),
    }
    print(
        f"\n.qg {figures['quanta']} quanta: file {figures['file_mb']:.1f} MB, write {write_s:.2f} s, "
        f"whole read {read_s:.2f} s, one quantum {one_ms:.1f} ms warm / {float(cold_ms):.1f} ms in a fresh "
        f"process (+{figures['one_quantum_extra_mb']:.1f} MB peak over {float(before_mb):.0f} MB after "
        f"imports taking {float(import_ms):.0f} ms; sqlalchemy imported: {sqlalchemy})"
    )
    return figures


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures memory through /proc")
def test_job_read_path_is_light(small_file: Path, small_graph: QuantumGraph) -> None:
    """A fresh process reading one quantum imports neither click nor pandas and needs little memory."""
    node = small_graph.node_ids("calibrate")[3]
    result = subprocess.run(
        [sys.executable, "-c", _ONE_QUANTUM_SCRIPT, str(small_file), str(node)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    )
    cold_ms, _, before_mb, after_mb, light, _ = result.stdout.split()
    assert light == "True", "read_quanta imported click or pandas"
    assert float(after_mb) - float(before_mb) < 20
    assert float(cold_ms) < 1000


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures memory through /proc")
def test_scale_10k(tmp_path: Path) -> None:
    figures = measure(tmp_path, visits=50, detectors=100)
    assert figures["one_quantum_ms"] < 100
    assert figures["one_quantum_extra_mb"] < 20


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="measures memory through /proc")
def test_scale_100k(tmp_path: Path) -> None:
    figures = measure(tmp_path, visits=500, detectors=100)
    assert figures["read_s"] < 5
    assert figures["one_quantum_ms"] < 100
    assert figures["one_quantum_extra_mb"] < 20


# -- what a job reads ----------------------------------------------------------------------------------


def test_read_quanta_reads_only_its_blocks(
    tmp_path: Path, small_graph: QuantumGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "graph.qg"
    write_quantum_graph(small_graph, path, block_size=4, page_size=8)
    read: list[int] = []
    real = QgFileReader.block

    def recording(self: QgFileReader, number: int) -> bytes:
        read.append(number)
        return real(self, number)

    monkeypatch.setattr(QgFileReader, "block", recording)
    node = small_graph.node_ids("calibrate")[9]
    read_quanta(path, [node])
    with QgFileReader(path) as reader:
        kinds = [reader.header["blocks"]["kind"][n] for n in read]
        tasks = [reader.header["blocks"]["task"][n] for n in read]
        assert reader.block_count > 20
    assert sorted(kinds) == ["global", "index", "quanta"]
    assert tasks[kinds.index("quanta")] == "calibrate"


def test_blocks_bounded_by_edges(tmp_path: Path) -> None:
    graph = synthetic_graph(visits=12, detectors=10, patches=2)  # gather quanta have 13 edges each
    path = tmp_path / "graph.qg"
    write_quantum_graph(graph, path, block_size=100, block_edges=30)
    with QgFileReader(path) as reader:
        blocks = reader.header["blocks"]
        gather = [n for n, task in enumerate(blocks["task"]) if task == "gather"]
        assert [blocks["quanta"][n] for n in gather] == [2] * 6
        for number in gather:
            assert reader.sections(number)["edges"].table().num_rows <= 30
    assert_graphs_equal(graph, read_quantum_graph(path))
    # A quantum with more edges than the limit still gets a block (of its own).
    write_quantum_graph(graph, path, block_size=100, block_edges=5)
    with QgFileReader(path) as reader:
        blocks = reader.header["blocks"]
        assert {blocks["quanta"][n] for n, kind in enumerate(blocks["kind"]) if kind == "quanta"} == {1}
    assert_graphs_equal(graph, read_quantum_graph(path))


def test_incomplete_header(small_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import graph.qgraph_format as qgraph_format

    real = QgFileReader._read_header

    def without_index(self: QgFileReader) -> dict[str, object]:
        header = real(self)
        del header["index"]
        return header

    monkeypatch.setattr(qgraph_format.QgFileReader, "_read_header", without_index)
    with pytest.raises(QuantumGraphFileError, match=r"small\.qg has an incomplete header: no index"):
        read_quanta(small_file, [uuid.uuid4()])
