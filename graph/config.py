"""Typed task configs: what a task is told to do, built from defaults and overrides, frozen before it runs.

A config class declares every field with a type, a default and a doc string::

    class BackgroundConfig(Config):
        bin_size: int = field(128, doc="Size of the background bins (pixels).", gt=0)

    class CalibrateConfig(PipelineTaskConfig, connections=CalibrateConnections):
        do_background: bool = field(True, doc="Subtract the background.")
        background = ConfigurableField(target=BackgroundTask, doc="How to fit the background.")

The sub-task fields `ConfigurableField` and `ChoiceField` live in `graph.config_fields` (re-exported
here); history, rendering and override files in `graph.config_history`. Values are validated when built
and on every assignment; overrides come from pipeline ``config:`` blocks, ``-c`` and ``-C``
(`Config.apply_overrides`, `Config.apply_override`, `Config.load_python`), each recorded in the field's
history. Tasks freeze their config; the ``<label>_config`` dataset stores `Config.to_dict`.
"""

from __future__ import annotations

import difflib
import functools
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Self, get_origin

import pydantic
import yaml
from pydantic._internal._model_construction import ModelMetaclass
from pydantic_core import PydanticSerializationError, PydanticUndefined, to_jsonable_python

from butler.yaml_io import safe_load

from .config_fields import (
    ChoiceField,
    ChoiceInstance,
    ConfigurableField,
    ConfigurableInstance,
    ConfigurableTask,
    SubtaskFieldSpec,
    SubtaskValue,
    TaskRegistry,
    class_path,
)
from .config_history import (
    HistoryEntry,
    caller_source,
    format_config,
    format_history,
    freeze_value,
    render_value,
    run_override_file,
    same_value,
    snapshot,
)
from .errors import ConfigError, ConfigFieldError, ConfigValueError, ConnectionDefinitionError

__all__ = [
    "ChoiceField",
    "ChoiceInstance",
    "Config",
    "ConfigurableField",
    "ConfigurableInstance",
    "ConfigurableTask",
    "DatasetTypeName",
    "HistoryEntry",
    "PipelineTaskConfig",
    "SubtaskFieldSpec",
    "SubtaskValue",
    "TaskRegistry",
    "class_path",
    "field",
    "format_config",
    "format_history",
]

_MISSING: Any = object()


def field(
    default: Any = PydanticUndefined,
    *,
    doc: str,
    default_factory: Callable[[], Any] | None = None,
    **constraints: Any,
) -> Any:
    """Declare a config field: its default (or ``default_factory``), its doc and optional constraints.

    ``constraints`` are pydantic's (``gt``, ``ge``, ``lt``, ``le``, ``min_length``, ``max_length``,
    ``pattern``, ...). ``pydantic.Field(default, description=...)`` works as well.
    """
    if default_factory is not None:
        return pydantic.Field(default_factory=default_factory, description=doc, **constraints)
    return pydantic.Field(default, description=doc, **constraints)


# -- class creation ---------------------------------------------------------------------------------


class _ConfigMeta(ModelMetaclass):
    """Pydantic's model metaclass plus sub-task fields, ``connections=`` and the type/default/doc checks."""

    def __new__(
        mcs,
        cls_name: str,
        bases: tuple[type[Any], ...],
        namespace: dict[str, Any],
        __pydantic_generic_metadata__: Any = None,
        __pydantic_reset_parent_namespace__: bool = True,
        _create_model_module: str | None = None,
        **kwargs: Any,
    ) -> type:
        connections = kwargs.pop("connections", None)
        is_config = any(isinstance(base, _ConfigMeta) for base in bases)
        if is_config:
            _prepare_namespace(cls_name, bases, namespace, connections)
        try:
            cls = super().__new__(
                mcs,
                cls_name,
                bases,
                namespace,
                __pydantic_generic_metadata__,
                __pydantic_reset_parent_namespace__,
                _create_model_module,
                **kwargs,
            )
        except pydantic.PydanticUserError as err:
            raise ConfigError(f"Config class {cls_name}: {err.message}") from err
        if is_config:
            _check_fields(cls)
        return cls


