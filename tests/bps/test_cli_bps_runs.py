"""``bps report|status|cancel|restart|ping`` and the CLI's error handling, against a small fake engine.

The fake engine keeps its run state in ``<submit>/fake/state.json``; each `report` call advances a
running run by one poll, so ``--wait`` followers and tables can be tested without Parsl.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import ClassVar

import pytest
from bps_cli import bps

from bps import api
from bps.progress import follow_run
from bps.submit_dir import PreparedRun, write_prepared
from bps.wms import (
    Capability,
    JobReport,
    RunHandle,
    RunInfo,
    RunReport,
    WmsService,
    WmsSettings,
    WmsState,
    WmsWorkflow,
)
from bps.workflow import GenericWorkflow

SERVICE = f"{__name__}.FakeService"
RUN = RunInfo("u_demo_run1", "u/demo/run1", "demo", "proj", "camp", "coadds", "local")


class FakeSettings(WmsSettings):
    """How the fake run ends and how many polls it takes."""

    final_state: str = "SUCCEEDED"
    polls: int = 2


class FakeService(WmsService):
    """An engine whose runs are a JSON file: RUNNING for ``polls`` reports, then ``final_state``."""

    name = "fake"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability) - {Capability.MEMORY_RETRY}
    settings_class = FakeSettings

    @classmethod
    def engine_version(cls) -> str:
        return "1.0"

    def prepare(self, workflow: GenericWorkflow, submit_dir: Path) -> WmsWorkflow:
        return WmsWorkflow(workflow.run, submit_dir)

    def submit(self, prepared: WmsWorkflow) -> RunHandle:
        self._write(prepared.submit_dir, {"state": "RUNNING", "polls": 0, "restarts": 0})
        return RunHandle(
            "fake", "1.0", f"fake-{prepared.run.run_name}", prepared.run.run_name, prepared.submit_dir
        )

    def _write(self, submit_dir: Path, state: dict[str, object]) -> None:
        (submit_dir / "fake").mkdir(exist_ok=True)
        (submit_dir / "fake" / "state.json").write_text(json.dumps(state))

    def _read(self, submit_dir: Path) -> dict[str, object]:
        content: dict[str, object] = json.loads((submit_dir / "fake" / "state.json").read_text())
        return content

    def status(self, submit_dir: Path) -> WmsState:
        return WmsState[str(self._read(submit_dir)["state"])]

    def report(self, submit_dir: Path) -> RunReport:
        settings = self.settings
        assert isinstance(settings, FakeSettings)
        content = self._read(submit_dir)
        if content["state"] == "RUNNING":
            polls = int(str(content["polls"])) + 1
            content = {**content, "polls": polls}
            if polls > settings.polls:
                content["state"] = settings.final_state
            self._write(submit_dir, content)
        state = WmsState[str(content["state"])]
        isr = WmsState.FAILED if state is WmsState.FAILED else state
        jobs = (
            JobReport("isr_1", "isr", WmsState.SUCCEEDED if state.is_final else state, 1, 0),
            JobReport(
                "isr_2",
                "isr",
                isr,
                4,
                1 if isr is WmsState.FAILED else 0,
                "exit code 1",
                submit_dir / "x.log",
            ),
        )
        counts: dict[str, dict[WmsState, int]] = {}
        for job in jobs:
            counts.setdefault(job.label, {}).setdefault(job.state, 0)
            counts[job.label][job.state] += 1
        return RunReport(f"fake-{RUN.run_name}", RUN, submit_dir, "fake", state, {"isr": 2}, counts, jobs)

    def cancel(self, submit_dir: Path) -> None:
        self._write(submit_dir, {**self._read(submit_dir), "state": "DELETED"})

    def restart(self, submit_dir: Path) -> RunHandle:
        content = self._read(submit_dir)
        restarts = int(str(content["restarts"])) + 1
        self._write(submit_dir, {"state": "RUNNING", "polls": 0, "restarts": restarts})
        return RunHandle("fake", "1.0", f"fake-{RUN.run_name}-r{restarts}", RUN.run_name, submit_dir)

    def ping(self) -> str:
        return "fake engine: ready"


class ReportOnlyService(FakeService):
    """An engine that can neither cancel nor restart."""

    name = "report-only"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.SUBMIT, Capability.REPORT})


def submitted_run(
    tmp_path: Path, service_class: str = SERVICE, run: RunInfo = RUN, **settings: object
) -> Path:
    """A submit directory prepared for ``service_class`` and submitted through `bps.api.submit`."""
    submit_dir = tmp_path / "submit"
    submit_dir.mkdir()
    service = api.service_for(service_class, settings)
    write_prepared(submit_dir, PreparedRun(service_class, service.settings.model_dump(by_alias=True), run))
    api.submit(service, WmsWorkflow(run, submit_dir))
    return submit_dir


def test_status_exit_code_is_the_state_value(tmp_path: Path) -> None:
    submit_dir = submitted_run(tmp_path)
    assert bps("status", "--id", "fake-u_demo_run1") == (15, "RUNNING\n", "")
    bps("report", "--id", str(submit_dir))
    bps("report", "--id", str(submit_dir))
    assert "RUNNING" in bps("report", "--id", "u_demo_run1")[1]  # third poll: finished now
    assert bps("status", "--id", str(submit_dir))[:2] == (0, "SUCCEEDED\n")


def test_report_summary_and_detail(tmp_path: Path) -> None:
    submitted_run(tmp_path, final_state="FAILED", polls=0)
    code, out, _ = bps("report")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["X", "STATE", "%S", "ID"]
    assert lines[2].split()[:3] == ["FAILED", "50", "fake-u_demo_run1"]
    code, out, _ = bps("report", "--id", "fake-u_demo_run1", "--return-exit-codes")
    assert "Failed jobs:" in out and "exit code 1" in out and "x.log" in out
    assert "PAYLOAD ERROR COUNT" in out
    content = json.loads(bps("report", "--id", "fake-u_demo_run1", "--json")[1])
    assert content["runs"][0]["state"] == "FAILED"
    assert bps("report", "--user", "nobody") == (0, "No runs found.\n", "")


def test_cancel_and_restart_update_the_run(tmp_path: Path) -> None:
    submit_dir = submitted_run(tmp_path)
    assert bps("cancel", "--id", "fake-u_demo_run1")[:2] == (
        0,
        "Cancelled run fake-u_demo_run1 (u_demo_run1).\n",
    )
    assert bps("status", "--id", "fake-u_demo_run1")[0] == WmsState.DELETED
    code, out, _ = bps("--no-progress", "restart", "--id", "fake-u_demo_run1", "--wait")
    assert code == 0
    assert "Run Id: fake-u_demo_run1-r1" in out and "ended SUCCEEDED" in out
    assert json.loads((submit_dir / "run.json").read_text())["run_id"] == "fake-u_demo_run1-r1"
    assert bps("status", "--id", "fake-u_demo_run1-r1")[0] == 0


def test_missing_capability_is_one_line(tmp_path: Path) -> None:
    submitted_run(tmp_path, f"{__name__}.ReportOnlyService")
    code, _, err = bps("cancel", "--id", "fake-u_demo_run1")
    assert code == 1 and err == "Error: Engine 'report-only' cannot cancel.\n"
    assert bps("restart", "--id", "fake-u_demo_run1")[2] == "Error: Engine 'report-only' cannot restart.\n"


def test_unknown_run_is_one_line_and_debug_adds_the_traceback() -> None:
    code, _, err = bps("status", "--id", "nope")
    assert code == 1 and err.startswith("Error: No run with id 'nope'") and err.count("\n") == 1
    code, _, err = bps("--log-level", "DEBUG", "status", "--id", "nope")
    assert "Traceback" in err and "RunNotFoundError" in err


def test_ping(tmp_path: Path) -> None:
    assert bps("ping", "--wms", SERVICE) == (0, "fake engine: ready\n", "")
    code, _, err = bps("ping", "--wms", "htcondor")
    assert code == 1 and "pip install 'quanta[htcondor]'" in err


def test_follow_run_logs_each_change(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    submit_dir = submitted_run(tmp_path, polls=3)
    service = api.service_for(SERVICE, {"polls": 3})
    with caplog.at_level(logging.INFO, logger="bps.progress"):
        report = follow_run(service, submit_dir, show_bar=False, sleep=lambda _: None)
    assert report.state is WmsState.SUCCEEDED
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0].startswith("Run u_demo_run1: RUNNING") and messages[-1].startswith(
        "Run u_demo_run1: SUCCEEDED"
    )


def test_follow_run_with_a_bar(tmp_path: Path) -> None:
    submit_dir = submitted_run(tmp_path)
    report = follow_run(api.service_for(SERVICE), submit_dir, show_bar=True, sleep=lambda _: None)
    assert report.state is WmsState.SUCCEEDED


def test_log_file_options(tmp_path: Path) -> None:
    submitted_run(tmp_path)
    log = tmp_path / "bps.json"
    text_log = tmp_path / "bps.log"
    args = ("--log-level", "INFO", "--long-log", "--log-file", str(log), "--log-file", str(text_log))
    code, _, err = bps(*args, "report", "--id", "nope")
    assert code == 1 and err.startswith("Error: No run with id")
    assert bps(*args, "restart", "--id", "fake-u_demo_run1", "--wait")[0] == 0  # logs progress at INFO
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert records[-1]["level"] == "INFO" and records[-1]["message"].startswith("Run u_demo_run1: SUCCEEDED")
    assert " INFO bps.progress (" in text_log.read_text()
    # The handlers are gone once the command is over.
    logging.getLogger("bps.test").warning("after")
    assert "after" not in text_log.read_text()


def test_report_lists_the_runs_it_can_and_warns_about_the_others(tmp_path: Path) -> None:
    good = submitted_run(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    submitted_run(broken, run=dataclasses.replace(RUN, run_name="u_demo_broken"))
    content = json.loads((broken / "submit" / "prepared.json").read_text())
    content["wms_service_class"] = "no_such_module.Engine"
    (broken / "submit" / "prepared.json").write_text(json.dumps(content))
    code, out, err = bps("report")
    assert code == 0 and len(out.splitlines()) == 3 and "fake-u_demo_run1" in out
    assert "Cannot report run fake-u_demo_broken" in err and "no_such_module" in err
    assert bps("report", "--id", str(good))[0] == 0


def test_an_unwritable_run_index_does_not_fail_a_submission(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "home"
    blocker.write_text("not a directory")
    monkeypatch.setenv("QUANTA_BPS_HOME", str(blocker))
    with caplog.at_level(logging.WARNING, logger="bps.api"):
        submit_dir = submitted_run(tmp_path)
    assert "Cannot write the run index" in caplog.text and str(submit_dir) in caplog.text
    assert bps("status", "--id", str(submit_dir))[0] == WmsState.RUNNING
