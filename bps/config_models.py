"""Typed, frozen views of a loaded submit config: `SubmitSettings`, `ClusterSpec`, `ValueSource`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.alias_generators import to_camel

from bps.workflow import WhenRun

__all__ = ["ClusterSpec", "FinalJobSettings", "PayloadSettings", "SubmitSettings", "ValueSource"]


class _Settings(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        coerce_numbers_to_str=True,
    )


class PayloadSettings(_Settings):
    """The ``payload:`` section (its keys may also be written at top level)."""

    payload_name: str
    butler_config: str | None = None
    in_collection: str | None = None
    """Comma-separated input collections (a YAML list is joined with commas)."""
    data_query: str = ""
    output: str
    output_run: str
    run_init: bool = True


class FinalJobSettings(_Settings):
    """The ``finalJob:`` section: when the merge job runs and its command lines."""

    when_run: WhenRun = WhenRun.ALWAYS
    update_output_chain: str = ""
    commands: tuple[str, ...] = ()
    """``command1`` .. ``commandN`` in order, expanded except ``<FILE:...>`` markers."""


class SubmitSettings(_Settings):
    """The top-level keys of a submit YAML, resolved (command line and layers applied, expanded)."""

    pipeline_yaml: str | None = None
    qgraph_file: str
    payload: PayloadSettings
    operator: str
    project: str = ""
    campaign: str = ""
    compute_site: str
    wms_service_class: str
    """Engine short name (``parsl``) or a dotted class path; ctrl_bps paths become short names."""
    submit_path: str
    uniq_proc_name: str
    timestamp: str
    cluster_algorithm: str
    when_save_job_qgraph: Literal["NEVER"] = "NEVER"
    final_job: FinalJobSettings
    extra_qgraph_options: str = ""
    extra_run_quantum_options: str = ""
    extra_init_options: str = ""
    include_configs: tuple[str, ...] = ()
    environment: dict[str, str] = Field(default_factory=dict)

    @field_validator("when_save_job_qgraph", mode="before")
    @classmethod
    def _only_never(cls, value: object) -> object:
        if isinstance(value, str) and value.upper() in {"TRANSFORM", "PREPARE", "SUBMIT"}:
            raise ValueError(
                f"{value!r} is not supported: every job reads only its own quanta from the run's "
                "single .qg file, so per-job graph files are never written; use NEVER"
            )
        return value.upper() if isinstance(value, str) else value


@dataclass(frozen=True)
class ClusterSpec:
    """One ``cluster.<name>`` definition for dimension clustering."""

    name: str
    pipetasks: tuple[str, ...]
    dimensions: tuple[str, ...]
    equal_dimensions: tuple[tuple[str, str], ...]
    find_dependency_method: Literal["sink", "source"] | None
    partition_max_clusters: int | None
    partition_max_size: int | None


@dataclass(frozen=True)
class ValueSource:
    """Where a value comes from: one layer that sets the key (`BpsConfig.explain`)."""

    value: object
    """The value as written in that layer (before expansion)."""
    layer: str
    """``command line``, ``cluster.step1``, ``pipetask.isr``, ``site.local``, ``submit file``,
    ``include a.yaml``, ``plugin defaults (parsl)``, ``bps defaults`` or ``bps defined``."""
    file: Path | None

    @property
    def is_section(self) -> bool:
        """True for a scoped section (``cluster.x``, ``pipetask.x``, ``site.x``, ``finalJob``)."""
        return self.layer.startswith(("cluster.", "pipetask.", "site.")) or self.layer == "finalJob"

    def key_path(self, key: str) -> str:
        """``key`` as written in its layer: ``pipetask.isr.requestMemory`` in a section, else ``key``."""
        return f"{self.layer}.{key}" if self.is_section else key
