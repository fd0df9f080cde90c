"""The records of the generic workflow: job kinds, resources, jobs, files and job templates.

Re-exported by `bps.workflow`, which is where plugins and core import them from.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["GenericWorkflowJob", "JobKind", "JobResources", "JobTemplate", "WhenRun", "WorkflowFile"]


class JobKind(enum.StrEnum):
    """What a job does: the run's one-time init, a payload of quanta, or the final merge."""

    INIT = "init"
    PAYLOAD = "payload"
    FINAL = "final"


class WhenRun(enum.StrEnum):
    """When the final job runs (``finalJob.whenRun``)."""

    ALWAYS = "ALWAYS"
    SUCCESS = "SUCCESS"
    NEVER = "NEVER"


@dataclass(frozen=True, slots=True)
class JobResources:
    """What a job asks of the batch system. Memory and disk in MB, walltime in seconds."""

    request_cpus: int = 1
    request_memory: int = 2048
    """MB, for the first attempt."""
    request_memory_max: int | None = None
    """MB cap for memory escalation on retries."""
    memory_multiplier: float | None = None
    """Memory factor per retry; None or <= 1 means no escalation."""
    memory_limit: int | None = None
    """MB hard cap of the site; escalation is capped by min(request_memory_max, memory_limit)."""
    request_disk: int = 0
    """MB."""
    request_walltime: int | None = None
    """Seconds."""
    number_of_retries: int = 0
    """Retries after the first attempt."""
    retry_unless_exit: tuple[int, ...] = ()
    """Exit codes that are never retried."""
    priority: int = 0
    queue: str | None = None
    concurrency_limit: str | None = None
    preemptible: bool = False

    def memory_for_attempt(self, attempt: int) -> int:
        """MB to request for ``attempt`` (1-based): escalated by ``memory_multiplier`` and capped."""
        memory = float(self.request_memory)
        if self.memory_multiplier is not None and self.memory_multiplier > 1 and attempt > 1:
            memory *= self.memory_multiplier ** (attempt - 1)
        caps = [c for c in (self.request_memory_max, self.memory_limit) if c is not None]
        if caps:
            memory = min(memory, float(min(caps)))
        return int(memory)

    def should_retry(self, attempt: int, exit_code: int | None) -> bool:
        """Whether to run again after ``attempt`` (1-based, the one that just failed) exited with ``exit_code``."""
        if attempt > self.number_of_retries:
            return False
        return exit_code is None or exit_code not in self.retry_unless_exit


@dataclass(frozen=True, slots=True)
class GenericWorkflowJob:
    """One job of the workflow (a frozen view; the workflow stores jobs columnar)."""

    name: str
    """Unique and filesystem-safe (``[A-Za-z0-9_.-]``)."""
    label: str
    """Cluster label; the task label for single-quantum jobs; ``pipetaskInit``; ``finalJob``."""
    kind: JobKind
    command: str
    """A shell command line, fully expanded except file placeholders ``<FILE:name>``."""
    node_ids: tuple[str, ...]
    """Quantum UUIDs (as strings) this job runs; () for init and final jobs."""
    quanta_counts: Mapping[str, int]
    """Task label -> number of quanta in this job."""
    resources: JobResources
    compute_site: str
    environment: Mapping[str, str]
    """Extra environment variables of the job."""
    tags: Mapping[str, str]
    """E.g. the data-id values of the cluster (``{"visit": "12"}``)."""


@dataclass(frozen=True, slots=True)
class WorkflowFile:
    """A file jobs use, referred to as ``<FILE:name>`` in commands."""

    name: str
    """Logical name, e.g. ``qgraphFile``, ``butlerConfig``."""
    path: str
    """Absolute path on the submit side."""
    wms_transfer: bool = False
    job_shared: bool = True


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """What the jobs of one bulk block share (`GenericWorkflow.add_jobs`).

    ``command`` may hold ``{qgraphNodeId}`` (the job's comma-separated node ids) and ``{jobName}``,
    filled per job when a `GenericWorkflowJob` view is built; ``tag_keys`` name the per-job tag values.
    """

    label: str
    kind: JobKind
    command: str
    resources: JobResources
    compute_site: str
    environment: tuple[tuple[str, str], ...] = ()
    tag_keys: tuple[str, ...] = ()
    expand: bool = True
    """False when ``command`` is literal (it contained a placeholder text of its own)."""
