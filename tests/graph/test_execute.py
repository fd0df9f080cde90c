"""The local executor: dependency order, processes, keep-going / fail-fast, timeouts, existing outputs.

Graphs are made by the builder (`make_graph`) over a repository with four detectors: ``add`` (tests/graph/framework_tasks.py, with a prerequisite and an init-output) ->
``work`` (`WorkTask` below: fails, sleeps, crashes or finds no work on chosen detectors) ->
``gather`` (reads every detector's ``worked``; at least two). test_run_qbb.py and
test_pipetask_run.py import `make_repository`, `make_graph` and `pipeline` from here.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from butler.butler import Butler
from butler.collections import CollectionType
from butler.datasets import DatasetRef, DatasetType
from butler.repository import create_repository
from graph.builder import QuantumGraphBuilder
from graph.config import PipelineTaskConfig, field
from graph.connections import Input, Output, PipelineTaskConnections
from graph.errors import NoWorkFound, QuantumGraphError, TaskExecutionError
from graph.execute import ExecutionOptions, execute_graph
from graph.execute_report import ExecutionReport, QuantumRunResult, RunStatus
from graph.execute_scheduler import Dependencies, Scheduler
from graph.pipeline import Pipeline
from graph.pipeline_graph import PipelineGraph
from graph.pre_exec_init import pre_exec_init
from graph.qgraph_io import write_quantum_graph
from graph.quantum_graph import (
    QuantumGraph,
)
from graph.task import PipelineTask, Struct

INPUTS = "inputs"
RUN = "u/test/run1"
OUTPUT = "u/test"
DETECTORS = 4


# -- a task that misbehaves on chosen detectors ------------------------------------------------------


class WorkConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    sums = Input(name="sums", storage_class="NumpyArray", dimensions=("instrument", "detector"), doc="In.")
    worked = Output(
        name="worked", storage_class="NumpyArray", dimensions=("instrument", "detector"), doc="Out."
    )


class WorkConfig(PipelineTaskConfig, connections=WorkConnections):
    fail: list[int] = field(default_factory=list, doc="Detectors on which run() raises.")
    nothing: list[int] = field(default_factory=list, doc="Detectors on which run() raises NoWorkFound.")
    sleep: list[int] = field(default_factory=list, doc="Detectors on which run() sleeps first.")
    sleep_s: float = field(30.0, doc="How long to sleep, seconds.")
    crash: list[int] = field(default_factory=list, doc="Detectors on which the process exits at once.")
    fail_marker: str = field("", doc="run() raises on every detector while this file exists.")


class WorkTask(PipelineTask):
    """Negates its input, or fails, finds nothing, sleeps or kills its process on chosen detectors."""

    ConfigClass = WorkConfig
    _DefaultName = "work"

    def run_quantum(self, context: Any, inputs: Any, outputs: Any) -> None:
        self._detector = int(next(iter(outputs["worked"])).data_id["detector"])
        super().run_quantum(context, inputs, outputs)

    def run(self, sums: np.ndarray) -> Struct:
        config: WorkConfig = self.config  # type: ignore[assignment]
        detector = self._detector
        if detector in config.crash:
            os._exit(17)
        if detector in config.sleep:
            time.sleep(config.sleep_s)
        if detector in config.fail:
            raise RuntimeError(f"told to fail on detector {detector}")
        if config.fail_marker and detector == 1 and os.path.exists(config.fail_marker):
            raise RuntimeError(f"{config.fail_marker} exists")
        if detector in config.nothing:
            raise NoWorkFound(f"nothing on detector {detector}")
        return Struct(worked=-sums)


# -- repository and graph ----------------------------------------------------------------------------


def make_repository(root: Path, db: str | None = None, namespace: str | None = None) -> Path:
    """Instrument Cam with four detectors, ``numbers`` per detector and an ``offset``, in INPUTS."""
    create_repository(root, db=db, namespace=namespace)
    with Butler(root, run=INPUTS) as butler:
        registry = butler.registry
        registry.insert_dimension_records("instrument", [{"name": "Cam", "detector_max": DETECTORS}])
        registry.insert_dimension_records(
            "detector", [{"instrument": "Cam", "id": d} for d in range(DETECTORS)]
        )
        registry.register_dataset_type(DatasetType("numbers", ["instrument", "detector"], "NumpyArray"))
        registry.register_dataset_type(DatasetType("offset", ["instrument"], "StructuredDataDict"))
        for detector in range(DETECTORS):
            butler.put(np.arange(3.0) + detector, "numbers", instrument="Cam", detector=detector)
        butler.put({"value": 0.5}, "offset", instrument="Cam")
    return root


def pipeline(**work: Any) -> Pipeline:
    """add -> work (config ``work``) -> gather (of ``worked``)."""
    result = Pipeline.from_tasks(
        {
            "add": "framework_tasks.AddTask",
            "work": f"{__name__}.WorkTask",
            "gather": "framework_tasks.GatherTask",
        }
    )
    result.add_config_overrides("gather", {"connections.inputs": "worked"})
    if work:
        result.add_config_overrides("work", work)
    return result


def make_graph(
    repo: Path, pipe: Pipeline, *, run: str = RUN, output: str | None = OUTPUT, **options: Any
) -> QuantumGraph:
    """The quantum graph of ``pipe`` over every detector (``options`` go to `QuantumGraphBuilder`)."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "pipeline.yaml"
        pipe.write_yaml(path)
        with Butler(repo) as butler:
            return QuantumGraphBuilder(
                PipelineGraph.from_pipeline(pipe),
                butler,
                [INPUTS],
                run,
                output=output,
                pipeline_yaml=path.read_text(),
                **options,
            ).build()


