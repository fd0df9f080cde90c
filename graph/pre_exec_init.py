"""Before any quantum of a graph runs: dataset types, the output run, and the run's init outputs.

Registers the graph's dataset types and its output RUN collection, then writes each task's
``<label>_config`` and InitOutputs and the run's ``packages`` under the UUIDs the graph predicted,
so jobs find them where the graph says and the final merge recognises them. Running it again
changes nothing; a stored config or package list that differs from the current one is an error
unless the caller asks to clobber it (results made two ways must not mix in one run).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from butler.butler import Butler
from butler.datasets import DatasetRef
from butler.errors import MissingDatasetTypeError
from butler.packages import Packages
from butler.timing import log_duration

from .config import PipelineTaskConfig
from .errors import QuantumGraphError, TaskExecutionError
from .execute_tasks import TaskFactory
from .init_outputs import config_dataset_name
from .quantum_graph import QuantumGraph

__all__ = ["PreExecInitReport", "pre_exec_init"]

_LOG = logging.getLogger(__name__)


@dataclass
class PreExecInitReport:
    """What `pre_exec_init` changed and what it found already in place."""

    registered_dataset_types: list[str] = field(default_factory=list)
    """Dataset types it registered (those already registered identically are not listed)."""
    created_run: bool = False
    """Whether the output run was created."""
    written: list[str] = field(default_factory=list)
    """Init-output dataset types written."""
    unchanged: list[str] = field(default_factory=list)
    """Init-output dataset types already stored with the same value."""
    replaced: list[str] = field(default_factory=list)
    """Init-output dataset types whose stored value differed and was clobbered."""

    @property
    def changed(self) -> bool:
        """Whether anything was registered or written."""
        return bool(self.registered_dataset_types or self.created_run or self.written or self.replaced)


def pre_exec_init(
    butler: Butler,
    graph: QuantumGraph,
    *,
    tasks: TaskFactory | None = None,
    register_dataset_types: bool = True,
    clobber_config: bool = False,
    clobber_versions: bool = False,
    packages: Packages | None = None,
) -> PreExecInitReport:
    """Register dataset types and the output run; write configs, init outputs and ``packages``.

    Parameters
    ----------
    butler
        A full butler of the repository the graph was built against.
    graph
        The quantum graph (only its header, dataset types and init edges are used).
    tasks
        Task factory to reuse (the local executor runs quanta in-process with the same tasks).
    register_dataset_types
        Register missing dataset types; if false, a missing one is an error naming the flag.
    clobber_config, clobber_versions
        Replace a stored config / package list that differs instead of raising.
    packages
        Software versions to record (default: the current environment).

    Raises
    ------
    QuantumGraphError
        A dataset type is not registered and ``register_dataset_types`` is false.
    ConflictingDefinitionError
        A dataset type is registered with another definition.
    TaskExecutionError
        A stored config or package list differs and clobbering was not asked for.
    """
    report = PreExecInitReport()
    run = graph.metadata.output_run
    tasks = tasks or TaskFactory(graph.metadata.pipeline_yaml)
    with log_duration(_LOG, f"Initialized output run {run!r}"):
        _dataset_types(butler, graph, register_dataset_types, report)
        report.created_run = butler.registry.register_run(run)
        writer = _InitWriter(butler, run, report, check_existing=not report.created_run)
        produced: dict[uuid.UUID, Any] = {}

        def init_inputs(label: str) -> dict[str, Any]:
            objects = {}
            for connection, ref in graph.init_input_refs(label).items():
                if ref.id in produced:
                    objects[connection] = produced[ref.id]
                else:
                    objects[connection] = butler.get(ref)
            return objects

        for label in graph.task_labels():
            task = tasks.task(label, init_inputs)
            init_outputs = task.get_init_outputs()
            for connection, ref in graph.init_output_refs(label).items():
                if ref.dataset_type.name == config_dataset_name(label):
                    writer.write(ref, task.config, _config_diff, "--clobber-config", clobber_config)
                    continue
                if connection not in init_outputs:
                    raise TaskExecutionError(
                        f"Task {label!r} did not return init-output {connection!r} from get_init_outputs() "
                        f"(it returned {sorted(init_outputs)})."
                    )
                obj = init_outputs[connection]
                produced[ref.id] = obj
                writer.write(ref, obj, _no_diff, "", False)
        current = packages if packages is not None else Packages.from_environment()
        writer.write(graph.packages_ref(), current, _packages_diff, "--clobber-versions", clobber_versions)
    return report


def _dataset_types(butler: Butler, graph: QuantumGraph, register: bool, report: PreExecInitReport) -> None:
    registry = butler.registry
    missing = []
    for name, dataset_type in graph.dataset_types.items():
        if dataset_type.component is not None:
            continue
        if register:
            if registry.register_dataset_type(dataset_type):
                report.registered_dataset_types.append(name)
            continue
        try:
            registered = registry.get_dataset_type(name)
        except MissingDatasetTypeError:
            missing.append(name)
            continue
        differences = dataset_type.differences(registered)
        if differences:
            raise QuantumGraphError(
                f"Dataset type {name} of the graph differs from the registered one: {'; '.join(differences)}."
            )
    if missing:
        raise QuantumGraphError(
            f"Dataset type(s) not registered: {', '.join(sorted(missing))}; pass --register-dataset-types."
        )


_Differ = Callable[[Any, Any], list[str]]


class _InitWriter:
    def __init__(self, butler: Butler, run: str, report: PreExecInitReport, check_existing: bool) -> None:
        self.butler = butler
        self.run = run
        self.report = report
        self.check_existing = check_existing

    def write(self, ref: DatasetRef, obj: Any, differ: _Differ, flag: str, clobber: bool) -> None:
        name = ref.dataset_type.name
        existing = self.butler.find_dataset(name, {}, collections=[self.run]) if self.check_existing else None
        if existing is not None:
            differences = differ(self.butler.get(existing), obj)
            if not differences:
                if existing.id != ref.id:
                    _LOG.info(
                        "Keeping %s %s already in %r (the graph predicted id %s).",
                        name,
                        existing.id,
                        self.run,
                        ref.id,
                    )
                self.report.unchanged.append(name)
                return
            if not clobber:
                raise TaskExecutionError(
                    f"{name} in output run {self.run!r} differs from the current one ({'; '.join(differences)}); "
                    f"use a new output run, or {flag} to replace it."
                )
            self.butler.prune_datasets([existing])
            self.report.replaced.append(name)
        self.butler.put(obj, ref)
        if existing is None:
            self.report.written.append(name)
        _LOG.debug("Wrote %s (%s) into %s.", name, ref.id, self.run)


def _config_diff(stored: Any, current: PipelineTaskConfig) -> list[str]:
    if type(stored) is not type(current):
        return [f"config class {type(stored).__name__} != {type(current).__name__}"]
    return current.diff(stored)


def _packages_diff(stored: Any, current: Packages) -> list[str]:
    stored_packages = stored if isinstance(stored, Packages) else Packages(stored)
    return [
        f"{name}: {old} -> {new}" for name, (old, new) in sorted(stored_packages.difference(current).items())
    ]


def _no_diff(stored: Any, current: Any) -> list[str]:
    return []