def _prepare_namespace(
    cls_name: str, bases: tuple[type[Any], ...], namespace: dict[str, Any], connections: Any
) -> None:
    """Turn sub-task fields and ``connections=`` into annotated pydantic fields, in declaration order."""
    annotations: dict[str, Any] = dict(namespace.get("__annotations__", {}))
    for name, value in list(namespace.items()):
        if isinstance(value, SubtaskFieldSpec):
            annotations[name] = Annotated[value.value_type, value]
            namespace[name] = pydantic.Field(default_factory=value.make_default, description=value.doc)
    if connections is not None:
        if not any(isinstance(base, type) and issubclass(base, PipelineTaskConfig) for base in bases):
            raise ConfigError(
                f"Config class {cls_name}: connections= is only accepted by PipelineTaskConfig subclasses."
            )
        if "connections" in namespace or "connections" in annotations:
            raise ConfigError(
                f"Config class {cls_name}: declare either connections= or a 'connections' field, not both."
            )
        generated = _connections_config(cls_name, namespace, connections)
        annotations["connections"] = generated
        namespace["connections"] = pydantic.Field(
            default_factory=generated,
            description=f"Dataset type names of the {connections.__name__} connections, by connection name.",
        )
        namespace["ConnectionsConfig"] = generated
        namespace["connections_class"] = connections
    reserved = _reserved_names()
    for name, annotation in annotations.items():
        if name in reserved and not _is_class_var(annotation):
            raise ConfigError(
                f"Config class {cls_name}: field name {name!r} is taken by a Config method or attribute; rename it."
            )
    ordered = {name: annotations[name] for name in namespace if name in annotations}
    ordered.update(annotations)
    namespace["__annotations__"] = ordered


def _check_fields(cls: type[Config]) -> None:
    """Every field needs a default and a doc string (its type pydantic already requires)."""
    for name, info in cls.__pydantic_fields__.items():
        where = f"{cls.__qualname__}.{name}"
        if info.is_required():
            raise ConfigError(
                f"Config field {where} has no default; declare it as field(default, doc=...) "
                "or pydantic.Field(default, description=...)."
            )
        if not (info.description or "").strip():
            raise ConfigError(
                f"Config field {where} has no doc; pass doc=... to field() or description=... to Field()."
            )


@functools.cache
def _reserved_names() -> frozenset[str]:
    """Attribute names of `Config` itself, which fields may not shadow."""
    return frozenset(name for name in dir(Config) if not name.startswith("_"))


