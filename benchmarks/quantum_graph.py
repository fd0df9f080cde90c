#!/usr/bin/env python
"""Quantum-graph scale benchmark: build, write, read, merge and one batch job, on a synthetic DRP-shaped workload.

For each target size N (quanta) the script registers, in a fresh SQLite repository, a survey
shaped like Rubin's DRP step 1 + coadds, with trivial tasks:

* ``isr`` (instrument, exposure, detector): ``raw`` -> ``postISRCCD``;
* ``calibrate`` (instrument, visit, detector): ``postISRCCD`` -> ``calexp``;
* ``consolidateVisitSummary`` (instrument, visit): every ``calexp`` of the visit -> ``visitSummary``;
* ``assembleCoadd`` (skymap, tract, patch, band): every ``calexp`` overlapping the patch -> ``deepCoadd``.

100 detectors in a 10 x 10 grid of 0.1 degree boxes per visit; visits (one exposure each) on a
0.5 degree grid, so each point of the sky is seen by about four visits; patches are 0.2 degree
boxes. Dimension records go in with bulk inserts and the raws are registered with datastore
records but no files (building a graph never reads them).

Each phase runs in a fresh interpreter (the script re-invokes itself with ``--phase``) so each
process's peak memory is its own:

``setup``  create the repository, insert dimension records, register the raws (not in the table);
``build``  `QuantumGraphBuilder` (build s, peak MB) then `write_quantum_graph` (write s, file MB);
``read``   `read_quantum_graph` of the whole file (s), then `read_quanta` of single quanta (ms);
``merge``  ``pre-exec-init-qbb`` equivalent, tiny files at every predicted output's path (up to
           ``--merge-files`` quanta; beyond, the first quanta in dependency order only), then
           `graph.transfer.transfer_from_graph` (merge s; every predicted output is looked for);
``qbb``    (largest size only) ``pipetask run-qbb`` of one isr quantum as a subprocess: wall
           seconds and the child's peak MB (``resource.getrusage(RUSAGE_CHILDREN)``).

Benchmarks report figures; they never pass or fail.

Usage::

    python benchmarks/quantum_graph.py [--sizes 10000,100000,1000000] [--quick] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common as bench

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
TASK_MODULE = "bench_drp_tasks"

INSTRUMENT = "BenchCam"
BAND = "r"
PHYSICAL_FILTER = "BenchCam-r"
SKYMAP = "bench"
N_DETECTORS = 100
DETECTOR_GRID = 10
DETECTOR_DEG = 0.1
VISIT_SPACING_DEG = 0.5
PATCH_DEG = 0.2
FIRST_VISIT = 2025_0101_00000
EXPOSURES_PER_NIGHT = 500
RAW_RUN = "BenchCam/raw/all"
OUTPUT_RUN = "u/bench/run"
OUTPUT = "u/bench"
QUANTA_PER_VISIT = 2 * N_DETECTORS + 1 + 7
"""isr + calibrate per detector, one visit summary, and about 7 patches per visit (on average)."""
DEFAULT_MERGE_FILES = 200_000
"""Quanta whose outputs get files before the merge (files cost time and inodes)."""
SINGLE_READS = 20

TASKS_SOURCE = '''
"""Trivial DRP-shaped tasks of benchmarks/quantum_graph.py (written by it into the case directory)."""

from graph.config import PipelineTaskConfig
from graph.connections import Input, Output, PipelineTaskConnections
from graph.task import PipelineTask, Struct

EXPOSURE = ("instrument", "exposure", "detector")
VISIT_DETECTOR = ("instrument", "visit", "detector")


class IsrConnections(PipelineTaskConnections, dimensions=EXPOSURE):
    raw = Input(name="raw", storage_class="NumpyArray", dimensions=EXPOSURE, doc="Raw pixels.")
    post_isr = Output(name="postISRCCD", storage_class="NumpyArray", dimensions=EXPOSURE, doc="Same.")


class IsrConfig(PipelineTaskConfig, connections=IsrConnections):
    pass


class IsrTask(PipelineTask):
    ConfigClass = IsrConfig
    _DefaultName = "isr"

    def run(self, raw):
        return Struct(post_isr=raw)


class CalibrateConnections(PipelineTaskConnections, dimensions=VISIT_DETECTOR):
    post_isr = Input(
        name="postISRCCD", storage_class="NumpyArray", dimensions=EXPOSURE, multiple=True,
        doc="The exposure(s) of the visit.",
    )
    calexp = Output(name="calexp", storage_class="NumpyArray", dimensions=VISIT_DETECTOR, doc="Out.")


class CalibrateConfig(PipelineTaskConfig, connections=CalibrateConnections):
    pass


class CalibrateTask(PipelineTask):
    ConfigClass = CalibrateConfig
    _DefaultName = "calibrate"

    def run(self, post_isr):
        return Struct(calexp=post_isr[0])


class GatherConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    calexps = Input(
        name="calexp", storage_class="NumpyArray", dimensions=VISIT_DETECTOR, multiple=True,
        defer_load=True, doc="Every detector of the visit.",
    )
    summary = Output(
        name="visitSummary", storage_class="StructuredDataDict", dimensions=("instrument", "visit"), doc="Out."
    )


class GatherConfig(PipelineTaskConfig, connections=GatherConnections):
    pass


class GatherTask(PipelineTask):
    ConfigClass = GatherConfig
    _DefaultName = "consolidateVisitSummary"

    def run(self, calexps):
        return Struct(summary={"detectors": len(calexps)})


PATCH_BAND = ("skymap", "tract", "patch", "band")


class CoaddConnections(PipelineTaskConnections, dimensions=PATCH_BAND):
    calexps = Input(
        name="calexp", storage_class="NumpyArray", dimensions=VISIT_DETECTOR, multiple=True,
        defer_load=True, doc="Every calexp overlapping the patch.",
    )
    coadd = Output(name="deepCoadd", storage_class="NumpyArray", dimensions=PATCH_BAND, doc="Out.")


class CoaddConfig(PipelineTaskConfig, connections=CoaddConnections):
    pass


class CoaddTask(PipelineTask):
    ConfigClass = CoaddConfig
    _DefaultName = "assembleCoadd"

    def run(self, calexps):
        return Struct(coadd=None)
'''

PIPELINE_YAML = f"""
description: Synthetic DRP-shaped pipeline of benchmarks/quantum_graph.py.
tasks:
  isr:
    class: {TASK_MODULE}.IsrTask
  calibrate:
    class: {TASK_MODULE}.CalibrateTask
  consolidateVisitSummary:
    class: {TASK_MODULE}.GatherTask
  assembleCoadd:
    class: {TASK_MODULE}.CoaddTask
