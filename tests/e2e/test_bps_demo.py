"""``bps submit --wait`` of the DemoCam demo through the Parsl ``local`` site, then the registry,
``bps report`` and ``bps status``; also the demo's empty-graph and missing-pipeline cases.

The helpers here (`bps`, `submit_args`, the ``repo`` fixture) are shared with ``test_bps_faults``.
Runs use one detector and one band (24 payload jobs) to keep each run near 20 s.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from democam_repository import EXAMPLES, build_democam_repository

from bps.cli import main
from butler.cli import main as butler_main
from butler.repository import open_registry
from graph.qgraph_io import read_quantum_graph, write_quantum_graph

DEMO_SUBMIT = EXAMPLES / "demo_submit.yaml"
PIPELINE = EXAMPLES / "demo_pipeline.yaml"
QUERY = "instrument = 'DemoCam' AND detector = 0 AND band = 'g'"
"""Two visits of one detector: 2 isr+calibrate jobs, 2 visit summaries, 8 warps, 6 coadds, 6 detections."""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DemoCam repository shared by the module's runs (each writes its own output collections)."""
    return build_democam_repository(tmp_path_factory.mktemp("democam"))


@pytest.fixture(autouse=True)
def bps_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A private run index, this interpreter's scripts (pipetask, butler) on PATH, quick polls."""
    monkeypatch.setenv("QUANTA_BPS_HOME", str(tmp_path / "bps_home"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr("bps.progress.DEFAULT_POLL_SECONDS", 0.2)
    yield


def bps(*args: str | Path) -> tuple[int, str, str]:
    """Run ``bps --log-level WARNING ARGS`` in this process; (exit code, stdout, stderr).

    WARNING keeps the stage logs out of stderr, so tests see an error exactly as its one line.
    """
    result = CliRunner().invoke(main, ["--log-level", "WARNING", *(str(arg) for arg in args)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def submit_args(repo: Path, submit_dir: Path, output: str, *, query: str = QUERY) -> list[str | Path]:
    """The overrides every test run uses: its repository, submit directory, collections and query."""
    return [
        "-b",
        repo,
        "-p",
        PIPELINE,
        "--submit-path",
        submit_dir,
        "-o",
        output,
        "--output-run",
        f"{output}/run",
        "-d",
        query,
    ]


def run_id_of(stdout: str) -> str:
    """The ``Run Id:`` that ``bps submit``/``restart`` printed."""
    return next(line.split(": ", 1)[1] for line in stdout.splitlines() if line.startswith("Run Id: "))


def table_rows(text: str, first_header: str) -> dict[str, dict[str, str]]:
    """The rows of the table whose header starts with ``first_header``, by first cell."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(first_header))
    header = lines[start].split()
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = line.split()
        rows[cells[0]] = dict(zip(header, cells, strict=False))
    return rows


def butler_verify(repo: Path) -> str:
    result = CliRunner().invoke(butler_main, ["verify", str(repo), "--no-progress"])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.slow
def test_submit_wait_runs_the_demo_and_merges_its_outputs(repo: Path, tmp_path: Path) -> None:
    submit_dir = tmp_path / "submit"
    code, out, err = bps(
        "--no-progress", "submit", "--wait", DEMO_SUBMIT, *submit_args(repo, submit_dir, "u/t/demo")
    )
    assert code == 0, err
    run_id = run_id_of(out)
    assert f"Submit dir: {submit_dir}" in out and "ended SUCCEEDED" in out
    assert "Jobs: 26 (pipetaskInit 1, singleFrame 2, consolidateVisitSummary 2, makeWarp 8," in out

    with open_registry(repo) as registry:
        assert registry.get_collection_chain("u/t/demo") == ("u/t/demo/run", "DemoCam/defaults")
        assert len(registry.query_datasets("deepCoadd", "u/t/demo")) == 6
        assert len(registry.query_datasets("calexp", "u/t/demo")) == 2
    assert "registry and datastore agree" in butler_verify(repo)

    for name in ("submit.yaml", "u_t_demo_run_config.yaml", "u_t_demo_run.qg", "generic_workflow.json"):
        assert (submit_dir / name).is_file(), name
    assert "Saved to" in (submit_dir / "quantumGraphGeneration.out").read_text()
    record = json.loads((submit_dir / "run.json").read_text())
    assert (
        record["run_id"] == run_id and record["engine"] == "parsl" and record["output_run"] == "u/t/demo/run"
    )
    assert len(list((submit_dir / "jobs").glob("*/*.log"))) == 26

    code, out, _ = bps("report")
    assert out.splitlines()[2].split()[:3] == ["SUCCEEDED", "100", run_id]
    code, out, _ = bps("report", "--id", run_id)
    labels = table_rows(out, "LABEL")
    assert labels["TOTAL"]["SUCCEEDED"] == labels["TOTAL"]["EXPECTED"] == "26"
    assert labels["singleFrame"]["SUCCEEDED"] == "2" and labels["finalJob"]["SUCCEEDED"] == "1"
    assert bps("status", "--id", run_id)[:2] == (0, "SUCCEEDED\n")
    assert bps("status", "--id", submit_dir)[0] == 0


@pytest.mark.slow
def test_a_query_that_selects_nothing_submits_nothing(repo: Path, tmp_path: Path) -> None:
    submit_dir = tmp_path / "submit"
    args = submit_args(repo, submit_dir, "u/t/empty", query="instrument = 'DemoCam' AND detector = 99")
    code, _, err = bps("submit", DEMO_SUBMIT, *args)
    assert code == 1 and err.count("\n") == 1
    assert err.startswith("Error: createQuantumGraph failed with exit code 1: The data query selects nothing")
    assert not (submit_dir / "run.json").exists() and not (submit_dir / "parsl").exists()
    assert bps("report") == (0, "No runs found.\n", "")


@pytest.mark.slow
def test_an_empty_graph_submits_nothing(repo: Path, tmp_path: Path) -> None:
    code, _, err = bps("acquire", DEMO_SUBMIT, *submit_args(repo, tmp_path / "full", "u/t/full"))
    assert code == 0, err
    empty = tmp_path / "empty.qg"
    write_quantum_graph(read_quantum_graph(tmp_path / "full" / "u_t_full_run.qg").subgraph([]), empty)
    submit_dir = tmp_path / "submit"
    code, _, err = bps("submit", DEMO_SUBMIT, *submit_args(repo, submit_dir, "u/t/empty"), "-g", empty)
    # The graph's output run (u/t/full/run) wins over --output-run: its outputs go there.
    assert code == 1 and err == (
        f"Error: The quantum graph {submit_dir}/u_t_full_run.qg has no quanta (data query {QUERY!r}): "
        "nothing to submit.\n"
    )
    assert not (submit_dir / "run.json").exists() and not (submit_dir / "parsl").exists()
    assert bps("report") == (0, "No runs found.\n", "")


@pytest.mark.slow
def test_missing_pipeline_fails_in_graph_generation(repo: Path, tmp_path: Path) -> None:
    submit_dir = tmp_path / "submit"
    args = submit_args(repo, submit_dir, "u/t/nopipe")
    args[args.index("-p") + 1] = tmp_path / "no_such_pipeline.yaml"
    code, _, err = bps("submit", DEMO_SUBMIT, *args)
    assert code != 0 and err.startswith("Error: createQuantumGraph failed with exit code")
    assert "no_such_pipeline.yaml" in err and err.count("\n") == 1
    assert "no_such_pipeline.yaml" in (submit_dir / "quantumGraphGeneration.out").read_text()
    assert not (submit_dir / "run.json").exists()
