"""Sub-task config fields: a retargetable sub-task (`ConfigurableField`) or one chosen by name (`ChoiceField`).

::

    class CalibrateConfig(PipelineTaskConfig, connections=CalibrateConnections):
        background = ConfigurableField(target=BackgroundTask, doc="How to fit the background.")
        detection = ChoiceField(DETECTORS, default="simple", doc="Source detection algorithm.")

``config.background.bin_size`` reads a field of the sub-task's config; ``background.retarget(Other)``
swaps the task class; ``config.detection.name = "peak"`` switches to another registered
implementation. Overrides reach the same places by dotted path (``background.bin_size``,
``detection.name``, ``detection.threshold``) and history records every change.

`graph.config` builds on this module (and re-exports its public names); this module refers to
`graph.config.Config` for type checking only and recognizes config classes by their interface.
"""

from __future__ import annotations

import abc
import difflib
import importlib
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

import pydantic
from pydantic_core import core_schema

from .config_history import HistoryEntry, caller_source
from .errors import ConfigError, ConfigFieldError, ConfigValueError

if TYPE_CHECKING:
    from .config import Config

__all__ = [
    "ChoiceField",
    "ChoiceInstance",
    "ConfigurableField",
    "ConfigurableInstance",
    "ConfigurableTask",
    "SubtaskFieldSpec",
    "SubtaskValue",
    "TaskRegistry",
    "class_path",
]


class ConfigurableTask(Protocol):
    """What a sub-task field needs of a task class: `graph.task.Task` subclasses have both (as class attributes)."""

    @property
    def ConfigClass(self) -> type[Config]:
        """The task's config class."""

    @property
    def _DefaultName(self) -> str:
        """The task's default name."""


_T = TypeVar("_T", bound=type[ConfigurableTask])


def ConfigurableField(
    *, target: type[ConfigurableTask], doc: str, ConfigClass: type[Config] | None = None
) -> Any:
    """A sub-task field: task class ``target`` and its config (``ConfigClass``, by default ``target.ConfigClass``).

    Declare it without an annotation; the value is a `ConfigurableInstance`.
    """
    return _ConfigurableSpec(target, ConfigClass, doc)


def ChoiceField(registry: TaskRegistry, *, default: str, doc: str) -> Any:
    """A sub-task field choosing an implementation by name from ``registry``, ``default`` to start with.

    Declare it without an annotation; the value is a `ChoiceInstance`.
    """
    return _ChoiceSpec(registry, default, doc)


