"""``pipetask run`` as a user types it: from a graph file or a pipeline, summary, exit codes, options."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result
from test_execute import INPUTS, OUTPUT, RUN, expected_total, make_graph, make_repository, pipeline

from butler.butler import Butler
from graph.cli.pipetask import main
from graph.cli.run import run
from graph.qgraph_io import write_quantum_graph


@pytest.fixture(autouse=True)
def _registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` in the pipetask group (graph/cli/pipetask.py registers it)."""
    monkeypatch.setitem(main.commands, "run", run)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def pipetask(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _graph_file(repo: Path, tmp_path: Path, **work: object) -> Path:
    path = tmp_path / "graph.qg"
    write_quantum_graph(make_graph(repo, pipeline(**work)), path)
    return path


def test_run_a_graph_file(repo: Path, tmp_path: Path) -> None:
    path = _graph_file(repo, tmp_path)
    result = pipetask("run", "-b", str(repo), "-g", str(path), "--register-dataset-types", "--no-progress")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["task", "succeeded", "failed"]
    assert lines[1].split() == ["add", "4", "0"] and lines[4].split() == ["TOTAL", "9", "0"]
    assert "All 9 quanta succeeded" in result.stdout and OUTPUT in result.stdout
    with Butler(repo, collections=[OUTPUT]) as butler:
        np.testing.assert_allclose(butler.get("total", instrument="Cam"), expected_total())


def test_failures_are_summarized_and_exit_1(repo: Path, tmp_path: Path) -> None:
    path = _graph_file(repo, tmp_path, fail=[1, 2])
    result = pipetask("run", "-b", str(repo), "-g", str(path), "--register-dataset-types")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["task", "succeeded", "failed", "blocked"]
    assert lines[2].split() == ["work", "2", "2", "0"] and lines[3].split() == ["gather", "0", "0", "1"]
    assert result.stderr.count("FAILED work") == 2
    assert "re-run with --extend-run --skip-existing --clobber-outputs" in result.stderr


def test_rerun_needs_extend_run(repo: Path, tmp_path: Path) -> None:
    path = _graph_file(repo, tmp_path)
    args = ["run", "-b", str(repo), "-g", str(path), "--register-dataset-types"]
    assert pipetask(*args).exit_code == 0
    again = pipetask(*args)
    assert again.exit_code == 1 and "pass --extend-run" in again.stderr
    skipped = pipetask(*args, "--extend-run", "--skip-existing")
    assert skipped.exit_code == 0 and skipped.stdout.splitlines()[0].split() == [
        "task",
        "succeeded",
        "skipped",
        "failed",
    ]


def test_run_from_a_pipeline(repo: Path, tmp_path: Path) -> None:
    pipeline_file = tmp_path / "pipeline.yaml"
    pipeline().write_yaml(pipeline_file)
    saved = tmp_path / "saved.qg"
    result = pipetask(
        "run",
        "-b",
        str(repo),
        "-p",
        str(pipeline_file),
        "-c",
        "work:nothing=[3]",
        "-i",
        INPUTS,
        "-o",
        OUTPUT,
        "--output-run",
        RUN,
        "--save-qgraph",
        str(saved),
        "--register-dataset-types",
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[2].split() == ["work", "3", "1", "0"]  # succeeded, no work, failed
    assert saved.exists()
    with Butler(repo) as butler:
        assert butler.get("work_config", {}, collections=RUN).nothing == [3]
        assert butler.registry.get_collection_chain(OUTPUT) == (RUN, INPUTS)


def test_usage_errors(repo: Path, tmp_path: Path) -> None:
    neither = pipetask("run", "-b", str(repo))
    assert neither.exit_code == 2 and "exactly one of -g" in neither.stderr
    path = _graph_file(repo, tmp_path)
    mixed = pipetask("run", "-b", str(repo), "-g", str(path), "-i", INPUTS)
    assert mixed.exit_code == 2 and "-i only apply with -p" in mixed.stderr
    missing = pipetask("run", "-b", str(repo), "-g", str(tmp_path / "missing.qg"))
    assert missing.exit_code == 3 and "missing.qg" in missing.stderr


@pytest.mark.slow
def test_two_processes_with_progress_and_timeout(repo: Path, tmp_path: Path) -> None:
    path = _graph_file(repo, tmp_path, sleep=[0], sleep_s=60)
    result = pipetask(
        "run",
        "-b",
        str(repo),
        "-g",
        str(path),
        "-j",
        "2",
        "--timeout",
        "5",
        "--progress",
        "--register-dataset-types",
    )
    assert result.exit_code == 1
    assert "Running quanta" in result.stderr
    assert (
        "FAILED work {instrument: 'Cam', detector: 0}: failed: timeout: still running after 5 s"
        in result.stderr
    )
    assert result.stdout.splitlines()[2].split() == ["work", "3", "1", "0"]
