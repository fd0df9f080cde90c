"""Reading submit YAML files into layers: syntax errors, ``includeConfigs``, unknown keys.

A `Layer` is one source of values (the command line, the submit file, one included file, the
engine's defaults, the packaged defaults). `bps.config.BpsConfig` searches them in order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bps.config_keys import (
    CLUSTER_KEYS,
    COMPAT_KEYS,
    FINAL_JOB_KEYS,
    JOB_SECTION_KEYS,
    PAYLOAD_KEYS,
    REFUSED_KEYS,
    TOP_KEYS,
    did_you_mean,
    is_final_command_key,
)
from bps.errors import BpsConfigError

__all__ = ["Layer", "load_layers", "load_yaml", "referenced_names", "validate_layers"]


@dataclass(frozen=True)
class Layer:
    """One source of config values, searched as a unit."""

    name: str
    """How `bps config-dump --explain` names it: ``submit file``, ``include a.yaml``, ..."""
    file: Path | None
    data: Mapping[str, Any]
    top: Mapping[str, Any] = field(init=False)
    """Top-level values with the ``payload:`` keys hoisted (a payload value wins in its layer)."""

    def __post_init__(self) -> None:
        top = {k: v for k, v in self.data.items() if k != "payload"}
        payload = self.data.get("payload")
        if isinstance(payload, Mapping):
            top.update(payload)
        object.__setattr__(self, "top", top)

    def section(self, kind: str, name: str | None = None) -> Mapping[str, Any]:
        """``data[kind][name]`` (or ``data[kind]`` when name is None); empty when absent."""
        found = self.data.get(kind)
        if name is not None and isinstance(found, Mapping):
            found = found.get(name)
        return found if isinstance(found, Mapping) else {}

    def where(self) -> str:
        """The file for messages (or the layer name when there is no file)."""
        return str(self.file) if self.file is not None else self.name


def load_yaml(path: Path, *, context: str = "") -> dict[str, Any]:
    """Parse one YAML file into a mapping; errors name the file and the line/column."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BpsConfigError(f"{path}: file not found{context}.") from None
    except OSError as err:
        raise BpsConfigError(f"{path}: cannot read: {err.strerror}{context}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise BpsConfigError(f"{path}{where}: YAML syntax error: {problem}.") from None
    except yaml.YAMLError as err:
        raise BpsConfigError(f"{path}: YAML error: {err}.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BpsConfigError(f"{path}: expected a mapping of keys at top level, found {type(data).__name__}.")
    for key in data:
        if not isinstance(key, str):
            raise BpsConfigError(f"{path}: key {key!r} is not a string.")
    return data


def load_layers(path: Path) -> list[Layer]:
    """The submit file and its includes (recursively), highest priority first.

    A file beats the files it includes; among ``includeConfigs``, a later file beats an earlier one.
    Include paths may use ``${ENV}`` and ``~`` and are relative to the including file.
    """
    return _load_with_includes(path.resolve(), "submit file", ())


def _load_with_includes(path: Path, name: str, stack: tuple[Path, ...]) -> list[Layer]:
    data = load_yaml(path, context=f" (included from {stack[-1]})" if stack else "")
    layers = [Layer(name, path, data)]
    for include in reversed(_include_paths(path, data)):
        if include in stack or include == path:
            chain = " -> ".join(str(p) for p in (*stack, path, include))
            raise BpsConfigError(f"{path}: includeConfigs: include cycle: {chain}.")
        if not include.is_file():
            raise BpsConfigError(f"{path}: includeConfigs: included file {include} does not exist.")
        layers.extend(_load_with_includes(include, f"include {include.name}", (*stack, path)))
    return layers


def _include_paths(path: Path, data: Mapping[str, Any]) -> list[Path]:
    raw = data.get("includeConfigs")
    if raw is None:
        return []
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise BpsConfigError(
            f"{path}: includeConfigs: expected a list of file paths, got {data['includeConfigs']!r}."
        )
    paths = []
    for item in raw:
        if "://" in item:
            raise BpsConfigError(f"{path}: includeConfigs: {item!r}: only local file paths are supported.")
        expanded = Path(os.path.expanduser(os.path.expandvars(item)))
        paths.append((expanded if expanded.is_absolute() else path.parent / expanded).resolve())
    return paths


_VARIABLE = re.compile(r"(?<!\{)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def referenced_names(layers: Iterable[Layer]) -> frozenset[str]:
    """Every ``{name}`` that some string value of these layers refers to."""
    names: set[str] = set()
    stack: list[Any] = [layer.data for layer in layers]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            names.update(_VARIABLE.findall(value))
        elif isinstance(value, Mapping):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return frozenset(names)


def validate_layers(layers: Iterable[Layer], referenced: frozenset[str]) -> None:
    """Refuse unknown keys at top level and in payload/cluster/pipetask/finalJob sections.

    ``site.<name>`` keys are passed through (the engine's settings class checks them later).
    """
    for layer in layers:
        if layer.file is None:
            continue
        _check_keys(layer, "", layer.data, TOP_KEYS, referenced)
        _check_keys(layer, "payload.", layer.section("payload"), PAYLOAD_KEYS, referenced)
        final = layer.section("finalJob")
        extra = {k for k in final if is_final_command_key(k)}
        _check_keys(layer, "finalJob.", final, FINAL_JOB_KEYS | extra, referenced)
        for kind, known in (("cluster", CLUSTER_KEYS), ("pipetask", JOB_SECTION_KEYS), ("site", None)):
            sections = layer.data.get(kind)
            if sections is None:
                continue
            if not isinstance(sections, Mapping):
                raise BpsConfigError(
                    f"{layer.where()}: {kind}: expected a mapping of names to sections, got {sections!r}."
                )
            for name, section in sections.items():
                if not isinstance(section, Mapping):
                    raise BpsConfigError(
                        f"{layer.where()}: {kind}.{name}: expected a mapping of keys, got {section!r}."
                    )
                if known is not None:
                    _check_keys(layer, f"{kind}.{name}.", section, known, referenced)


def _check_keys(
    layer: Layer,
    prefix: str,
    data: Mapping[str, Any],
    known: frozenset[str] | set[str],
    referenced: frozenset[str],
) -> None:
    for key in data:
        if key in REFUSED_KEYS:
            raise BpsConfigError(f"{layer.where()}: {prefix}{key}: not supported: {REFUSED_KEYS[key]}.")
        if key in known or key in COMPAT_KEYS or key in referenced:
            continue
        hint = did_you_mean(key, known)
        raise BpsConfigError(f"{layer.where()}: {prefix}{key}: unknown key{hint or '.'}")
    for section in ("payload", "finalJob", "environment"):
        if prefix == "" and section in data and not isinstance(data[section], Mapping):
            raise BpsConfigError(f"{layer.where()}: {section}: expected a mapping, got {data[section]!r}.")
