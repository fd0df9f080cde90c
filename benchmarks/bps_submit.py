#!/usr/bin/env python
"""BPS submit-side benchmark: cluster, transform, save and load the generic workflow at scale.

For each target size N (quanta) the script makes (or reuses, with ``--graph-dir``) the synthetic
DRP-shaped graph of ``benchmarks/quantum_graph.py`` (its ``setup`` and ``build`` phases: isr,
calibrate, consolidateVisitSummary, assembleCoadd; 100 detectors per visit), then for each
clustering runs, in a fresh interpreter so its peak memory is its own:

``transform``  `read_quantum_graph` (read s, read MB = peak RSS after it), `cluster_quanta`
               (cluster s), `make_generic_workflow` (transform s), `GenericWorkflow.save`
               (save s, JSON MB) and the peak RSS of the process (peak MB);
``load``       `GenericWorkflow.load` (load s), iterating every job view (jobs s), peak RSS.

Clusterings: ``single`` (single_quantum, one job per quantum), ``visit-detector`` (isr + calibrate
of one visit and detector per job, equalDimensions visit:exposure) and ``visit`` (isr + calibrate
of a whole visit, split into jobs of at most 50 quanta with partitionMaxSize).

Benchmarks report figures; they never pass or fail.

Usage::

    python benchmarks/bps_submit.py [--sizes 10000,100000,1000000] [--quick] [--graph-dir DIR]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench
import quantum_graph as qgbench

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)

CLUSTERINGS: dict[str, str] = {
    "single": "clusterAlgorithm: single_quantum\n",
    "visit-detector": """clusterAlgorithm: dimensions
cluster:
  step1:
    pipetasks: isr, calibrate
    dimensions: visit, detector
    equalDimensions: visit:exposure
""",
    "visit": """clusterAlgorithm: dimensions
cluster:
  step1:
    pipetasks: isr, calibrate
    dimensions: visit
    equalDimensions: visit:exposure
    partitionMaxSize: 50
""",
}

SUBMIT_YAML = """pipelineYaml: {case}/pipeline.yaml
qgraphFile: {case}/graph.qg
submitPath: {case}/submit/{{outputRun}}
payload:
  payloadName: bench
  butlerConfig: {case}/repo
  inCollection: {raw_run}
  output: u/bench
  outputRun: u/bench/run
requestMemory: 2048
pipetask:
  assembleCoadd:
    requestMemory: 8000
environment:
  OMP_NUM_THREADS: "1"
