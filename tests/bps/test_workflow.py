"""The generic workflow: resources, jobs and dependencies, bulk adds, validation, JSON round trip."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np
import pytest

from bps.errors import WorkflowError
from bps.wms import RunInfo
from bps.workflow import (
    GENERIC_WORKFLOW_FILE,
    GenericWorkflow,
    GenericWorkflowJob,
    JobKind,
    JobResources,
    JobTemplate,
    WhenRun,
    WorkflowFile,
    uuid_bytes,
    uuid_strings,
)

RUN = RunInfo("u_me_run", "u/me/run", "me", "proj", "camp", "pay", "local")


def job(
    name: str,
    kind: JobKind = JobKind.PAYLOAD,
    *,
    label: str | None = None,
    node_ids: tuple[str, ...] = (),
    command: str | None = None,
    tags: dict[str, str] | None = None,
) -> GenericWorkflowJob:
    ids = ",".join(node_ids)
    return GenericWorkflowJob(
        name=name,
        label=label or name.split("_")[0],
        kind=kind,
        command=command
        if command is not None
        else f"pipetask run-qbb repo <FILE:qgraphFile> --qgraph-node-id {ids}",
        node_ids=node_ids,
        quanta_counts={label or name.split("_")[0]: len(node_ids)} if node_ids else {},
        resources=JobResources(request_memory=1000),
        compute_site="local",
        environment={"A": "1"},
        tags=tags or {},
    )


def ids(count: int) -> tuple[str, ...]:
    return tuple(str(uuid.uuid4()) for _ in range(count))


@pytest.fixture
def workflow() -> GenericWorkflow:
    wf = GenericWorkflow("wf", RUN)
    wf.add_file(WorkflowFile("qgraphFile", "/submit/run.qg", wms_transfer=True))
    wf.add_job(job("pipetaskInit", JobKind.INIT, command="pipetask pre-exec-init-qbb repo <FILE:qgraphFile>"))
    wf.add_job(job("isr_1", node_ids=ids(2), tags={"visit": "1"}), ["pipetaskInit"])
    wf.add_job(job("isr_2", node_ids=ids(1), tags={"visit": "2"}), ["pipetaskInit"])
    wf.add_job(job("summary_1", node_ids=ids(1)), ["isr_1", "isr_2", "pipetaskInit"])
    wf.set_final(
        job("finalJob", JobKind.FINAL, command="butler transfer-from-graph <FILE:qgraphFile> repo"),
        WhenRun.ALWAYS,
    )
    return wf


def test_memory_for_attempt_escalates_and_caps() -> None:
    resources = JobResources(request_memory=1000, memory_multiplier=2.0, request_memory_max=3000)
    assert [resources.memory_for_attempt(a) for a in (1, 2, 3, 4)] == [1000, 2000, 3000, 3000]
    limited = JobResources(
        request_memory=1000, memory_multiplier=3.0, request_memory_max=8000, memory_limit=5000
    )
    assert [limited.memory_for_attempt(a) for a in (1, 2, 3)] == [1000, 3000, 5000]
    assert JobResources(request_memory=1000, memory_multiplier=1.0).memory_for_attempt(3) == 1000
    assert JobResources(request_memory=1000, memory_multiplier=None).memory_for_attempt(3) == 1000


def test_should_retry() -> None:
    resources = JobResources(number_of_retries=2, retry_unless_exit=(1, 2))
    assert resources.should_retry(1, 3)
    assert resources.should_retry(2, None)  # killed: no exit code
    assert not resources.should_retry(3, 3)  # retries used up
    assert not resources.should_retry(1, 1) and not resources.should_retry(1, 2)
    assert not JobResources().should_retry(1, 3)


def test_jobs_and_dependencies(workflow: GenericWorkflow) -> None:
    workflow.validate()
    assert len(workflow) == 4
    assert [j.name for j in workflow.jobs()] == ["pipetaskInit", "isr_1", "isr_2", "summary_1"]
    assert workflow.init_job is not None and workflow.init_job.kind is JobKind.INIT
    assert workflow.final_job is not None and workflow.final_when is WhenRun.ALWAYS
    assert sorted(workflow.parents("summary_1")) == ["isr_1", "isr_2", "pipetaskInit"]
    assert sorted(workflow.children("pipetaskInit")) == ["isr_1", "isr_2", "summary_1"]
    assert workflow.parents("finalJob") == []
    assert workflow.job_counts() == {"pipetaskInit": 1, "isr": 2, "summary": 1, "finalJob": 1}
    assert workflow.quanta_counts() == {"isr": 3, "summary": 1}
    isr = workflow.job("isr_1")
    assert isr.tags == {"visit": "1"} and isr.environment == {"A": "1"} and len(isr.node_ids) == 2
    assert isr.command.endswith(",".join(isr.node_ids))
    assert workflow.resolve_command(isr).startswith("pipetask run-qbb repo /submit/run.qg --qgraph-node-id ")
    assert workflow.job("finalJob").kind is JobKind.FINAL
    assert set(workflow.label_graph().edges) == {
        ("pipetaskInit", "isr"),
        ("isr", "summary"),
        ("pipetaskInit", "summary"),
    }
    assert workflow.as_networkx().number_of_edges() == 5


def test_errors(workflow: GenericWorkflow) -> None:
    with pytest.raises(WorkflowError, match="No job named 'nope' in workflow 'wf'"):
        workflow.job("nope")
    with pytest.raises(WorkflowError, match="Duplicate job name 'isr_1'"):
        workflow.add_job(job("isr_1"))
    with pytest.raises(WorkflowError, match="not filesystem-safe"):
        workflow.add_job(job("bad name"))
    with pytest.raises(WorkflowError, match="already has an init job"):
        workflow.add_job(job("init2", JobKind.INIT))
    with pytest.raises(WorkflowError, match="use set_final"):
        workflow.add_job(job("final2", JobKind.FINAL))
    with pytest.raises(WorkflowError, match="refers to <FILE:butlerConfig>, which is not a file"):
        workflow.resolve_command(job("x", command="cat <FILE:butlerConfig>"))
    workflow.add_job(job("late"), ["not_yet_added"])
    with pytest.raises(WorkflowError, match="depend on unknown jobs: 'late' <- 'not_yet_added'"):
        workflow.validate()
    workflow.add_job(job("not_yet_added"))  # a parent may come after its child
    workflow.validate()
    assert workflow.parents("late") == ["not_yet_added"]


def test_cycle_names_the_jobs(workflow: GenericWorkflow) -> None:
    workflow.add_job(job("summary_2", node_ids=ids(1)), ["summary_1"])
    workflow.add_job(job("isr_3", node_ids=ids(1)), ["summary_2"])
    workflow.add_dependencies(np.array([5]), np.array([3]))  # isr_3 -> summary_1
    with pytest.raises(
        WorkflowError,
        match="dependency cycle: (summary_1 -> summary_2 -> isr_3 -> summary_1|"
        "summary_2 -> isr_3 -> summary_1 -> summary_2|"
        "isr_3 -> summary_1 -> summary_2 -> isr_3)",
    ):
        workflow.validate()


def test_final_never() -> None:
    wf = GenericWorkflow("wf", RUN)
    wf.set_final(job("finalJob", JobKind.FINAL), WhenRun.NEVER)
    assert wf.final_job is None and wf.final_when is WhenRun.NEVER
    assert wf.job_counts() == {}
    with pytest.raises(WorkflowError, match="must be kind FINAL"):
        wf.set_final(job("x"), WhenRun.ALWAYS)


def test_bulk_add_jobs() -> None:
    wf = GenericWorkflow("bulk", RUN)
    template = JobTemplate(
        label="step1",
        kind=JobKind.PAYLOAD,
        command="run --id {qgraphNodeId} --log {jobName}.log",
        resources=JobResources(),
        compute_site="local",
        tag_keys=("visit", "detector"),
    )
    node_ids = uuid_bytes(ids(5))
    first = wf.add_jobs(
        template,
        names=["step1_1_0", "step1_1_1"],
        node_ids=node_ids,
        node_counts=np.array([2, 3]),
        quanta_counts=[{"isr": 1, "calibrate": 1}, {"isr": 1, "calibrate": 2}],
        counts_index=np.array([0, 1]),
        tag_values=[("1", "0"), ("1", "1")],
    )
    assert first == 0
    wf.add_dependencies(np.array([0]), np.array([1]))
    second = wf.job("step1_1_1")
    strings = uuid_strings(node_ids)
    assert second.node_ids == tuple(strings[2:])
    assert second.command == f"run --id {','.join(strings[2:])} --log step1_1_1.log"
    assert second.tags == {"visit": "1", "detector": "1"} and second.quanta_counts == {
        "isr": 1,
        "calibrate": 2,
    }
    assert wf.quanta_counts() == {"isr": 2, "calibrate": 3}
    assert wf.parents("step1_1_1") == ["step1_1_0"]
    with pytest.raises(WorkflowError, match="node counts add up to 5, not 1"):
        wf.add_jobs(
            template,
            names=["a"],
            node_ids=node_ids[:1],
            node_counts=np.array([5]),
            quanta_counts=[{}],
            counts_index=np.array([0]),
        )
    with pytest.raises(WorkflowError, match="job index is out of range"):
        wf.add_dependencies(np.array([0]), np.array([7]))


def test_uuid_helpers_round_trip() -> None:
    values = [uuid.UUID(bytes=bytes(15) + b"\1"), uuid.UUID(bytes=b"\1" + bytes(15)), uuid.uuid4()]
    strings = [str(v) for v in values]
    assert uuid_strings(uuid_bytes(strings)) == strings
    with pytest.raises(WorkflowError, match="Invalid node id"):
        uuid_bytes(["not-a-uuid"])


def test_save_and_load(workflow: GenericWorkflow, tmp_path: Path) -> None:
    path = tmp_path / GENERIC_WORKFLOW_FILE
    workflow.save(path)
    data = json.loads(path.read_text())
    assert data["format_version"] == 1 and data["jobs"]["name"][0] == "pipetaskInit"
    loaded = GenericWorkflow.load(path)
    assert list(loaded.jobs()) == list(workflow.jobs())
    assert loaded.final_job == workflow.final_job and loaded.final_when is WhenRun.ALWAYS
    assert loaded.files == workflow.files and loaded.run == RUN
    assert sorted(loaded.parents("summary_1")) == sorted(workflow.parents("summary_1"))
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600


def test_load_errors(tmp_path: Path) -> None:
    path = tmp_path / "gw.json"
    with pytest.raises(WorkflowError, match="Cannot read generic workflow"):
        GenericWorkflow.load(path)
    path.write_text("{not json")
    with pytest.raises(WorkflowError, match="not valid JSON"):
        GenericWorkflow.load(path)
    path.write_text('{"format_version": 99}')
    with pytest.raises(WorkflowError, match="format_version is 99; expected 1"):
        GenericWorkflow.load(path)
    path.write_text('{"format_version": 1, "name": "x"}')
    with pytest.raises(WorkflowError, match="malformed generic workflow"):
        GenericWorkflow.load(path)


@pytest.mark.parametrize("name", ["qgraph", "Node", "a", "run", "x_1"])
def test_add_job_keeps_commands_exactly(name: str) -> None:
    wf = GenericWorkflow("wf", RUN)
    node_ids = ids(2)
    command = f"run {name} --id {','.join(node_ids)} > /logs/{name}/{name}.log # {{literal}} qgraphNodeId"
    wf.add_job(job(name, node_ids=node_ids, command=command))
    literal = f"echo {{qgraphNodeId}} {name}"  # placeholder text of its own: kept literally
    wf.add_job(job(f"{name}_2", node_ids=ids(1), command=literal))
    assert wf.job(name).command == command
    assert wf.job(f"{name}_2").command == literal
