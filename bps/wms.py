"""The engine-plugin interface: what core asks of a workflow engine and what an engine returns.

An engine (HTCondor DAGMan, Parsl, PanDA) is a `WmsService` subclass registered in the entry-point
group ``quanta.wms``. Core hands it a `bps.workflow.GenericWorkflow` and a submit directory; the
engine turns the workflow into its own artifacts (`prepare`), starts them (`submit`), and later
answers `status`, `report`, `cancel`, `restart` and `ping` for the run in that submit directory.
Core checks `WmsService.capabilities` before calling an optional operation, so an engine that
cannot cancel says so instead of crashing.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

if TYPE_CHECKING:
    from bps.workflow import GenericWorkflow

__all__ = [
    "Capability",
    "JobReport",
    "RunHandle",
    "RunInfo",
    "RunReport",
    "WmsService",
    "WmsSettings",
    "WmsState",
    "WmsWorkflow",
]


class WmsState(enum.IntEnum):
    """State of a run or a job. The values are the exit codes of ``bps status`` (as in ctrl_bps)."""

    SUCCEEDED = 0
    UNKNOWN = 10
    MISFIT = 11
    UNREADY = 12
    READY = 13
    PENDING = 14
    RUNNING = 15
    DELETED = 16
    HELD = 17
    FAILED = 19
    PRUNED = 20

    @property
    def is_final(self) -> bool:
        """True for states a job or run never leaves (succeeded, failed, deleted, pruned)."""
        return self in _FINAL_STATES


_FINAL_STATES = frozenset({WmsState.SUCCEEDED, WmsState.FAILED, WmsState.DELETED, WmsState.PRUNED})


class Capability(enum.StrEnum):
    """An operation an engine may or may not offer; core checks before calling it."""

    SUBMIT = "submit"
    STATUS = "status"
    REPORT = "report"
    CANCEL = "cancel"
    RESTART = "restart"
    PING = "ping"
    MEMORY_RETRY = "memory-retry"
    """Retries a job that ran out of memory with more memory (``memoryMultiplier``)."""


class WmsSettings(BaseModel):
    """Base of an engine's typed settings, built from its own slice of the submit config.

    YAML keys are camelCase (``maxWorkers``); attributes are snake_case (``max_workers``).
    Unknown keys are refused so a misspelt setting is an error, not a silent default.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


@dataclass(frozen=True)
class RunInfo:
    """Who and what a run is: the values ``bps report`` shows for every run."""

    run_name: str
    """``uniqProcName``: the output run with ``/`` replaced by ``_``; names files in the submit dir."""
    output_run: str
    operator: str
    project: str
    campaign: str
    payload_name: str
    compute_site: str


@dataclass(frozen=True)
class WmsWorkflow:
    """What `WmsService.prepare` made: the engine's artifacts in the submit directory.

    Engines subclass it to carry what their `WmsService.submit` needs.
    """

    run: RunInfo
    submit_dir: Path
    files: tuple[Path, ...] = ()
    """The files the engine wrote (for the user and for tests)."""


@dataclass(frozen=True)
class RunHandle:
    """A submitted run, as saved in ``run.json`` in the submit directory."""

    engine: str
    """The engine's short name (``parsl``)."""
    engine_version: str
    run_id: str
    """The engine's id for the run (what ``bps report --id`` takes)."""
    run_name: str
    submit_dir: Path


@dataclass(frozen=True)
class JobReport:
    """One job of a run as the engine last saw it."""

    name: str
    label: str
    state: WmsState
    attempts: int = 0
    exit_code: int | None = None
    reason: str = ""
    """A short reason for a failure (``exit code 1``, ``exceeded 2048 MB``, ``blocked by isr_12``)."""
    log_path: Path | None = None


@dataclass(frozen=True)
class RunReport:
    """A run's state, per-label job counts and per-job states."""

    run_id: str
    run: RunInfo
    submit_dir: Path
    engine: str
    state: WmsState
    expected: Mapping[str, int]
    """Jobs per label, from the workflow at submit time (including ``pipetaskInit`` and ``finalJob``)."""
    counts: Mapping[str, Mapping[WmsState, int]]
    """Jobs per label and state, as the engine sees them now."""
    jobs: tuple[JobReport, ...] = ()
    messages: tuple[str, ...] = ()
    """Engine notes worth showing (``driver process 1234 is gone``)."""
    submitted_at: float = 0.0
    """POSIX time of the submission."""
    exit_code_summary: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    """Per label: exit code -> number of jobs that ended with it (failed jobs only)."""

    @property
    def total_jobs(self) -> int:
        """The number of jobs the workflow has."""
        return sum(self.expected.values())

    @property
    def percent_succeeded(self) -> float:
        """Succeeded jobs as a percentage of all jobs (0 for an empty run)."""
        total = self.total_jobs
        done = sum(per_state.get(WmsState.SUCCEEDED, 0) for per_state in self.counts.values())
        return 100.0 * done / total if total else 0.0


class WmsService(ABC):
    """A workflow engine. Subclasses set the class attributes and implement the methods.

    Every method that takes a submit directory reads what the engine saved there itself;
    core never interprets engine files.
    """

    name: ClassVar[str]
    """Short name, as in the ``quanta.wms`` entry point (``parsl``)."""
    capabilities: ClassVar[frozenset[Capability]]
    settings_class: ClassVar[type[WmsSettings]] = WmsSettings
    defaults_file: ClassVar[Path | None] = None
    """A YAML file of the engine's config defaults (below the user's files), or None."""

    def __init__(self, settings: WmsSettings) -> None:
        self.settings = settings

    @classmethod
    @abstractmethod
    def engine_version(cls) -> str:
        """The version of the engine library this service drives."""

    @abstractmethod
    def prepare(self, workflow: GenericWorkflow, submit_dir: Path) -> WmsWorkflow:
        """Write the engine's artifacts for ``workflow`` into ``submit_dir``; submit nothing."""

    @abstractmethod
    def submit(self, prepared: WmsWorkflow) -> RunHandle:
        """Start the prepared run and return at once with its handle."""

    @abstractmethod
    def status(self, submit_dir: Path) -> WmsState:
        """The run's overall state."""

    @abstractmethod
    def report(self, submit_dir: Path) -> RunReport:
        """The run's state with per-label counts and per-job details."""

    def cancel(self, submit_dir: Path) -> None:
        """Stop the run and its jobs (only when `Capability.CANCEL` is declared)."""
        raise NotImplementedError(f"{self.name} declares no cancel")

    def restart(self, submit_dir: Path) -> RunHandle:
        """Run again the jobs that did not succeed, keeping finished work (`Capability.RESTART`)."""
        raise NotImplementedError(f"{self.name} declares no restart")

    def ping(self) -> str:
        """Check the engine is usable here; return a one-line description, raise `BpsError` if not."""
        raise NotImplementedError(f"{self.name} declares no ping")
