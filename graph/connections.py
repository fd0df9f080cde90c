"""What a PipelineTask reads and writes: connection declarations, grouped per task in a connections class.

A connections class declares, as class attributes, the datasets one quantum of a task consumes and
produces, and the task's own dimensions::

    class IsrConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
        raw = Input(name="raw", storage_class="Image", dimensions=("instrument", "exposure", "detector"))
        bias = PrerequisiteInput(name="bias", storage_class="Image", dimensions=("instrument", "detector"),
                                 is_calibration=True)
        post_isr = Output(name="postISRCCD", storage_class="Image",
                          dimensions=("instrument", "exposure", "detector"))

The ``name`` of each declaration is only the default dataset type name: the task config's
``connections`` section holds the configured one, so one task can run twice in a pipeline writing
different dataset types. An instance of the class resolves the names for one config; a subclass may
override ``__init__`` to drop optional connections depending on the config.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, ClassVar

from .errors import ConnectionDefinitionError

if TYPE_CHECKING:
    from .config import PipelineTaskConfig

__all__ = [
    "BaseConnection",
    "DimensionedConnection",
    "InitInput",
    "InitOutput",
    "Input",
    "Output",
    "PipelineTaskConnections",
    "PrerequisiteInput",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")


@dataclass(frozen=True, kw_only=True)
class BaseConnection:
    """One dataset a task reads or writes (the dataset type name may be overridden by config)."""

    name: str
    """Default dataset type name (``parent.component`` allowed for inputs)."""
    storage_class: str
    """Storage class the task gets or puts (may differ from the registered one if convertible)."""
    doc: str = ""
    """What the dataset is, for ``pipetask build --show`` and config docs."""
    multiple: bool = False
    """The task takes (or produces) a list of datasets rather than exactly one."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ConnectionDefinitionError(
                f"Invalid dataset type name {self.name!r} in a connection: expected letters, digits and "
                "underscores (optionally '.component' parts)."
            )
        if not isinstance(self.storage_class, str) or not self.storage_class:
            raise ConnectionDefinitionError(f"Connection {self.name!r} needs a storage class name.")

    @property
    def is_init(self) -> bool:
        """Whether this is read or written once per task (at init) rather than once per quantum."""
        return False


@dataclass(frozen=True, kw_only=True)
class InitInput(BaseConnection):
    """A dataset read once when the task is constructed (e.g. a schema written by an upstream task)."""

    @property
    def is_init(self) -> bool:
        """Always true."""
        return True


@dataclass(frozen=True, kw_only=True)
class InitOutput(BaseConnection):
    """A dataset written once per run when the task is initialized (e.g. a schema)."""

    @property
    def is_init(self) -> bool:
        """Always true."""
        return True


@dataclass(frozen=True, kw_only=True)
class DimensionedConnection(BaseConnection):
    """A per-quantum dataset: it has dimensions and may be a calibration."""

    dimensions: tuple[str, ...] = ()
    """Dimension names of the dataset type (they may differ from the task's dimensions)."""
    is_calibration: bool = False
    """The dataset type lives in CALIBRATION collections and is looked up by validity range."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not _is_name_sequence(self.dimensions):
            raise ConnectionDefinitionError(
                f"Dimensions of connection {self.name!r} must be a tuple of dimension names, "
                f"not {self.dimensions!r}."
            )
        object.__setattr__(self, "dimensions", tuple(self.dimensions))


@dataclass(frozen=True, kw_only=True)
class Input(DimensionedConnection):
    """A dataset read by each quantum; produced by another task or already in the input collections."""

    defer_load: bool = False
    """The task gets a handle (`DeferredDatasetHandle`) and reads when (and what) it wants."""
    minimum: int = 1
    """Fewest datasets a quantum needs; with fewer the quantum is not made (or raises, if it runs)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.minimum, int) or self.minimum < 0:
            raise ConnectionDefinitionError(
                f"minimum of connection {self.name!r} must be a non-negative integer, not {self.minimum!r}."
            )
        if self.minimum > 1 and not self.multiple:
            raise ConnectionDefinitionError(
                f"Connection {self.name!r} has minimum={self.minimum} but is not multiple=True."
            )