# -- fixtures and helpers -----------------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path / "repo")


def registered(repo: Path, name: str, run: str = RUN) -> list[DatasetRef]:
    with Butler(repo) as butler:
        return butler.registry.query_datasets(name, run, find_first=False)


def _statuses(report: ExecutionReport) -> dict[str, dict[str, int]]:
    return {
        label: {status.value: number for status, number in counts.items() if number}
        for label, counts in report.counts.items()
    }


def expected_total() -> np.ndarray:
    return sum((-(np.arange(3.0) + d + 1.5) * 2 for d in range(DETECTORS)), np.zeros(3))


OPTIONS = ExecutionOptions(register_dataset_types=True)


# -- scheduling --------------------------------------------------------------------------------------


def test_dependencies_match_the_graph(repo: Path) -> None:
    graph = make_graph(repo, pipeline())
    deps = Dependencies(graph)
    assert len(deps) == 9 and deps.labels == ["add", "work", "gather"]
    for index in range(len(deps)):
        node_id = deps.node_id(index)
        assert deps.label(index) == graph.label_of(node_id)
        downstream = {deps.node_id(int(i)) for i in deps.successors_of(index)}
        assert downstream == set(graph.successors(node_id))
        assert deps.indegree[index] == len(graph.predecessors(node_id))


def test_scheduler_releases_successors_and_blocks_downstream(repo: Path) -> None:
    deps = Dependencies(make_graph(repo, pipeline()))
    scheduler = Scheduler(deps)
    started = []
    while scheduler.has_ready():
        started.append(scheduler.pop_ready())
    assert [deps.label(i) for i in started] == ["add"] * 4 and scheduler.running == 4
    for index in started:
        scheduler.mark_done(index)
    work = [scheduler.pop_ready() for _ in range(4)]
    assert {deps.label(i) for i in work} == {"work"}
    blocked = scheduler.mark_failed(work[0])
    assert [deps.label(i) for i in blocked] == ["gather"]
    for index in work[1:]:
        scheduler.mark_done(index)
    assert not scheduler.has_ready() and scheduler.finished()
    assert len(scheduler.pending()) == 0


# -- in this process ---------------------------------------------------------------------------------


def test_run_in_process_registers_outputs_and_chains_output(repo: Path) -> None:
    graph = make_graph(repo, pipeline())
    seen: list[int] = []
    report = execute_graph(repo, graph, OPTIONS, progress=seen.append)
    assert report.exit_code == 0 and report.succeeded
    assert _statuses(report) == {
        "add": {"succeeded": 4},
        "work": {"succeeded": 4},
        "gather": {"succeeded": 1},
    }
    assert sum(seen) == 9
    with Butler(repo, collections=[OUTPUT]) as butler:
        assert butler.registry.get_collection_type(OUTPUT) is CollectionType.CHAINED
        assert butler.registry.get_collection_chain(OUTPUT) == (RUN, INPUTS)
        np.testing.assert_allclose(butler.get("total", instrument="Cam"), expected_total())
        for name in ("sums", "worked", "add_metadata", "add_log", "work_metadata", "gather_log"):
            assert butler.registry.query_datasets(name, RUN), name
        # Registered under the graph's own UUIDs, init outputs included.
        predicted = {ref.id for ref in graph.all_output_refs()}
        stored = {
            ref.id
            for dataset_type in butler.registry.query_dataset_types()
            for ref in butler.registry.query_datasets(dataset_type, RUN, find_first=False)
        }
        assert stored == predicted
        assert butler.get("add_schema", {}, collections=RUN) == {"columns": ["value"]}


