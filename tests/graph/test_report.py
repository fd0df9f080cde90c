"""``pipetask report``: quanta succeeded / failed (with the exception) / blocked / not run, before and after the merge."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from databases import DatabaseLocation
from framework_tasks import AddConfig, AddTask
from test_transfer import DETECTORS, INPUTS, OUTPUT_RUN, Run, make_graph, make_repository

from butler.butler import Butler
from butler.log_records import ButlerLogRecord
from graph.cli.pipetask import main as pipetask_main
from graph.cli.report import report as report_command
from graph.qgraph_io import write_quantum_graph
from graph.report import QuantumState, ReportSource, RunReport, TaskSummary, failure_from_log, report_run
from graph.transfer import transfer_from_graph


@pytest.fixture
def butler(tmp_path: Path, database: DatabaseLocation) -> Iterator[Butler]:
    with Butler(make_repository(tmp_path / "repo", database)) as butler:
        yield butler


def _counts(summary: TaskSummary) -> tuple[int, int, int, int, int]:
    return summary.expected, summary.succeeded, summary.failed, summary.blocked, summary.not_run


def _by_task(report: RunReport) -> dict[str, TaskSummary]:
    return {summary.label: summary for summary in report.tasks}


def test_states_before_and_after_the_merge(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all(failing=[1], skipped=[3])

    for source in (ReportSource.AUTO, ReportSource.FILES):
        before = report_run(butler, graph, source=source)
        tasks = _by_task(before)
        assert _counts(tasks["add"]) == (DETECTORS, 2, 1, 0, 1)
        assert _counts(tasks["gather"]) == (1, 0, 0, 1, 0)  # its upstream failed
        assert not before.complete
    assert _counts(_by_task(report_run(butler, graph, source=ReportSource.REGISTRY))["add"]) == (
        4,
        0,
        0,
        0,
        4,
    )

    transfer_from_graph(butler, graph, register_dataset_types=True)
    for source in ReportSource:
        after = _by_task(report_run(butler, graph, source=source))
        assert _counts(after["add"]) == (DETECTORS, 2, 1, 0, 1)
        assert _counts(after["gather"]) == (1, 0, 0, 1, 0)
    (failure,) = after["add"].failures
    assert failure.data_id == {"instrument": "Cam", "detector": 1}
    assert failure.node_id == str(graph.node_ids("add")[1])
    assert (failure.exception_type, failure.message) == ("RuntimeError", "told to fail")


def test_failure_exception_comes_from_the_log(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all(failing=[0, 2])
    failures = _by_task(report_run(butler, graph))["add"].failures
    assert [(f.data_id["detector"], f.exception_type, f.message) for f in failures] == [
        (0, "RuntimeError", "told to fail"),
        (2, "RuntimeError", "told to fail"),
    ]


def test_all_succeeded_and_no_work_counts_as_success(butler: Butler) -> None:
    graph = make_graph(butler)
    runner = Run(butler, graph)
    runner.init()
    config = AddConfig()
    config.nothing = True
    for detector in range(DETECTORS):
        runner.quantum("add", detector, AddTask(config=config) if detector == 0 else None)
    runner.quantum("gather")
    report = report_run(butler, graph)
    assert report.complete
    assert [_counts(t) for t in report.tasks] == [(4, 4, 0, 0, 0), (1, 1, 0, 0, 0)]


def test_missing_input_file_blocks_downstream(butler: Butler) -> None:
    graph = make_graph(butler)
    raw = butler.find_dataset("numbers", instrument="Cam", detector=2, collections=INPUTS)
    assert raw is not None
    butler.get_uri(raw).remove()
    runner = Run(butler, graph)
    runner.init()
    for detector in (0, 1, 3):  # detector 2's job stopped before running the task: no log
        runner.quantum("add", detector)
    report = _by_task(report_run(butler, graph))
    assert _counts(report["add"]) == (4, 3, 0, 1, 0)
    assert report["add"].blocked_by_missing_input == 1
    assert _counts(report["gather"]) == (1, 0, 0, 1, 0)
    # The registry alone cannot see files: the quantum simply did not run.
    registry_only = _by_task(report_run(butler, graph, source=ReportSource.REGISTRY))
    assert registry_only["add"].not_run == 4


def test_max_failures_limits_logs_read_not_counts(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all(failing=[0, 1, 2, 3])
    add = _by_task(report_run(butler, graph, max_failures=1))["add"]
    assert add.failed == 4 and len(add.failures) == 1


def test_failure_from_log_formats() -> None:
    def record(level: str, message: str) -> ButlerLogRecord:
        return ButlerLogRecord("quanta.add", level, message, 0.0)

    assert failure_from_log(
        [
            record("INFO", "Adding."),
            record("ERROR", "Task add failed on {instrument: 'Cam', detector: 1}: KeyError: 'x: y'"),
        ]
    ) == ("KeyError", "'x: y'")
    assert failure_from_log([record("ERROR", "ValueError: bad\nsecond line")]) == (
        "ValueError",
        "bad\nsecond line",
    )
    assert failure_from_log([record("ERROR", "something broke")]) == ("", "something broke")
    assert failure_from_log([record("INFO", "fine")]) == ("", "(no ERROR record in the log)")


def test_quantum_states_are_ordered_for_counting() -> None:
    assert [s.value for s in QuantumState] == [0, 1, 2, 3]


@pytest.fixture
def pipetask(monkeypatch: pytest.MonkeyPatch) -> None:
    """``pipetask report``, whether or not pipetask.py registers it yet."""
    monkeypatch.setitem(pipetask_main.commands, "report", report_command)


@pytest.mark.usefixtures("pipetask")
def test_cli_report_table_and_json(butler: Butler, tmp_path: Path) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all(failing=[1], skipped=[3])
    path = tmp_path / "run.qg"
    write_quantum_graph(graph, path)
    repo = str(butler.file_datastore.root.ospath)
    runner = CliRunner()
    result = runner.invoke(pipetask_main, ["report", repo, str(path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"Run {OUTPUT_RUN} (states from: auto)"
    assert lines[1].split() == ["task", "expected", "succeeded", "failed", "blocked", "not", "run"]
    assert lines[3].split() == ["add", "4", "2", "1", "0", "1"]
    assert lines[4].split() == ["gather", "1", "0", "0", "1", "0"]
    assert lines[5].split() == ["TOTAL", "5", "2", "1", "1", "1"]
    assert "Failed quanta (1; the first 1 shown):" in result.output
    assert "instrument=Cam, detector=1" in result.output

    as_json = runner.invoke(pipetask_main, ["report", repo, str(path), "--json", "--source", "files"])
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.output)
    assert data["source"] == "files"
    assert [(t["label"], t["succeeded"], t["failed"], t["blocked"]) for t in data["tasks"]] == [
        ("add", 2, 1, 0),
        ("gather", 0, 0, 1),
    ]
    assert data["tasks"][0]["failures"][0]["data_id"] == {"instrument": "Cam", "detector": 1}
