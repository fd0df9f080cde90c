"""The parts a `Pipeline` is made of: tasks with config overrides, subsets, contracts, steps (`pipeline_file` reads them).

Also the rules the parts follow on their own: valid task labels, ``parameters.<name>``
substitution, consistent subsets and steps, and selecting a subset of the labels.
"""

from __future__ import annotations

import copy
import difflib
import enum
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from .contracts import Contract
from .errors import PipelineFileError, SubsetError

__all__ = [
    "ConfigOverride",
    "LabeledSubset",
    "PipelineParts",
    "PythonFileOverride",
    "Step",
    "SubsetMode",
    "TaskSpec",
    "ValueOverride",
    "check_label",
    "expand_names",
    "labels_text",
    "select_labels",
    "substitute_parameters",
    "suggestion_end",
]

_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PARAMETER = re.compile(r"parameters\.([A-Za-z_][A-Za-z0-9_]*)")


# -- the parts of a pipeline -----------------------------------------------------------------------


@dataclass(frozen=True)
class ValueOverride:
    """Config field values set for one task, applied in order after the config's defaults."""

    values: Mapping[str, Any]
    """Field path (dotted, or nested mappings) -> value; strings ``parameters.<name>`` are substituted."""
    source: str = ""
    """Where the values came from (file and key, or the command line), recorded in config history."""
    from_text: bool = False
    """The values are command-line text the config parses (``-c label:field=value``), not typed values."""


@dataclass(frozen=True)
class PythonFileOverride:
    """A Python config override file (``config`` bound to the task's config); command line or Python API only."""

    path: str
    """Path of the file."""
    source: str = ""
    """Where the override was requested, recorded in config history."""


ConfigOverride = ValueOverride | PythonFileOverride
"""One step of a task's configuration."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of a pipeline before its class is imported: label, class path and config overrides."""

    label: str
    """Label of the task in the pipeline (also the prefix of its ``_config``/``_metadata``/``_log`` datasets)."""
    task_class: str
    """Import path of the PipelineTask class (``package.module.ClassName``)."""
    overrides: tuple[ConfigOverride, ...] = ()
    """Config overrides in the order they are applied."""
    source: str = ""
    """File (or API call) that declared the task, for error messages."""
    task_class_object: type | None = field(default=None, compare=False, repr=False)
    """The class itself when the pipeline was built in Python from a class (spares an import)."""


@dataclass(frozen=True)
class LabeledSubset:
    """A named set of task labels (``subsets:``), selectable with ``pipeline.yaml#name``."""

    name: str
    """Name of the subset (distinct from every task label)."""
    labels: tuple[str, ...]
    """Task labels in the subset."""
    description: str | None = None
    """What the subset is for."""


@dataclass(frozen=True)
class Step:
    """One step (``steps:``): a subset run as a unit, in order, with its sharding dimensions."""

    label: str
    """Name of the labeled subset the step runs."""
    dimensions: tuple[str, ...] = ()
    """Dimensions the step is split (sharded) over when submitted."""


class SubsetMode(enum.Enum):
    """What an import does with a labeled subset that names labels its include/exclude removed."""

    ASSERT = "ASSERT"
    """Refuse the import (the default)."""
    DROP = "DROP"
    """Drop the subset."""
    EDIT = "EDIT"
    """Remove the missing labels from the subset (dropping it if it becomes empty)."""


@dataclass
class PipelineParts:
    """Everything a pipeline file (with its imports) defines; the mutable state inside a `Pipeline`."""

    description: str = ""
    """What the pipeline does."""
    instrument: str | None = None
    """Instrument import path or registered name, if the pipeline declares one."""
    parameters: dict[str, Any] = field(default_factory=dict)
    """Values config blocks refer to as ``parameters.<name>``."""
    tasks: dict[str, TaskSpec] = field(default_factory=dict)
    """Tasks by label, in declaration order."""
    subsets: dict[str, LabeledSubset] = field(default_factory=dict)
    """Labeled subsets by name."""
    contracts: list[Contract] = field(default_factory=list)
    """Contracts the task configs must satisfy."""
    steps: list[Step] = field(default_factory=list)
    """Steps in order (empty when the pipeline declares none)."""
    source: str = ""
    """The file the parts were read from (empty for a pipeline built in Python)."""

    def copy(self) -> PipelineParts:
        """An independent copy (parameters deep-copied; the rest is immutable)."""
        return replace(
            self,
            parameters=copy.deepcopy(self.parameters),
            tasks=dict(self.tasks),
            subsets=dict(self.subsets),
            contracts=list(self.contracts),
            steps=list(self.steps),
        )

    def validate(self) -> None:
        """Check subsets, steps and parameter references; `PipelineFileError`/`SubsetError` if inconsistent."""
        where = f"{self.source}: " if self.source else ""
        for subset in self.subsets.values():
            missing = [label for label in subset.labels if label not in self.tasks]
            if missing:
                raise SubsetError(
                    f"{where}subset {subset.name!r} names {labels_text(missing)} not in the pipeline"
                    f"{suggestion_end(missing[0], self.tasks)}"
                )
            if subset.name in self.tasks:
                raise PipelineFileError(f"{where}subset {subset.name!r} has the same name as a task label.")
        seen_steps: set[str] = set()
        for step in self.steps:
            if step.label not in self.subsets:
                raise SubsetError(
                    f"{where}step {step.label!r} is not a labeled subset{suggestion_end(step.label, self.subsets)}"
                    " (each step label must name a subset under 'subsets:')"
                )
            if step.label in seen_steps:
                raise PipelineFileError(f"{where}step {step.label!r} is listed twice.")
            seen_steps.add(step.label)
        if self.steps:
            owner: dict[str, str] = {}
            for step in self.steps:
                for label in self.subsets[step.label].labels:
                    if label in owner:
                        raise PipelineFileError(
                            f"{where}task {label!r} is in two steps, {owner[label]!r} and {step.label!r}; "
                            "each task must be in exactly one step."
                        )
                    owner[label] = step.label
            missing = [label for label in self.tasks if label not in owner]
            if missing:
                raise PipelineFileError(
                    f"{where}{labels_text(missing)} in no step; when 'steps' are given each task must be "
                    "in exactly one step."
                )
        for spec in self.tasks.values():
            for override in spec.overrides:
                if isinstance(override, ValueOverride):
                    substitute_parameters(override.values, self.parameters, override.source)


