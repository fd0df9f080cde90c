"""Small PipelineTasks for the task-framework tests (importable as ``framework_tasks``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from graph.config import Config, PipelineTaskConfig, field
from graph.config_fields import ConfigurableField
from graph.connections import InitOutput, Input, Output, PipelineTaskConnections, PrerequisiteInput
from graph.errors import NoWorkFound
from graph.task import PipelineTask, Struct, Task


class ScaleConfig(Config):
    factor: float = field(2.0, doc="Multiply by this.")


class ScaleTask(Task):
    """A sub-task: multiplies an array."""

    ConfigClass = ScaleConfig
    _DefaultName = "scale"

    def run(self, array: np.ndarray) -> np.ndarray:
        self.log.info("Scaling by %s.", self.config.factor)
        self.metadata["factor"] = self.config.factor
        return array * self.config.factor


class AddConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    input = Input(
        name="numbers", storage_class="NumpyArray", dimensions=("instrument", "detector"), doc="Input."
    )
    offset = PrerequisiteInput(name="offset", storage_class="StructuredDataDict", dimensions=("instrument",))
    output = Output(
        name="sums", storage_class="NumpyArray", dimensions=("instrument", "detector"), doc="Output."
    )
    column_names = InitOutput(name="add_schema", storage_class="StructuredDataDict", doc="Columns written.")


class AddConfig(PipelineTaskConfig, connections=AddConnections):
    addend: float = field(1.0, doc="Added to every element.")
    fail: bool = field(False, doc="Raise inside run (for failure tests).")
    nothing: bool = field(False, doc="Raise NoWorkFound inside run.")
    scale = ConfigurableField(target=ScaleTask, doc="How to scale the sum.")


class AddTask(PipelineTask):
    """Adds a constant and an offset from a prerequisite, then scales."""

    ConfigClass = AddConfig
    _DefaultName = "add"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.make_subtask("scale")

    def run(self, input: np.ndarray, offset: dict[str, float]) -> Struct:
        if self.config.fail:
            raise RuntimeError("told to fail")
        if self.config.nothing:
            raise NoWorkFound("nothing to add")
        self.log.info("Adding %s.", self.config.addend)
        with self.timer("add"):
            total = input + self.config.addend + offset["value"]
        return Struct(output=self.scale.run(total))  # type: ignore[attr-defined]

    def get_init_outputs(self) -> dict[str, Any]:
        return {"column_names": {"columns": ["value"]}}


class GatherConnections(PipelineTaskConnections, dimensions=("instrument",)):
    inputs = Input(
        name="sums",
        storage_class="NumpyArray",
        dimensions=("instrument", "detector"),
        multiple=True,
        defer_load=True,
        minimum=2,
    )
    total = Output(name="total", storage_class="NumpyArray", dimensions=("instrument",))


class GatherConfig(PipelineTaskConfig, connections=GatherConnections):
    pass


class GatherTask(PipelineTask):
    """Sums all detectors' arrays, reading them through deferred handles."""

    ConfigClass = GatherConfig
    _DefaultName = "gather"

    def run(self, inputs: list[Any]) -> dict[str, Any]:
        return {"total": sum(handle.get() for handle in inputs)}
