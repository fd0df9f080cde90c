"""Runs one quantum: its task's `run_quantum` plus the ``<label>_metadata`` and ``<label>_log`` datasets.

The log dataset is written whether the quantum succeeds or fails (it is what an operator reads
first); the metadata dataset only when it succeeds, so its existence marks success.
"""

from __future__ import annotations

import enum
import logging
import resource
import time
import uuid
from dataclasses import dataclass

from butler.datasets import DatasetRef
from butler.log_records import ButlerLogRecords
from butler.task_metadata import TaskMetadata

from .errors import NoWorkFound, TaskExecutionError
from .quantum import Quantum
from .quantum_context import LimitedButler, QuantumContext
from .task import PipelineTask

__all__ = ["QuantumOutcome", "QuantumStatus", "execute_quantum"]

_LOG = logging.getLogger(__name__)


class QuantumStatus(enum.Enum):
    """How a quantum ended."""

    SUCCEEDED = "succeeded"
    NO_WORK = "no_work"
    """The task (or a connection's ``minimum``) found nothing to do; counts as success."""
    FAILED = "failed"


@dataclass(frozen=True)
class QuantumOutcome:
    """What happened when one quantum ran."""

    status: QuantumStatus
    written: list[DatasetRef]
    """Every dataset written, metadata and log included."""
    wall_time: float
    """Seconds."""
    cpu_time: float
    """Seconds of CPU used by this process while the quantum ran."""
    max_rss_mb: float
    """Peak resident memory of the process so far, MB."""
    error: str | None = None
    """``Type: message`` of the failure, if it failed."""


def execute_quantum(
    task: PipelineTask, quantum: Quantum, butler: LimitedButler, *, raise_on_failure: bool = True
) -> QuantumOutcome:
    """Run ``task`` on ``quantum`` reading and writing through ``butler``.

    A failure raises `TaskExecutionError` (from the task's exception) after the log dataset is
    written, unless ``raise_on_failure`` is false, in which case the outcome says FAILED.
    """
    if quantum.task_label != task.name:
        raise TaskExecutionError(f"Quantum of task {quantum.task_label!r} given to task {task.name!r}.")
    task.reset_metadata()
    records = ButlerLogRecords()
    handler = records.handler(logging.DEBUG)
    previous_level = task.log.level
    if task.log.getEffectiveLevel() > logging.INFO:
        task.log.setLevel(logging.INFO)
    task.log.addHandler(handler)
    context = QuantumContext(butler)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    status, error, failure = QuantumStatus.SUCCEEDED, None, None
    try:
        task.log.info("Running %s on %s.", task.name, quantum.data_id)
        with task.timer("runQuantum"):
            task.run_quantum(context, quantum.inputs, quantum.outputs)
    except NoWorkFound as err:
        status = QuantumStatus.NO_WORK
        task.log.info("No work found for %s %s: %s", task.name, quantum.data_id, err)
    except Exception as err:
        status, error, failure = QuantumStatus.FAILED, f"{type(err).__name__}: {err}", err
        # The message carries the exception so that the log dataset alone explains the failure.
        task.log.exception("Task %s failed on %s: %s", task.name, quantum.data_id, error)
    finally:
        task.log.removeHandler(handler)
        task.log.setLevel(previous_level)
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    written = list(context.written)
    if status is not QuantumStatus.FAILED and quantum.metadata_output is not None:
        metadata = _quantum_metadata(task, status, wall, cpu, max_rss_mb, len(written), sorted(context.read))
        written.append(butler.put(metadata, quantum.metadata_output))
    if quantum.log_output is not None:
        written.append(butler.put(records, quantum.log_output))
    outcome = QuantumOutcome(status, written, wall, cpu, max_rss_mb, error)
    if failure is not None and raise_on_failure:
        raise TaskExecutionError(f"Quantum {task.name} {quantum.data_id} failed: {error}") from failure
    return outcome


def _quantum_metadata(
    task: PipelineTask,
    status: QuantumStatus,
    wall: float,
    cpu: float,
    max_rss_mb: float,
    n_outputs: int,
    actual_inputs: list[uuid.UUID],
) -> TaskMetadata:
    metadata = TaskMetadata({task.name: task.full_metadata()})
    metadata["quantum"] = {
        "status": status.value,
        "wall_time_s": wall,
        "cpu_time_s": cpu,
        "max_rss_mb": max_rss_mb,
        "outputs_written": n_outputs,
        # Provenance: which predicted inputs the task really read (DMS-MWBT-REQ-0095).
        "actual_inputs": [str(dataset_id) for dataset_id in actual_inputs],
    }
    return metadata
