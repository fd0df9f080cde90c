"""Task objects for executing a quantum graph: built once per label from the graph's own pipeline YAML.

The graph's header holds the expanded pipeline (every config override applied), so a job
rebuilds exactly the configs the graph was made with, without the pipeline file and without
building a `PipelineGraph` (no networkx on the job's import path).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .config import PipelineTaskConfig
from .errors import QuantumGraphError
from .pipeline import Pipeline
from .task import PipelineTask

__all__ = ["InitInputReader", "TaskFactory"]

InitInputReader = Callable[[str], Mapping[str, Any]]
"""Given a task label, the objects of its init-input connections by connection name."""


class TaskFactory:
    """Makes each task of a graph's pipeline once; later calls return the same object.

    Parameters
    ----------
    pipeline_yaml
        The graph's ``metadata.pipeline_yaml``.
    source
        Where the YAML came from, for error messages (e.g. the ``.qg`` path).
    """

    def __init__(self, pipeline_yaml: str, source: str = "<quantum graph>") -> None:
        if not pipeline_yaml.strip():
            raise QuantumGraphError(f"The quantum graph {source} has no pipeline YAML in its header.")
        self._yaml = pipeline_yaml
        self._source = source
        self._pipeline: Pipeline | None = None
        self._configs: dict[str, PipelineTaskConfig] = {}
        self._tasks: dict[str, PipelineTask] = {}

    @property
    def pipeline(self) -> Pipeline:
        """The pipeline, parsed on first use."""
        if self._pipeline is None:
            self._pipeline = Pipeline.from_string(self._yaml, source=f"pipeline of {self._source}")
        return self._pipeline

    def config(self, label: str) -> PipelineTaskConfig:
        """The frozen config of task ``label``."""
        config = self._configs.get(label)
        if config is None:
            if label not in self.pipeline:
                raise QuantumGraphError(
                    f"Task {label!r} is not in the pipeline of {self._source} "
                    f"(tasks: {', '.join(self.pipeline.labels)})."
                )
            config = self.pipeline.make_config(label)
            config.freeze()
            self._configs[label] = config
        return config

    def task(self, label: str, init_inputs: InitInputReader | None = None) -> PipelineTask:
        """The task of ``label``, constructed on first use with the objects ``init_inputs(label)`` gives."""
        task = self._tasks.get(label)
        if task is None:
            task_class = self.pipeline.task_class(label)
            config = self.config(label)
            objects = dict(init_inputs(label)) if init_inputs is not None else {}
            task = task_class(config=config, name=label, init_inputs=objects)
            self._tasks[label] = task
        return task

    def constructed(self) -> dict[str, PipelineTask]:
        """Tasks made so far, by label."""
        return dict(self._tasks)
