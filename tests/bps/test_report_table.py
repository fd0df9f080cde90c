"""The ``bps report`` tables, from hand-made `RunReport` objects."""

from __future__ import annotations

import json
from pathlib import Path

from bps.report_table import (
    detail_text,
    exit_code_table,
    failed_jobs_table,
    format_table,
    label_table,
    reports_to_json,
    summary_table,
)
from bps.wms import JobReport, RunInfo, RunReport, WmsState

RUN = RunInfo(
    "u_demo_coadds_20260101T000000Z", "u/demo/coadds/20260101T000000Z", "demo", "dm", "c1", "coadds", "local"
)


def make_report(state: WmsState = WmsState.FAILED, **changes: object) -> RunReport:
    """A run of 1 init, 4 isr, 2 calibrate and a final job; one isr job failed, calibrate pruned."""
    values: dict[str, object] = {
        "run_id": "run-1",
        "run": RUN,
        "submit_dir": Path("/submit/run"),
        "engine": "parsl",
        "state": state,
        "expected": {"pipetaskInit": 1, "isr": 4, "calibrate": 2, "finalJob": 1},
        "counts": {
            "pipetaskInit": {WmsState.SUCCEEDED: 1},
            "isr": {WmsState.SUCCEEDED: 3, WmsState.FAILED: 1},
            "calibrate": {WmsState.SUCCEEDED: 1, WmsState.PRUNED: 1},
            "finalJob": {WmsState.SUCCEEDED: 1},
        },
        "jobs": (
            JobReport("isr_1", "isr", WmsState.SUCCEEDED, attempts=1, exit_code=0),
            JobReport(
                "isr_2",
                "isr",
                WmsState.FAILED,
                attempts=4,
                exit_code=1,
                reason="exit code 1",
                log_path=Path("/submit/run/jobs/isr/isr_2.log"),
            ),
            JobReport("calibrate_2", "calibrate", WmsState.PRUNED, reason="blocked by isr_2"),
        ),
        "submitted_at": 1_767_225_600.0,
    }
    values.update(changes)
    return RunReport(**values)  # type: ignore[arg-type]


def test_format_table_aligns_text_left_numbers_right() -> None:
    text = format_table(("NAME", "N"), [("a", 1), ("long-name", 100)])
    assert text.splitlines() == ["NAME        N", "--------- ---", "a           1", "long-name 100"]


def test_summary_table_has_ctrl_bps_columns() -> None:
    lines = summary_table([make_report(), make_report(WmsState.RUNNING, run_id="run-2")]).splitlines()
    assert lines[0].split() == ["X", "STATE", "%S", "ID", "OPERATOR", "PROJECT", "CAMPAIGN", "PAYLOAD", "RUN"]
    assert lines[2].split() == ["FAILED", "75", "run-1", "demo", "dm", "c1", "coadds", RUN.run_name]
    # A running run with failed jobs is flagged F.
    assert lines[3].split()[:3] == ["F", "RUNNING", "75"]


def test_label_table_counts_states_expected_and_total() -> None:
    lines = label_table(make_report()).splitlines()
    header = lines[0].split()
    assert header[0] == "LABEL" and header[-1] == "EXPECTED" and "SUCCEEDED" in header
    rows = {
        line.split()[0]: dict(zip(header[1:], map(int, line.split()[1:]), strict=True)) for line in lines[2:]
    }
    assert list(rows) == ["pipetaskInit", "isr", "calibrate", "finalJob", "TOTAL"]
    assert rows["isr"]["SUCCEEDED"] == 3 and rows["isr"]["FAILED"] == 1 and rows["isr"]["EXPECTED"] == 4
    assert rows["calibrate"]["PRUNED"] == 1
    assert rows["TOTAL"]["SUCCEEDED"] == 6 and rows["TOTAL"]["EXPECTED"] == 8


def test_jobs_unknown_to_the_engine_count_as_unready() -> None:
    report = make_report(WmsState.RUNNING, counts={"isr": {WmsState.RUNNING: 1}})
    rows = {line.split()[0]: line.split() for line in label_table(report).splitlines()[2:]}
    header = label_table(report).splitlines()[0].split()
    unready = header.index("UNREADY")
    assert rows["isr"][unready] == "3" and rows["pipetaskInit"][unready] == "1"
    assert rows["TOTAL"][unready] == "7"


def test_failed_jobs_table_shows_exit_code_reason_and_log() -> None:
    text = failed_jobs_table(make_report())
    assert text.splitlines()[0].split() == ["JOB", "LABEL", "ATTEMPTS", "EXIT", "REASON", "LOG"]
    assert "isr_2" in text and "exit code 1" in text and "/submit/run/jobs/isr/isr_2.log" in text
    assert "calibrate_2" not in text  # pruned, not failed
    assert failed_jobs_table(make_report(WmsState.SUCCEEDED, jobs=())) == ""


def test_exit_code_table_splits_payload_and_infrastructure() -> None:
    report = make_report(exit_code_summary={"isr": {1: 2, 137: 1}})
    rows = {line.split()[0]: line for line in exit_code_table(report).splitlines()[2:]}
    assert rows["isr"].split() == ["isr", "2", "1", "(x2)", "1", "137"]
    assert rows["calibrate"].split() == ["calibrate", "0", "0"]
    # Without the engine's summary the failed jobs are counted.
    counted = {line.split()[0]: line.split() for line in exit_code_table(make_report()).splitlines()[2:]}
    assert counted["isr"] == ["isr", "1", "1", "0"]


def test_detail_text_has_header_tables_and_notes() -> None:
    text = detail_text(make_report(messages=("driver process 12 is gone",)), return_exit_codes=True)
    assert "Path:       /submit/run" in text
    assert "Note:       driver process 12 is gone" in text
    assert "Failed jobs:" in text and "Exit codes of failed jobs:" in text
    assert "Exit codes" not in detail_text(make_report())


def test_json_has_states_by_name_and_paths_as_text() -> None:
    content = json.loads(reports_to_json([make_report()], return_exit_codes=True))
    assert content["format_version"] == 1
    run = content["runs"][0]
    assert run["state"] == "FAILED" and run["percent_succeeded"] == 75.0
    assert run["counts"]["isr"] == {"SUCCEEDED": 3, "FAILED": 1}
    assert run["jobs"][1]["log_path"] == "/submit/run/jobs/isr/isr_2.log"
    assert run["exit_code_summary"] == {"isr": {"1": 1}}
    assert "exit_code_summary" not in json.loads(reports_to_json([make_report()]))["runs"][0]
