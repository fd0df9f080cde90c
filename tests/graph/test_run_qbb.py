"""The batch job: ``pipetask run-qbb`` and ``pre-exec-init-qbb``, their exit codes, no registry, no click.

Jobs run quanta through the datastore alone; ``butler transfer-from-graph`` (graph.transfer) then
registers what they wrote. The repository and graphs come from test_execute.py. Subprocess tests
use a pipeline of framework_tasks only (``add`` -> ``gather``), so nothing the test modules import
hides what the job itself imports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
from databases import DatabaseLocation
from test_execute import INPUTS, OUTPUT, RUN, expected_total, make_graph, make_repository, pipeline

from butler.butler import Butler
from graph.cli.entry import _subcommand
from graph.cli.run_qbb import main as qbb_main
from graph.execute_report import RunStatus
from graph.pipeline import Pipeline
from graph.pre_exec_init import pre_exec_init
from graph.qgraph_io import write_quantum_graph
from graph.quantum_graph import QuantumGraph
from graph.run_qbb import run_qbb
from graph.transfer import transfer_from_graph

REPO_ROOT = Path(__file__).parents[2]
TESTS = Path(__file__).parent


def _init(repo: Path, graph: QuantumGraph) -> None:
    with Butler(repo) as butler:
        pre_exec_init(butler, graph)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def _saved(repo: Path, tmp_path: Path, pipe: Pipeline) -> tuple[QuantumGraph, Path]:
    graph = make_graph(repo, pipe)
    path = tmp_path / "graph.qg"
    write_quantum_graph(graph, path)
    _init(repo, graph)
    return graph, path


def _ids(graph: QuantumGraph, label: str) -> list[uuid.UUID]:
    return graph.node_ids(label)


# -- the job, in this process -------------------------------------------------------------------------


def test_one_job_per_quantum_then_merge(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, pipeline())
    for node_id in graph.topological_order():
        report = run_qbb(repo, path, [node_id])
        assert report.exit_code == 0 and report.total(RunStatus.SUCCEEDED) == 1
    with Butler(repo) as butler:
        assert not butler.registry.query_datasets("worked", RUN)  # jobs register nothing
        transferred = transfer_from_graph(butler, graph, update_chain=True)
        assert transferred.total.missing == 0
    with Butler(repo, collections=[OUTPUT]) as butler:
        np.testing.assert_allclose(butler.get("total", instrument="Cam"), expected_total())
        assert len(butler.registry.query_datasets("work_log", RUN)) == 4


def test_clustered_job_runs_in_dependency_order(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, pipeline())
    report = run_qbb(repo, path, list(reversed(graph.topological_order())))
    assert report.exit_code == 0 and report.total(RunStatus.SUCCEEDED) == 9


def test_keep_going_inside_a_clustered_job(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, pipeline(fail=[1]))
    work = sorted(_ids(graph, "work"), key=lambda n: graph.quantum(n).data_id["detector"])
    stopped = run_qbb(repo, path, [*_ids(graph, "add"), *work, *_ids(graph, "gather")])
    assert stopped.exit_code == 1
    assert stopped.counts["work"] == {RunStatus.SUCCEEDED: 1, RunStatus.FAILED: 1, RunStatus.NOT_RUN: 2}
    assert stopped.counts["gather"] == {RunStatus.NOT_RUN: 1}
    again = run_qbb(repo, path, graph.topological_order(), keep_going=True)
    assert again.exit_code == 1
    assert again.counts["add"] == {RunStatus.SKIPPED: 4}  # done by the first attempt
    assert again.counts["work"] == {RunStatus.SKIPPED: 1, RunStatus.FAILED: 1, RunStatus.SUCCEEDED: 2}
    assert again.counts["gather"] == {RunStatus.BLOCKED: 1}
    assert "told to fail on detector 1" in (again.failures[0].error or "")


def test_retried_job_replaces_what_a_failed_attempt_left(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    graph, path = _saved(repo, tmp_path, pipeline(fail_marker=str(marker)))
    run_qbb(repo, path, _ids(graph, "add"))
    (work_1,) = [n for n in _ids(graph, "work") if graph.quantum(n).data_id["detector"] == 1]
    assert run_qbb(repo, path, [work_1]).exit_code == 1  # writes its log
    marker.unlink()
    assert run_qbb(repo, path, [work_1]).exit_code == 0  # the old log is removed first
    assert run_qbb(repo, path, [work_1]).counts["work"] == {RunStatus.SKIPPED: 1}


def test_inputs_not_produced_upstream_are_left_out(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, pipeline(nothing=[0, 1, 2]))
    report = run_qbb(repo, path, graph.topological_order())
    assert report.exit_code == 0
    assert report.counts["work"] == {RunStatus.SUCCEEDED: 1, RunStatus.NO_WORK: 3}
    assert report.counts["gather"] == {RunStatus.NO_WORK: 1}  # one 'worked' of the two it needs


def test_missing_input_file_is_an_infrastructure_failure(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, pipeline())
    with Butler(repo, collections=[INPUTS]) as butler:
        lost = butler.get_uri("numbers", instrument="Cam", detector=2)
    os.remove(lost.ospath)
    report = run_qbb(repo, path, graph.topological_order(), keep_going=True)
    assert report.exit_code == 3
    (failure,) = report.failures
    assert failure.infrastructure and failure.label == "add"
    assert failure.error is not None and failure.error.startswith("MissingInputError: ")
    assert "numbers {instrument: 'Cam', detector: 2}" in failure.error and lost.ospath in failure.error
    assert report.counts["work"] == {RunStatus.SUCCEEDED: 3, RunStatus.BLOCKED: 1}


# -- the command line ----------------------------------------------------------------------------------


def test_subcommand_dispatch() -> None:
    assert _subcommand(["run-qbb", "repo", "f.qg"]) == "run-qbb"
    assert _subcommand(["--log-level", "DEBUG", "pre-exec-init-qbb", "r"]) == "pre-exec-init-qbb"
    assert _subcommand(["--help"]) is None and _subcommand(["run", "-b", "r"]) == "run"


def test_usage_errors_exit_2(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    graph, path = _saved(repo, tmp_path, pipeline())
    assert qbb_main(["run-qbb", str(repo), str(path)]) == 2
    assert qbb_main(["run-qbb", str(repo), str(path), "--qgraph-node-id", "not-a-uuid"]) == 2
    assert qbb_main(["run-qbb", str(repo), str(path), "--qgraph-node-id", str(uuid.uuid4())]) == 2
    assert "not in quantum graph" in capsys.readouterr().err
    node = str(graph.topological_order()[0])
    assert qbb_main(["run-qbb", str(repo), str(path), "--qgraph-node-id", f"{node},{node}"]) == 0
    assert "1 quanta" in capsys.readouterr().out


def test_unreadable_graph_and_bad_repository_exit_3(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    graph, path = _saved(repo, tmp_path, pipeline())
    node = str(graph.topological_order()[0])
    truncated = tmp_path / "truncated.qg"
    truncated.write_bytes(path.read_bytes()[:-100])
    assert qbb_main(["run-qbb", str(repo), str(truncated), "--qgraph-node-id", node]) == 3
    assert "truncated.qg" in capsys.readouterr().err
    assert qbb_main(["run-qbb", str(tmp_path / "nowhere"), str(path), "--qgraph-node-id", node]) == 3
    assert "No data repository" in capsys.readouterr().err


def test_pre_exec_init_command_is_idempotent(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, changed = tmp_path / "graph.qg", tmp_path / "changed.qg"
    write_quantum_graph(make_graph(repo, pipeline()), path)
    write_quantum_graph(make_graph(repo, pipeline(fail=[3])), changed)  # same run, another config
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(path)]) == 0
    assert "created" in capsys.readouterr().out
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(path)]) == 0
    out = capsys.readouterr().out
    assert "Dataset types registered: 0." in out and "Unchanged: " in out and "Written" not in out
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(changed)]) == 1
    assert "--clobber-config" in capsys.readouterr().err
    assert qbb_main(["pre-exec-init-qbb", str(repo), str(changed), "--clobber-config"]) == 0
    assert "Replaced: work_config." in capsys.readouterr().out


# -- in a subprocess, as batch systems run it -----------------------------------------------------------

_JOB = """
import sys
from graph.cli.entry import main
try:
    main(sys.argv[1:])