"""


@dataclass
class CaseResult:
    """Figures of one size (filled by the phases)."""

    target: int
    visits: int = 0
    quanta: int = 0
    setup_s: float = 0.0
    build_s: float = 0.0
    build_peak_mb: float = 0.0
    write_s: float = 0.0
    file_mb: float = 0.0
    read_s: float = 0.0
    read_peak_mb: float = 0.0
    single_read_ms: float = 0.0
    single_first_ms: float = 0.0
    single_peak_mb: float = 0.0
    files_s: float = 0.0
    files_written: int = 0
    merge_s: float = 0.0
    merge_peak_mb: float = 0.0
    registered: int = 0
    missing: int = 0
    remerge_s: float = 0.0
    report_s: float = 0.0
    succeeded: int = 0
    derived_ms: float = 0.0
    derived: int = 0
    qbb_s: float | None = None
    qbb_mb: float | None = None
    qbb_exit: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)


# -- the workload -------------------------------------------------------------------------------------


def visits_for(target: int) -> int:
    """Visits giving about ``target`` quanta."""
    return max(1, round(target / QUANTA_PER_VISIT))


def _grid(visits: int) -> int:
    return math.ceil(math.sqrt(visits))


def _visit_center(index: int, side: int) -> tuple[float, float]:
    row, column = divmod(index, side)
    half = (side - 1) * VISIT_SPACING_DEG / 2
    return 10.0 + column * VISIT_SPACING_DEG, row * VISIT_SPACING_DEG - half


def _box(ra: float, dec: float, size: float) -> dict[str, list[float]]:
    return {"box": [ra - size / 2, ra + size / 2, dec - size / 2, dec + size / 2]}


def run_setup(case_dir: Path, target: int) -> dict[str, Any]:
    """Create the repository with the survey's dimension records and raws."""
    import datetime

    import numpy as np

    from butler.butler import Butler
    from butler.data_coordinate import DataCoordinate
    from butler.datasets import DatasetType
    from butler.repository import create_repository
    from butler.timespan import Timespan

    start = time.perf_counter()
    repo = case_dir / "repo"
    create_repository(repo)
    visits = visits_for(target)
    side = _grid(visits)
    with Butler(repo) as butler:
        registry = butler.registry
        registry.insert_dimension_records(
            "instrument",
            [
                {
                    "name": INSTRUMENT,
                    "class_name": "bench.BenchCam",
                    "detector_max": N_DETECTORS,
                    "visit_max": 10**13,
                    "exposure_max": 10**13,
                }
            ],
        )
        registry.insert_dimension_records("band", [{"name": BAND}])
        registry.insert_dimension_records(
            "physical_filter", [{"instrument": INSTRUMENT, "name": PHYSICAL_FILTER, "band": BAND}]
        )
        registry.insert_dimension_records(
            "detector",
            [
                {"instrument": INSTRUMENT, "id": d, "full_name": f"D{d:03d}", "purpose": "SCIENCE"}
                for d in range(N_DETECTORS)
            ],
        )
        # The sky map first: visit-detector regions are matched against patches as they go in.
        lo_ra, lo_dec = _visit_center(0, side)
        hi_ra, hi_dec = _visit_center(side * side - 1, side)
        margin = 0.5 + PATCH_DEG
        nx = math.ceil((hi_ra - lo_ra + 2 * margin) / PATCH_DEG)
        ny = math.ceil((hi_dec - lo_dec + 2 * margin) / PATCH_DEG)
        ra0, dec0 = lo_ra - margin, lo_dec - margin
        registry.insert_dimension_records(
            "skymap",
            [{"name": SKYMAP, "hash": "0" * 16, "tract_max": 1, "patch_nx_max": nx, "patch_ny_max": ny}],
        )
        registry.insert_dimension_records(
            "tract",
            [
                {
                    "skymap": SKYMAP,
                    "id": 0,
                    "region": {"box": [ra0, ra0 + nx * PATCH_DEG, dec0, dec0 + ny * PATCH_DEG]},
                }
            ],
        )
        registry.insert_dimension_records(
            "patch",
            [
                {
                    "skymap": SKYMAP,
                    "tract": 0,
                    "id": y * nx + x,
                    "cell_x": x,
                    "cell_y": y,
                    "region": {
                        "box": [
                            ra0 + x * PATCH_DEG,
                            ra0 + (x + 1) * PATCH_DEG,
                            dec0 + y * PATCH_DEG,
                            dec0 + (y + 1) * PATCH_DEG,
                        ]
                    },
                }
                for y in range(ny)
                for x in range(nx)
            ],
        )
        nights = sorted({_night(i) for i in range(visits)})
        registry.insert_dimension_records(
            "day_obs",
            [
                {
                    "instrument": INSTRUMENT,
                    "id": night,
                    "timespan": Timespan.from_datetimes(
                        datetime.datetime.strptime(str(night), "%Y%m%d"),
                        datetime.datetime.strptime(str(night), "%Y%m%d") + datetime.timedelta(days=1),
                    ),
                }
                for night in nights
            ],
        )
        start_ns = 1_735_689_600 * 10**9
        exposures, visit_rows, definitions, detector_regions = [], [], [], []
        for i in range(visits):
            begin_ns = (
                start_ns
                + (i // EXPOSURES_PER_NIGHT) * 86_400 * 10**9
                + (i % EXPOSURES_PER_NIGHT) * 60 * 10**9
            )
            common = {
                "instrument": INSTRUMENT,
                "id": FIRST_VISIT + i,
                "physical_filter": PHYSICAL_FILTER,
                "day_obs": _night(i),
                "timespan": Timespan(begin_ns, begin_ns + 30 * 10**9),
                "exposure_time": 30.0,
                "science_program": "bench",
                "zenith_angle": 30.0,
            }
            exposures.append({**common, "obs_id": f"BC_{FIRST_VISIT + i}", "observation_type": "science"})
            ra, dec = _visit_center(i, side)
            visit_rows.append(
                {**common, "name": f"v{i}", "region": _box(ra, dec, DETECTOR_GRID * DETECTOR_DEG)}
            )
            definitions.append(
                {"instrument": INSTRUMENT, "exposure": FIRST_VISIT + i, "visit": FIRST_VISIT + i}
            )
            for d in range(N_DETECTORS):
                row, column = divmod(d, DETECTOR_GRID)
                d_ra = ra + (column - (DETECTOR_GRID - 1) / 2) * DETECTOR_DEG
                d_dec = dec + (row - (DETECTOR_GRID - 1) / 2) * DETECTOR_DEG
                detector_regions.append(
                    {
                        "instrument": INSTRUMENT,
                        "visit": FIRST_VISIT + i,
                        "detector": d,
                        "region": _box(d_ra, d_dec, DETECTOR_DEG),
                    }
                )
        registry.insert_dimension_records("exposure", exposures)
        registry.insert_dimension_records("visit", visit_rows)
        registry.insert_dimension_records("visit_definition", definitions)
        records_s = time.perf_counter()
        registry.insert_dimension_records("visit_detector_region", detector_regions)
        bench.log(
            f"N={target:,}: {len(detector_regions):,} detector regions in {time.perf_counter() - records_s:.1f} s"
        )
        # Raws: registered with datastore records, no files (the build never reads them).
        raw = DatasetType(
            "raw", ["instrument", "exposure", "detector"], "NumpyArray", universe=registry.universe
        )
        registry.register_dataset_type(raw)
        registry.register_run(RAW_RUN)
        group = raw.dimensions
        data_ids = []
        for i in range(visits):
            for d in range(N_DETECTORS):
                values = {"instrument": INSTRUMENT, "exposure": FIRST_VISIT + i, "detector": d}
                data_ids.append(
                    DataCoordinate.from_required_values(group, tuple(values[k] for k in group.required))
                )
        refs = registry.insert_datasets(raw, data_ids, RAW_RUN)
        datastore = butler.file_datastore
        formatter = datastore.formatter_for("raw", butler.storage_classes["NumpyArray"]).name()
        registry.insert_datastore_records(
            {
                "dataset_id": ref.id,
                "datastore_name": datastore.name,
                "component": "",
                "path": f"raw/{ref.data_id['exposure']}/raw_{ref.data_id['exposure']}_{ref.data_id['detector']}.npy",
                "formatter": formatter,
                "storage_class": "NumpyArray",
                "file_size": 128,
            }
            for ref in refs
        )
        # One raw gets a real file: the batch-job measurement runs its isr quantum.
        first = min(refs, key=lambda r: (r.data_id["exposure"], r.data_id["detector"]))
        path = (
            repo
            / f"raw/{first.data_id['exposure']}/raw_{first.data_id['exposure']}_{first.data_id['detector']}.npy"
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, np.arange(16.0))
    (case_dir / f"{TASK_MODULE}.py").write_text(textwrap.dedent(TASKS_SOURCE))
    (case_dir / "pipeline.yaml").write_text(PIPELINE_YAML)
    return {"setup_s": time.perf_counter() - start, "visits": visits, "raws": len(refs)}


def _night(i: int) -> int:
    import datetime

    day = datetime.date(2025, 1, 1) + datetime.timedelta(days=i // EXPOSURES_PER_NIGHT)
    return int(day.strftime("%Y%m%d"))


# -- phases -----------------------------------------------------------------------------------------------


def run_build(case_dir: Path) -> dict[str, Any]:
    """Build the graph (timed, peak memory of this process) and write it."""
    from butler.butler import Butler
    from graph.builder import QuantumGraphBuilder
    from graph.pipeline import Pipeline
    from graph.pipeline_graph import PipelineGraph
    from graph.qgraph_io import write_quantum_graph

    sys.path.insert(0, str(case_dir))
    pipeline = Pipeline.from_yaml(str(case_dir / "pipeline.yaml"))
    pipeline.write_yaml(case_dir / "expanded.yaml")
    pipeline_graph = PipelineGraph.from_pipeline(pipeline)
    baseline = bench.peak_mb()
    with Butler(case_dir / "repo") as butler:
        start = time.perf_counter()
        builder = QuantumGraphBuilder(
            pipeline_graph,
            butler,
            input_collections=[RAW_RUN],
            output_run=OUTPUT_RUN,
            where=f"instrument = '{INSTRUMENT}' AND skymap = '{SKYMAP}'",
            bind={},
            output=OUTPUT,
            pipeline_yaml=(case_dir / "expanded.yaml").read_text(),
        )
        graph = builder.build()
        build_s = time.perf_counter() - start
    build_peak = bench.peak_mb()
    path = case_dir / "graph.qg"
    start = time.perf_counter()
    write_quantum_graph(graph, path)
    write_s = time.perf_counter() - start
    return {
        "build_s": build_s,
        "build_peak_mb": build_peak,
        "baseline_mb": baseline,
        "write_s": write_s,
        "file_mb": path.stat().st_size / 2**20,
        "quanta": graph.quantum_count(),
        "counts": {label: graph.quantum_count(label) for label in graph.task_labels()},
    }


def run_read(case_dir: Path) -> dict[str, Any]:
    """Read the whole file, then single quanta (in another fresh process: ``--phase single``)."""
    import uuid

    import pyarrow.compute as pc

    from graph.qgraph_io import read_quantum_graph

    path = case_dir / "graph.qg"
    start = time.perf_counter()
    graph = read_quantum_graph(path)
    read_s = time.perf_counter() - start
    order = graph.topological_order_array()
    step = max(1, len(order) // SINGLE_READS)
    sample = [order[i] for i in range(0, len(order), step)][:SINGLE_READS]
    (case_dir / "sample.json").write_text(json.dumps([bytes(v).ljust(16, b"\0").hex() for v in sample]))
    # The batch-job measurement runs the isr quantum of the raw that has a file.
    table = graph.quanta["isr"]
    first = table.filter(
        pc.and_(pc.equal(table.column("exposure"), FIRST_VISIT), pc.equal(table.column("detector"), 0))
    )
    (case_dir / "qbb_node.txt").write_text(str(uuid.UUID(bytes=first.column("node_id")[0].as_py())))
    return {"read_s": read_s, "read_peak_mb": bench.peak_mb()}


def run_single(case_dir: Path) -> dict[str, Any]:
    """`read_quanta` of one quantum at a time: the first call, then the median of the others."""
    import statistics
    import uuid

    from graph.qgraph_io import read_quanta

    path = case_dir / "graph.qg"
    ids = [uuid.UUID(hex=text) for text in json.loads((case_dir / "sample.json").read_text())]
    times = []
    for node_id in ids:
        start = time.perf_counter()
        subgraph = read_quanta(path, [node_id])
        times.append((time.perf_counter() - start) * 1000)
        assert subgraph.quantum_count() == 1
    return {
        "single_first_ms": times[0],
        "single_read_ms": statistics.median(times[1:] or times),
        "single_peak_mb": bench.peak_mb(),
    }


def run_merge(case_dir: Path, max_files: int) -> dict[str, Any]:
    """Init outputs, tiny files at the predicted paths of (up to ``max_files``) quanta's outputs, the merge."""
    import numpy as np

    from butler.butler import Butler
    from graph.provenance import derived_table
    from graph.qgraph_io import read_quantum_graph
    from graph.quantum_graph import EdgeKind, ids_to_numpy
    from graph.report import ReportSource, report_run
    from graph.transfer import transfer_from_graph

    graph = read_quantum_graph(case_dir / "graph.qg")
    with Butler(case_dir / "repo") as butler:
        datastore = butler.file_datastore
        start = time.perf_counter()
        order = graph.topological_order_array()
        chosen = np.sort(order[:max_files])
        edges = graph.edges
        kinds = edges.column("kind").to_numpy(zero_copy_only=False)
        writes = np.isin(kinds, [int(EdgeKind.OUTPUT), int(EdgeKind.METADATA), int(EdgeKind.LOG)])
        nodes = ids_to_numpy(edges.column("node_id"))
        position = np.minimum(np.searchsorted(chosen, nodes), len(chosen) - 1)
        selected = writes & (chosen[position] == nodes)
        wanted = np.unique(ids_to_numpy(edges.column("dataset_id"))[selected])
        init_ids = ids_to_numpy(graph.init_edges.column("dataset_id"))
        wanted = np.union1d(wanted, init_ids)
        wanted_ids = {bytes(value).ljust(16, b"\0") for value in wanted}
        written = 0
        made: set[Path] = set()
        for ref in graph.all_output_refs():
            if ref.id.bytes not in wanted_ids:
                continue
            for record in datastore.predict_records(
                ref, butler.storage_classes[ref.dataset_type.storage_class_name]
            ):
                file_path = Path(datastore.root.ospath) / record.path
                if file_path.parent not in made:
                    file_path.parent.mkdir(parents=True, exist_ok=True)
                    made.add(file_path.parent)
                file_path.write_bytes(b"x")
                written += 1
        files_s = time.perf_counter() - start
        baseline = bench.peak_mb()
        start = time.perf_counter()
        report = transfer_from_graph(butler, graph, register_dataset_types=True, update_chain=False)
        merge_s = time.perf_counter() - start
        merge_peak = bench.peak_mb()
        start = time.perf_counter()
        again = transfer_from_graph(butler, graph)
        remerge_s = time.perf_counter() - start
        start = time.perf_counter()
        states = report_run(butler, graph, source=ReportSource.REGISTRY)
        report_s = time.perf_counter() - start
        raw = graph.inputs_of(graph.node_ids("isr")[0])[0]
        start = time.perf_counter()
        derived = derived_table(graph, [raw.id])
        derived_ms = (time.perf_counter() - start) * 1000
    errors = []
    if again.total.registered:
        errors.append(f"the second merge registered {again.total.registered} datasets")
    return {
        "files_s": files_s,
        "files_written": written,
        "merge_s": merge_s,
        "merge_peak_mb": merge_peak,
        "merge_baseline_mb": baseline,
        "registered": report.total.registered,
        "missing": report.total.missing,
        "remerge_s": remerge_s,
        "report_s": report_s,
        "succeeded": sum(t.succeeded for t in states.tasks),
        "derived_ms": derived_ms,
        "derived": derived.num_rows,
        "errors": errors,
    }


def run_qbb_job(case_dir: Path) -> dict[str, Any]:
    """``pipetask run-qbb`` of one isr quantum as a child process; its wall time and peak MB.

    This process imports nothing of quanta: a child forked from a big process would count the
    parent's pages in its own peak RSS before it execs.
    """
    node_id = (case_dir / "qbb_node.txt").read_text().strip()
    # What the ``pipetask`` console script runs (graph.cli.entry dispatches run-qbb to argparse).
    shim = "import sys; from graph.cli.entry import main; sys.argv[0] = 'pipetask'; main()"
    command = [
        sys.executable,
        "-c",
        shim,
        "run-qbb",
        str(case_dir / "repo"),
        str(case_dir / "graph.qg"),
        "--qgraph-node-id",
        node_id,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(case_dir), os.environ.get("PYTHONPATH", "")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False, cwd=case_dir)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    errors = (
        []
        if completed.returncode == 0
        else [f"run-qbb exited {completed.returncode}: {completed.stderr[-500:]}"]
    )
    if before:
        errors.append("RUSAGE_CHILDREN already had a child; the peak may be another process's")
    return {"qbb_s": wall, "qbb_mb": peak / 1024, "qbb_exit": completed.returncode, "errors": errors}


PHASES = {
    "build": run_build,
    "read": run_read,
    "single": run_single,
    "qbb": run_qbb_job,
}


# -- driver -------------------------------------------------------------------------------------------------


def _run_phase(phase: str, target: int, case_dir: Path, extra: Sequence[str] = ()) -> dict[str, Any] | str:
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        phase,
        "--target",
        str(target),
        "--case-dir",
        str(case_dir),
        *extra,
    ]
    start = time.perf_counter()
    data, exit_code = bench.run_phase_process(command, case_dir)
    bench.log(f"N={target:,}: {phase} phase took {time.perf_counter() - start:.1f} s (exit {exit_code})")
    if data is not None:
        return data
    return f"{phase} phase failed (exit code {exit_code}); see the messages above"


def run_case(target: int, workdir: Path | None, max_files: int, with_qbb: bool, keep: bool) -> CaseResult:
    case_dir = Path(tempfile.mkdtemp(prefix=f"quanta-qg-{target}-", dir=workdir))
    result = CaseResult(target)
    try:
        for phase in ("setup", "build", "read", "single", "merge", *(["qbb"] if with_qbb else [])):
            extra = ["--merge-files", str(max_files)] if phase == "merge" else []
            outcome = _run_phase(phase, target, case_dir, extra)
            if isinstance(outcome, str):
                result.errors.append(outcome)
                if phase in ("setup", "build"):
                    break
                continue
            result.errors.extend(outcome.pop("errors", []))
            for key, value in outcome.items():
                if hasattr(result, key):
                    setattr(result, key, value)
    finally:
        if keep:
            bench.log(f"N={target:,}: kept {case_dir}")
        else:
            shutil.rmtree(case_dir, ignore_errors=True)
    return result


COLUMNS = (
    ("quanta", 9),
    ("build s", 7),
    ("peak MB", 7),
    ("file MB", 7),
    ("write s", 7),
    ("read s", 6),
    ("read MB", 7),
    ("1-q ms", 6),
    ("merge s", 7),
    ("merged", 9),
    ("re-merge s", 10),
    ("merge MB", 8),
)


def _cells(r: CaseResult) -> list[str]:
    return [
        f"{r.quanta:,}",
        f"{r.build_s:.1f}",
        f"{r.build_peak_mb:.0f}",
        f"{r.file_mb:.1f}",
        f"{r.write_s:.2f}",
        f"{r.read_s:.2f}",
        f"{r.read_peak_mb:.0f}",
        f"{r.single_read_ms:.1f}",
        f"{r.merge_s:.1f}",
        f"{r.registered:,}",
        f"{r.remerge_s:.1f}",
        f"{r.merge_peak_mb:.0f}",
    ]


def _row(cells: Sequence[str]) -> str:
    return "  ".join(f"{cell:>{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True))


def _print_header(max_files: int) -> None:
    bench.print_title("quantum-graph benchmark")
    print(
        "shape: isr (exposure, detector) -> calibrate (visit, detector) -> consolidateVisitSummary (visit),"
    )
    print(
        f"       assembleCoadd (patch, band) over the overlapping calexps; {N_DETECTORS} detectors per visit"
    )
    print(
        "build s / peak MB = QuantumGraphBuilder.build() wall seconds / peak RSS of the build process (MiB)"
    )
    print("file MB / write s = size of the .qg file / write_quantum_graph seconds")
    print("read s / read MB  = read_quantum_graph of the whole file / peak RSS of that process")
    print(
        "1-q ms           = read_quanta of one quantum (median of the calls after the first, fresh process)"
    )
    print(
        f"merge s / merged = transfer_from_graph (files exist for at most {max_files:,} quanta, the first in"
    )
    print("                   dependency order; every predicted output is looked for) / datasets registered")
    print(
        "re-merge s       = the same merge again (registers nothing); merge MB = peak RSS of the merge process"
    )
    bench.print_table_head(COLUMNS, _row)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    bench.add_size_options(parser, "target quanta counts (default 10k,100k,1M)", QUICK_SIZES)
    parser.add_argument(
        "--workdir", type=Path, help="directory for the case repositories (default: temporary)"
    )
    parser.add_argument(
        "--merge-files",
        type=int,
        default=DEFAULT_MERGE_FILES,
        help=f"write output files for at most this many quanta before the merge (default {DEFAULT_MERGE_FILES:,})",
    )
    parser.add_argument("--no-qbb", action="store_true", help="skip the run-qbb measurement")
    parser.add_argument(
        "--keep", action="store_true", help="keep the case directories (their paths are logged)"
    )
    parser.add_argument("--phase", choices=["setup", "merge", *PHASES], help=argparse.SUPPRESS)
    parser.add_argument("--target", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:
        if args.phase == "setup":
            outcome = run_setup(args.case_dir, args.target)
        elif args.phase == "merge":
            outcome = run_merge(args.case_dir, args.merge_files)
        else:
            outcome = PHASES[args.phase](args.case_dir)
        bench.print_result(outcome)
        return 0

    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    _print_header(args.merge_files)
    results = []
    for target in sizes:
        result = run_case(
            target, args.workdir, args.merge_files, not args.no_qbb and target == max(sizes), args.keep
        )
        results.append(result)
        print(_row(_cells(result)), flush=True)
        for error in result.errors:
            print(f"ERROR: N={target:,}: {error}", flush=True)
    print()
    for r in results:
        counts = ", ".join(f"{label} {count:,}" for label, count in r.counts.items())
        print(
            f"N={r.target:,}: {r.visits:,} visits; {counts}; setup {r.setup_s:.1f} s; read_quanta first call "
            f"{r.single_first_ms:.1f} ms, process peak {r.single_peak_mb:.0f} MB; {r.files_written:,} output files "
            f"written in {r.files_s:.1f} s; {r.missing:,} predicted outputs without a file"
        )
        print(
            f"  pipetask report (registry) {r.report_s:.1f} s ({r.succeeded:,} quanta succeeded); datasets "
            f"derived from one raw: {r.derived} in {r.derived_ms:.0f} ms"
        )
        if r.qbb_s is not None:
            print(
                f"  pipetask run-qbb of one isr quantum from this graph: {r.qbb_s:.2f} s wall, "
                f"{r.qbb_mb:.0f} MB peak (exit code {r.qbb_exit})"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
