"""Typed settings of the Parsl engine: one ``site.<computeSite>`` mapping of the submit YAML.

Example::

    site:
      local: {class: local, maxWorkers: 2}
      slurm: {class: slurm, partition: debug, walltime: "01:00:00", maxBlocks: 2, maxWorkers: 2}

ctrl_bps site class paths (``lsst.ctrl.bps.parsl.sites.Local``, ``...Slurm``, ``...Threads``,
``...WorkQueue``) are accepted for ``class``; ``cores`` is an alias of ``maxWorkers``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator

from bps.wms import WmsSettings

__all__ = ["SITE_CLASSES", "ParslSiteSettings"]

SITE_CLASSES = ("local", "threads", "slurm")
"""The site classes this engine builds a Parsl configuration for."""

_CTRL_BPS_SITES = {
    "local": "local",
    "threads": "threads",
    "slurm": "slurm",
    "localsrundirect": "local",
    "tripleslurm": "slurm",
}


class ParslSiteSettings(WmsSettings):
    """How and where the Parsl engine runs jobs (``site.<computeSite>`` of the submit YAML)."""

    site_class: Literal["local", "threads", "slurm"] = Field(
        default="local", validation_alias=AliasChoices("class", "siteClass", "site_class")
    )
    """``local``: HighThroughputExecutor on this machine; ``threads``: a thread pool in the driver;
    ``slurm``: HighThroughputExecutor whose workers run in Slurm batch jobs."""
    max_workers: int = Field(
        default=2, ge=1, validation_alias=AliasChoices("maxWorkers", "cores", "max_workers")
    )
    """Jobs run at once per node (per block for slurm)."""
    enforce_memory: bool = True
    """Kill a job whose process tree exceeds its memory request (the job wrapper polls RSS)."""
    in_flight_factor: float = Field(default=2.0, ge=1.0)
    """The driver keeps at most ``in_flight_factor * workers`` jobs submitted to Parsl at once."""
    address: str = "127.0.0.1"
    """Address the HighThroughputExecutor's interchange listens on (workers connect to it)."""
    heartbeat_period: int = Field(default=30, ge=1)
    heartbeat_threshold: int = Field(default=120, ge=2)
    # Slurm (class: slurm)
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    walltime: str = "01:00:00"
    """Walltime of each Slurm block (``HH:MM:SS``)."""
    nodes: int = Field(default=1, ge=1)
    """Nodes per block."""
    init_blocks: int = Field(default=1, ge=0)
    min_blocks: int = Field(default=0, ge=0)
    max_blocks: int = Field(default=1, ge=1)
    scheduler_options: str = ""
    """Extra ``#SBATCH`` lines for each block."""
    worker_init: str = ""
    """Shell lines run in each block before the workers start (after the engine puts its Python on PATH)."""
    launcher: Literal["srun", "single"] = "srun"
    exclusive: bool = False
    mem_per_node: int | None = Field(default=None, ge=1)
    """GB per node asked of Slurm (``--mem``); unset: the partition's default."""
    cmd_timeout: int = Field(default=30, ge=1)
    """Seconds to wait for sbatch/squeue/scancel."""
    strategy_period: float = Field(default=1.0, gt=0)
    """Seconds between Parsl's scaling decisions."""

    @field_validator("site_class", mode="before")
    @classmethod
    def _short_class(cls, value: Any) -> Any:
        if isinstance(value, str):
            short = value.rsplit(".", 1)[-1].lower()
            return _CTRL_BPS_SITES.get(short, short)
        return value

    @field_validator("walltime", mode="before")
    @classmethod
    def _walltime(cls, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return f"{value // 3600:02d}:{value % 3600 // 60:02d}:{value % 60:02d}"
        if isinstance(value, str):
            parts = value.split(":")
            if not (1 <= len(parts) <= 3 and all(p.isdigit() for p in parts)):
                raise ValueError(f"walltime {value!r} is not HH:MM:SS (or seconds)")
        return value

    @model_validator(mode="after")
    def _blocks(self) -> ParslSiteSettings:
        if self.min_blocks > self.max_blocks:
            raise ValueError(f"minBlocks ({self.min_blocks}) is above maxBlocks ({self.max_blocks})")
        return self

    @property
    def workers(self) -> int:
        """Jobs that can run at once over the whole site."""
        if self.site_class == "slurm":
            return self.max_workers * self.nodes * self.max_blocks
        return self.max_workers

    @property
    def max_in_flight(self) -> int:
        """How many jobs the driver hands to Parsl at once."""
        return max(1, int(self.workers * self.in_flight_factor))