class TaskRegistry(Mapping[str, type[Any]]):
    """Implementations of one kind of sub-task by name, chosen with a `ChoiceField`."""

    def __init__(self, doc: str = "") -> None:
        self.doc = doc
        self._tasks: dict[str, type[Any]] = {}

    def register(self, name: str, target: _T) -> _T:
        """Register task class ``target`` (it needs a ``ConfigClass``) under ``name``; returns it."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"Task registry names must be non-empty strings, not {name!r}.")
        _task_config_class(target, f"TaskRegistry.register({name!r})")
        existing = self._tasks.get(name)
        if existing is not None and existing is not target:
            raise ConfigError(
                f"{name!r} is already registered to {class_path(existing)}; cannot register {class_path(target)}."
            )
        self._tasks[name] = target
        return target

    def __getitem__(self, name: str) -> type[Any]:
        try:
            return self._tasks[name]
        except KeyError:
            raise KeyError(f"No task registered as {name!r}{_registered(name, self._tasks)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"TaskRegistry({sorted(self._tasks)})"


# -- values -----------------------------------------------------------------------------------------


class SubtaskValue(abc.ABC):
    """Value of a sub-task field: a task class and its config; names other than `own_names` reach the config."""

    __slots__ = ("_frozen", "_history")
    _frozen: bool
    _history: list[HistoryEntry] | None

    own_names: ClassVar[frozenset[str]]
    """Attribute names of the value itself; a sub-task config may not have fields with these names."""
    selector_keys: ClassVar[tuple[str, ...]]
    """Own names an override may set; the first is recorded in history and listed by iter_fields."""

    @property
    @abc.abstractmethod
    def target(self) -> type[Any]:
        """The task class to construct."""

    @property
    @abc.abstractmethod
    def active(self) -> Config:
        """The config the task is constructed with."""

    @property
    @abc.abstractmethod
    def selector_value(self) -> str:
        """What selects the task: its import path, or the implementation's name."""

    @abc.abstractmethod
    def dump(self, mode: str) -> dict[str, Any]:
        """Plain data (``mode`` "json" or "python") that the field's `SubtaskFieldSpec.validate` reads back."""

    @abc.abstractmethod
    def _set_own(self, name: str, value: Any, source: str, path: str) -> None:
        """Set own attribute ``name`` (one of `own_names`) from an override or an assignment."""

    def __init__(self) -> None:
        object.__setattr__(self, "_frozen", False)
        object.__setattr__(self, "_history", None)

    @property
    def config(self) -> Config:
        """Same as `active`."""
        return self.active

    @property
    def ConfigClass(self) -> type[Config]:
        """Class of `active`."""
        return type(self.active)

    @property
    def frozen(self) -> bool:
        """Whether `freeze` was called."""
        return bool(self._frozen)

    def freeze(self) -> None:
        """Refuse any further change, to the selection and to the configs."""
        object.__setattr__(self, "_frozen", True)
        for config in self._configs():
            config.freeze()

    def selector_history(self) -> list[HistoryEntry]:
        """Values of `selector_value` (import paths or names), the default first."""
        if self._history:
            return list(self._history)
        return [HistoryEntry(self.selector_value, "default")]

    def _configs(self) -> Iterable[Config]:
        return (self.active,)

    def _record(self, before: str, source: str) -> None:
        history = self._history
        if history is None:
            history = [HistoryEntry(before, "default")]
            object.__setattr__(self, "_history", history)
        history.append(HistoryEntry(self.selector_value, source))

    def _check_not_frozen(self, path: str) -> None:
        if self._frozen:
            raise ConfigError(f"Cannot change {path}: the config is frozen.")

    def _refuse(self, path: str) -> ConfigFieldError:
        prefix = path.rpartition(".")[0]
        selector = f"{prefix}.{self.selector_keys[0]}" if prefix else self.selector_keys[0]
        return ConfigFieldError(
            f"Config field {path!r} cannot be set; set {selector!r} or the fields of its config."
        )

    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_" or name in self.own_names:  # not set yet (while copying or unpickling)
            raise AttributeError(name)
        return getattr(self.active, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name[:1] == "_":
            object.__setattr__(self, name, value)
            return
        source = caller_source(sys._getframe(1))
        if name in self.own_names:
            self._set_own(name, value, source, name)
        else:
            self.active._set(name, value, source)

    def __dir__(self) -> Iterable[str]:
        return sorted({*super().__dir__(), *type(self.active).__pydantic_fields__})

    __hash__ = None  # type: ignore[assignment]


class ConfigurableInstance(SubtaskValue):
    """Value of a `ConfigurableField`: the ``target`` task class and its ``config``; `retarget` swaps the class."""

    __slots__ = ("_config", "_target")
    _config: Config
    _target: type[Any]
    own_names = frozenset({"target", "config", "config_class", "active", "ConfigClass", "retarget"})
    selector_keys = ("target", "config_class")

    def __init__(self, target: type[Any], config: Config | None = None) -> None:
        super().__init__()
        config_class = _task_config_class(target, "ConfigurableField target")
        object.__setattr__(self, "_target", target)
        object.__setattr__(self, "_config", config_class() if config is None else config)

    @property
    def target(self) -> type[Any]:
        """The task class to construct."""
        return self._target

    @property
    def active(self) -> Config:
        """The config of `target`."""
        return self._config

    @property
    def selector_value(self) -> str:
        """Import path of `target`."""
        return class_path(self._target)

    def retarget(self, target: type[ConfigurableTask] | str, ConfigClass: type[Config] | None = None) -> None:
        """Use task class ``target`` (or its import path); the config restarts from defaults if its class changes."""
        self._retarget(target, ConfigClass, caller_source(sys._getframe(1)), "retarget")

    def _retarget(self, target: Any, config_class: type[Config] | None, source: str, path: str) -> None:
        self._check_not_frozen(path)
        if isinstance(target, str):
            target = _import_class(target)
        new_class = config_class or _task_config_class(target, f"{path}: retarget")
        _check_clashes(new_class, self.own_names, f"{path}: {new_class.__name__}")
        before = self.selector_value
        if new_class is not type(self._config):
            object.__setattr__(self, "_config", new_class())
        object.__setattr__(self, "_target", target)
        self._record(before, source)

    def _set_own(self, name: str, value: Any, source: str, path: str) -> None:
        if name == "target":
            if not isinstance(value, str | type):
                raise ConfigValueError(
                    f"Invalid value {value!r} for {path!r}: expected a task class or its import path."
                )
            self._retarget(value, None, source, path)
        elif name != "config_class" or value not in (type(self._config), class_path(type(self._config))):
            raise self._refuse(path)

    def dump(self, mode: str) -> dict[str, Any]:
        """``{"target": import path, ["config_class": import path,] "config": {...}}``."""
        data: dict[str, Any] = {"target": self.selector_value}
        if type(self._config) is not getattr(self._target, "ConfigClass", None):
            data["config_class"] = class_path(type(self._config))
        data["config"] = self._config.model_dump(mode=mode)
        return data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfigurableInstance):
            return NotImplemented
        return self._target is other._target and self._config == other._config

    def __repr__(self) -> str:
        return f"ConfigurableInstance(target={self.selector_value}, config={self._config!r})"


