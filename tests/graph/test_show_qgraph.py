"""``pipetask show-qgraph`` run through click's CliRunner as a user would type it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from test_qgraph_io import synthetic_graph

from graph.cli.pipetask import PipetaskGroup, main
from graph.cli.show_qgraph import format_node_ids, show_qgraph
from graph.qgraph_io import write_quantum_graph
from graph.quantum_graph import QuantumGraph

# The real ``pipetask`` once the command is registered there; until then the same group class.
CLI = (
    main
    if "show-qgraph" in main.commands
    else PipetaskGroup("pipetask", commands={"show-qgraph": show_qgraph})
)


def run(*args: str, exit_code: int = 0) -> Result:
    result = CliRunner().invoke(CLI, ["show-qgraph", *args])
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


@pytest.fixture(scope="module")
def graph() -> QuantumGraph:
    return synthetic_graph(visits=5, detectors=3, patches=2)


@pytest.fixture
def qg(tmp_path: Path, graph: QuantumGraph) -> Path:
    path = tmp_path / "run.qg"
    write_quantum_graph(graph, path, block_size=4)
    return path


def test_summary(qg: Path) -> None:
    output = run(str(qg)).stdout
    assert f"File:       {qg} (" in output
    assert "Format:     version 1.0, " in output
    assert "Universe:   quanta version 2\n" in output
    assert "Output run: u/test/run\n" in output
    assert "Output:     u/test\n" in output
    assert "Inputs:     Cam/raw/all, Cam/calib\n" in output
    assert "Query:      instrument = 'Cam'\n" in output
    assert "Counts:     37 quanta, " in output and "3 pruned quanta" in output
    assert "Quanta per task:\n  isr        15  {instrument, detector, exposure}\n" in output
    assert "  calibrate  15  {instrument, detector, visit}\n" in output
    assert "  coadd       2  {band, skymap, tract, patch}" in output


def test_json(qg: Path, graph: QuantumGraph) -> None:
    summary = json.loads(run(str(qg), "--json").stdout)
    assert summary["format_version"] == "1.0"
    assert summary["universe"] == {"name": "quanta", "version": 2, "compatible": True}
    assert summary["metadata"]["output_run"] == "u/test/run"
    assert summary["metadata"]["pipeline_yaml"] == graph.metadata.pipeline_yaml
    assert summary["tasks"]["gather"] == {"dimensions": ["instrument", "visit"], "quanta": 5}
    assert list(summary["tasks"]) == ["isr", "calibrate", "gather", "coadd"]
    assert summary["counts"]["quanta"] == 37
    assert summary["file_size"] == qg.stat().st_size
    assert summary["dataset_types"]["bias"]["is_calibration"] is True


def test_node_ids_in_dependency_order(qg: Path, graph: QuantumGraph) -> None:
    lines = run(str(qg), "--node-ids").stdout.splitlines()
    ids = [uuid.UUID(line) for line in lines]
    assert sorted(ids) == sorted(graph.node_ids())
    position = {node: index for index, node in enumerate(ids)}
    for node in ids:
        for before in graph.predecessors(node):
            assert position[before] < position[node]


def test_format_node_ids() -> None:
    ids = [uuid.uuid4() for _ in range(5)] + [uuid.UUID(int=0), uuid.UUID(int=1 << 120)]
    array = np.array([i.bytes for i in ids], dtype="S16")
    assert format_node_ids(array) == "".join(f"{i}\n" for i in ids)
    assert format_node_ids(np.empty(0, dtype="S16")) == ""


def test_errors(tmp_path: Path, qg: Path) -> None:
    missing = run(str(tmp_path / "nope.qg"), exit_code=3)
    assert missing.stderr.strip() == f"Error: Quantum graph file {tmp_path / 'nope.qg'} does not exist."
    data = qg.read_bytes()
    qg.write_bytes(data[: len(data) // 2])
    truncated = run(str(qg), exit_code=3).stderr
    assert truncated.startswith(f"Error: {qg} is truncated: ") and "Traceback" not in truncated
    assert run(str(qg), "--node-ids", exit_code=3).stderr.startswith(f"Error: {qg} is truncated")
    run(str(qg), "--json", "--node-ids", exit_code=2)


def test_incompatible_universe_still_shown(tmp_path: Path) -> None:
    path = tmp_path / "old.qg"
    write_quantum_graph(synthetic_graph(visits=1, detectors=1, universe_version=1), path)
    output = run(str(path)).stdout
    assert "Universe:   quanta version 1 (NOT the universe of this software" in output
    assert json.loads(run(str(path), "--json").stdout)["universe"]["compatible"] is False
