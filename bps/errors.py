"""The exceptions of the batch-production layer; each carries the exit code its CLI returns."""

from __future__ import annotations

__all__ = [
    "BpsConfigError",
    "BpsError",
    "CapabilityError",
    "ClusteringError",
    "EmptyGraphError",
    "EngineNotInstalledError",
    "RunNotFoundError",
    "StageFailedError",
    "SubmitDirError",
    "WorkflowError",
]


class BpsError(Exception):
    """Root of the batch-production errors; ``exit_code`` is what ``bps`` exits with."""

    exit_code: int = 1


class BpsConfigError(BpsError):
    """A submit YAML (or an included file, or a command-line value) is wrong; names file and key."""


class EngineNotInstalledError(BpsError):
    """The engine named by ``wmsServiceClass`` cannot be loaded; names the extra to install."""


class CapabilityError(BpsError):
    """The engine does not offer what was asked (e.g. cancel); names the engine and the capability."""


class ClusteringError(BpsError):
    """A clustering definition is invalid or would create a cycle between jobs."""


class EmptyGraphError(BpsError):
    """The quantum graph has no quanta: nothing is submitted."""


class WorkflowError(BpsError):
    """A generic workflow is malformed (unknown job, cycle) or its saved file is unreadable."""


class SubmitDirError(BpsError):
    """A submit directory is missing, incomplete, or already holds another run."""


class RunNotFoundError(BpsError):
    """No run with the given id is known."""


class StageFailedError(BpsError):
    """A stage's subprocess (e.g. quantum-graph generation) failed; ``exit_code`` is its exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code