def test_keep_going_runs_independent_quanta_and_blocks_downstream(repo: Path) -> None:
    report = execute_graph(repo, make_graph(repo, pipeline(fail=[1])), OPTIONS)
    assert report.exit_code == 1 and not report.succeeded
    assert _statuses(report) == {
        "add": {"succeeded": 4},
        "work": {"succeeded": 3, "failed": 1},
        "gather": {"blocked": 1},
    }
    (failure,) = report.failures
    assert failure.label == "work" and "detector: 1" in failure.data_id
    assert failure.error == "RuntimeError: told to fail on detector 1" and not failure.infrastructure
    assert len(registered(repo, "worked")) == 3
    assert len(registered(repo, "work_metadata")) == 3
    assert len(registered(repo, "work_log")) == 4  # the failed quantum's log too
    with Butler(repo) as butler:
        assert not butler.registry.has_collection(OUTPUT)  # only on success
    assert "blocked" in report.format_summary()


def test_fail_fast_stops_handing_out_quanta(repo: Path) -> None:
    report = execute_graph(
        repo,
        make_graph(repo, pipeline(fail=[0])),
        ExecutionOptions(register_dataset_types=True, fail_fast=True),
    )
    assert _statuses(report) == {
        "add": {"succeeded": 4},
        "work": {"failed": 1, "not_run": 3},
        "gather": {"blocked": 1},
    }
    assert report.exit_code == 1


def test_no_work_counts_as_success_and_propagates(repo: Path) -> None:
    report = execute_graph(repo, make_graph(repo, pipeline(nothing=[0, 1, 2])), OPTIONS)
    # gather gets one 'worked' dataset; its minimum is two.
    assert _statuses(report) == {
        "add": {"succeeded": 4},
        "work": {"succeeded": 1, "no_work": 3},
        "gather": {"no_work": 1},
    }
    assert report.exit_code == 0


def test_unregistered_dataset_types_need_the_flag(repo: Path) -> None:
    with pytest.raises(QuantumGraphError, match=r"not registered: .*worked.*--register-dataset-types"):
        execute_graph(repo, make_graph(repo, pipeline()), ExecutionOptions())


# -- existing output runs ----------------------------------------------------------------------------