@dataclass(frozen=True, kw_only=True)
class PrerequisiteInput(Input):
    """An input looked up in the input collections, never produced by the pipeline (calibrations, catalogs)."""


@dataclass(frozen=True, kw_only=True)
class Output(DimensionedConnection):
    """A dataset written by each quantum."""


_KINDS: tuple[tuple[str, type[BaseConnection]], ...] = (
    # Order matters: PrerequisiteInput is an Input subclass.
    ("prerequisite_inputs", PrerequisiteInput),
    ("inputs", Input),
    ("outputs", Output),
    ("init_inputs", InitInput),
    ("init_outputs", InitOutput),
)


def connection_kind(connection: BaseConnection) -> str:
    """The attribute-set name (``inputs``, ``prerequisite_inputs``, ...) a declaration belongs to."""
    for kind, cls in _KINDS:
        if isinstance(connection, cls):
            return kind
    raise ConnectionDefinitionError(f"{type(connection).__name__} is not a connection type.")


class PipelineTaskConnections:
    """Declarations of a task's inputs and outputs and its dimensions; an instance resolves them for one config."""

    dimensions: ClassVar[tuple[str, ...]] = ()
    """Dimensions of the task's quanta."""
    all_connections: ClassVar[dict[str, BaseConnection]] = {}
    """Every declared connection by attribute name, inherited ones included."""

    def __init_subclass__(
        cls, *, dimensions: tuple[str, ...] | list[str] | None = None, **kwargs: Any
    ) -> None:
        super().__init_subclass__(**kwargs)
        if dimensions is not None:
            if not _is_name_sequence(dimensions):
                raise ConnectionDefinitionError(
                    f"{cls.__name__}: dimensions must be a tuple of dimension names, not {dimensions!r}."
                )
            cls.dimensions = tuple(dimensions)
        collected: dict[str, BaseConnection] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, BaseConnection):
                    collected[attr] = value
                elif attr in collected and klass is cls:
                    del collected[attr]  # a subclass may remove an inherited connection by rebinding it
        cls.all_connections = collected

    def __init__(self, *, config: PipelineTaskConfig | None = None) -> None:
        self.config = config
        names = _configured_names(config)
        self._resolved: dict[str, BaseConnection] = {}
        self.inputs: set[str] = set()
        self.prerequisite_inputs: set[str] = set()
        self.outputs: set[str] = set()
        self.init_inputs: set[str] = set()
        self.init_outputs: set[str] = set()
        for attr, declared in self.all_connections.items():
            name = names.get(attr, declared.name)
            self._resolved[attr] = declared if name == declared.name else replace(declared, name=name)
            getattr(self, connection_kind(declared)).add(attr)

    def connection(self, attr: str) -> BaseConnection:
        """The declaration of ``attr`` with its configured dataset type name."""
        try:
            return self._resolved[attr]
        except KeyError:
            raise ConnectionDefinitionError(
                f"{type(self).__name__} has no connection {attr!r}; it has {sorted(self._resolved)}."
            ) from None

    def is_active(self, attr: str) -> bool:
        """Whether ``attr`` is still one of this instance's connections (``__init__`` may drop some)."""
        return any(attr in getattr(self, kind) for kind, _ in _KINDS)

    def iter_connections(self) -> Iterator[tuple[str, BaseConnection]]:
        """Active connections as (attribute name, resolved declaration), in declaration order."""
        for attr, connection in self._resolved.items():
            if self.is_active(attr):
                yield attr, connection

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dimensions={self.dimensions})"


def _is_name_sequence(value: object) -> bool:
    """Whether ``value`` is a tuple or list of strings (a bare string is a common mistake)."""
    return isinstance(value, tuple | list) and all(isinstance(item, str) for item in value)


def _configured_names(config: PipelineTaskConfig | None) -> dict[str, str]:
    """Dataset type names from ``config.connections`` (empty without a config)."""
    if config is None:
        return {}
    section = getattr(config, "connections", None)
    if section is None:
        return {}
    return {name: value for name, value in section.model_dump().items() if isinstance(value, str)}
