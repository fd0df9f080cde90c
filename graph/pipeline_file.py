"""Pipeline YAML files: reading (imports merged, keys checked) and writing the `pipeline_parts` a `Pipeline` is made of.

The format is Rubin's pipe_base pipeline YAML (camelCase keys): ``description``, ``instrument``,
``parameters``, ``imports``, ``tasks``, ``subsets``, ``contracts`` and ``steps``. Config blocks hold
field values only: a ``python:`` or ``file:`` key is refused, because nothing in a pipeline file is
ever executed (Python override files are for the command line, ``-C label:file.py``).
"""

from __future__ import annotations

import difflib
import enum
import os
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from butler.atomic_files import write_text_atomically

from .contracts import Contract
from .errors import PipelineFileError, SubsetError
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
    expand_names,
    labels_text,
    select_labels,
    suggestion_end,
)

__all__ = [
    "TOP_LEVEL_KEYS",
    "parts_to_primitives",
    "read_pipeline_file",
    "read_pipeline_string",
    "write_yaml_atomically",
]

TOP_LEVEL_KEYS = (
    "description",
    "instrument",
    "parameters",
    "imports",
    "tasks",
    "subsets",
    "contracts",
    "steps",
)
"""Keys a pipeline file may have at its top level."""

_TASK_KEYS = ("class", "config")
_IMPORT_KEYS = ("location", "include", "exclude", "importContracts", "labeledSubsetModifyMode", "instrument")
_SUBSET_KEYS = ("subset", "description")
_CONTRACT_KEYS = ("contract", "msg")
_STEP_KEYS = ("label", "dimensions", "sharding_dimensions")
_REFUSED_CONFIG_KEYS = {
    "python": "a 'python:' block would execute code from the pipeline file; set field values instead, or "
    "pass a Python override file on the command line with -C label:file.py",
    "file": "a 'file:' entry would execute a Python override file named by the pipeline file; set field "
    "values instead, or pass the file on the command line with -C label:file.py",
    "dataId": "per-data-ID config blocks ('dataId:') are not supported",
}


# -- helpers ---------------------------------------------------------------------------------------


