"""Saving and loading a `GenericWorkflow` as columnar JSON (``generic_workflow.json``).

The file is one JSON object, ``"format_version": 1``: the run, the files, the job templates (what
jobs of a label share: command with ``{qgraphNodeId}``/``{jobName}`` left in, resources, site,
environment, tag keys), the distinct quanta-count mappings, then one list per job column and the
edges as two lists of job indexes. A million single-quantum jobs take about 100 MB.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from bps.errors import WorkflowError
from bps.wms import RunInfo
from bps.workflow import (
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

__all__ = ["FORMAT_VERSION", "load_workflow", "save_workflow"]

FORMAT_VERSION = 1


def save_workflow(workflow: GenericWorkflow, path: Path) -> None:
    """Write ``workflow`` to ``path`` atomically."""
    # Imported here: loading a workflow (what the engines do) need not import the butler package.
    from butler.atomic_files import write_text_atomically

    data = workflow_to_dict(workflow)
    text = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    write_text_atomically(path, text)


def workflow_to_dict(workflow: GenericWorkflow) -> dict[str, Any]:
    """The JSON-ready form of ``workflow`` (see the module doc)."""
    workflow._resolve_pending()
    if workflow._pending:
        workflow.validate()
    ids, _ = workflow._nodes()
    parents, children = workflow.edges()
    final = workflow.final_job
    return {
        "format_version": FORMAT_VERSION,
        "name": workflow.name,
        "run": dataclasses.asdict(workflow.run),
        "files": [dataclasses.asdict(file) for file in workflow.files.values()],
        "templates": [_template_to_dict(t) for t in workflow._templates],
        "quanta_counts": workflow._counts_sets,
        "init_job": workflow._init_index,
        "jobs": {
            "name": workflow._names,
            "template": workflow._template_of.tolist(),
            "quanta_counts": workflow._counts_of.tolist(),
            "tags": workflow._tags,
            "node_count": workflow._node_counts.tolist(),
            "node_ids": uuid_strings(ids),
        },
        "edges": {"parent": parents.tolist(), "child": children.tolist()},
        "final_when": str(workflow.final_when),
        "final_job": None if final is None else _job_to_dict(final),
    }


def load_workflow(path: Path) -> GenericWorkflow:
    """Read a workflow written by `save_workflow`; errors name the file and what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise WorkflowError(f"Cannot read generic workflow {path}: {err.strerror}.") from None
    except json.JSONDecodeError as err:
        raise WorkflowError(f"{path}: not valid JSON ({err.msg} at line {err.lineno}).") from None
    if not isinstance(data, dict) or data.get("format_version") != FORMAT_VERSION:
        found = data.get("format_version") if isinstance(data, dict) else None
        raise WorkflowError(f"{path}: format_version is {found!r}; expected {FORMAT_VERSION}.")
    try:
        return _workflow_from_dict(data)
    except (KeyError, TypeError, ValueError) as err:
        raise WorkflowError(f"{path}: malformed generic workflow ({type(err).__name__}: {err}).") from None


def _workflow_from_dict(data: dict[str, Any]) -> GenericWorkflow:
    workflow = GenericWorkflow(data["name"], RunInfo(**data["run"]))
    for file in data["files"]:
        workflow.add_file(WorkflowFile(**file))
    templates = [_template_from_dict(t) for t in data["templates"]]
    jobs = data["jobs"]
    names: list[str] = jobs["name"]
    template_of = np.asarray(jobs["template"], dtype=np.int32)
    if len(template_of) != len(names):
        raise ValueError("jobs.template and jobs.name differ in length")
    workflow._templates = templates
    workflow._template_ids = {t: i for i, t in enumerate(templates)}
    workflow._counts_sets = [dict(c) for c in data["quanta_counts"]]
    workflow._counts_ids = {tuple(c.items()): i for i, c in enumerate(workflow._counts_sets)}
    workflow._names = names
    workflow._index = {name: i for i, name in enumerate(names)}
    if len(workflow._index) != len(names):
        raise ValueError("duplicate job names")
    workflow._template_of.frombytes(template_of.tobytes())
    workflow._counts_of.frombytes(np.asarray(jobs["quanta_counts"], dtype=np.int32).tobytes())
    workflow._tags = list(jobs["tags"])
    workflow._node_counts.frombytes(np.asarray(jobs["node_count"], dtype=np.int64).tobytes())
    workflow._node_chunks = [uuid_bytes(jobs["node_ids"])]
    sizes = {len(workflow._counts_of), len(workflow._tags), len(workflow._node_counts)}
    if sizes != {len(names)} or int(np.sum(jobs["node_count"], dtype=np.int64)) != len(jobs["node_ids"]):
        raise ValueError("job columns differ in length")
    if max(template_of, default=0) >= max(len(templates), 1) or max(workflow._counts_of, default=0) >= max(
        len(workflow._counts_sets), 1
    ):
        raise ValueError("a job refers to an unknown template or quanta-count set")
    workflow._init_index = data["init_job"]
    workflow.add_dependencies(np.asarray(data["edges"]["parent"]), np.asarray(data["edges"]["child"]))
    final = data["final_job"]
    when = WhenRun(data["final_when"])
    if final is not None:
        workflow.set_final(_job_from_dict(final), when)
    else:
        workflow._final_when = when
    return workflow


def _resources_from_dict(data: dict[str, Any]) -> JobResources:
    return JobResources(**{**data, "retry_unless_exit": tuple(data.get("retry_unless_exit", ()))})


def _template_to_dict(template: JobTemplate) -> dict[str, Any]:
    result = dataclasses.asdict(template)
    result["kind"] = str(template.kind)
    result["environment"] = dict(template.environment)
    return result


def _template_from_dict(data: dict[str, Any]) -> JobTemplate:
    return JobTemplate(
        label=data["label"],
        kind=JobKind(data["kind"]),
        command=data["command"],
        resources=_resources_from_dict(data["resources"]),
        compute_site=data["compute_site"],
        environment=tuple(data["environment"].items()),
        tag_keys=tuple(data["tag_keys"]),
        expand=bool(data["expand"]),
    )


def _job_to_dict(job: GenericWorkflowJob) -> dict[str, Any]:
    return {
        "name": job.name,
        "label": job.label,
        "kind": str(job.kind),
        "command": job.command,
        "node_ids": list(job.node_ids),
        "quanta_counts": dict(job.quanta_counts),
        "resources": dataclasses.asdict(job.resources),
        "compute_site": job.compute_site,
        "environment": dict(job.environment),
        "tags": dict(job.tags),
    }


def _job_from_dict(data: dict[str, Any]) -> GenericWorkflowJob:
    return GenericWorkflowJob(
        name=data["name"],
        label=data["label"],
        kind=JobKind(data["kind"]),
        command=data["command"],
        node_ids=tuple(data["node_ids"]),
        quanta_counts=dict(data["quanta_counts"]),
        resources=_resources_from_dict(data["resources"]),
        compute_site=data["compute_site"],
        environment=dict(data["environment"]),
        tags=dict(data["tags"]),
    )
