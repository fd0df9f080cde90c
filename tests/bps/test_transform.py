"""Transform: clustered graph + submit config -> generic workflow (init, payload, final jobs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from synthetic_qgraph import make_qgraph

from bps.api import run_info
from bps.clustering import cluster_quanta
from bps.config import BpsConfig, load_bps_config
from bps.errors import ClusteringError
from bps.transform import make_generic_workflow
from bps.workflow import GenericWorkflow, JobKind, WhenRun

BASE = """
pipelineYaml: {tmp}/pipeline.yaml
submitPath: {tmp}/submit/{{outputRun}}
payload:
  payloadName: test
  butlerConfig: {tmp}/repo
  inCollection: inputs
  output: u/me/test
  outputRun: u/me/test/run1
requestMemory: 1000
numberOfRetries: 2
environment:
  SHARED: "yes"
"""

CLUSTERS = """
clusterAlgorithm: dimensions
cluster:
  step1:
    pipetasks: isr, calibrate
    dimensions: visit, detector
    equalDimensions: visit:exposure
    requestCpus: 2
pipetask:
  isr:
    requestMemory: 3000
    requestWalltime: 100
  calibrate:
    requestMemory: 2500
    requestWalltime: 200
  summary:
    requestMemory: 4000
    runQuantumCommand: "summarize {butlerConfig} <FILE:qgraphFile> --ids {qgraphNodeId} --job {jobName} --label {label}"
"""


def config_for(tmp_path: Path, extra: str = "") -> BpsConfig:
    path = tmp_path / "submit.yaml"
    path.write_text(BASE.format(tmp=tmp_path) + textwrap.dedent(extra))
    return load_bps_config(path)


def transform(tmp_path: Path, extra: str = "") -> GenericWorkflow:
    config = config_for(tmp_path, extra)
    qgraph = make_qgraph()
    return make_generic_workflow(
        cluster_quanta(qgraph, config), config, run_info(config), tmp_path / "run.qg"
    )


def test_single_quantum_workflow(tmp_path: Path) -> None:
    workflow = transform(tmp_path)
    jobs = list(workflow.jobs())
    assert jobs[0].name == "pipetaskInit" and jobs[0].kind is JobKind.INIT
    assert workflow.job_counts() == {"pipetaskInit": 1, "isr": 6, "calibrate": 6, "summary": 2, "finalJob": 1}
    assert workflow.quanta_counts() == {"isr": 6, "calibrate": 6, "summary": 2}
    for job in jobs[1:]:
        assert "pipetaskInit" in workflow.parents(job.name)
    assert sorted(workflow.parents("calibrate_0_1")) == ["isr_0_1", "pipetaskInit"]
    assert sorted(workflow.parents("summary_1")) == [
        "calibrate_0_1",
        "calibrate_1_1",
        "calibrate_2_1",
        "pipetaskInit",
    ]
    isr = workflow.job("isr_0_1")
    assert (
        isr.command
        == f"pipetask run-qbb {tmp_path}/repo <FILE:qgraphFile> --qgraph-node-id {isr.node_ids[0]}"
    )
    assert workflow.resolve_command(isr).startswith(f"pipetask run-qbb {tmp_path}/repo {tmp_path}/run.qg ")
    assert jobs[0].command == f"pipetask pre-exec-init-qbb {tmp_path}/repo <FILE:qgraphFile>"
    assert isr.resources.request_memory == 1000 and isr.resources.number_of_retries == 2
    assert isr.environment == {"SHARED": "yes"} and isr.compute_site == "local"
    assert workflow.files["qgraphFile"].path == str(tmp_path / "run.qg")
    assert workflow.files["butlerConfig"].path == str(tmp_path / "repo")
    final = workflow.final_job
    assert final is not None and workflow.final_when is WhenRun.ALWAYS and final.name == "finalJob"
    assert final.command.startswith("butler transfer-from-graph <FILE:qgraphFile>")
    assert "--update-output-chain" in final.command


def test_dimension_clusters_aggregate_resources(tmp_path: Path) -> None:
    workflow = transform(tmp_path, CLUSTERS)
    assert workflow.job_counts() == {"pipetaskInit": 1, "step1": 6, "summary": 2, "finalJob": 1}
    step1 = workflow.job("step1_1_0")
    assert step1.quanta_counts == {"isr": 1, "calibrate": 1}
    assert step1.resources.request_cpus == 2  # the cluster's own value
    assert step1.resources.request_memory == 3000  # max over its tasks
    assert step1.resources.request_walltime == 300  # sum over its quanta
    assert step1.tags == {"visit": "1", "detector": "0"}
    assert step1.command.endswith("--qgraph-node-id " + ",".join(step1.node_ids))
    summary = workflow.job("summary_1")
    assert summary.resources.request_memory == 4000
    assert summary.command == (
        f"summarize {tmp_path}/repo <FILE:qgraphFile> --ids {summary.node_ids[0]} --job summary_1 --label summary"
    )
    assert sorted(workflow.parents("summary_2")) == ["pipetaskInit", "step1_2_0", "step1_2_1", "step1_2_2"]


def test_no_init_and_final_when(tmp_path: Path) -> None:
    workflow = transform(tmp_path, "runInit: false\nfinalJob:\n  whenRun: SUCCESS\n")
    assert workflow.init_job is None and "pipetaskInit" not in workflow.job_counts()
    assert workflow.final_when is WhenRun.SUCCESS and workflow.final_job is not None
    assert workflow.parents("isr_0_1") == []
    workflow = transform(tmp_path, "finalJob:\n  whenRun: NEVER\n")
    assert workflow.final_job is None and "finalJob" not in workflow.job_counts()


def test_cycle_is_refused(tmp_path: Path) -> None:
    extra = "clusterAlgorithm: dimensions\ncluster:\n  bad:\n    pipetasks: isr, summary\n    dimensions: visit\n    equalDimensions: visit:exposure\n"
    with pytest.raises(ClusteringError, match="cycle between clusters"):
        transform(tmp_path, extra)


def test_save_load_round_trip(tmp_path: Path) -> None:
    workflow = transform(tmp_path, CLUSTERS)
    path = tmp_path / "generic_workflow.json"
    workflow.save(path)
    loaded = GenericWorkflow.load(path)
    assert list(loaded.jobs()) == list(workflow.jobs())
    assert loaded.final_job == workflow.final_job
    for mine, theirs in zip(loaded.edges(), workflow.edges(), strict=True):
        assert np.array_equal(mine, theirs)


def test_empty_graph_gives_init_and_final_only(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    clustered = cluster_quanta(make_qgraph(visits=()), config)
    workflow = make_generic_workflow(clustered, config, run_info(config), tmp_path / "run.qg")
    assert workflow.job_counts() == {"pipetaskInit": 1, "finalJob": 1}
