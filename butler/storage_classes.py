"""Storage classes: which Python type a dataset is, its components, read parameters and type converters."""

from __future__ import annotations

import functools
import importlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

from .dimensions import unknown_name_message
from .errors import ButlerError
from .yaml_io import safe_load

__all__ = [
    "StorageClass",
    "StorageClassDelegate",
    "StorageClassError",
    "StorageClassRegistry",
    "import_object",
]


class StorageClassError(ButlerError, TypeError):
    """An object does not match its storage class, or a storage class is unknown or malformed."""


def import_object(path: str) -> Any:
    """Import ``module.attribute`` (``builtins.dict``, ``pyarrow.Table``); errors name the path.

    Paths come from packaged or repository configuration, or name the class a file was written
    from (a stored pydantic config); nothing is ever evaluated.
    """
    module_name, _, attribute = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise StorageClassError(f"Cannot import {path!r}: {err}") from err


class StorageClassDelegate(Protocol):
    """Splits a composite object into components and assembles it back."""

    def get_component(self, obj: Any, component: str) -> Any:
        """The component ``component`` of ``obj``."""

    def disassemble(self, obj: Any) -> dict[str, Any]:
        """Every component of ``obj`` by name."""

    def assemble(self, components: Mapping[str, Any]) -> Any:
        """The composite made of ``components``."""

    def apply_parameters(self, obj: Any, parameters: Mapping[str, Any]) -> Any:
        """``obj`` restricted by read parameters (e.g. a bounding box)."""


@dataclass(frozen=True)
class StorageClass:
    """The in-memory kind of a dataset: Python type, components, read parameters, converters."""

    name: str
    """Unique name, as used in dataset type definitions."""
    pytype_name: str
    """Import path of the Python type."""
    components: Mapping[str, str] = field(default_factory=dict)
    """Component name -> storage class name."""
    delegate_name: str | None = None
    """Import path of the `StorageClassDelegate` for composites."""
    parameters: frozenset[str] = frozenset()
    """Read parameters accepted by `Butler.get`."""
    converters: Mapping[str, str] = field(default_factory=dict)
    """Import path of a source type -> import path of a function converting it to `pytype`."""

    @functools.cached_property
    def pytype(self) -> type:
        """The Python type (imported on first use)."""
        value = import_object(self.pytype_name)
        if not isinstance(value, type):
            raise StorageClassError(f"Storage class {self.name}: {self.pytype_name!r} is not a type.")
        return value

    @functools.cached_property
    def delegate(self) -> StorageClassDelegate | None:
        """The delegate instance, or None if the storage class has no components."""
        return None if self.delegate_name is None else import_object(self.delegate_name)()

    @property
    def is_composite(self) -> bool:
        """Whether the storage class has components."""
        return bool(self.components)

    def is_instance(self, obj: Any) -> bool:
        """Whether ``obj`` is of this storage class's Python type."""
        return isinstance(obj, self.pytype)

    def coerce(self, obj: Any) -> Any:
        """``obj`` as this storage class's type: unchanged, or converted by a configured converter.

        Raises `StorageClassError` naming the expected type when no conversion applies.
        """
        if self.is_instance(obj):
            return obj
        for source_name, converter_name in self.converters.items():
            if isinstance(obj, import_object(source_name)):
                return import_object(converter_name)(obj)
        accepted = [self.pytype_name, *self.converters]
        raise StorageClassError(
            f"Storage class {self.name} expects {' or '.join(accepted)}, got {type(obj).__module__}."
            f"{type(obj).__qualname__}."
        )

    def check_parameters(self, parameters: Mapping[str, Any] | None) -> None:
        """Raise `StorageClassError` for read parameters this storage class does not accept."""
        unknown = sorted(set(parameters or {}) - self.parameters)
        if unknown:
            raise StorageClassError(
                f"Storage class {self.name} accepts read parameters {sorted(self.parameters) or 'none'}, "
                f"not {unknown}."
            )


class StorageClassRegistry:
    """All known storage classes, by name (load the packaged ones with `default`)."""

    def __init__(self, storage_classes: Iterable[StorageClass]) -> None:
        self._by_name = {sc.name: sc for sc in storage_classes}
        for sc in self._by_name.values():
            for component, component_class in sc.components.items():
                if component_class not in self._by_name:
                    raise StorageClassError(
                        f"Storage class {sc.name}: component {component!r} has unknown storage class "
                        f"{component_class!r}."
                    )

    @classmethod
    def from_config(cls, config: Mapping[str, Any], source: str) -> StorageClassRegistry:
        """Build from a parsed ``storageClasses:`` mapping; errors name ``source`` and the entry."""
        allowed = {"pytype", "components", "delegate", "parameters", "converters"}
        entries = []
        try:
            for name, spec in config["storageClasses"].items():
                unknown = set(spec) - allowed
                if unknown:
                    raise StorageClassError(
                        f"{source}: storage class {name} has unknown keys {sorted(unknown)}; "
                        f"expected some of {sorted(allowed)}."
                    )
                entries.append(
                    StorageClass(
                        name=str(name),
                        pytype_name=str(spec["pytype"]),
                        components=dict(spec.get("components", {})),
                        delegate_name=spec.get("delegate"),
                        parameters=frozenset(spec.get("parameters", ())),
                        converters=dict(spec.get("converters", {})),
                    )
                )
        except (KeyError, TypeError, AttributeError) as err:
            raise StorageClassError(f"Invalid storage class configuration in {source}: {err!r}") from err
        return cls(entries)

    @staticmethod
    @functools.cache
    def default() -> StorageClassRegistry:
        """The storage classes shipped with quanta."""
        text = resources.files("butler").joinpath("data/storage_classes.yaml").read_text()
        return StorageClassRegistry.from_config(safe_load(text), "butler/data/storage_classes.yaml")

    def __getitem__(self, name: str) -> StorageClass:
        try:
            return self._by_name[name]
        except KeyError:
            raise StorageClassError(
                unknown_name_message("storage class", name, sorted(self._by_name))
            ) from None

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        """Every storage class name, sorted."""
        return sorted(self._by_name)

    def component_storage_class(self, parent: str, component: str) -> str | None:
        """The storage class of ``component`` of storage class ``parent`` (None if it has no such component)."""
        storage_class = self._by_name.get(parent)
        return None if storage_class is None else storage_class.components.get(component)
