"""Transform: a clustered quantum graph plus the submit config -> the generic workflow.

One payload job per cluster, with resources from `BpsConfig.job_resources` (aggregated over the
cluster's quanta) and the command of ``runQuantumCommand`` (``cluster.<name>`` or
``pipetask.<label>``); the init job ``pipetaskInit`` first when ``runInit`` is true (every payload
job depends on it); the final job ``finalJob`` per ``finalJob.whenRun``. Jobs sharing a label and
the same quanta counts share one `JobTemplate`, so the work is per label, not per job.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bps.clustering import ClusteredQuantumGraph
from bps.errors import BpsConfigError
from bps.wms import RunInfo
from bps.workflow import (
    GenericWorkflow,
    GenericWorkflowJob,
    JobKind,
    JobResources,
    JobTemplate,
    WhenRun,
    WorkflowFile,
)
from bps.workflow_arrays import unique_inverse

if TYPE_CHECKING:
    from bps.config import BpsConfig

__all__ = ["FINAL_JOB_LABEL", "INIT_JOB_LABEL", "make_generic_workflow"]

INIT_JOB_LABEL = "pipetaskInit"
FINAL_JOB_LABEL = "finalJob"
QGRAPH_FILE = "qgraphFile"
BUTLER_CONFIG = "butlerConfig"


def make_generic_workflow(
    cqg: ClusteredQuantumGraph, config: BpsConfig, run: RunInfo, qgraph_path: Path
) -> GenericWorkflow:
    """The generic workflow of ``cqg``: init job, one payload job per cluster, final job."""
    settings = config.settings
    workflow = GenericWorkflow(run.run_name, run)
    workflow.add_file(WorkflowFile(QGRAPH_FILE, str(Path(qgraph_path).absolute()), wms_transfer=True))
    if settings.payload.butler_config:
        workflow.add_file(WorkflowFile(BUTLER_CONFIG, str(Path(settings.payload.butler_config).absolute())))
    site = settings.compute_site
    init = None
    if settings.payload.run_init:
        init = _add_init_job(workflow, config, run, site, _environment(config, pipetask=INIT_JOB_LABEL))
    job_of_cluster = _add_payload_jobs(workflow, cqg, config, run, site)
    parents, children = cqg.edges()
    workflow.add_dependencies(job_of_cluster[parents], job_of_cluster[children])
    if init is not None and len(job_of_cluster):
        workflow.add_dependencies(np.full(len(job_of_cluster), init, dtype=np.int32), job_of_cluster)
    _set_final_job(workflow, config, site, _environment(config))
    workflow.validate()
    return workflow


def _fill(command: str, label: str, run: RunInfo) -> str:
    return command.replace("{label}", label).replace("{qgraphId}", run.run_name)


def _add_init_job(
    workflow: GenericWorkflow,
    config: BpsConfig,
    run: RunInfo,
    site: str,
    environment: tuple[tuple[str, str], ...],
) -> int:
    command = _fill(config.command("runQuantumCommand", pipetask=INIT_JOB_LABEL), INIT_JOB_LABEL, run)
    command = command.replace("{jobName}", INIT_JOB_LABEL).replace("{qgraphNodeId}", "")
    resources = config.job_resources(cluster=None, label_counts={INIT_JOB_LABEL: 1})
    workflow.add_job(
        GenericWorkflowJob(
            name=INIT_JOB_LABEL,
            label=INIT_JOB_LABEL,
            kind=JobKind.INIT,
            command=command,
            node_ids=(),
            quanta_counts={},
            resources=resources,
            compute_site=site,
            environment=dict(environment),
            tags={},
        )
    )
    return len(workflow) - 1


def _add_payload_jobs(
    workflow: GenericWorkflow,
    cqg: ClusteredQuantumGraph,
    config: BpsConfig,
    run: RunInfo,
    site: str,
) -> np.ndarray:
    """Add a job per cluster, a block per (label, quanta counts); returns the job index of each cluster."""
    assignment = cqg.assignment
    job_of_cluster = np.full(len(cqg), -1, dtype=np.int32)
    defined = set(config.clusters)
    label_of = np.asarray(assignment.label_of, dtype=np.int64)
    key = label_of * max(len(cqg.counts_sets), 1) + cqg.counts_index
    order = np.argsort(key, kind="stable")
    keys, _, starts, _ = unique_inverse(key[order])
    bounds = [*starts.tolist(), len(order)]
    templates: dict[int, tuple[str, tuple[tuple[str, str], ...]]] = {}
    for block, value in enumerate(keys.tolist()):
        label_index, counts_id = divmod(value, max(len(cqg.counts_sets), 1))
        label = assignment.labels[label_index]
        cluster = label if label in defined else None
        counts = cqg.counts_sets[counts_id]
        if label_index not in templates:
            pipetask = None if cluster is not None else label
            templates[label_index] = (
                _fill(config.command("runQuantumCommand", cluster=cluster, pipetask=pipetask), label, run),
                _environment(config, cluster=cluster, pipetask=pipetask),
            )
        command, environment = templates[label_index]
        resources = _resources(config, cluster, label, counts)
        template = JobTemplate(
            label=label,
            kind=JobKind.PAYLOAD,
            command=command,
            resources=resources,
            compute_site=site,
            environment=environment,
            tag_keys=assignment.tag_keys[label_index],
        )
        clusters = order[bounds[block] : bounds[block + 1]]
        node_counts = cqg.offsets[clusters + 1] - cqg.offsets[clusters]
        positions = _expand(cqg.offsets[clusters], node_counts)
        names = [assignment.names[i] for i in clusters.tolist()]
        first = workflow.add_jobs(
            template,
            names=names,
            node_ids=cqg.node_id_array[cqg.members[positions]],
            node_counts=node_counts,
            quanta_counts=[counts],
            counts_index=np.zeros(len(clusters), dtype=np.int32),
            tag_text=[assignment.tag_text[i] for i in clusters.tolist()],
        )
        job_of_cluster[clusters] = first + np.arange(len(clusters), dtype=np.int32)
    return job_of_cluster


def _resources(config: BpsConfig, cluster: str | None, label: str, counts: dict[str, int]) -> JobResources:
    try:
        return config.job_resources(cluster=cluster, label_counts=counts)
    except BpsConfigError as err:
        raise BpsConfigError(f"Resources of jobs labelled {label!r}: {err}") from None


def _environment(
    config: BpsConfig, *, cluster: str | None = None, pipetask: str | None = None
) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(config.environment(cluster=cluster, pipetask=pipetask).items()))


def _expand(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Concatenated ranges ``[starts[i], starts[i] + sizes[i])``."""
    total = int(sizes.sum())
    return np.repeat(starts - np.cumsum(sizes) + sizes, sizes) + np.arange(total)


def _set_final_job(
    workflow: GenericWorkflow, config: BpsConfig, site: str, environment: tuple[tuple[str, str], ...]
) -> None:
    final = config.settings.final_job
    when = WhenRun(final.when_run)
    if when is WhenRun.NEVER:
        return
    if not final.commands:
        raise BpsConfigError(
            f"{config.path}: finalJob.whenRun is {when} but finalJob has no command1; set finalJob.command1 "
            "or finalJob.whenRun: NEVER."
        )
    job = GenericWorkflowJob(
        name=FINAL_JOB_LABEL,
        label=FINAL_JOB_LABEL,
        kind=JobKind.FINAL,
        command=" && ".join(final.commands),
        node_ids=(),
        quanta_counts={},
        resources=config.job_resources(cluster=FINAL_JOB_LABEL, label_counts={}),
        compute_site=site,
        environment=dict(environment),
        tags={},
    )
    workflow.set_final(job, when)
