"""Once-per-run outputs: each task's ``<label>_config``, its InitOutputs, and the run's ``packages``.

Written before any quantum runs. On a re-run into an existing output run the stored configs and
software versions are compared with the current ones: a difference is an error (results made with
two configurations must not mix in one run) unless the caller asks to clobber.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from butler.butler import Butler
from butler.datasets import DatasetRef, DatasetType
from butler.packages import Packages

from .config import PipelineTaskConfig
from .errors import TaskExecutionError
from .task import PipelineTask

__all__ = [
    "CONFIG_SUFFIX",
    "PACKAGES_DATASET",
    "InitOutputsReport",
    "config_dataset_name",
    "write_init_outputs",
]

_LOG = logging.getLogger(__name__)

CONFIG_SUFFIX = "_config"
PACKAGES_DATASET = "packages"


def config_dataset_name(label: str) -> str:
    """Name of the dataset type holding the config of the task labeled ``label``."""
    return f"{label}{CONFIG_SUFFIX}"


@dataclass
class InitOutputsReport:
    """What `write_init_outputs` wrote and what it found already there."""

    written: list[DatasetRef] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    """Dataset type names whose stored value equals the current one."""
    replaced: list[str] = field(default_factory=list)
    """Dataset type names whose stored value differed and was clobbered."""


def write_init_outputs(
    butler: Butler,
    tasks: Iterable[PipelineTask],
    run: str,
    *,
    packages: Packages | None = None,
    clobber_config: bool = False,
    clobber_versions: bool = False,
) -> InitOutputsReport:
    """Write configs, init-outputs and ``packages`` of ``tasks`` into ``run`` (registering dataset types).

    Existing configs that differ raise `TaskExecutionError` listing the differing fields, unless
    ``clobber_config``; differing package versions likewise unless ``clobber_versions``.
    """
    report = InitOutputsReport()
    butler.registry.register_run(run)
    for task in tasks:
        _write_one(
            butler,
            run,
            config_dataset_name(task.name),
            "Config",
            task.config,
            report,
            clobber_config,
            _config_diff,
        )
        for attr, obj in task.get_init_outputs().items():
            connection = task.connections.connection(attr)
            _write_one(butler, run, connection.name, connection.storage_class, obj, report, False, _no_diff)
    current = packages if packages is not None else Packages.from_environment()
    _write_one(butler, run, PACKAGES_DATASET, "Packages", current, report, clobber_versions, _packages_diff)
    return report


def _write_one(
    butler: Butler,
    run: str,
    name: str,
    storage_class: str,
    obj: Any,
    report: InitOutputsReport,
    clobber: bool,
    differences: Any,
) -> None:
    dataset_type = DatasetType(name, (), storage_class, universe=butler.registry.universe)
    butler.registry.register_dataset_type(dataset_type)
    existing = (
        butler.find_dataset(name, {}, collections=[run]) if butler.registry.has_collection(run) else None
    )
    if existing is not None:
        diffs = differences(butler.get(existing), obj)
        if not diffs:
            report.unchanged.append(name)
            return
        if not clobber:
            flag = "--clobber-versions" if name == PACKAGES_DATASET else "--clobber-config"
            raise TaskExecutionError(
                f"{name} in output run {run!r} differs from the current one ({'; '.join(diffs)}); "
                f"use a new output run, or {flag} to replace it."
            )
        butler.prune_datasets([existing])
        report.replaced.append(name)
    report.written.append(butler.put(obj, dataset_type, {}, run=run))
    _LOG.debug("Wrote %s into %s.", name, run)


def _config_diff(stored: Any, current: PipelineTaskConfig) -> list[str]:
    if type(stored) is not type(current):
        return [f"config class {type(stored).__name__} != {type(current).__name__}"]
    return current.diff(stored)


def _packages_diff(stored: Mapping[str, str], current: Packages) -> list[str]:
    stored_packages = stored if isinstance(stored, Packages) else Packages(stored)
    return [
        f"{name}: {old} -> {new}" for name, (old, new) in sorted(stored_packages.difference(current).items())
    ]


def _no_diff(stored: Any, current: Any) -> list[str]:
    return []
