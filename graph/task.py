"""Tasks: configurable units of processing; a PipelineTask turns the inputs of one quantum into its outputs.

Tasks do no I/O of their own. The framework reads a quantum's inputs through a butler, calls
`PipelineTask.run` with Python objects, and writes what it returns; `PipelineTask.run_quantum` is
the hook for the rare task that must choose what to read itself.
"""

from __future__ import annotations

import logging
import resource
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from butler.datasets import DatasetRef
from butler.task_metadata import TaskMetadata

from .config import Config, PipelineTaskConfig
from .connections import PipelineTaskConnections
from .errors import ConfigError, TaskExecutionError

if TYPE_CHECKING:
    from .quantum_context import QuantumContext

__all__ = ["LOGGER_ROOT", "PipelineTask", "Struct", "Task"]

LOGGER_ROOT = "quanta"
"""Task loggers are named ``quanta.<label>.<subtask>...`` under this root."""


class Struct:
    """A bag of named results: ``Struct(calexp=image, src=table).calexp``."""

    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    def as_dict(self) -> dict[str, Any]:
        """The values by name."""
        return dict(self.__dict__)

    def __getattr__(self, name: str) -> Any:
        # Only called for missing names; tells type checkers that any attribute may exist.
        raise AttributeError(f"Struct has no {name!r}; it has {sorted(self.__dict__)}.")

    def __repr__(self) -> str:
        return f"Struct({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"


class Task:
    """A configurable unit of processing with a logger and metadata, possibly made of sub-tasks.

    ``config`` defaults to ``ConfigClass()``; it is frozen once the task exists. ``name`` defaults
    to the class's ``_DefaultName``; a sub-task's full name is ``parent.child``.
    """

    ConfigClass: ClassVar[type[Config]] = Config
    _DefaultName: ClassVar[str] = ""

    def __init__(
        self, config: Config | None = None, *, name: str | None = None, parent_task: Task | None = None
    ):
        if config is None:
            config = self.ConfigClass()
        elif not isinstance(config, self.ConfigClass):
            raise ConfigError(
                f"{type(self).__name__} needs a {self.ConfigClass.__name__}, got a {type(config).__name__}."
            )
        name = name or self._DefaultName
        if not name:
            raise ConfigError(f"{type(self).__name__} has no _DefaultName; pass name=.")
        if "." in name:
            raise ConfigError(f"Task name {name!r} may not contain '.'.")
        config.freeze()
        self.config = config
        self.name = name
        self.parent_task = parent_task
        self.full_name: str = f"{parent_task.full_name}.{name}" if parent_task else name
        self.log = logging.getLogger(f"{LOGGER_ROOT}.{self.full_name}")
        self.metadata = TaskMetadata()
        self._subtasks: dict[str, Task] = {}

    def make_subtask(self, name: str, **kwargs: Any) -> Task:
        """Construct the sub-task configured by the config field ``name`` and keep it as ``self.<name>``."""
        try:
            choice = getattr(self.config, name)
        except AttributeError:
            raise ConfigError(f"{type(self.config).__name__} has no sub-task field {name!r}.") from None
        target = getattr(choice, "target", None)
        if not (isinstance(target, type) and issubclass(target, Task)):
            raise ConfigError(
                f"Field {name!r} of {type(self.config).__name__} does not configure a sub-task "
                "(use ConfigurableField or ChoiceField)."
            )
        subtask = target(config=_subtask_config(choice), name=name, parent_task=self, **kwargs)
        self._subtasks[name] = subtask
        setattr(self, name, subtask)
        return subtask

    def reset_metadata(self) -> None:
        """Start fresh metadata for this task and its sub-tasks (one task object runs many quanta)."""
        self.metadata = TaskMetadata()
        for subtask in self._subtasks.values():
            subtask.reset_metadata()

    def full_metadata(self) -> TaskMetadata:
        """This task's metadata with every sub-task's nested under its name."""
        result = TaskMetadata(self.metadata.to_dict())
        for name, subtask in self._subtasks.items():
            result[name] = subtask.full_metadata()
        return result

    @contextmanager
    def timer(self, name: str) -> Iterator[None]:
        """Record wall-clock, CPU time and peak memory of a block in metadata as ``<name>Start*``/``<name>End*``."""
        _record_usage(self.metadata, f"{name}Start")
        try:
            yield
        finally:
            _record_usage(self.metadata, f"{name}End")


def _subtask_config(choice: Any) -> Config:
    """The config of a ConfigurableField value or of the active ChoiceField implementation."""
    for attribute in ("active", "value", "config"):
        config = getattr(choice, attribute, None)
        if isinstance(config, Config):
            return config
    if isinstance(choice, Config):
        return choice
    raise ConfigError(f"Cannot find the sub-task config in {choice!r}.")


def _record_usage(metadata: TaskMetadata, prefix: str) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    metadata[f"{prefix}Utc"] = datetime.now(UTC).isoformat()
    metadata[f"{prefix}WallTime"] = time.perf_counter()
    metadata[f"{prefix}CpuTime"] = time.process_time()
    metadata[f"{prefix}MaxResidentSetSize"] = usage.ru_maxrss * 1024  # Linux reports KiB


class PipelineTask(Task, ABC):
    """A task run once per quantum by the framework: declared connections in, declared connections out.

    ``ConfigClass`` must be a `PipelineTaskConfig` declared with ``connections=``; ``name`` is the
    task's label in the pipeline. ``init_inputs`` are the objects of its InitInput connections.
    """

    ConfigClass: ClassVar[type[PipelineTaskConfig]] = PipelineTaskConfig

    def __init__(
        self,
        *,
        config: PipelineTaskConfig | None = None,
        name: str | None = None,
        init_inputs: Mapping[str, Any] | None = None,
    ):
        super().__init__(config, name=name)
        self.config: PipelineTaskConfig
        connections_class = getattr(self.ConfigClass, "connections_class", None)
        if connections_class is None or not issubclass(connections_class, PipelineTaskConnections):
            raise ConfigError(
                f"{self.ConfigClass.__name__} (config of {type(self).__name__}) was declared without "
                "connections=...; a PipelineTask needs its connections."
            )
        self.connections: PipelineTaskConnections = connections_class(config=self.config)
        missing = self.connections.init_inputs - set(init_inputs or {})
        if missing:
            raise TaskExecutionError(
                f"{type(self).__name__} {self.name!r} needs init-inputs {sorted(missing)}."
            )
        self.init_inputs = dict(init_inputs or {})

    @abstractmethod
    def run(self, *args: Any, **kwargs: Any) -> Struct | Mapping[str, Any]:
        """Process one quantum's inputs (keyword arguments named for connections); return outputs by connection name.

        Subclasses declare the arguments they take, e.g. ``run(self, raw: Image, bias: Image)``.
        """

    def run_quantum(
        self,
        context: QuantumContext,
        inputs: Mapping[str, list[DatasetRef]],
        outputs: Mapping[str, list[DatasetRef]],
    ) -> None:
        """Read ``inputs`` through ``context``, call `run`, and write its results to ``outputs``."""
        values = context.get_inputs(self.connections, inputs)
        result = self.run(**values)
        context.put_outputs(self.connections, result, outputs)

    def get_init_outputs(self) -> dict[str, Any]:
        """Objects for the InitOutput connections, by connection name (none by default)."""
        if self.connections.init_outputs:
            raise TaskExecutionError(
                f"{type(self).__name__} declares init-outputs {sorted(self.connections.init_outputs)} "
                "but does not override get_init_outputs()."
            )
        return {}