class ChoiceInstance(SubtaskValue):
    """Value of a `ChoiceField`: the ``name`` of the chosen implementation, its ``target`` and ``active`` config.

    An implementation chosen once keeps its config, so switching back restores it; ``choice["other"]``
    is the config of implementation ``other`` (made from its defaults if needed).
    """

    __slots__ = ("_by_name", "_name", "_registry")
    _by_name: dict[str, Config]
    _name: str
    _registry: TaskRegistry
    own_names = frozenset({"name", "target", "config", "active", "registry", "ConfigClass"})
    selector_keys = ("name", "target")

    def __init__(self, registry: TaskRegistry, name: str) -> None:
        super().__init__()
        _check_choice(registry, name, "choice")
        object.__setattr__(self, "_registry", registry)
        object.__setattr__(self, "_by_name", {})
        object.__setattr__(self, "_name", name)

    @property
    def name(self) -> str:
        """Name of the chosen implementation."""
        return self._name

    @property
    def registry(self) -> TaskRegistry:
        """The implementations to choose from."""
        return self._registry

    @property
    def target(self) -> type[Any]:
        """The chosen task class."""
        return self._registry[self._name]

    @property
    def active(self) -> Config:
        """The config of the chosen implementation."""
        return self[self._name]

    @property
    def selector_value(self) -> str:
        """Name of the chosen implementation."""
        return self._name

    def __getitem__(self, name: str) -> Config:
        config: Config | None = self._by_name.get(name)
        if config is None:
            _check_choice(self._registry, name, "choice")
            config_class = _task_config_class(self._registry[name], f"implementation {name!r}")
            _check_clashes(config_class, self.own_names, f"implementation {name!r}: {config_class.__name__}")
            config = self._by_name[name] = config_class()
            if self._frozen:
                config.freeze()
        return config

    def _configs(self) -> Iterable[Config]:
        return tuple(self._by_name.values())

    def _set_own(self, name: str, value: Any, source: str, path: str) -> None:
        if name == "name":
            self._check_not_frozen(path)
            _check_choice(self._registry, value, path)
            before = self._name
            self[value]
            object.__setattr__(self, "_name", value)
            self._record(before, source)
        elif name != "target" or value not in (self.target, class_path(self.target)):
            raise self._refuse(path)

    def dump(self, mode: str) -> dict[str, Any]:
        """``{"name": ..., "target": import path, "config": {...}}`` (the active implementation only)."""
        return {
            "name": self._name,
            "target": class_path(self.target),
            "config": self.active.model_dump(mode=mode),
        }

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ChoiceInstance):
            return NotImplemented
        return self._name == other._name and self.active == other.active

    def __repr__(self) -> str:
        return f"ChoiceInstance(name={self._name!r}, config={self.active!r})"


