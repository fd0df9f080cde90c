"""The contract every engine plugin's tests subclass.

An engine's test module defines ``class TestMyEngineContract(WmsServiceContract)`` and overrides the
`service` fixture (and `runs_jobs` when the engine's server cannot run on this machine, as for
HTCondor and PanDA: then only the interface and `prepare` are checked). The workflows here are
small shell-command workflows, so the contract checks the engine, not the science payload.
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import ClassVar

import pytest

from bps.errors import BpsError
from bps.wms import Capability, RunHandle, RunInfo, RunReport, WmsService, WmsSettings, WmsState
from bps.workflow import GenericWorkflow, GenericWorkflowJob, JobKind, JobResources, WhenRun

__all__ = ["WmsServiceContract", "marker_workflow"]

RUN_INFO = RunInfo(
    run_name="u_contract_run",
    output_run="u/contract/run",
    operator="contract",
    project="quanta-tests",
    campaign="contract",
    payload_name="contract",
    compute_site="local",
)

_OPTIONAL_METHODS = {Capability.CANCEL: "cancel", Capability.RESTART: "restart", Capability.PING: "ping"}


def _job(name: str, label: str, kind: JobKind, command: str, retries: int = 0) -> GenericWorkflowJob:
    return GenericWorkflowJob(
        name=name,
        label=label,
        kind=kind,
        command=command,
        node_ids=(),
        quanta_counts={label: 1} if kind is JobKind.PAYLOAD else {},
        resources=JobResources(request_memory=256, number_of_retries=retries, retry_unless_exit=(1, 2)),
        compute_site="local",
        environment={"CONTRACT_RUN": "yes"},
        tags={},
    )


def marker_workflow(markers: Path, failing: str | None = None) -> GenericWorkflow:
    """Init, then ``a`` -> (``b1``, ``b2``) -> ``c``, and a final job run ALWAYS.

    Each job appends its name to ``markers/<name>`` (so a test can count runs); the job named
    ``failing`` exits 1 instead. The final job lists the markers into ``markers/final``.
    """
    markers.mkdir(parents=True, exist_ok=True)

    def touch(name: str) -> str:
        if name == failing:
            return "echo failing on purpose >&2; exit 1"
        target = shlex.quote(str(markers / name))
        return f'test "$CONTRACT_RUN" = yes && echo {name} >> {target}'

    workflow = GenericWorkflow("contract", RUN_INFO)
    workflow.add_job(_job("pipetaskInit", "pipetaskInit", JobKind.INIT, touch("pipetaskInit")))
    workflow.add_job(_job("a_1", "a", JobKind.PAYLOAD, touch("a_1")), parents=["pipetaskInit"])
    for name in ("b_1", "b_2"):
        workflow.add_job(_job(name, "b", JobKind.PAYLOAD, touch(name)), parents=["a_1"])
    workflow.add_job(_job("c_1", "c", JobKind.PAYLOAD, touch("c_1")), parents=["b_1", "b_2"])
    # The listing is taken before the redirection creates the file, so it does not list itself.
    final = f'names=$(ls {shlex.quote(str(markers))}); echo "$names" > {shlex.quote(str(markers / "final"))}'
    workflow.set_final(_job("finalJob", "finalJob", JobKind.FINAL, final), WhenRun.ALWAYS)
    workflow.validate()
    return workflow


class WmsServiceContract:
    """What every `WmsService` must do. Subclasses override `service` (and maybe `runs_jobs`)."""

    runs_jobs: ClassVar[bool] = True
    """False for engines that cannot run jobs on this machine: submit/status/report are not exercised."""
    timeout_s: ClassVar[float] = 120.0

    @pytest.fixture
    def service(self, tmp_path: Path) -> WmsService:
        """The engine under test, with settings that run here."""
        raise NotImplementedError("engine tests override the service fixture")

    # -- helpers ----------------------------------------------------------------------------------

    def submit(self, service: WmsService, workflow: GenericWorkflow, submit_dir: Path) -> RunHandle:
        """Save, prepare and submit ``workflow`` the way core does."""
        submit_dir.mkdir(parents=True, exist_ok=True)
        workflow.save(submit_dir / "generic_workflow.json")
        return service.submit(service.prepare(workflow, submit_dir))

    def wait(self, service: WmsService, submit_dir: Path) -> RunReport:
        """Poll the engine's report until the run is final (or fail after `timeout_s`)."""
        deadline = time.monotonic() + self.timeout_s
        while True:
            report = service.report(submit_dir)
            if report.state.is_final:
                return report
            if time.monotonic() > deadline:
                pytest.fail(f"run in {submit_dir} still {report.state.name} after {self.timeout_s} s")
            time.sleep(0.2)

    def needs_jobs(self) -> None:
        if not self.runs_jobs:
            pytest.skip("this engine's server cannot run on this machine; prepare-only contract")

    # -- the interface ----------------------------------------------------------------------------

    def test_declares_name_capabilities_and_settings(self, service: WmsService) -> None:
        assert service.name and service.name.isidentifier()
        assert service.capabilities <= set(Capability)
        assert issubclass(service.settings_class, WmsSettings)
        assert isinstance(service.settings, service.settings_class)
        assert service.engine_version()

    def test_optional_methods_follow_capabilities(self, service: WmsService) -> None:
        for capability, method in _OPTIONAL_METHODS.items():
            overridden = getattr(type(service), method) is not getattr(WmsService, method)
            assert overridden == (capability in service.capabilities), (capability, method)

    def test_prepare_writes_only_into_the_submit_dir(self, service: WmsService, tmp_path: Path) -> None:
        workflow = marker_workflow(tmp_path / "markers")
        submit_dir = tmp_path / "submit"
        submit_dir.mkdir()
        workflow.save(submit_dir / "generic_workflow.json")
        prepared = service.prepare(workflow, submit_dir)
        assert prepared.submit_dir == submit_dir
        assert prepared.run == workflow.run
        for path in prepared.files:
            assert path.exists(), path
            assert path.resolve().is_relative_to(submit_dir.resolve()), path
        assert not (tmp_path / "markers" / "a_1").exists(), "prepare must not run jobs"

    def test_ping_answers(self, service: WmsService) -> None:
        if Capability.PING not in service.capabilities:
            pytest.skip(f"{service.name} declares no ping")
        assert service.ping().strip()

    # -- running ----------------------------------------------------------------------------------

    def test_runs_a_workflow_in_dependency_order(self, service: WmsService, tmp_path: Path) -> None:
        self.needs_jobs()
        markers = tmp_path / "markers"
        workflow = marker_workflow(markers)
        handle = self.submit(service, workflow, tmp_path / "submit")
        assert handle.engine == service.name
        assert handle.run_id and handle.run_name == RUN_INFO.run_name
        report = self.wait(service, tmp_path / "submit")
        assert report.state is WmsState.SUCCEEDED, report
        assert service.status(tmp_path / "submit") is WmsState.SUCCEEDED
        assert dict(report.expected) == workflow.job_counts()
        for label, expected in workflow.job_counts().items():
            assert dict(report.counts[label]) == {WmsState.SUCCEEDED: expected}, label
        assert report.percent_succeeded == 100.0
        for name in ("pipetaskInit", "a_1", "b_1", "b_2", "c_1"):
            assert (markers / name).read_text() == f"{name}\n", "each job runs exactly once"
        # c_1 ran after both b's and the final job after everything: it saw every marker.
        assert (markers / "final").read_text().split() == ["a_1", "b_1", "b_2", "c_1", "pipetaskInit"]

    def test_a_failed_job_blocks_its_descendants_and_the_final_job_still_runs(
        self, service: WmsService, tmp_path: Path
    ) -> None:
        self.needs_jobs()
        markers = tmp_path / "markers"
        self.submit(service, marker_workflow(markers, failing="b_1"), tmp_path / "submit")
        report = self.wait(service, tmp_path / "submit")
        assert report.state is WmsState.FAILED
        assert service.status(tmp_path / "submit") is WmsState.FAILED
        jobs = {job.name: job for job in report.jobs}
        failed = jobs["b_1"]
        assert failed.state is WmsState.FAILED
        assert failed.exit_code == 1
        assert failed.reason
        assert failed.log_path is not None and "failing on purpose" in failed.log_path.read_text()
        assert jobs["b_2"].state is WmsState.SUCCEEDED
        assert jobs["c_1"].state is WmsState.PRUNED
        assert "b_1" in jobs["c_1"].reason
        assert not (markers / "c_1").exists()
        assert (markers / "final").exists(), "finalJob (whenRun ALWAYS) runs after a failure"
        assert report.exit_code_summary["b"] == {1: 1}

    def test_status_of_an_unknown_submit_dir_is_an_error(self, service: WmsService, tmp_path: Path) -> None:
        with pytest.raises(BpsError):
            service.status(tmp_path / "nothing-here")