def test_rerun_after_a_failure(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "broken"
    marker.touch()
    pipe = pipeline(fail_marker=str(marker))
    graph = make_graph(repo, pipe)
    assert execute_graph(repo, graph, OPTIONS).exit_code == 1
    with pytest.raises(QuantumGraphError, match="already exists in .*; pass --extend-run"):
        execute_graph(repo, graph, OPTIONS)
    extend = ExecutionOptions(register_dataset_types=True, extend_run=True, skip_existing=True)
    with pytest.raises(
        QuantumGraphError, match=r"1 quanta to run already have outputs.*work_log.*--clobber-outputs"
    ):
        execute_graph(repo, graph, extend)
    marker.unlink()
    again = ExecutionOptions(
        register_dataset_types=True, extend_run=True, skip_existing=True, clobber_outputs=True
    )
    report = execute_graph(repo, graph, again)
    assert _statuses(report) == {
        "add": {"skipped": 4},
        "work": {"skipped": 3, "succeeded": 1},
        "gather": {"succeeded": 1},
    }
    assert report.exit_code == 0
    assert len(registered(repo, "work_log")) == 4 and len(registered(repo, "worked")) == 4
    with Butler(repo, collections=[OUTPUT]) as butler:
        np.testing.assert_allclose(butler.get("total", instrument="Cam"), expected_total())


def test_rerun_of_a_new_graph_into_the_same_run(repo: Path) -> None:
    assert execute_graph(repo, make_graph(repo, pipeline()), OPTIONS).exit_code == 0
    # Built with --extend-run and skip-existing: nothing left to do but the graph still runs.
    graph = make_graph(repo, pipeline(), extend_run=True, clobber_outputs=True)
    report = execute_graph(repo, graph, ExecutionOptions(skip_existing=True))
    assert report.exit_code == 0 and report.total(RunStatus.SKIPPED) == 9
    assert len(registered(repo, "worked")) == 4


def test_changed_config_needs_clobber_config(repo: Path) -> None:
    first, changed = make_graph(repo, pipeline()), make_graph(repo, pipeline(sleep_s=1.0))  # same run
    assert execute_graph(repo, first, OPTIONS).exit_code == 0
    with pytest.raises(
        TaskExecutionError, match=r"work_config in output run .* differs.*sleep_s.*--clobber-config"
    ):
        execute_graph(repo, changed, ExecutionOptions(extend_run=True, skip_existing=True))


# -- pre-exec-init -----------------------------------------------------------------------------------


def test_pre_exec_init_is_idempotent(repo: Path) -> None:
    graph, changed = make_graph(repo, pipeline()), make_graph(repo, pipeline(fail=[2]))  # same run
    with Butler(repo) as butler:
        first = pre_exec_init(butler, graph)
        assert first.created_run and first.changed
        assert sorted(first.written) == [
            "add_config",
            "add_schema",
            "gather_config",
            "packages",
            "work_config",
        ]
        second = pre_exec_init(butler, graph)
        assert not second.changed and sorted(second.unchanged) == sorted(first.written)
        config = butler.get(graph.init_output_refs("work")["_config"])
        assert isinstance(config, WorkConfig)
        with pytest.raises(TaskExecutionError, match=r"work_config .* differs .*fail.*--clobber-config"):
            pre_exec_init(butler, changed)
        replaced = pre_exec_init(butler, changed, clobber_config=True)
        assert replaced.replaced == ["work_config"]
        assert butler.get("work_config", {}, collections=RUN).fail == [2]


# -- worker processes --------------------------------------------------------------------------------


@pytest.mark.slow
def test_processes_timeout_and_a_dying_worker(repo: Path, tmp_path: Path) -> None:
    graph = make_graph(repo, pipeline(fail=[1], sleep=[2], sleep_s=60, crash=[3]))
    path = tmp_path / "graph.qg"
    write_quantum_graph(graph, path)
    start = time.monotonic()
    report = execute_graph(
        repo,
        graph,
        ExecutionOptions(processes=2, timeout=4, register_dataset_types=True),
        graph_path=path,
    )
    assert time.monotonic() - start < 40
    assert _statuses(report) == {
        "add": {"succeeded": 4},
        "work": {"succeeded": 1, "failed": 3},
        "gather": {"blocked": 1},
    }
    errors = {failure.data_id: failure.error or "" for failure in report.failures}
    assert errors["{instrument: 'Cam', detector: 1}"] == "RuntimeError: told to fail on detector 1"
    assert errors["{instrument: 'Cam', detector: 2}"].startswith("timeout: still running after 4 s")
    assert errors["{instrument: 'Cam', detector: 3}"].startswith("WorkerDied: ")
    assert "exit code 17" in errors["{instrument: 'Cam', detector: 3}"]


@pytest.mark.slow
def test_two_processes_give_the_same_outputs(repo: Path) -> None:
    report = execute_graph(
        repo, make_graph(repo, pipeline()), ExecutionOptions(processes=2, register_dataset_types=True)
    )
    assert report.exit_code == 0, report.failures
    with Butler(repo, collections=[OUTPUT]) as butler:
        np.testing.assert_allclose(butler.get("total", instrument="Cam"), expected_total())
        assert len(butler.registry.query_datasets("work_metadata", RUN)) == 4


# -- the report --------------------------------------------------------------------------------------


def test_report_summary_and_exit_codes() -> None:
    report = ExecutionReport.for_labels(["a", "b"])
    report.add(QuantumRunResult(uuid.uuid4(), "a", "{x: 1}", RunStatus.SUCCEEDED))
    report.add(QuantumRunResult(uuid.uuid4(), "a", "{x: 2}", RunStatus.NO_WORK))
    assert report.exit_code == 0
    report.add(QuantumRunResult(uuid.uuid4(), "b", "{x: 2}", RunStatus.FAILED, "ValueError: no"))
    report.count("b", RunStatus.BLOCKED, 2)
    assert report.exit_code == 1
    assert report.format_summary().splitlines() == [
        "task   succeeded  no work  failed  blocked",
        "a              1        1       0        0",
        "b              0        0       1        2",
        "TOTAL          1        1       1        2",
    ]
    report.add(
        QuantumRunResult(uuid.uuid4(), "b", "{x: 3}", RunStatus.FAILED, "MissingInputError: gone", True)
    )
    assert report.exit_code == 3
    assert report.failures[0].describe() == "b {x: 2}: failed: ValueError: no"