# -- field declarations -----------------------------------------------------------------------------


class SubtaskFieldSpec(abc.ABC):
    """A sub-task field as written in a config class body; class creation makes it a pydantic field."""

    value_type: ClassVar[type[SubtaskValue]]
    """Class of the field's values."""

    def __init__(self, doc: str) -> None:
        if not isinstance(doc, str) or not doc.strip():
            raise ConfigError("Sub-task config fields need a doc string (doc=...).")
        self.doc = doc

    @abc.abstractmethod
    def make_default(self) -> SubtaskValue:
        """A new value selecting the field's default task."""

    @abc.abstractmethod
    def validate(self, data: Any) -> SubtaskValue:
        """A value from a value, a config or `SubtaskValue.dump` data; raises ValueError otherwise."""

    def __get_pydantic_core_schema__(
        self, source: Any, handler: pydantic.GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            self.validate,
            json_schema_input_schema=core_schema.dict_schema(),
            serialization=core_schema.plain_serializer_function_ser_schema(_dump, info_arg=True),
        )


def _dump(value: SubtaskValue, info: core_schema.SerializationInfo) -> dict[str, Any]:
    return value.dump("json" if info.mode_is_json() else "python")


class _ConfigurableSpec(SubtaskFieldSpec):
    value_type = ConfigurableInstance

    def __init__(self, target: type[Any], config_class: type[Config] | None, doc: str) -> None:
        super().__init__(doc)
        self.target = target
        self.config_class = config_class or _task_config_class(target, "ConfigurableField target")
        _check_clashes(
            self.config_class,
            ConfigurableInstance.own_names,
            f"ConfigurableField {self.config_class.__name__}",
        )

    def make_default(self) -> ConfigurableInstance:
        return ConfigurableInstance(self.target, self.config_class())

    def validate(self, data: Any) -> ConfigurableInstance:
        if isinstance(data, ConfigurableInstance):
            return data
        if isinstance(data, pydantic.BaseModel):
            if not isinstance(data, self.config_class):
                raise ConfigValueError(
                    f"expected a {self.config_class.__name__}, got a {type(data).__name__}"
                )
            return ConfigurableInstance(self.target, data)
        if not isinstance(data, Mapping):
            raise ConfigValueError(
                f"expected a mapping with 'target' and 'config', got {type(data).__name__}"
            )
        unknown = sorted(set(data) - {"target", "config_class", "config"})
        if unknown:
            raise ConfigValueError(
                f"unexpected keys {unknown}; expected 'target', 'config' and optionally 'config_class'"
            )
        target = _class(data.get("target", self.target), self.target)
        if "config_class" in data:
            config_class = _class(data["config_class"], self.config_class)
        elif target is self.target:
            config_class = self.config_class
        else:
            config_class = _task_config_class(target, "target")
        config = data.get("config", {})
        if not isinstance(config, config_class):
            config = config_class.model_validate(config)
        return ConfigurableInstance(target, config)


