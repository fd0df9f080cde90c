"""The demo pipeline executed the two ways production does: ``pipetask run`` and per-job ``run-qbb`` + merge.

One DemoCam repository is built with the butler commands a user types (as in
test_democam_tasks.py) and copied before anything runs, so every scenario starts from the same
registry: ``pipetask qgraph`` then ``pipetask run -j 2``; the same graph quantum by quantum with
``pipetask run-qbb`` then ``butler transfer-from-graph`` (identical registry contents); a task
that raises (keep-going, blocked downstream, exit 1); a missing raw file (exit 3, named).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner, Result
from democam_repository import EXAMPLES, build_democam_repository

from butler.butler import Butler
from butler.image import Image
from graph.cli.pipetask import main as pipetask_main
from graph.cli.qgraph import qgraph
from graph.cli.run import run
from graph.cli.run_qbb import main as qbb_main
from graph.qgraph_io import read_dependency_order, read_quantum_graph
from graph.quantum_graph import uuid_from_bytes
from graph.transfer import transfer_from_graph

REPO_ROOT = Path(__file__).parents[2]
INPUTS = "DemoCam/defaults"
OUTPUT = "u/demo"
RUN = "u/demo/run1"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _commands() -> Iterator[None]:
    """``qgraph`` and ``run`` in the pipetask group (graph/cli/pipetask.py registers them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(pipetask_main.commands, "qgraph", qgraph)
        patch.setitem(pipetask_main.commands, "run", run)
        yield


def pipetask(*args: str) -> Result:
    return CliRunner().invoke(pipetask_main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A DemoCam repository (never run into) and the data query of one patch in the g band."""
    repo = build_democam_repository(tmp_path_factory.mktemp("democam-execution"))
    with Butler(repo) as butler:
        registry = butler.registry
        visit = min(r.id for r in registry.query_dimension_records("visit", where="band = 'g'"))
        patches = registry.query_data_ids(
            ["visit", "patch"], where=f"visit = {visit} AND skymap = 'demo-rings'"
        )
        patch = sorted(patches, key=lambda d: d["patch"])[len(patches) // 2]
    where = f"band = 'g' AND skymap = 'demo-rings' AND tract = {patch['tract']} AND patch = {patch['patch']}"
    return repo, where


def _copy(pristine: tuple[Path, str], tmp_path: Path, name: str) -> Path:
    copy = tmp_path / name
    shutil.copytree(pristine[0], copy)
    return copy


def _build(repo: Path, where: str, path: Path, *overrides: str) -> Result:
    result = pipetask(
        "qgraph", "-b", str(repo), "-p", str(EXAMPLES / "demo_pipeline.yaml"), *overrides,
        "-i", INPUTS, "-o", OUTPUT, "--output-run", RUN, "-d", where, "--save-qgraph", str(path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def _summary(result: Result) -> dict[str, dict[str, int]]:
    """The per-task table of ``pipetask run``: label -> column -> count."""
    lines = result.stdout.splitlines()
    header = lines[0].replace("no work", "no_work").replace("not run", "not_run").split()[1:]
    table: dict[str, dict[str, int]] = {}
    for line in lines[1:]:
        cells = line.split()
        if len(cells) != len(header) + 1:
            break
        table[cells[0]] = {
            column: int(value) for column, value in zip(header, cells[1:], strict=True) if int(value)
        }
    return table


def _contents(repo: Path) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]], tuple[str, ...]]:
    """Every dataset of the output run, its datastore records (without sizes), and the output chain."""
    with Butler(repo) as butler:
        registry = butler.registry
        refs = [
            ref
            for dataset_type in registry.query_dataset_types()
            for ref in registry.query_datasets(dataset_type, RUN, find_first=False)
        ]
        datasets = {(ref.id, ref.dataset_type.name, ref.run, ref.data_id.required_values) for ref in refs}
        records = {
            (record.dataset_id, record.path, record.formatter, record.storage_class)
            for ref in refs
            for record in butler.datastore_records(ref)
        }
        return datasets, records, registry.get_collection_chain(OUTPUT)


@pytest.fixture(scope="module")
def executed(
    pristine: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, Path, Result]]:
    """The graph, and a repository copy after ``pipetask run -j 2``."""
    work = tmp_path_factory.mktemp("run-j2")
    repo = work / "repo"
    shutil.copytree(pristine[0], repo)
    graph_path = work / "demo.qg"
    built = _build(repo, pristine[1], graph_path)
    assert "detectCoadd" in built.stdout
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(pipetask_main.commands, "run", run)
        result = pipetask(
            "run",
            "-b",
            str(repo),
            "-g",
            str(graph_path),
            "-j",
            "2",
            "--register-dataset-types",
            "--no-progress",
        )
    yield repo, graph_path, result


def test_run_with_two_processes_makes_the_demo_outputs(executed: tuple[Path, Path, Result]) -> None:
    repo, graph_path, result = executed
    assert result.exit_code == 0, result.stderr
    graph = read_quantum_graph(graph_path)
    summary = _summary(result)
    assert summary == {label: {"succeeded": graph.quantum_count(label)} for label in graph.task_labels()} | {
        "TOTAL": {"succeeded": graph.quantum_count()}
    }
    with Butler(repo, collections=[OUTPUT]) as butler:
        assert butler.registry.get_collection_chain(OUTPUT) == (RUN, INPUTS)
        (coadd_ref,) = butler.registry.query_datasets("deepCoadd", OUTPUT)
        coadd = butler.get(coadd_ref)
        assert isinstance(coadd, Image) and np.isfinite(coadd.image).any()
        (detections,) = butler.registry.query_datasets("deepCoadd_det", OUTPUT)
        assert butler.get(detections).num_rows > 0
        assert len(butler.registry.query_datasets("calexp", OUTPUT)) == graph.quantum_count("calibrate")
        metadata = butler.registry.query_datasets("calibrate_metadata", RUN)
        assert butler.get(metadata[0])["quantum.status"] == "succeeded"
        assert "numpy" in butler.get("packages", {}, collections=RUN)


def test_jobs_then_merge_give_the_same_registry(
    executed: tuple[Path, Path, Result], pristine: tuple[Path, str], tmp_path: Path
) -> None:
    local_repo, graph_path, result = executed
    assert result.exit_code == 0
    repo = _copy(pristine, tmp_path, "jobs")
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(graph_path)]) == 0
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(graph_path)]) == 0  # changes nothing
    for value in read_dependency_order(graph_path):
        node_id = str(uuid_from_bytes(value))
        assert qbb_main(["run-qbb", str(repo), str(graph_path), "--qgraph-node-id", node_id]) == 0
    graph = read_quantum_graph(graph_path)
    with Butler(repo) as butler:
        first = transfer_from_graph(butler, graph, update_chain=True)
        assert first.total.missing == 0 and first.total.registered > 0
        second = transfer_from_graph(butler, graph, update_chain=True)
        assert second.total.registered == 0
    assert _contents(repo) == _contents(local_repo)


def test_a_failing_task_blocks_downstream_and_keeps_going(pristine: tuple[Path, str], tmp_path: Path) -> None:
    repo = _copy(pristine, tmp_path, "failing")
    graph_path = tmp_path / "failing.qg"
    _build(repo, pristine[1], graph_path, "-c", "calibrate:photo_cal.min_matches=100000")
    graph = read_quantum_graph(graph_path)
    result = pipetask("run", "-b", str(repo), "-g", str(graph_path), "-j", "2", "--register-dataset-types")
    assert result.exit_code == 1
    calibrations = graph.quantum_count("calibrate")
    summary = _summary(result)
    assert summary["isr"] == {"succeeded": graph.quantum_count("isr")}
    assert summary["calibrate"] == {"failed": calibrations}  # every one ran: keep-going is the default
    for label in ("consolidateVisitSummary", "makeWarp", "assembleCoadd", "detectCoadd"):
        assert summary[label] == {"blocked": graph.quantum_count(label)}
    assert result.stderr.count("FAILED calibrate") == calibrations
    assert "TaskExecutionError" in result.stderr
    with Butler(repo) as butler:
        assert not butler.registry.has_collection(OUTPUT)
        logs = butler.registry.query_datasets("calibrate_log", RUN)
        assert len(logs) == calibrations  # failed quanta leave their logs
        assert any(record.level == "ERROR" for record in butler.get(logs[0]))


def test_a_missing_input_file_is_named_and_exits_3(pristine: tuple[Path, str], tmp_path: Path) -> None:
    repo = _copy(pristine, tmp_path, "missing")
    graph_path = tmp_path / "missing.qg"
    _build(repo, pristine[1], graph_path)
    graph = read_quantum_graph(graph_path)
    isr = graph.node_ids("isr")[0]
    (raw,) = graph.quantum(isr).inputs["raw"]
    with Butler(repo) as butler:
        raw_path = butler.get_uri(raw).ospath
    os.remove(raw_path)
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(graph_path)]) == 0
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    job = subprocess.run(
        [sys.executable, "-c", "from graph.cli.entry import main; main()", "run-qbb", str(repo), str(graph_path),
         "--qgraph-node-id", str(isr)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert job.returncode == 3, job.stderr
    assert "MissingInputError" in job.stderr and raw_path in job.stderr
    result = pipetask("run", "-b", str(repo), "-g", str(graph_path), "--extend-run")
    assert result.exit_code == 3
    summary = _summary(result)
    assert summary["isr"] == {"succeeded": graph.quantum_count("isr") - 1, "failed": 1}
    assert summary["calibrate"]["blocked"] == 1
    assert "MissingInputError" in result.stderr and raw_path in result.stderr