"""


# -- phases (each in a fresh interpreter) -------------------------------------------------------------------


def run_transform(case_dir: Path, clustering: str) -> dict[str, Any]:
    """Read the graph, cluster, transform and save the workflow."""
    from bps.api import run_info
    from bps.clustering import cluster_quanta
    from bps.config import load_bps_config
    from bps.transform import make_generic_workflow
    from graph.qgraph_io import read_quantum_graph

    path = case_dir / f"submit-{clustering}.yaml"
    path.write_text(SUBMIT_YAML.format(case=case_dir, raw_run=qgbench.RAW_RUN) + CLUSTERINGS[clustering])
    config = load_bps_config(path)
    run = run_info(config)
    start = time.perf_counter()
    qgraph = read_quantum_graph(case_dir / "graph.qg")
    read_s = time.perf_counter() - start
    read_mb = bench.peak_mb()
    start, cpu = time.perf_counter(), time.process_time()
    clustered = cluster_quanta(qgraph, config)
    cluster_s = time.perf_counter() - start
    start = time.perf_counter()
    workflow = make_generic_workflow(clustered, config, run, case_dir / "graph.qg")
    transform_s = time.perf_counter() - start
    cpu_s = time.process_time() - cpu
    transform_mb = bench.peak_mb()
    out = case_dir / f"generic_workflow-{clustering}.json"
    start = time.perf_counter()
    workflow.save(out)
    save_s = time.perf_counter() - start
    return {
        "quanta": qgraph.quantum_count(),
        "jobs": len(workflow),
        "read_s": read_s,
        "read_mb": read_mb,
        "cluster_s": cluster_s,
        "transform_s": transform_s,
        "cpu_s": cpu_s,
        "transform_mb": transform_mb,
        "save_s": save_s,
        "json_mb": out.stat().st_size / 2**20,
        "peak_mb": bench.peak_mb(),
    }


def run_load(case_dir: Path, clustering: str) -> dict[str, Any]:
    """Load the saved workflow and build every job view once."""
    from bps.workflow import GenericWorkflow

    baseline = bench.peak_mb()
    start = time.perf_counter()
    workflow = GenericWorkflow.load(case_dir / f"generic_workflow-{clustering}.json")
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    count = sum(1 for _ in workflow.jobs())
    jobs_s = time.perf_counter() - start
    return {
        "load_s": load_s,
        "jobs_s": jobs_s,
        "load_mb": bench.peak_mb(),
        "load_baseline_mb": baseline,
        "viewed": count,
    }


PHASES = {"transform": run_transform, "load": run_load}


# -- driver -------------------------------------------------------------------------------------------------


def ensure_graph(target: int, case_dir: Path) -> str | None:
    """Make the synthetic repository and graph in ``case_dir`` unless ``graph.qg`` is there already."""
    if (case_dir / "graph.qg").exists():
        return None
    case_dir.mkdir(parents=True, exist_ok=True)
    for phase in ("setup", "build"):
        outcome = qgbench._run_phase(phase, target, case_dir)
        if isinstance(outcome, str):
            return outcome
    return None


def run_phase(phase: str, case_dir: Path, clustering: str) -> dict[str, Any] | str:
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--case-dir", str(case_dir)]
    command += ["--clustering", clustering]
    data, exit_code = bench.run_phase_process(command, case_dir)
    if data is not None:
        return data
    return f"{' '.join(command[2:4])} failed (exit code {exit_code}); see the messages above"


COLUMNS = (
    ("clustering", 14),
    ("quanta", 9),
    ("jobs", 9),
    ("read s", 6),
    ("read MB", 7),
    ("cluster s", 9),
    ("transform s", 11),
    ("(cpu)", 5),
    ("save s", 6),
    ("JSON MB", 7),
    ("peak MB", 7),
    ("load s", 6),
    ("jobs s", 6),
    ("load MB", 7),
)


def _row(cells: Sequence[str]) -> str:
    return "  ".join(
        f"{cell:<{width}}" if index == 0 else f"{cell:>{width}}"
        for index, (cell, (_, width)) in enumerate(zip(cells, COLUMNS, strict=True))
    )


def _cells(name: str, t: dict[str, Any], load: dict[str, Any]) -> list[str]:
    return [
        name,
        f"{t['quanta']:,}",
        f"{t['jobs']:,}",
        f"{t['read_s']:.2f}",
        f"{t['read_mb']:.0f}",
        f"{t['cluster_s']:.2f}",
        f"{t['transform_s']:.2f}",
        f"{t['cpu_s']:.1f}",
        f"{t['save_s']:.2f}",
        f"{t['json_mb']:.1f}",
        f"{t['peak_mb']:.0f}",
        f"{load.get('load_s', float('nan')):.2f}",
        f"{load.get('jobs_s', float('nan')):.2f}",
        f"{load.get('load_mb', float('nan')):.0f}",
    ]


def _print_header() -> None:
    bench.print_title("bps submit-side benchmark")
    print("graph: benchmarks/quantum_graph.py's synthetic DRP (isr, calibrate, visit summary, coadds)")
    print("read s / read MB   = read_quantum_graph / peak RSS after it (MiB): the starting point, not bps")
    print(
        "cluster s          = cluster_quanta; transform s = make_generic_workflow (init + payload + final jobs)"
    )
    print(
        "(cpu)              = CPU seconds of cluster + transform (steadier than wall time on a busy machine)"
    )
    print("save s / JSON MB   = GenericWorkflow.save / size of generic_workflow.json")
    print("peak MB            = peak RSS of the read+cluster+transform+save process")
    print("load s / jobs s    = GenericWorkflow.load / building every job view once (fresh process);")
    print("load MB            = peak RSS of that process")
    bench.print_table_head(COLUMNS, _row)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    bench.add_size_options(parser, "target quanta (default 10k,100k,1M)", QUICK_SIZES)
    parser.add_argument(
        "--graph-dir",
        type=Path,
        help="keep (and reuse) the graphs in DIR/qg-<N>/ instead of a temporary directory",
    )
    parser.add_argument(
        "--clusterings", default=",".join(CLUSTERINGS), help=f"subset of {', '.join(CLUSTERINGS)}"
    )
    parser.add_argument("--phase", choices=list(PHASES), help=argparse.SUPPRESS)
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--clustering", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.phase:
        outcome = PHASES[args.phase](args.case_dir, args.clustering)
        bench.print_result(outcome)
        return 0

    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    clusterings = [name.strip() for name in args.clusterings.split(",") if name.strip()]
    root = args.graph_dir or Path(tempfile.mkdtemp(prefix="quanta-bps-"))
    _print_header()
    try:
        for target in sizes:
            case_dir = root / f"qg-{target}"
            error = ensure_graph(target, case_dir)
            if error:
                print(f"ERROR: N={target:,}: {error}", flush=True)
                continue
            for name in clusterings:
                start = time.perf_counter()
                transform = run_phase("transform", case_dir, name)
                load = run_phase("load", case_dir, name) if not isinstance(transform, str) else {}
                bench.log(f"N={target:,} {name}: {time.perf_counter() - start:.1f} s")
                if isinstance(transform, str) or isinstance(load, str):
                    print(f"ERROR: N={target:,} {name}: {transform if isinstance(transform, str) else load}")
                    continue
                print(_row(_cells(name, transform, load)), flush=True)
                (case_dir / f"generic_workflow-{name}.json").unlink(missing_ok=True)
    finally:
        if args.graph_dir is None:
            shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