class _ChoiceSpec(SubtaskFieldSpec):
    value_type = ChoiceInstance

    def __init__(self, registry: TaskRegistry, default: str, doc: str) -> None:
        super().__init__(doc)
        if not isinstance(registry, TaskRegistry):
            raise ConfigError(f"ChoiceField needs a TaskRegistry, not {registry!r}.")
        self.registry = registry
        self.default = default

    def make_default(self) -> ChoiceInstance:
        return ChoiceInstance(self.registry, self.default)

    def validate(self, data: Any) -> ChoiceInstance:
        if isinstance(data, ChoiceInstance) and data.registry is self.registry:
            return data
        if isinstance(data, str):
            return ChoiceInstance(self.registry, data)
        if not isinstance(data, Mapping):
            raise ConfigValueError(
                f"expected an implementation name or a mapping with 'name' and 'config', got {data!r}"
            )
        unknown = sorted(set(data) - {"name", "target", "config"})
        if unknown:
            raise ConfigValueError(f"unexpected keys {unknown}; expected 'name' and 'config'")
        choice = ChoiceInstance(self.registry, data.get("name", self.default))
        if "config" in data:
            config_class = choice.ConfigClass
            config = data["config"]
            choice._by_name[choice.name] = (
                config if isinstance(config, config_class) else config_class.model_validate(config)
            )
        return choice


# -- checks -----------------------------------------------------------------------------------------


def _registered(name: str, names: Iterable[str]) -> str:
    known = sorted(names)
    close = difflib.get_close_matches(name, known, n=3)
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
    return f" (registered: {', '.join(known) or 'none'}){hint}"


def _check_choice(registry: TaskRegistry, name: Any, path: str) -> None:
    if not isinstance(name, str) or name not in registry:
        raise ConfigValueError(
            f"Invalid value {name!r} for {path!r}: expected the name of a registered implementation"
            f"{_registered(str(name), registry)}."
        )


def class_path(cls: type[Any]) -> str:
    """Import path ``module.QualName`` of ``cls``."""
    return f"{cls.__module__}.{cls.__qualname__}"


def _task_config_class(target: Any, what: str) -> type[Config]:
    """``target.ConfigClass``, checked to be a `graph.config.Config` subclass (known by its interface)."""
    config_class = getattr(target, "ConfigClass", None)
    if not (
        isinstance(target, type)
        and isinstance(config_class, type)
        and issubclass(config_class, pydantic.BaseModel)
        and callable(getattr(config_class, "apply_override", None))
    ):
        raise ConfigValueError(
            f"{what}: {target!r} is not a task class (it needs a ConfigClass, a graph.config.Config subclass)."
        )
    return config_class  # type: ignore[return-value]


def _check_clashes(config_class: type[Config], own_names: frozenset[str], what: str) -> None:
    clashes = sorted(own_names & config_class.__pydantic_fields__.keys())
    if clashes:
        raise ConfigValueError(
            f"{what} has fields {clashes} that the sub-task field itself uses; rename them."
        )


def _class(value: Any, known: type[Any]) -> type[Any]:
    """``value`` (a class or an import path) as a class; ``known`` spares the import of its own path."""
    if isinstance(value, type):
        return value
    if isinstance(value, str):
        return known if value == class_path(known) else _import_class(value)
    raise ConfigValueError(f"expected a class or its import path, got {value!r}")


def _import_class(path: str) -> type[Any]:
    """The class at import path ``module.QualName``; `ConfigValueError` naming the path otherwise."""
    parts = path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            if err.name and (module_name == err.name or module_name.startswith(err.name + ".")):
                continue
            raise ConfigValueError(f"Cannot import {path!r}: {err}") from err
        except Exception as err:
            raise ConfigValueError(
                f"Cannot import {path!r}: {type(err).__name__} in {module_name}: {err}"
            ) from err
        try:
            for attribute in parts[split:]:
                obj = getattr(obj, attribute)
        except AttributeError:
            raise ConfigValueError(
                f"Cannot import {path!r}: {module_name} has no {'.'.join(parts[split:])!r}."
            ) from None
        if not isinstance(obj, type):
            raise ConfigValueError(f"Cannot import {path!r}: not a class.")
        return obj
    raise ConfigValueError(f"Cannot import {path!r}: no such module.")