# -- helpers ---------------------------------------------------------------------------------------


def suggestion_end(name: str, candidates: Iterable[str]) -> str:
    """The end of an error message: ``; did you mean 'a' or 'b'?`` for up to three close candidates, else ``.``."""
    close = difflib.get_close_matches(name, list(candidates), n=3)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else "."


def labels_text(labels: Sequence[str]) -> str:
    """``label 'a'`` or ``labels 'a', 'b'`` for error messages."""
    return ("label " if len(labels) == 1 else "labels ") + ", ".join(repr(label) for label in labels)


def check_label(label: object, where: str) -> str:
    """``label`` if it is a valid task label (an identifier, not ``parameters``); else `PipelineFileError`."""
    if not isinstance(label, str) or not _LABEL.fullmatch(label):
        raise PipelineFileError(
            f"{where}task label {label!r} is invalid: use letters, digits and underscores, not starting "
            "with a digit (labels prefix dataset type names such as '<label>_config')."
        )
    if label == "parameters":
        raise PipelineFileError(f"{where}'parameters' is reserved and cannot be a task label.")
    return label


def substitute_parameters(value: Any, parameters: Mapping[str, Any], source: str) -> Any:
    """``value`` with every string ``parameters.<name>`` replaced by that parameter (recursively).

    Raises `PipelineFileError` naming the reference, ``source`` and the known parameters if a name
    is not defined.
    """
    if isinstance(value, str):
        match = _PARAMETER.fullmatch(value)
        if match is None:
            return value
        name = match.group(1)
        if name not in parameters:
            known = ", ".join(parameters) or "none"
            raise PipelineFileError(
                f"{source}: {value!r} refers to parameter {name!r}, which the pipeline does not define "
                f"(parameters: {known}){suggestion_end(name, parameters)}"
            )
        return copy.deepcopy(parameters[name])
    if isinstance(value, Mapping):
        return {key: substitute_parameters(item, parameters, source) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute_parameters(item, parameters, source) for item in value]
    return value


# -- selection -------------------------------------------------------------------------------------


def expand_names(parts: PipelineParts, names: Iterable[str], where: str) -> list[str]:
    """Task labels named directly or through subsets; `SubsetError` with suggestions for unknown names."""
    labels: list[str] = []
    for name in names:
        if name in parts.subsets:
            labels.extend(parts.subsets[name].labels)
        elif name in parts.tasks:
            labels.append(name)
        else:
            known = [*parts.tasks, *parts.subsets]
            raise SubsetError(
                f"{where}{name!r} is neither a task label nor a labeled subset of the pipeline"
                f"{suggestion_end(name, known)} (labels: {', '.join(parts.tasks) or 'none'}; subsets: "
                f"{', '.join(parts.subsets) or 'none'})"
            )
    return list(dict.fromkeys(labels))


def select_labels(
    parts: PipelineParts, labels: Iterable[str], mode: SubsetMode = SubsetMode.EDIT, where: str = ""
) -> PipelineParts:
    """A copy of ``parts`` keeping only ``labels`` (task labels or subset names).

    Subsets that lose labels follow ``mode``; steps whose subset is dropped are dropped; contracts
    that refer to a removed label are dropped.
    """
    keep = set(expand_names(parts, labels, where))
    result = parts.copy()
    result.tasks = {label: spec for label, spec in parts.tasks.items() if label in keep}
    subsets: dict[str, LabeledSubset] = {}
    for name, subset in parts.subsets.items():
        remaining = tuple(label for label in subset.labels if label in keep)
        if len(remaining) == len(subset.labels):
            subsets[name] = subset
        elif mode is SubsetMode.ASSERT:
            removed = [label for label in subset.labels if label not in keep]
            raise SubsetError(
                f"{where}labeled subset {name!r} would lose {labels_text(removed)}; set "
                "labeledSubsetModifyMode to DROP or EDIT, or change include/exclude."
            )
        elif mode is SubsetMode.EDIT and remaining:
            subsets[name] = replace(subset, labels=remaining)
    result.subsets = subsets
    result.steps = [step for step in parts.steps if step.label in subsets]
    result.contracts = [c for c in parts.contracts if c.labels <= set(result.tasks)]
    return result