def _is_class_var(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return re.match(r"(typing\.)?ClassVar\b", annotation) is not None
    return annotation is ClassVar or get_origin(annotation) is ClassVar


# -- the config -------------------------------------------------------------------------------------


class Config(pydantic.BaseModel, metaclass=_ConfigMeta):
    """Base of task configs: typed, defaulted, documented fields validated on assignment, with history.

    Attribute assignment (``config.x = 3``) is recorded in history with the caller's ``file:line``;
    unknown names raise `ConfigFieldError` with suggestions, bad values `ConfigValueError`, and any
    change after `freeze` `ConfigError`. Equality compares field values only.
    """

    model_config = pydantic.ConfigDict(validate_assignment=True, extra="forbid")

    _history: dict[str, list[HistoryEntry]] | None = pydantic.PrivateAttr(default=None)
    _frozen: bool = pydantic.PrivateAttr(default=False)

    def __init__(self, /, **data: Any) -> None:
        try:
            super().__init__(**data)
        except pydantic.ValidationError as err:
            raise _validation_failure(type(self), err) from err

    # Tells pydantic this __init__ only wraps its own: model_validate keeps pydantic's errors and speed.
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]

    if not TYPE_CHECKING:

        def __setattr__(self, name: str, value: Any) -> None:
            if name[:1] == "_":
                super().__setattr__(name, value)
            else:
                self._set(name, value, caller_source(sys._getframe(1)))

        def __getattr__(self, name: str) -> Any:
            if name[:1] == "_" or hasattr(type(self), name):
                return super().__getattr__(name)
            raise _unknown_field(type(self), name, name)

        def __delattr__(self, name: str) -> None:
            if name[:1] == "_":
                super().__delattr__(name)
            else:
                raise ConfigError(f"Config field {type(self).__name__}.{name} cannot be deleted.")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return type(self) is type(other) and self.__dict__ == other.__dict__

    __hash__ = None  # type: ignore[assignment]

    # -- setting values

    def _set(self, name: str, value: Any, source: str, path: str | None = None) -> None:
        """Validate and set field ``name`` (``path`` is its dotted path from the root, for messages)."""
        cls = type(self)
        if name not in cls.__pydantic_fields__:
            raise _unknown_field(cls, name, path or name)
        # Read private state directly (attribute access to private attributes goes through __getattr__).
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        if private["_frozen"]:
            raise ConfigError(
                f"Cannot set {path or f'{cls.__name__}.{name}'} to {value!r}: the config is frozen."
            )
        before = self.__dict__[name]
        explicit = name in self.__pydantic_fields_set__
        try:
            pydantic.BaseModel.__setattr__(self, name, value)
        except pydantic.ValidationError as err:
            raise _value_error(cls, name, value, err, path or name) from err
        history = private["_history"]
        if history is None:
            history = private["_history"] = {}
        entries = history.get(name)
        if entries is None:
            entries = history[name] = [
                HistoryEntry(snapshot(before), "constructor" if explicit else "default")
            ]
        # validate_assignment replaces __dict__, so read the new value from the current one
        entries.append(HistoryEntry(snapshot(self.__dict__[name]), source))

    def apply_override(self, path: str, value: Any, source: str) -> None:
        """Set the field at dotted ``path`` (``background.bin_size``, ``detection.name``) to ``value``.

        A string is parsed as a YAML scalar or flow value first (``"3"`` -> 3, ``"[1, 2]"``); if that
        does not validate, the string itself is tried. Raises `ConfigFieldError` for an unknown field
        (with suggestions), `ConfigValueError` for a value of the wrong type, `ConfigError` if frozen.
        """
        node, name = _resolve(self, path)
        if not isinstance(value, str):
            _assign(node, name, value, source, path)
            return
        parsed = _parse_yaml(value)
        try:
            _assign(node, name, parsed, source, path)
        except ConfigValueError as first:
            if isinstance(parsed, str):
                raise
            try:
                _assign(node, name, value, source, path)
            except ConfigValueError:
                raise first from None

    def apply_overrides(self, overrides: Mapping[str, Any], source: str) -> None:
        """Apply `apply_override` for each entry; keys are dotted paths and/or nested mappings (last wins)."""
        self._apply_mapping(overrides, source, "", ())

    def _apply_mapping(
        self, overrides: Mapping[str, Any], source: str, prefix: str, first: Iterable[str]
    ) -> None:
        leading = tuple(first)
        items = (
            sorted(overrides.items(), key=lambda item: item[0] not in leading)
            if leading
            else overrides.items()
        )
        for key, value in items:
            if not isinstance(key, str) or not key:
                raise ConfigFieldError(
                    f"Config override keys must be field names; got {key!r} under {prefix!r}."
                )
            path = prefix + key
            if isinstance(value, Mapping):
                node, name = _resolve(self, path)
                current = _current(node, name, path)
                if isinstance(current, Config | SubtaskValue):
                    keys = current.selector_keys if isinstance(current, SubtaskValue) else ()
                    self._apply_mapping(value, source, path + ".", keys)
                    continue
            self.apply_override(path, value, source)

    def load_python(self, path: Path | str, source: str | None = None) -> None:
        """Run the Python override file ``path`` with ``config`` bound to this config.

        Its assignments are recorded in history as ``<source>:<line>`` (``source`` defaults to
        ``file <path>``). Any error in the file raises `ConfigError` (or the `ConfigError` subclass
        raised inside it) naming the file and line, with the original message.
        """
        run_override_file(self, Path(path), source)

    # -- history and freezing

    def history(self, path: str) -> list[HistoryEntry]:
        """Values of the field at dotted ``path``, oldest (its default) first, each with its source.

        For a sub-task field (``background``, ``background.target``, ``detection.name``) the entries
        are the chosen task class import paths or implementation names.
        """
        node, name = _resolve(self, path)
        if isinstance(node, SubtaskValue):
            if name in node.own_names:
                return node.selector_history()
            node = node.active
        if name not in type(node).__pydantic_fields__:
            raise _unknown_field(type(node), name, path)
        value = node.__dict__[name]
        if isinstance(value, SubtaskValue):
            return value.selector_history()
        entries = node._history.get(name) if node._history else None
        if entries:
            return list(entries)
        initial = "constructor" if name in node.__pydantic_fields_set__ else "default"
        return [HistoryEntry(snapshot(value), initial)]

    def freeze(self) -> None:
        """Make this config and every sub-config read-only (lists, dicts and sets in it too)."""
        if self._frozen:
            return
        self._frozen = True
        data = self.__dict__
        for name in type(self).__pydantic_fields__:
            value = data[name]
            if isinstance(value, Config | SubtaskValue):
                value.freeze()
            else:
                data[name] = freeze_value(value, f"{type(self).__name__}.{name}")

    @property
    def frozen(self) -> bool:
        """Whether `freeze` was called."""
        return self._frozen

    # -- plain data

    def to_dict(self) -> dict[str, Any]:
        """Field values as plain JSON/YAML data; sub-task fields give ``target`` import paths and ``config``."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """The config holding ``data`` (as `to_dict` makes it; missing fields keep their defaults)."""
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as err:
            raise _validation_failure(cls, err) from err

    def iter_fields(self) -> Iterator[tuple[str, Any, str]]:
        """``(dotted path, value, doc)`` of every leaf field, sub-configs expanded, in declaration order.

        A sub-task field gives ``<field>.target`` (import path) or ``<field>.name`` (implementation),
        then the fields of its config under ``<field>.``.
        """
        return self._iter_fields("")

    def _iter_fields(self, prefix: str) -> Iterator[tuple[str, Any, str]]:
        for name, info in type(self).__pydantic_fields__.items():
            value = self.__dict__[name]
            path = prefix + name
            doc = info.description or ""
            if isinstance(value, Config):
                yield from value._iter_fields(path + ".")
            elif isinstance(value, SubtaskValue):
                yield f"{path}.{value.selector_keys[0]}", value.selector_value, doc
                yield from value.active._iter_fields(path + ".")
            else:
                yield path, value, doc

    def diff(self, other: Config) -> list[str]:
        """Human-readable differences ``path: mine != theirs``, one per differing leaf field."""
        lines = []
        if type(self) is not type(other):
            lines.append(f"config class: {class_path(type(self))} != {class_path(type(other))}")
        mine = {path: _plain(value) for path, value, _ in self.iter_fields()}
        theirs = {path: _plain(value) for path, value, _ in other.iter_fields()}
        for path in [*mine, *(p for p in theirs if p not in mine)]:
            a, b = mine.get(path, _MISSING), theirs.get(path, _MISSING)
            if a is _MISSING or b is _MISSING or not same_value(a, b):
                lines.append(f"{path}: {_show(a)} != {_show(b)}")
        return lines


# -- dotted paths -----------------------------------------------------------------------------------


def _resolve(root: Config, path: str) -> tuple[Config | SubtaskValue, str]:
    """The object holding the last component of dotted ``path``, and that component."""
    parts = path.split(".") if isinstance(path, str) else []
    if not parts or not all(parts):
        raise ConfigFieldError(f"Invalid config field path {path!r}.")
    node: Config | SubtaskValue = root
    for index, part in enumerate(parts[:-1]):
        here = ".".join(parts[: index + 1])
        child = _current(node, part, here)
        if not isinstance(child, Config | SubtaskValue):
            raise ConfigFieldError(
                f"Unknown config field {path!r}: {here!r} holds a {type(child).__name__} value, not a sub-config."
            )
        node = child
    return node, parts[-1]


def _current(node: Config | SubtaskValue, name: str, path: str) -> Any:
    """The value of ``name`` in ``node`` (``config`` of a sub-task value is its config)."""
    if isinstance(node, SubtaskValue):
        if name == "config":
            return node.active
        if name in node.own_names:
            return getattr(node, name)
        node = node.active
    if name not in type(node).__pydantic_fields__:
        raise _unknown_field(type(node), name, path)
    return node.__dict__[name]


def _assign(node: Config | SubtaskValue, name: str, value: Any, source: str, path: str) -> None:
    if isinstance(node, SubtaskValue):
        if name in node.own_names:
            node._set_own(name, value, source, path)
            return
        node = node.active
    node._set(name, value, source, path)


def _parse_yaml(text: str) -> Any:
    try:
        return safe_load(text)
    except yaml.YAMLError:
        return text


# -- errors -----------------------------------------------------------------------------------------


def _suggest(name: str, candidates: Iterable[str]) -> str:
    names = list(candidates)
    close = difflib.get_close_matches(name, names, n=3)
    if close:
        return f"; did you mean {' or '.join(map(repr, close))}?"
    shown = ", ".join(names[:12]) + (", ..." if len(names) > 12 else "")
    return f" (fields: {shown})" if names else " (it has no fields)"


def _unknown_field(cls: type[Config], name: str, path: str) -> ConfigFieldError:
    return ConfigFieldError(
        f"Unknown config field {path!r}: {cls.__name__} has no field {name!r}{_suggest(name, cls.__pydantic_fields__)}"
    )


def _type_name(annotation: Any) -> str:
    if isinstance(annotation, type) and get_origin(annotation) is None:
        return annotation.__name__
    return repr(annotation).replace("typing.", "")


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def _value_error(
    cls: type[Config], name: str, value: Any, err: pydantic.ValidationError, path: str
) -> ConfigValueError:
    expected = _type_name(cls.__pydantic_fields__[name].annotation)
    reasons = []
    for error in err.errors(include_url=False):
        where = ".".join(str(part) for part in error["loc"][1:])
        reasons.append(f"{where}: {error['msg']}" if where else error["msg"])
    return ConfigValueError(
        f"Invalid value {_short_repr(value)} for config field {path!r} ({cls.__name__}.{name}): expected "
        f"{expected}; {'; '.join(reasons)}."
    )


def _validation_failure(cls: type[Config], err: pydantic.ValidationError) -> ConfigError:
    """`ConfigFieldError` (only unknown fields) or `ConfigValueError` for a failed construction."""
    problems = []
    errors = err.errors(include_url=False)
    for error in errors:
        loc = error["loc"]
        path = ".".join(str(part) for part in loc)
        if error["type"] == "extra_forbidden":
            owner = _class_at(cls, loc[:-1])
            hint = _suggest(str(loc[-1]), owner.__pydantic_fields__) if owner is not None else ""
            problems.append(f"unknown field {path!r}{hint}")
        else:
            problems.append(f"{path}: {error['msg']} (got {_short_repr(error['input'])})")
    error_class = (
        ConfigFieldError if all(e["type"] == "extra_forbidden" for e in errors) else ConfigValueError
    )
    text = "; ".join(problems)
    return error_class(f"Invalid {cls.__name__}: {text}{'' if text.endswith('?') else '.'}")


def _class_at(cls: type[Config], loc: tuple[int | str, ...]) -> type[Config] | None:
    """The config class of the sub-config at ``loc`` (field names) in ``cls``, if statically known."""
    for part in loc:
        info = cls.__pydantic_fields__.get(str(part))
        annotation = info.annotation if info is not None else None
        if not (isinstance(annotation, type) and issubclass(annotation, Config)):
            return None
        cls = annotation
    return cls


def _plain(value: Any) -> Any:
    try:
        return to_jsonable_python(value)
    except PydanticSerializationError:
        return repr(value)


def _show(value: Any) -> str:
    return "<missing>" if value is _MISSING else render_value(value)


# -- pipeline task configs --------------------------------------------------------------------------

_DATASET_TYPE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


def _check_dataset_type_name(value: str) -> str:
    if not _DATASET_TYPE_NAME.fullmatch(value):
        raise ValueError(
            f"invalid dataset type name {value!r}: expected letters, digits and underscores, not starting with a "
            "digit (optionally '.component')"
        )
    return value


DatasetTypeName = Annotated[str, pydantic.AfterValidator(_check_dataset_type_name)]
"""A dataset type name field (letters, digits and underscores; ``.component`` suffixes allowed)."""


class PipelineTaskConfig(Config):
    """Config of a PipelineTask; declared with its connections class as a class keyword::

        class IsrConfig(PipelineTaskConfig, connections=IsrConnections): ...

    which adds a ``connections`` field holding one dataset type name per connection (default: the
    connection's ``name``). Subclasses without ``connections=`` inherit the parent's.
    """

    connections_class: ClassVar[type[Any] | None] = None
    """The connections class given with ``connections=`` (None if none was)."""

    connections: Config = field(default_factory=Config, doc="Dataset type names of the task's connections.")


def _connections_config(cls_name: str, namespace: Mapping[str, Any], connections: Any) -> type[Config]:
    """A Config class with one dataset type name field per connection of ``connections``."""
    declarations = getattr(connections, "all_connections", None)
    if not isinstance(connections, type) or not isinstance(declarations, Mapping):
        raise ConnectionDefinitionError(
            f"Config class {cls_name}: connections={connections!r} is not a connections class (no all_connections)."
        )
    reserved = _reserved_names()
    annotations: dict[str, Any] = {}
    qualname = f"{namespace.get('__qualname__', cls_name)}.ConnectionsConfig"
    body: dict[str, Any] = {"__module__": namespace.get("__module__", __name__), "__qualname__": qualname}
    body["__doc__"] = f"Dataset type names of the {connections.__name__} connections."
    for attr, declaration in declarations.items():
        name = getattr(declaration, "name", None)
        if attr in reserved or attr.startswith("_"):
            raise ConnectionDefinitionError(
                f"{connections.__name__}.{attr}: connection name {attr!r} is taken by a Config attribute; rename it."
            )
        if not isinstance(name, str) or not _DATASET_TYPE_NAME.fullmatch(name):
            raise ConnectionDefinitionError(
                f"{connections.__name__}.{attr}: invalid dataset type name {name!r}."
            )
        annotations[attr] = DatasetTypeName
        doc = getattr(declaration, "doc", "") or f"Dataset type name of connection {attr!r}."
        body[attr] = pydantic.Field(name, description=doc)
    body["__annotations__"] = annotations
    generated: type[Config] = _ConfigMeta(f"{connections.__name__}Config", (Config,), body)
    return generated
