"""Small synthetic generic workflows of shell commands for the Parsl engine's tests."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bps.wms import JobReport, RunInfo, RunReport, WmsService
from bps.workflow import (
    GENERIC_WORKFLOW_FILE,
    GenericWorkflow,
    GenericWorkflowJob,
    JobKind,
    JobResources,
    WhenRun,
)


@dataclass
class Spec:
    """One job of a test workflow."""

    name: str
    command: str
    parents: tuple[str, ...] = ()
    label: str = "task"
    resources: JobResources = field(default_factory=lambda: JobResources(request_memory=500))


def run_info(name: str = "u_test_run") -> RunInfo:
    """A RunInfo for tests."""
    return RunInfo(
        run_name=name,
        output_run=name.replace("_", "/"),
        operator="tester",
        project="proj",
        campaign="camp",
        payload_name="synthetic",
        compute_site="local",
    )


def make_job(spec: Spec, kind: JobKind = JobKind.PAYLOAD) -> GenericWorkflowJob:
    """The GenericWorkflowJob for ``spec``."""
    return GenericWorkflowJob(
        name=spec.name,
        label=spec.label,
        kind=kind,
        command=spec.command,
        node_ids=(),
        quanta_counts={spec.label: 1} if kind is JobKind.PAYLOAD else {},
        resources=spec.resources,
        compute_site="local",
        environment={"QUANTA_TEST_JOB": spec.name},
        tags={},
    )


def make_workflow(
    submit_dir: Path,
    specs: Iterable[Spec],
    *,
    final: str | None = None,
    when: WhenRun = WhenRun.ALWAYS,
    init: str | None = None,
) -> GenericWorkflow:
    """A workflow of ``specs`` (plus init and final commands), saved in ``submit_dir``."""
    workflow = GenericWorkflow("synthetic", run_info())
    if init is not None:
        workflow.add_job(make_job(Spec("pipetaskInit", init, label="pipetaskInit"), JobKind.INIT))
    for spec in specs:
        parents = spec.parents if spec.parents or init is None else ("pipetaskInit",)
        workflow.add_job(make_job(spec), parents)
    if final is not None:
        workflow.set_final(make_job(Spec("finalJob", final, label="finalJob"), JobKind.FINAL), when)
    workflow.validate()
    submit_dir.mkdir(parents=True, exist_ok=True)
    workflow.save(submit_dir / GENERIC_WORKFLOW_FILE)
    return workflow


def marker(directory: Path, name: str) -> str:
    """A shell snippet appending one line to ``<directory>/<name>.runs`` (counts a job's runs)."""
    return f"echo run >> {directory / name}.runs"


def runs(directory: Path, name: str) -> int:
    """How many times the job behind ``marker(directory, name)`` ran."""
    path = directory / f"{name}.runs"
    return len(path.read_text().splitlines()) if path.exists() else 0


RETRY = JobResources(request_memory=500, number_of_retries=2, retry_unless_exit=(1, 2))
"""Two retries, none for exit codes 1 and 2 (the bps defaults)."""


def wait_until(check: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """Poll ``check`` until it is true; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def run_to_end(engine: WmsService, submit: Path, timeout: float = 120.0) -> RunReport:
    """Wait for the run in ``submit`` to reach a final state; its report."""
    wait_until(lambda: engine.status(submit).is_final, timeout, "the run to end")
    return engine.report(submit)


def by_name(report: RunReport) -> dict[str, JobReport]:
    """The report's jobs by name."""
    return {job.name: job for job in report.jobs}
