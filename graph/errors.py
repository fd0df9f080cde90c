"""Exceptions of the pipeline layer; each carries the exit code ``pipetask`` returns."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "ConfigFieldError",
    "ConfigValueError",
    "ConnectionDefinitionError",
    "ContractError",
    "DatasetTypeConflictError",
    "DimensionMismatchError",
    "DuplicateProducerError",
    "GraphError",
    "InstrumentError",
    "NoWorkFound",
    "PipelineCycleError",
    "QuantumGraphBuildError",
    "QuantumGraphError",
    "QuantumGraphFileError",
    "MissingInputError",
    "QuantumFailedError",
    "PipelineFileError",
    "RawIngestError",
    "SkyMapError",
    "StorageClassMismatchError",
    "SubsetError",
    "TaskExecutionError",
    "TaskImportError",
    "UnknownInstrumentError",
    "UnresolvedDatasetTypeError",
]


class GraphError(Exception):
    """Root of every error raised by the pipeline layer."""

    exit_code: int = 1


# -- configs ---------------------------------------------------------------------------------------


class ConfigError(GraphError):
    """A task config is invalid."""


class ConfigFieldError(ConfigError, AttributeError):
    """A config override names a field that does not exist (the message suggests close names)."""


class ConfigValueError(ConfigError, ValueError):
    """A config value has the wrong type or fails validation."""


# -- tasks and connections -------------------------------------------------------------------------


class TaskImportError(GraphError, ImportError):
    """A task class cannot be imported (unknown module or class, or an error inside its module)."""


class ConnectionDefinitionError(GraphError):
    """A task's connections are declared inconsistently."""


class TaskExecutionError(GraphError):
    """A task failed while running a quantum or writing its init outputs."""


class NoWorkFound(GraphError):
    """Raised by a task (or the framework) when a quantum has nothing to do; it counts as success."""


# -- pipelines -------------------------------------------------------------------------------------


class PipelineFileError(GraphError):
    """A pipeline YAML file is missing, unreadable, or has an unknown or malformed key."""


class SubsetError(PipelineFileError):
    """A labeled subset or label selection names a label the pipeline does not have."""


class ContractError(GraphError):
    """A pipeline contract evaluated to false (or could not be evaluated)."""


class DuplicateProducerError(GraphError):
    """Two tasks produce the same dataset type."""


class PipelineCycleError(GraphError):
    """The pipeline's tasks and dataset types form a cycle."""


class DatasetTypeConflictError(GraphError):
    """Connections (or the registry) disagree about one dataset type's definition."""


class StorageClassMismatchError(DatasetTypeConflictError):
    """A consumer's storage class cannot be converted from the producer's."""


class DimensionMismatchError(DatasetTypeConflictError):
    """Connections give one dataset type different dimensions, or dimensions a task cannot serve."""


class UnresolvedDatasetTypeError(GraphError):
    """Overall inputs are not registered and no task in the pipeline produces them."""


# -- instruments and sky maps ----------------------------------------------------------------------


class InstrumentError(GraphError):
    """An instrument cannot be loaded, registered, or used."""


class UnknownInstrumentError(InstrumentError, LookupError):
    """No instrument is registered under a name."""


class RawIngestError(InstrumentError):
    """A raw file cannot be ingested (unreadable, unknown instrument, bad header, duplicate)."""


class SkyMapError(GraphError):
    """A sky map definition is invalid or conflicts with a registered one."""


# -- quantum graphs and their execution --------------------------------------------------------------


class QuantumGraphError(GraphError):
    """A quantum graph is inconsistent or does not match what it is used with."""


class QuantumGraphBuildError(QuantumGraphError):
    """A quantum graph cannot be built (bad query, conflicting existing outputs, nothing to do, ...)."""


class QuantumGraphFileError(QuantumGraphError):
    """A ``.qg`` file is missing, truncated, corrupted, or of an incompatible format or universe version.

    An infrastructure problem: retrying the job elsewhere may help; the pipeline is not at fault.
    """

    exit_code = 3


class MissingInputError(GraphError):
    """A quantum's input file is missing or unreadable (an infrastructure problem, not a task failure)."""

    exit_code = 3


class QuantumFailedError(TaskExecutionError):
    """One or more quanta raised (the task's own failure); the message names them."""

    exit_code = 1