def _check_keys(mapping: Mapping[str, Any], allowed: Sequence[str], where: str, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            hint = difflib.get_close_matches(str(key), allowed, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise PipelineFileError(
                f"{where}unknown key {key!r} in {what}{suggestion}; valid keys: {', '.join(allowed)}."
            )


def _string_list(value: Any, where: str, what: str) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise PipelineFileError(f"{where}{what} must be a list of strings, got {value!r}.")


if TYPE_CHECKING:
    _SafeLoader = yaml.SafeLoader
    _SafeDumper = yaml.SafeDumper
else:  # libyaml's C parser and emitter when PyYAML has them (about 7x faster on large pipelines)
    _SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _SafeDumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


class _UniqueKeyLoader(_SafeLoader):
    """A safe YAML loader that refuses a key repeated within one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        counts = Counter(
            key_node.value for key_node, _ in node.value if isinstance(key_node, yaml.ScalarNode)
        )
        duplicates = sorted(str(key) for key, count in counts.items() if count > 1)
        if duplicates:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key(s) {', '.join(map(repr, duplicates))}", node.start_mark
            )
        return super().construct_mapping(node, deep)


def _load_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        document = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise PipelineFileError(f"{source}: not valid pipeline YAML: {err}") from None
    if document is None:
        document = {}
    if not isinstance(document, dict):
        raise PipelineFileError(
            f"{source}: a pipeline file must be a mapping with keys {', '.join(TOP_LEVEL_KEYS)}; "
            f"got a {type(document).__name__}."
        )
    return document


# -- reading ---------------------------------------------------------------------------------------


def read_pipeline_file(path: str | Path) -> PipelineParts:
    """Read a pipeline file with its imports merged and check it (the file is the top-level pipeline)."""
    parts = _read_file(Path(path), ())
    parts.validate()
    return parts


def read_pipeline_string(text: str, source: str = "<string>", base_dir: Path | None = None) -> PipelineParts:
    """Read pipeline YAML text (imports relative to ``base_dir``, default the working directory)."""
    parts = _read_document(_load_yaml(text, source), source, base_dir or Path.cwd(), ())
    parts.validate()
    return parts


def _read_file(path: Path, stack: tuple[Path, ...]) -> PipelineParts:
    resolved = path.expanduser().resolve()
    if resolved in stack:
        chain = " -> ".join(str(p) for p in (*stack, resolved))
        raise PipelineFileError(f"Pipeline files import each other in a cycle: {chain}.")
    try:
        text = resolved.read_text()
    except FileNotFoundError:
        importer = f" (imported by {stack[-1]})" if stack else ""
        raise PipelineFileError(f"Pipeline file {str(path)!r} does not exist{importer}.") from None
    except OSError as err:
        raise PipelineFileError(f"Cannot read pipeline file {str(path)!r}: {err}.") from None
    source = str(path)
    return _read_document(_load_yaml(text, source), source, resolved.parent, (*stack, resolved))


def _read_document(
    document: dict[str, Any], source: str, base_dir: Path, stack: tuple[Path, ...]
) -> PipelineParts:
    where = f"{source}: "
    for key in document:
        if key not in TOP_LEVEL_KEYS:
            if key == "inherits":
                raise PipelineFileError(f"{where}'inherits' is the old name of 'imports'; use 'imports'.")
            hint = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise PipelineFileError(
                f"{where}unknown top-level key {key!r}{suggestion}; valid keys: {', '.join(TOP_LEVEL_KEYS)}."
            )
    own = PipelineParts(source=source)
    description = document.get("description", "")
    if not isinstance(description, str):
        raise PipelineFileError(f"{where}description must be a string, got {description!r}.")
    own.description = description
    instrument = document.get("instrument")
    if instrument is not None and not isinstance(instrument, str):
        raise PipelineFileError(
            f"{where}instrument must be one string (an import path or a registered instrument name), "
            f"got {instrument!r}."
        )
    own.instrument = instrument
    parameters = document.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(isinstance(k, str) for k in parameters):
        raise PipelineFileError(
            f"{where}parameters must be a mapping of names to values, got {parameters!r}."
        )
    own.parameters = dict(parameters)
    own.tasks = _read_tasks(document.get("tasks") or {}, where, source)
    own.subsets = _read_subsets(document.get("subsets") or {}, where)
    own.contracts = _read_contracts(document.get("contracts") or [], where, source)
    own.steps = _read_steps(document.get("steps") or [], where)
    imports = document.get("imports") or []
    if not isinstance(imports, list):
        imports = [imports]
    merged = PipelineParts(source=source)
    for entry in imports:
        imported = _read_import(entry, where, base_dir, stack)
        _merge_import(merged, imported, where)
    parts = _merge_own(merged, own, where)
    for subset in parts.subsets.values():
        missing = [label for label in subset.labels if label not in parts.tasks]
        if missing:
            raise SubsetError(
                f"{where}subset {subset.name!r} names {labels_text(missing)} not in the pipeline"
                f"{suggestion_end(missing[0], parts.tasks)}"
            )
    return parts


def _read_tasks(tasks: Any, where: str, source: str) -> dict[str, TaskSpec]:
    if not isinstance(tasks, dict):
        raise PipelineFileError(f"{where}tasks must be a mapping of labels to task classes, got {tasks!r}.")
    result: dict[str, TaskSpec] = {}
    for label, definition in tasks.items():
        check_label(label, where)
        key = f"tasks.{label}"
        if isinstance(definition, str):
            definition = {"class": definition}
        if not isinstance(definition, dict):
            raise PipelineFileError(
                f"{where}{key} must be a class path or a mapping with keys {', '.join(_TASK_KEYS)}, "
                f"got {definition!r}."
            )
        _check_keys(definition, _TASK_KEYS, where, key)
        task_class = definition.get("class", "")
        if not isinstance(task_class, str):
            raise PipelineFileError(f"{where}{key}.class must be an import path string, got {task_class!r}.")
        blocks = definition.get("config") or []
        if isinstance(blocks, dict):
            blocks = [blocks]
        if not isinstance(blocks, list):
            raise PipelineFileError(f"{where}{key}.config must be a mapping or a list of mappings.")
        overrides: list[ConfigOverride] = []
        for index, block in enumerate(blocks):
            block_key = f"{key}.config[{index}]" if len(blocks) > 1 else f"{key}.config"
            if not isinstance(block, dict):
                raise PipelineFileError(f"{where}{block_key} must be a mapping of fields to values.")
            for refused, why in _REFUSED_CONFIG_KEYS.items():
                if refused in block:
                    raise PipelineFileError(f"{where}{block_key}: '{refused}:' is not allowed: {why}.")
            if block:
                overrides.append(ValueOverride(dict(block), f"{source} ({block_key})"))
        result[label] = TaskSpec(label, task_class, tuple(overrides), source)
    return result


def _read_subsets(subsets: Any, where: str) -> dict[str, LabeledSubset]:
    if not isinstance(subsets, dict):
        raise PipelineFileError(f"{where}subsets must be a mapping of names to lists of labels.")
    result = {}
    for name, value in subsets.items():
        check_label(name, where)
        description = None
        if isinstance(value, dict):
            _check_keys(value, _SUBSET_KEYS, where, f"subsets.{name}")
            if "subset" not in value:
                raise PipelineFileError(f"{where}subsets.{name} needs a 'subset' list of labels.")
            description = value.get("description")
            if description is not None and not isinstance(description, str):
                raise PipelineFileError(f"{where}subsets.{name}.description must be a string.")
            value = value["subset"]
        labels = _string_list(value, where, f"subsets.{name}")
        result[name] = LabeledSubset(name, tuple(dict.fromkeys(labels)), description)
    return result


def _read_contracts(contracts: Any, where: str, source: str) -> list[Contract]:
    if not isinstance(contracts, list):
        contracts = [contracts]
    result = []
    for index, entry in enumerate(contracts):
        if isinstance(entry, str):
            result.append(Contract.parse(entry, source=source))
        elif isinstance(entry, dict):
            _check_keys(entry, _CONTRACT_KEYS, where, f"contracts[{index}]")
            if "contract" not in entry:
                raise PipelineFileError(f"{where}contracts[{index}] needs a 'contract' expression.")
            result.append(Contract.parse(entry["contract"], entry.get("msg"), source=source))
        else:
            raise PipelineFileError(
                f"{where}contracts[{index}] must be an expression string or a mapping with keys "
                f"{', '.join(_CONTRACT_KEYS)}, got {entry!r}."
            )
    return result


def _read_steps(steps: Any, where: str) -> list[Step]:
    if not isinstance(steps, list):
        raise PipelineFileError(f"{where}steps must be a list of {{label: subset, dimensions: [...]}}.")
    result = []
    for index, entry in enumerate(steps):
        if not isinstance(entry, dict) or "label" not in entry:
            raise PipelineFileError(
                f"{where}steps[{index}] must be a mapping with 'label' (a subset name) and 'dimensions'."
            )
        _check_keys(entry, _STEP_KEYS, where, f"steps[{index}]")
        if "dimensions" in entry and "sharding_dimensions" in entry:
            raise PipelineFileError(
                f"{where}steps[{index}]: give 'dimensions' or 'sharding_dimensions', not both."
            )
        dimensions = entry.get("dimensions", entry.get("sharding_dimensions")) or []
        label = entry["label"]
        if not isinstance(label, str):
            raise PipelineFileError(f"{where}steps[{index}].label must be a subset name, got {label!r}.")
        result.append(Step(label, tuple(_string_list(dimensions, where, f"steps[{index}].dimensions"))))
    return result


def _read_import(entry: Any, where: str, base_dir: Path, stack: tuple[Path, ...]) -> PipelineParts:
    if isinstance(entry, str):
        entry = {"location": entry}
    if not isinstance(entry, dict) or "location" not in entry:
        raise PipelineFileError(
            f"{where}each import must be a path or a mapping with 'location' (and optionally "
            f"{', '.join(_IMPORT_KEYS[1:])}), got {entry!r}."
        )
    _check_keys(entry, _IMPORT_KEYS, where, f"the import of {entry['location']!r}")
    location = entry["location"]
    if not isinstance(location, str):
        raise PipelineFileError(f"{where}import location must be a path string, got {location!r}.")
    what = f"the import of {location!r}"
    if "include" in entry and "exclude" in entry:
        raise PipelineFileError(f"{where}{what} gives both 'include' and 'exclude'; give at most one.")
    expanded = Path(os.path.expanduser(os.path.expandvars(location)))
    if "$" in str(expanded):
        raise PipelineFileError(
            f"{where}{what}: environment variable in {location!r} is not set (expanded to {str(expanded)!r})."
        )
    path = expanded if expanded.is_absolute() else base_dir / expanded
    parts = _read_file(path, stack)
    if "instrument" in entry:
        instrument = entry["instrument"]
        if instrument is not None and not isinstance(instrument, str):
            raise PipelineFileError(f"{where}{what}: instrument must be a string or null.")
        parts.instrument = instrument
    mode_text = entry.get("labeledSubsetModifyMode", "ASSERT")
    try:
        mode = SubsetMode(str(mode_text).upper())
    except ValueError:
        raise PipelineFileError(
            f"{where}{what}: labeledSubsetModifyMode must be one of "
            f"{', '.join(m.value for m in SubsetMode)}, got {mode_text!r}."
        ) from None
    if "include" in entry or "exclude" in entry:
        include = "include" in entry
        names = _string_list(entry["include" if include else "exclude"], where, f"{what}: include/exclude")
        chosen = expand_names(parts, names, f"{where}{what}: ")
        labels = chosen if include else [label for label in parts.tasks if label not in set(chosen)]
        parts = select_labels(parts, labels, mode, f"{where}{what}: ")
    import_contracts = entry.get("importContracts", True)
    if not isinstance(import_contracts, bool):
        raise PipelineFileError(f"{where}{what}: importContracts must be true or false.")
    if not import_contracts:
        parts.contracts = []
    return parts


def _merge_import(merged: PipelineParts, imported: PipelineParts, where: str) -> None:
    if imported.instrument is not None:
        if merged.instrument is not None and merged.instrument != imported.instrument:
            raise PipelineFileError(
                f"{where}imports declare two instruments: {merged.instrument!r} and {imported.instrument!r} "
                f"(in {imported.source}); set 'instrument:' on an import to override it."
            )
        merged.instrument = imported.instrument
    for label, spec in imported.tasks.items():
        if label in merged.tasks:
            raise PipelineFileError(
                f"{where}task label {label!r} is defined by two imports: {merged.tasks[label].source} and "
                f"{spec.source}; exclude it from one of them."
            )
        if label in merged.subsets:
            raise PipelineFileError(
                f"{where}{label!r} is a task label in {spec.source} and a labeled subset of another import."
            )
        merged.tasks[label] = spec
    for name, subset in imported.subsets.items():
        if name in merged.subsets or name in merged.tasks:
            raise PipelineFileError(
                f"{where}labeled subset {name!r} of {imported.source} clashes with a subset or task label "
                "of another import."
            )
        merged.subsets[name] = subset
    merged.parameters.update(imported.parameters)
    merged.contracts.extend(imported.contracts)
    for step in imported.steps:
        if any(step.label == other.label for other in merged.steps):
            raise PipelineFileError(f"{where}step {step.label!r} is declared by two imports.")
        merged.steps.append(step)


def _merge_own(merged: PipelineParts, own: PipelineParts, where: str) -> PipelineParts:
    """The importing file's own definitions on top of its imports (the file wins)."""
    result = merged.copy()
    result.source = own.source
    result.description = own.description
    if own.instrument is not None:
        if merged.instrument is not None and merged.instrument != own.instrument:
            raise PipelineFileError(
                f"{where}instrument {own.instrument!r} differs from {merged.instrument!r} of an import; "
                "set 'instrument:' on that import to override it."
            )
        result.instrument = own.instrument
    for label, spec in own.tasks.items():
        existing = result.tasks.get(label)
        if existing is None:
            if not spec.task_class:
                raise PipelineFileError(
                    f"{where}tasks.{label} has no 'class' and no import defines {label!r}"
                    f"{suggestion_end(label, result.tasks)}"
                )
            result.tasks[label] = spec
        elif not spec.task_class or spec.task_class == existing.task_class:
            # Same task: the file's config blocks apply after the imported ones.
            result.tasks[label] = replace(existing, overrides=existing.overrides + spec.overrides)
        else:
            result.tasks[label] = spec
        if label in result.subsets:
            raise PipelineFileError(f"{where}task label {label!r} is also a labeled subset of an import.")
    result.subsets.update(own.subsets)
    result.parameters.update(own.parameters)
    result.contracts.extend(own.contracts)
    if own.steps:
        result.steps = list(own.steps)
    return result


# -- writing ---------------------------------------------------------------------------------------


def _plain(value: Any, where: str) -> Any:
    """``value`` as YAML-safe plain data (tuples become lists); `PipelineFileError` otherwise."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, Mapping):
        return {str(key): _plain(item, where) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item, where) for item in value]
    if isinstance(value, enum.Enum):
        return _plain(value.value, where)
    raise PipelineFileError(
        f"{where}: value {value!r} of type {type(value).__name__} cannot be written to pipeline YAML."
    )


def parts_to_primitives(parts: PipelineParts) -> dict[str, Any]:
    """The YAML document of ``parts``: imports already merged, Python override files not allowed."""
    document: dict[str, Any] = {"description": parts.description}
    if parts.instrument is not None:
        document["instrument"] = parts.instrument
    if parts.parameters:
        document["parameters"] = _plain(parts.parameters, "parameters")
    tasks: dict[str, Any] = {}
    for label, spec in parts.tasks.items():
        blocks = []
        for override in spec.overrides:
            if isinstance(override, PythonFileOverride):
                raise PipelineFileError(
                    f"Task {label!r} has a Python override file {override.path!r}, which pipeline YAML "
                    "cannot hold; expand it first (Pipeline.write_yaml does)."
                )
            blocks.append(_plain(override.values, f"tasks.{label}.config"))
        tasks[label] = {"class": spec.task_class, "config": blocks} if blocks else spec.task_class
    document["tasks"] = tasks
    if parts.subsets:
        document["subsets"] = {
            name: (
                {"subset": list(subset.labels), "description": subset.description}
                if subset.description is not None
                else list(subset.labels)
            )
            for name, subset in parts.subsets.items()
        }
    if parts.contracts:
        document["contracts"] = [
            {"contract": c.expression, "msg": c.msg} if c.msg is not None else c.expression
            for c in parts.contracts
        ]
    if parts.steps:
        document["steps"] = [
            {"label": step.label, "dimensions": list(step.dimensions)} for step in parts.steps
        ]
    return document


class _BlockStringDumper(_SafeDumper):
    """Writes multi-line strings (descriptions) as ``|`` blocks."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_BlockStringDumper.add_representer(str, _BlockStringDumper.represent_str)


def write_yaml_atomically(document: Mapping[str, Any], path: str | Path) -> None:
    """Write ``document`` as YAML to ``path`` through a temporary file and a rename."""
    path = Path(path)
    text = yaml.dump(dict(document), Dumper=_BlockStringDumper, sort_keys=False, default_flow_style=False)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, text)
    except OSError as err:
        raise PipelineFileError(f"Cannot write pipeline file {str(path)!r}: {err}.") from err