except SystemExit as exit_:
    code = exit_.code
loaded = sorted(name for name in ("sqlalchemy", "click", "networkx") if name in sys.modules)
print("LOADED", ",".join(loaded))
sys.exit(code)
"""


def _job(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)])}
    return subprocess.run(
        [sys.executable, "-c", _JOB, *args], capture_output=True, text=True, env=env, timeout=120
    )


def _framework_pipeline(**add: object) -> Pipeline:
    pipe = Pipeline.from_tasks({"add": "framework_tasks.AddTask", "gather": "framework_tasks.GatherTask"})
    if add:
        pipe.add_config_overrides("add", add)
    return pipe


@pytest.mark.slow
def test_job_without_registry_sqlalchemy_or_click(tmp_path: Path, database: DatabaseLocation) -> None:
    repo = make_repository(tmp_path / "repo", db=database.url, namespace=database.namespace)
    graph, path = _saved(repo, tmp_path, _framework_pipeline())
    # The registry becomes unreachable: its SQLite file is gone, or the PostgreSQL port is closed.
    config = repo / "butler.yaml"
    if database.backend == "sqlite":
        Path(database.url.removeprefix("sqlite:///")).unlink()
    else:
        text = config.read_text()
        assert database.url in text
        config.write_text(text.replace(database.url, "postgresql://nobody@127.0.0.1:1/nothing"))
    ids = [str(n) for n in graph.topological_order()]
    result = _job("run-qbb", str(repo), str(path), "--qgraph-node-id", *ids)
    assert result.returncode == 0, result.stderr
    assert "5 quanta" in result.stdout and "5 succeeded" in result.stdout
    assert "LOADED \n" in result.stdout  # neither sqlalchemy, click nor networkx
    assert (repo / RUN / "gather_metadata").exists()


@pytest.mark.slow
def test_job_exit_codes(repo: Path, tmp_path: Path) -> None:
    graph, path = _saved(repo, tmp_path, _framework_pipeline(fail=True))
    adds = [str(n) for n in graph.node_ids("add")]
    failed = _job("run-qbb", str(repo), str(path), "--qgraph-node-id", *adds, "--keep-going")
    assert failed.returncode == 1, failed.stderr
    assert failed.stderr.count("FAILED add") == 4 and "RuntimeError: told to fail" in failed.stderr
    broken = tmp_path / "broken.qg"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken.write_bytes(bytes(data))
    corrupted = _job("run-qbb", str(repo), str(broken), "--qgraph-node-id", adds[0])
    assert corrupted.returncode == 3 and "broken.qg" in corrupted.stderr
    usage = _job("run-qbb", str(repo), str(path))
    assert usage.returncode == 2 and "--qgraph-node-id" in usage.stderr
    other = _job("--help")  # any other subcommand goes to the click group
    assert other.returncode == 0 and "click" in other.stdout.split("LOADED")[1]


def test_butler_package_loads_the_registry_only_when_asked() -> None:
    code = (
        "import sys\n"
        "import butler.datasets\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "from butler import Registry, DatasetType\n"
        "assert DatasetType is butler.datasets.DatasetType and 'sqlalchemy' in sys.modules\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
