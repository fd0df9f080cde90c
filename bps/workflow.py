"""The generic workflow: jobs, their dependencies and files, independent of any engine.

`transform.make_generic_workflow` builds it from a clustered quantum graph; an engine plugin
(`bps.wms.WmsService.prepare`) turns it into its own artifacts. Inside it is columnar (numpy arrays
and interned per-label prototypes) so a million jobs fit in a few hundred MB; `GenericWorkflow.job`
and `GenericWorkflow.jobs` build the frozen `GenericWorkflowJob` views on demand.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from bps.errors import WorkflowError
from bps.wms import RunInfo
from bps.workflow_arrays import dependency_order, find_cycle, unique_sorted, uuid_bytes, uuid_strings
from bps.workflow_model import GenericWorkflowJob, JobKind, JobResources, JobTemplate, WhenRun, WorkflowFile

if TYPE_CHECKING:
    import networkx as nx

__all__ = [
    "GENERIC_WORKFLOW_FILE",
    "GenericWorkflow",
    "GenericWorkflowJob",
    "JobKind",
    "JobResources",
    "JobTemplate",
    "WhenRun",
    "WorkflowFile",
    "dependency_order",
    "find_cycle",
    "uuid_bytes",
    "uuid_strings",
]

GENERIC_WORKFLOW_FILE = "generic_workflow.json"
"""Name of the saved workflow in the submit directory."""


NODE_IDS_PLACEHOLDER = "{qgraphNodeId}"
JOB_NAME_PLACEHOLDER = "{jobName}"
_TAG_SEPARATOR = "\x1f"
_NAME_RE = re.compile(r"[A-Za-z0-9_.\-]+")
_NAMES_RE = re.compile(r"[A-Za-z0-9_.\-\n]*")
_FILE_RE = re.compile(r"<FILE:([^>]+)>")


class GenericWorkflow:
    """The jobs of a run with their dependencies and files (columnar inside; see the module doc).

    Jobs are added one at a time (`add_job`) or in bulk (`add_jobs` + `add_dependencies`); the final
    job is set apart (`set_final`) and is not part of the dependency graph: it runs after all other
    jobs according to `final_when`.
    """

    def __init__(self, name: str, run: RunInfo) -> None:
        self.name = name
        self.run = run
        self._files: dict[str, WorkflowFile] = {}
        self._templates: list[JobTemplate] = []
        self._template_ids: dict[JobTemplate, int] = {}
        self._counts_sets: list[dict[str, int]] = []
        self._counts_ids: dict[tuple[tuple[str, int], ...], int] = {}
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._template_of = array("i")
        self._counts_of = array("i")
        self._tags: list[str] = []
        self._node_chunks: list[np.ndarray] = []
        self._node_counts = array("q")
        self._edge_parent = array("i")
        self._edge_child = array("i")
        self._pending: list[tuple[str, str]] = []  # (parent name, child name) with an unknown parent
        self._init_index: int | None = None
        self._final: GenericWorkflowJob | None = None
        self._final_when = WhenRun.NEVER
        self._cache: dict[str, Any] = {}

    # -- files ------------------------------------------------------------------------------------

    def add_file(self, file: WorkflowFile) -> None:
        """Add (or replace) a file jobs refer to as ``<FILE:name>``."""
        self._files[file.name] = file

    @property
    def files(self) -> Mapping[str, WorkflowFile]:
        """Files by logical name."""
        return MappingProxyType(self._files)

    # -- adding jobs ------------------------------------------------------------------------------

    def add_job(self, job: GenericWorkflowJob, parents: Iterable[str] = ()) -> None:
        """Add an INIT or PAYLOAD job after ``parents`` (names; they may be added later)."""
        if job.kind is JobKind.FINAL:
            raise WorkflowError(f"Job {job.name!r} is a final job: use set_final, not add_job.")
        if job.kind is JobKind.INIT and self._init_index is not None:
            raise WorkflowError(
                f"Workflow {self.name!r} already has an init job {self._names[self._init_index]!r}; "
                f"cannot add {job.name!r}."
            )
        ids_text = ",".join(job.node_ids)
        command, expand = job.command, True
        if NODE_IDS_PLACEHOLDER in command or JOB_NAME_PLACEHOLDER in command:
            expand = False
        elif job.name:
            # Name first: ids (hex, dashes, commas) cannot touch "{jobName}", while a name like
            # "qgraph" could touch "{qgraphNodeId}". `_view` undoes the two in reverse order.
            command = command.replace(job.name, JOB_NAME_PLACEHOLDER)
            if ids_text:
                command = command.replace(ids_text, NODE_IDS_PLACEHOLDER)
        template = JobTemplate(
            label=job.label,
            kind=job.kind,
            command=command,
            resources=job.resources,
            compute_site=job.compute_site,
            environment=tuple(job.environment.items()),
            tag_keys=tuple(job.tags),
            expand=expand,
        )
        first = self.add_jobs(
            template,
            names=[job.name],
            node_ids=uuid_bytes(job.node_ids),
            node_counts=np.array([len(job.node_ids)], dtype=np.int64),
            quanta_counts=[dict(job.quanta_counts)],
            counts_index=np.zeros(1, dtype=np.int32),
            tag_values=[tuple(job.tags.values())],
        )
        for parent in parents:
            parent_index = self._index.get(parent)
            if parent_index is None:
                self._pending.append((parent, job.name))
            else:
                self._edge_parent.append(parent_index)
                self._edge_child.append(first)

    def add_jobs(
        self,
        template: JobTemplate,
        *,
        names: Sequence[str],
        node_ids: np.ndarray,
        node_counts: np.ndarray,
        quanta_counts: Sequence[Mapping[str, int]],
        counts_index: np.ndarray,
        tag_values: Sequence[Sequence[str]] | None = None,
        tag_text: Sequence[str] | None = None,
    ) -> int:
        """Add jobs sharing ``template`` in bulk; returns the index of the first (indexes are consecutive).

        ``node_ids`` is the ``S16`` array of every job's node ids one job after another,
        ``node_counts`` how many each job has; job ``i`` has quanta counts
        ``quanta_counts[counts_index[i]]`` and tags ``dict(zip(template.tag_keys, tag_values[i]))``
        (or ``tag_text[i]``: the values already joined by ``"\\x1f"``).
        """
        count = len(names)
        if len(node_counts) != count or len(counts_index) != count:
            raise WorkflowError(
                f"add_jobs: {count} names but {len(node_counts)} node counts / {len(counts_index)} counts."
            )
        if int(np.sum(node_counts)) != len(node_ids):
            raise WorkflowError(
                f"add_jobs: node counts add up to {int(np.sum(node_counts))}, not {len(node_ids)}."
            )
        if template.kind is JobKind.FINAL:
            raise WorkflowError("add_jobs: a final job is set with set_final.")
        if template.kind is JobKind.INIT and (count != 1 or self._init_index is not None):
            raise WorkflowError("add_jobs: a workflow has at most one init job.")
        joined = "\n".join(names)
        if count and (not _NAMES_RE.fullmatch(joined) or any(not n for n in names)):
            bad = next(n for n in names if not _NAME_RE.fullmatch(n))
            raise WorkflowError(f"Job name {bad!r} is not filesystem-safe (allowed: letters, digits, _ . -).")
        first = len(self._names)
        index = self._index
        for offset, name in enumerate(names):
            if index.setdefault(name, first + offset) != first + offset:
                for undo in names[:offset]:
                    del index[undo]
                raise WorkflowError(f"Duplicate job name {name!r} in workflow {self.name!r}.")
        template_id = self._template_ids.setdefault(template, len(self._templates))
        if template_id == len(self._templates):
            self._templates.append(template)
        local_ids = [self._intern_counts(counts) for counts in quanta_counts]
        mapped = np.asarray(local_ids, dtype=np.int32)[np.asarray(counts_index, dtype=np.int64)]
        self._names.extend(names)
        self._template_of.frombytes(np.full(count, template_id, dtype=np.int32).tobytes())
        self._counts_of.frombytes(mapped.astype(np.int32).tobytes())
        if tag_text is not None:
            if len(tag_text) != count:
                raise WorkflowError(f"add_jobs: {count} names but {len(tag_text)} tag rows.")
            self._tags.extend(tag_text)
        elif tag_values is None:
            self._tags.extend([""] * count)
        else:
            if len(tag_values) != count:
                raise WorkflowError(f"add_jobs: {count} names but {len(tag_values)} tag rows.")
            self._tags.extend(_TAG_SEPARATOR.join(values) for values in tag_values)
        self._node_chunks.append(np.ascontiguousarray(node_ids, dtype="S16"))
        self._node_counts.frombytes(np.asarray(node_counts, dtype=np.int64).tobytes())
        if template.kind is JobKind.INIT:
            self._init_index = first
        self._cache.clear()
        return first

    def add_dependencies(self, parents: np.ndarray, children: np.ndarray) -> None:
        """Add edges ``parents[i] -> children[i]`` given as job indexes (from `add_jobs`)."""
        parents = np.asarray(parents, dtype=np.int32)
        children = np.asarray(children, dtype=np.int32)
        if parents.shape != children.shape:
            raise WorkflowError("add_dependencies: parents and children differ in length.")
        if len(parents) and (
            min(parents.min(), children.min()) < 0 or max(parents.max(), children.max()) >= len(self._names)
        ):
            raise WorkflowError("add_dependencies: a job index is out of range.")
        self._edge_parent.frombytes(parents.tobytes())
        self._edge_child.frombytes(children.tobytes())
        self._cache.clear()

    def set_final(self, job: GenericWorkflowJob, when: WhenRun) -> None:
        """Set the final job, run after every other job according to ``when`` (NEVER: no final job)."""
        if job.kind is not JobKind.FINAL:
            raise WorkflowError(f"Job {job.name!r} is a {job.kind} job; the final job must be kind FINAL.")
        if job.name in self._index:
            raise WorkflowError(f"Final job name {job.name!r} is already a job of workflow {self.name!r}.")
        self._final_when = WhenRun(when)
        self._final = None if self._final_when is WhenRun.NEVER else job

    def _intern_counts(self, counts: Mapping[str, int]) -> int:
        key = tuple(counts.items())
        found = self._counts_ids.setdefault(key, len(self._counts_sets))
        if found == len(self._counts_sets):
            self._counts_sets.append(dict(key))
        return found

    # -- reading ----------------------------------------------------------------------------------

    @property
    def init_job(self) -> GenericWorkflowJob | None:
        """The init job (``pipetaskInit``), if any."""
        return None if self._init_index is None else self._view(self._init_index)

    @property
    def final_job(self) -> GenericWorkflowJob | None:
        """The final job; None when there is none or it is set to run NEVER."""
        return self._final

    @property
    def final_when(self) -> WhenRun:
        """When the final job runs."""
        return self._final_when

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def job_names(self) -> list[str]:
        """Names of the init and payload jobs in the order they were added."""
        return list(self._names)

    def job(self, name: str) -> GenericWorkflowJob:
        """The job called ``name`` (the final job included)."""
        index = self._index.get(name)
        if index is not None:
            return self._view(index)
        if self._final is not None and self._final.name == name:
            return self._final
        raise WorkflowError(f"No job named {name!r} in workflow {self.name!r}.")

    def parents(self, name: str) -> list[str]:
        """Names of the jobs ``name`` depends on."""
        return self._neighbours(name, "parents")

    def children(self, name: str) -> list[str]:
        """Names of the jobs that depend on ``name``."""
        return self._neighbours(name, "children")

    def jobs(self) -> Iterator[GenericWorkflowJob]:
        """Init and payload jobs in dependency order (init first); the final job is not included."""
        ids, offsets = self._nodes()
        strings = uuid_strings(ids)  # once for all jobs: much faster than per job
        bounds = offsets.tolist()
        for index in self.order().tolist():
            yield self._view(index, tuple(strings[bounds[index] : bounds[index + 1]]))

    def order(self) -> np.ndarray:
        """Job indexes (see `job_names`) in dependency order; raises `WorkflowError` on a cycle."""
        order = self._cache.get("order")
        if order is None:
            order, remaining = self._levels()
            if len(remaining):
                raise WorkflowError(self._cycle_message(remaining))
            self._cache["order"] = order
        result: np.ndarray = order
        return result

    def edges(self) -> tuple[np.ndarray, np.ndarray]:
        """(parent, child) job-index arrays of every dependency."""
        self._resolve_pending()
        return (
            np.frombuffer(self._edge_parent, dtype=np.int32)
            if len(self._edge_parent)
            else np.empty(0, np.int32),
            np.frombuffer(self._edge_child, dtype=np.int32)
            if len(self._edge_child)
            else np.empty(0, np.int32),
        )

    def job_counts(self) -> dict[str, int]:
        """Number of jobs per label, ``finalJob`` (or the final job's label) included when set."""
        counts: dict[str, int] = {}
        per_template = np.bincount(
            np.asarray(self._template_of, dtype=np.int64), minlength=len(self._templates)
        )
        for template, count in zip(self._templates, per_template.tolist(), strict=True):
            if count:
                counts[template.label] = counts.get(template.label, 0) + count
        if self._final is not None:
            counts[self._final.label] = counts.get(self._final.label, 0) + 1
        return counts

    def quanta_counts(self) -> dict[str, int]:
        """Number of quanta per task label over all jobs."""
        per_set = np.bincount(np.asarray(self._counts_of, dtype=np.int64), minlength=len(self._counts_sets))
        totals: dict[str, int] = {}
        for counts, jobs in zip(self._counts_sets, per_set.tolist(), strict=True):
            for label, number in counts.items():
                totals[label] = totals.get(label, 0) + number * jobs
        return {label: number for label, number in totals.items() if number}

    def resolve_command(self, job: GenericWorkflowJob) -> str:
        """``job.command`` with every ``<FILE:name>`` replaced by the file's path (shared filesystem)."""

        def replace(match: re.Match[str]) -> str:
            file = self._files.get(match.group(1))
            if file is None:
                raise WorkflowError(
                    f"Job {job.name!r} refers to <FILE:{match.group(1)}>, which is not a file of workflow "
                    f"{self.name!r} (files: {', '.join(self._files) or 'none'})."
                )
            return file.path

        return _FILE_RE.sub(replace, job.command)

    def validate(self) -> None:
        """Check that every parent exists and the dependencies have no cycle (raises `WorkflowError`)."""
        self._resolve_pending()
        if self._pending:
            unknown = ", ".join(f"{child!r} <- {parent!r}" for parent, child in self._pending[:10])
            raise WorkflowError(f"Workflow {self.name!r}: jobs depend on unknown jobs: {unknown}.")
        self.order()

    def label_graph(self) -> nx.DiGraph:
        """Labels as nodes, an edge where a job of one label is a parent of a job of another."""
        import networkx as nx  # only callers drawing or summarising the workflow need it

        parents, children = self.edges()
        template_of = np.asarray(self._template_of, dtype=np.int32)
        labels = [t.label for t in self._templates]
        graph = nx.DiGraph()
        graph.add_nodes_from(dict.fromkeys(labels))
        if len(parents):
            size = len(labels)
            keys = unique_sorted(template_of[parents].astype(np.int64) * size + template_of[children])
            graph.add_edges_from(
                (labels[a], labels[b])
                for a, b in zip(*(k.tolist() for k in np.divmod(keys, size)), strict=True)
                if labels[a] != labels[b]
            )
        return graph

    def as_networkx(self) -> nx.DiGraph:
        """The job graph as a networkx DiGraph of job names (for small workflows and drawing)."""
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self._names)
        parents, children = self.edges()
        graph.add_edges_from(
            (self._names[a], self._names[b]) for a, b in zip(parents.tolist(), children.tolist(), strict=True)
        )
        return graph

    def save(self, path: Path) -> None:
        """Write the workflow as JSON (``format_version`` 1; see docs/clustering.md)."""
        from bps.workflow_io import save_workflow

        save_workflow(self, path)

    @classmethod
    def load(cls, path: Path) -> GenericWorkflow:
        """Read a workflow written by `save`."""
        from bps.workflow_io import load_workflow

        return load_workflow(path)

    def __repr__(self) -> str:
        return f"GenericWorkflow({self.name!r}, {len(self)} jobs, final={self._final_when})"

    # -- internals --------------------------------------------------------------------------------

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        found = self._cache.get("nodes")
        if found is None:
            if len(self._node_chunks) != 1:
                joined = np.concatenate(self._node_chunks) if self._node_chunks else np.empty(0, dtype="S16")
                self._node_chunks = [joined]
            offsets = np.zeros(len(self._names) + 1, dtype=np.int64)
            np.cumsum(np.asarray(self._node_counts, dtype=np.int64), out=offsets[1:])
            found = self._cache["nodes"] = (self._node_chunks[0], offsets)
        nodes: tuple[np.ndarray, np.ndarray] = found
        return nodes

    def _shared(self) -> tuple[list[Mapping[str, str]], list[Mapping[str, int]]]:
        """Read-only environment per template and quanta counts per counts set, made once."""
        found = self._cache.get("shared")
        if found is None:
            environments: list[Mapping[str, str]] = [
                MappingProxyType(dict(t.environment)) for t in self._templates
            ]
            counts: list[Mapping[str, int]] = [MappingProxyType(c) for c in self._counts_sets]
            found = self._cache["shared"] = (environments, counts)
        shared: tuple[list[Mapping[str, str]], list[Mapping[str, int]]] = found
        return shared

    def _view(self, index: int, node_ids: tuple[str, ...] | None = None) -> GenericWorkflowJob:
        template_id = self._template_of[index]
        template = self._templates[template_id]
        if node_ids is None:
            ids, offsets = self._nodes()
            node_ids = tuple(uuid_strings(ids[offsets[index] : offsets[index + 1]]))
        name = self._names[index]
        command = template.command
        if template.expand:
            command = command.replace(NODE_IDS_PLACEHOLDER, ",".join(node_ids)).replace(
                JOB_NAME_PLACEHOLDER, name
            )
        keys = template.tag_keys
        tags = dict(zip(keys, self._tags[index].split(_TAG_SEPARATOR), strict=True)) if keys else {}
        environments, counts = self._shared()
        return GenericWorkflowJob(
            name=name,
            label=template.label,
            kind=template.kind,
            command=command,
            node_ids=node_ids,
            quanta_counts=counts[self._counts_of[index]],
            resources=template.resources,
            compute_site=template.compute_site,
            environment=environments[template_id],
            tags=MappingProxyType(tags),
        )

    def _resolve_pending(self) -> None:
        if not self._pending:
            return
        still: list[tuple[str, str]] = []
        for parent, child in self._pending:
            parent_index = self._index.get(parent)
            if parent_index is None:
                still.append((parent, child))
            else:
                self._edge_parent.append(parent_index)
                self._edge_child.append(self._index[child])
        if len(still) != len(self._pending):
            self._cache.clear()
        self._pending = still

    def _adjacency(self, direction: str) -> tuple[np.ndarray, np.ndarray]:
        key = f"adj-{direction}"
        found = self._cache.get(key)
        if found is None:
            parents, children = self.edges()
            source, target = (children, parents) if direction == "parents" else (parents, children)
            order = np.argsort(source, kind="stable")
            offsets = np.searchsorted(source[order], np.arange(len(self._names) + 1))
            found = self._cache[key] = (offsets, target[order])
        adjacency: tuple[np.ndarray, np.ndarray] = found
        return adjacency

    def _neighbours(self, name: str, direction: str) -> list[str]:
        index = self._index.get(name)
        if index is None:
            if self._final is not None and self._final.name == name:
                return []
            raise WorkflowError(f"No job named {name!r} in workflow {self.name!r}.")
        offsets, targets = self._adjacency(direction)
        return [self._names[i] for i in targets[offsets[index] : offsets[index + 1]].tolist()]

    def _levels(self) -> tuple[np.ndarray, np.ndarray]:
        parents, children = self.edges()
        return dependency_order(len(self._names), parents, children)

    def _cycle_message(self, remaining: np.ndarray) -> str:
        parents, children = self.edges()
        cycle = [self._names[i] for i in find_cycle(parents, children, remaining)]
        return f"Workflow {self.name!r} has a dependency cycle: {' -> '.join([*cycle, cycle[0]])}."
