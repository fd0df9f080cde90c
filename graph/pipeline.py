"""Pipelines: labeled tasks with their config overrides, subsets, contracts and steps, before the graph is built.

A `Pipeline` comes from pipeline YAML (`Pipeline.from_yaml`, imports merged, ``file.yaml#subset``
selection) or is assembled in Python (`Pipeline.from_tasks`, `Pipeline.add_task`). Command-line
overrides (``-c label:field=value``, ``-C label:file.py``) are added in command-line order on top
of the YAML config. `Pipeline.make_config` imports a task class and applies the overrides;
`graph.pipeline_graph.PipelineGraph.from_pipeline` builds the validated graph from it.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .config import PipelineTaskConfig
from .contracts import Contract, check_contracts
from .errors import ConfigError, PipelineFileError, SubsetError
from .pipeline_file import (
    parts_to_primitives,
    read_pipeline_file,
    read_pipeline_string,
    write_yaml_atomically,
)
from .pipeline_parts import (
    ConfigOverride,
    LabeledSubset,
    PipelineParts,
    PythonFileOverride,
    Step,
    SubsetMode,
    TaskSpec,
    ValueOverride,
    check_label,
    select_labels,
    substitute_parameters,
)
from .task import PipelineTask
from .task_loading import load_task_class, task_class_path

__all__ = [
    "ConfigOverride",
    "LabeledSubset",
    "Pipeline",
    "PythonFileOverride",
    "Step",
    "TaskSpec",
    "ValueOverride",
    "parse_config_file_option",
    "parse_config_option",
]

_LOG = logging.getLogger(__name__)


def parse_config_option(text: str) -> tuple[str, str, str]:
    """Split a ``-c`` value ``label:field.path=value`` into (label, field path, value text).

    The value text is parsed later, by the config, as a YAML scalar. Raises `ConfigError` for a
    malformed option.
    """
    label, colon, rest = text.partition(":")
    path, equals, value = rest.partition("=")
    if not colon or not equals or not label.strip() or not path.strip():
        raise ConfigError(f"Config override {text!r} is not of the form label:field=value.")
    return label.strip(), path.strip(), value.strip()


def parse_config_file_option(text: str) -> tuple[str, str]:
    """Split a ``-C`` value ``label:path/to/overrides.py`` into (label, file path); `ConfigError` if malformed."""
    label, colon, path = text.partition(":")
    if not colon or not label.strip() or not path.strip():
        raise ConfigError(f"Config file override {text!r} is not of the form label:path/to/file.py.")
    return label.strip(), path.strip()


class Pipeline:
    """Labeled tasks with their config overrides, labeled subsets, contracts and steps.

    Parameters
    ----------
    description
        What the pipeline does.
    instrument
        Instrument import path or registered instrument name (stored and exposed, not loaded here).
    parameters
        Values config overrides refer to as ``parameters.<name>``.
    """

    def __init__(
        self,
        description: str = "",
        *,
        instrument: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> None:
        self._parts = PipelineParts(
            description=description, instrument=instrument, parameters=dict(parameters or {})
        )

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def _from_parts(cls, parts: PipelineParts) -> Pipeline:
        pipeline = cls.__new__(cls)
        pipeline._parts = parts
        return pipeline

    @classmethod
    def from_yaml(cls, location: str | Path) -> Pipeline:
        """Read a pipeline file; ``file.yaml#name1,name2`` keeps the named labels and subsets only.

        Raises `PipelineFileError` for a missing or malformed file and `SubsetError` for a
        selection naming something the pipeline does not have.
        """
        path_text, hash_mark, selection = str(location).partition("#")
        pipeline = cls._from_parts(read_pipeline_file(path_text))
        if hash_mark:
            pipeline = pipeline.select(selection)
        return pipeline

    @classmethod
    def from_string(cls, text: str, *, source: str = "<string>", base_dir: Path | None = None) -> Pipeline:
        """Read pipeline YAML text; imports are relative to ``base_dir`` (default: the working directory)."""
        return cls._from_parts(read_pipeline_string(text, source, base_dir))

    @classmethod
    def from_tasks(
        cls,
        tasks: Mapping[str, type[PipelineTask] | str],
        *,
        description: str = "",
        instrument: str | None = None,
    ) -> Pipeline:
        """A pipeline of ``tasks`` (label -> task class or import path), in the given order."""
        pipeline = cls(description, instrument=instrument)
        for label, task_class in tasks.items():
            pipeline.add_task(label, task_class)
        return pipeline

    def copy(self) -> Pipeline:
        """An independent copy."""
        return self._from_parts(self._parts.copy())

    # -- contents ---------------------------------------------------------------------------------

    @property
    def description(self) -> str:
        """What the pipeline does."""
        return self._parts.description

    @description.setter
    def description(self, value: str) -> None:
        self._parts.description = value

    @property
    def instrument(self) -> str | None:
        """Instrument import path or registered name, if the pipeline declares one."""
        return self._parts.instrument

    @instrument.setter
    def instrument(self, value: str | None) -> None:
        self._parts.instrument = value

    @property
    def parameters(self) -> Mapping[str, Any]:
        """Parameter values (``parameters.<name>`` in config values), read-only."""
        return MappingProxyType(self._parts.parameters)

    @property
    def source(self) -> str:
        """The file the pipeline was read from (empty if built in Python)."""
        return self._parts.source

    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """Task label -> `TaskSpec`, in declaration order (read-only)."""
        return MappingProxyType(self._parts.tasks)

    @property
    def labels(self) -> tuple[str, ...]:
        """Task labels in declaration order."""
        return tuple(self._parts.tasks)

    @property
    def subsets(self) -> Mapping[str, LabeledSubset]:
        """Labeled subsets by name (read-only)."""
        return MappingProxyType(self._parts.subsets)

    @property
    def contracts(self) -> tuple[Contract, ...]:
        """Contracts checked once the configs are built."""
        return tuple(self._parts.contracts)

    @property
    def steps(self) -> tuple[Step, ...]:
        """Steps in order (each names a labeled subset)."""
        return tuple(self._parts.steps)

    def __len__(self) -> int:
        return len(self._parts.tasks)

    def __contains__(self, label: object) -> bool:
        return label in self._parts.tasks

    def __repr__(self) -> str:
        return f"Pipeline({self.description!r}, tasks={list(self._parts.tasks)})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Pipeline):
            return NotImplemented
        try:
            return self.to_primitives() == other.to_primitives()
        except PipelineFileError:
            return self is other

    __hash__ = None  # type: ignore[assignment]

    def _spec(self, label: str) -> TaskSpec:
        try:
            return self._parts.tasks[label]
        except KeyError:
            raise SubsetError(_unknown_label(label, self._parts.tasks)) from None

    # -- editing ----------------------------------------------------------------------------------

    def add_task(
        self,
        label: str,
        task_class: type[PipelineTask] | str,
        config_overrides: Mapping[str, Any] | None = None,
        *,
        source: str = "Pipeline.add_task",
    ) -> None:
        """Add a task; ``config_overrides`` (field path -> value) apply after the config defaults.

        Raises `PipelineFileError` if the label is invalid or already used.
        """
        check_label(label, "")
        if label in self._parts.tasks or label in self._parts.subsets:
            raise PipelineFileError(f"Label {label!r} is already used in the pipeline.")
        if isinstance(task_class, str):
            spec = TaskSpec(label, task_class, (), source)
        else:
            spec = TaskSpec(label, task_class_path(task_class), (), source, task_class_object=task_class)
        if config_overrides:
            spec = replace(spec, overrides=(ValueOverride(dict(config_overrides), source),))
        self._parts.tasks[label] = spec

    def remove_task(self, label: str) -> None:
        """Remove a task, dropping it from subsets and dropping contracts that refer to it."""
        self._spec(label)
        keep = [other for other in self._parts.tasks if other != label]
        self._parts = select_labels(self._parts, keep, SubsetMode.EDIT)

    def add_config_override(self, label: str, path: str, value: Any, *, source: str | None = None) -> None:
        """Set config field ``path`` of task ``label`` to ``value`` (applied after earlier overrides).

        A string value is parsed by the config as a YAML scalar, as on the command line.
        """
        self.add_config_overrides(label, {path: value}, source=source)

    def add_config_overrides(
        self, label: str, values: Mapping[str, Any], *, source: str | None = None
    ) -> None:
        """Set several config fields (field path or nested mapping -> value) of task ``label``."""
        spec = self._spec(label)
        override = ValueOverride(dict(values), source or f"override of {label!r}")
        self._parts.tasks[label] = replace(spec, overrides=(*spec.overrides, override))

    def add_python_override_file(self, label: str, path: str | Path, *, source: str | None = None) -> None:
        """Run Python override file ``path`` (``config`` bound to the task config) after earlier overrides."""
        spec = self._spec(label)
        override = PythonFileOverride(str(path), source or str(path))
        self._parts.tasks[label] = replace(spec, overrides=(*spec.overrides, override))

    def add_command_line_overrides(self, options: Iterable[tuple[str, str]]) -> None:
        """Apply command-line overrides in the order given.

        ``options`` are (``"-c"``, ``"label:field=value"``) and (``"-C"``, ``"label:file.py"``) pairs.
        """
        for option, text in options:
            if option == "-c":
                label, path, value = parse_config_option(text)
                spec = self._spec(label)
                override = ValueOverride({path: value}, f"command line: -c {text}", from_text=True)
                self._parts.tasks[label] = replace(spec, overrides=(*spec.overrides, override))
            elif option == "-C":
                label, file_path = parse_config_file_option(text)
                self.add_python_override_file(label, file_path, source=f"command line: -C {text}")
            else:
                raise ConfigError(f"Unknown config override option {option!r}; expected -c or -C.")

    def add_subset(self, name: str, labels: Iterable[str], description: str | None = None) -> None:
        """Add (or replace) a labeled subset; `SubsetError` if it names a label the pipeline lacks."""
        check_label(name, "")
        labels = tuple(dict.fromkeys(labels))
        for label in labels:
            self._spec(label)
        if name in self._parts.tasks:
            raise PipelineFileError(f"Subset name {name!r} is already a task label.")
        self._parts.subsets[name] = LabeledSubset(name, labels, description)

    def add_contract(self, expression: str, msg: str | None = None) -> None:
        """Add a contract (checked when the configs are built); `ContractError` if it does not parse."""
        self._parts.contracts.append(Contract.parse(expression, msg, source="Pipeline.add_contract"))

    def add_step(self, label: str, dimensions: Iterable[str] = ()) -> None:
        """Append a step running the labeled subset ``label`` sharded over ``dimensions``."""
        if label not in self._parts.subsets:
            raise SubsetError(_unknown_label(label, self._parts.subsets, kind="labeled subset"))
        self._parts.steps.append(Step(label, tuple(dimensions)))

    # -- selection --------------------------------------------------------------------------------

    def subset(self, labels: Iterable[str]) -> Pipeline:
        """A new pipeline of ``labels`` (task labels or subset names).

        Subsets keep only the selected labels (empty ones are dropped, with their steps); contracts
        referring to a dropped task are dropped. Raises `SubsetError` for an unknown name.
        """
        return self._from_parts(select_labels(self._parts, list(labels), SubsetMode.EDIT))

    def select(self, selection: str) -> Pipeline:
        """`subset` from the text after ``#`` in ``file.yaml#...``: comma-separated labels or subset names."""
        names = [name.strip() for name in selection.split(",") if name.strip()]
        if not names:
            raise SubsetError(f"Empty label selection {'#' + selection!r}; name labels or subsets after '#'.")
        for name in names:
            if ".." in name:
                raise SubsetError(
                    f"Label ranges such as {name!r} are not supported; list the labels or name a subset."
                )
        where = f"{self.source}#{selection}: " if self.source else f"#{selection}: "
        return self._from_parts(select_labels(self._parts, names, SubsetMode.EDIT, where))

    # -- configs ----------------------------------------------------------------------------------

    def validate(self) -> None:
        """Check subsets, steps and parameter references (done on load; repeat after editing)."""
        self._parts.validate()

    def task_class(self, label: str) -> type[PipelineTask]:
        """The task class of ``label`` (imported; `TaskImportError` shows the original error)."""
        spec = self._spec(label)
        if spec.task_class_object is not None and issubclass(spec.task_class_object, PipelineTask):
            return spec.task_class_object
        return load_task_class(spec.task_class)

    def make_config(self, label: str) -> PipelineTaskConfig:
        """The config of task ``label``: class defaults, then every override in order (not frozen).

        Raises `TaskImportError`, `ConfigFieldError` (unknown field, with suggestions),
        `ConfigValueError` (wrong type) or `PipelineFileError` (unknown parameter).
        """
        spec = self._spec(label)
        config = self.task_class(label).ConfigClass()
        for override in spec.overrides:
            self._apply(config, override)
        return config

    def make_configs(self) -> dict[str, PipelineTaskConfig]:
        """`make_config` for every task, by label."""
        return {label: self.make_config(label) for label in self._parts.tasks}

    def check_contracts(self, configs: Mapping[str, Any]) -> None:
        """Check every contract against ``configs`` (label -> config); `ContractError` lists the failures."""
        check_contracts(self._parts.contracts, configs)

    def _apply(self, config: PipelineTaskConfig, override: ConfigOverride) -> None:
        if isinstance(override, PythonFileOverride):
            path = Path(override.path)
            if not path.is_file():
                raise ConfigError(
                    f"Config override file {override.path!r} ({override.source}) does not exist."
                )
            config.load_python(path, override.source)
        else:
            values = substitute_parameters(override.values, self._parts.parameters, override.source)
            config.apply_overrides(values, override.source)

    # -- writing ----------------------------------------------------------------------------------

    def to_primitives(self) -> dict[str, Any]:
        """The pipeline as a YAML-ready mapping (imports merged); Python override files not allowed."""
        return parts_to_primitives(self._parts)

    def expand_overrides(self) -> Pipeline:
        """A copy in which Python override files and command-line text values became typed value blocks.

        Each such override is applied to the config as built up to it, and the fields it changed
        become one value block in its place, so the order of overrides is kept. Task classes are
        imported only for tasks that have such overrides.
        """
        parts = self._parts.copy()
        for label, spec in self._parts.tasks.items():
            if not any(_needs_expansion(o) for o in spec.overrides):
                continue
            config = self.task_class(label).ConfigClass()
            expanded: list[ConfigOverride] = []
            for override in spec.overrides:
                before = config.to_dict()
                self._apply(config, override)
                if _needs_expansion(override):
                    changes = _changes(before, config.to_dict())
                    if changes:
                        expanded.append(ValueOverride(changes, override.source))
                else:
                    expanded.append(override)
            parts.tasks[label] = replace(spec, overrides=tuple(expanded))
        return self._from_parts(parts)

    def write_yaml(self, path: str | Path) -> None:
        """Write the pipeline as self-contained YAML: imports merged, overrides expanded (`expand_overrides`).

        The file is written atomically and reads back (`from_yaml`) as an equivalent pipeline.
        """
        document = self.expand_overrides().to_primitives()
        write_yaml_atomically(document, path)
        _LOG.info("Wrote pipeline with %d task(s) to %s.", len(self), path)


def _needs_expansion(override: ConfigOverride) -> bool:
    return isinstance(override, PythonFileOverride) or override.from_text


def _changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Nested mapping of the values in ``after`` that differ from ``before``."""
    changes: dict[str, Any] = {}
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = _changes(old, value)
            if nested:
                changes[key] = nested
        elif key not in before or old != value:
            changes[key] = value
    return changes


def _unknown_label(label: str, labels: Iterable[str], kind: str = "task label") -> str:
    candidates = list(labels)
    close = difflib.get_close_matches(label, candidates, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f"Unknown {kind} {label!r} (pipeline has: {', '.join(candidates) or 'none'}){hint}"
