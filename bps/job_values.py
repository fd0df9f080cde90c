"""Per-job values: the one precedence function that turns config keys into `JobResources`.

For each resource key, a value set on the command line or in the job's ``cluster.<name>`` (or
``finalJob``) section wins. Otherwise every task label of the job is looked up on its own
(``pipetask.<label>`` > ``site.<site>`` > top level > defaults) and the values are combined:
the maximum of cpus, memory, memory cap, memory multiplier, retries and priority; the sum over
quanta of walltime and disk; the union of ``retryUnlessExit``; ``preemptible`` if any label is;
the smallest ``memoryLimit``; ``queue`` and ``concurrencyLimit`` must agree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from bps.config_models import ValueSource
from bps.errors import BpsConfigError
from bps.workflow import JobResources

__all__ = ["JOB_FIELDS", "JobValueSource", "convert_job_value", "job_resources"]


def _int(value: object) -> int:
    if isinstance(value, bool):
        raise ValueError("an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    raise ValueError("an integer")


def _float(value: object) -> float:
    if isinstance(value, bool):
        raise ValueError("a number")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ValueError("a number")


def _bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {
        "true",
        "yes",
        "on",
        "1",
        "false",
        "no",
        "off",
        "0",
    }:
        return value.strip().lower() in {"true", "yes", "on", "1"}
    raise ValueError("true or false")


def _codes(value: object) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [part for part in value.replace(",", " ").split() if part]
    items = value if isinstance(value, list | tuple) else [value]
    try:
        return tuple(sorted({_int(item) for item in items}))
    except ValueError:
        raise ValueError("an exit code or a list of exit codes") from None


def _walltime(value: object) -> int:
    if isinstance(value, str) and ":" in value:
        parts = value.strip().split(":")
        if 2 <= len(parts) <= 3 and all(p.isdigit() for p in parts):
            seconds = 0
            for part in parts:
                seconds = seconds * 60 + int(part)
            return seconds if len(parts) == 3 else seconds * 60
        raise ValueError("seconds or HH:MM[:SS]")
    try:
        return _int(value)
    except ValueError:
        raise ValueError("seconds (an integer) or HH:MM:SS") from None


def _text(value: object) -> str:
    if isinstance(value, str | int) and not isinstance(value, bool):
        return str(value)
    raise ValueError("a string")


_Combine = Callable[[list[tuple[Any, int]]], object]


def _max(values: list[tuple[Any, int]]) -> object:
    return max(v for v, _ in values)


def _sum(values: list[tuple[Any, int]]) -> object:
    return sum(v * count for v, count in values)


def _union(values: list[tuple[Any, int]]) -> object:
    return tuple(sorted({code for v, _ in values for code in v}))


def _any(values: list[tuple[Any, int]]) -> object:
    return any(v for v, _ in values)


def _min(values: list[tuple[Any, int]]) -> object:
    return min(v for v, _ in values)


def _same(values: list[tuple[Any, int]]) -> object:
    distinct = {v for v, _ in values}
    if len(distinct) > 1:
        raise ValueError(f"the tasks of one job disagree: {sorted(map(str, distinct))}")
    return distinct.pop()


JOB_FIELDS: Mapping[str, tuple[str, Callable[[object], object], _Combine]] = {
    "requestCpus": ("request_cpus", _int, _max),
    "requestMemory": ("request_memory", _int, _max),
    "requestMemoryMax": ("request_memory_max", _int, _max),
    "memoryMultiplier": ("memory_multiplier", _float, _max),
    "memoryLimit": ("memory_limit", _int, _min),
    "requestDisk": ("request_disk", _int, _sum),
    "requestWalltime": ("request_walltime", _walltime, _sum),
    "numberOfRetries": ("number_of_retries", _int, _max),
    "retryUnlessExit": ("retry_unless_exit", _codes, _union),
    "priority": ("priority", _int, _max),
    "queue": ("queue", _text, _same),
    "concurrencyLimit": ("concurrency_limit", _text, _same),
    "preemptible": ("preemptible", _bool, _any),
}
"""camelCase key -> (`JobResources` field, converter, how a multi-task job combines values)."""


def convert_job_value(key: str, value: object, source: ValueSource | None) -> object:
    """Convert one job key's value; a wrong type is a `BpsConfigError` naming file, layer and key."""
    if value is None:
        return None
    try:
        return JOB_FIELDS[key][1](value)
    except ValueError as err:
        where = f"{source.file}: " if source is not None and source.file is not None else ""
        path = key
        if source is not None:
            path = source.key_path(key) if source.is_section else f"{key} ({source.layer})"
        raise BpsConfigError(f"{where}{path}: expected {err}, got {value!r}.") from None


class JobValueSource(Protocol):
    """What `job_resources` needs of a config: a scoped lookup returning value and source."""

    def resolve(
        self, key: str, *, cluster: str | None = None, pipetask: str | None = None, site: str | None = None
    ) -> tuple[object, ValueSource] | None:
        """The expanded value and its winning source, or None when no layer sets ``key``."""


def cluster_layer(cluster: str) -> str:
    """The layer name of a cluster's own section (``finalJob`` is its own section)."""
    return "finalJob" if cluster == "finalJob" else f"cluster.{cluster}"


def job_resources(
    config: JobValueSource, *, cluster: str | None, label_counts: Mapping[str, int], site: str | None
) -> JobResources:
    """The resources of one job of ``cluster`` running ``label_counts`` quanta per task label."""
    winners = {"command line"} | ({cluster_layer(cluster)} if cluster is not None else set())
    values: dict[str, object] = {}
    for key, (field, _, combine) in JOB_FIELDS.items():
        found = config.resolve(key, cluster=cluster, site=site)
        if found is not None and (found[1].layer in winners or not label_counts):
            value = convert_job_value(key, found[0], found[1])
        elif not label_counts:
            continue
        else:
            per_label: list[tuple[Any, int]] = []
            for label, count in label_counts.items():
                hit = config.resolve(key, pipetask=label, site=site)
                if hit is not None and hit[0] is not None:
                    per_label.append((convert_job_value(key, hit[0], hit[1]), count))
            if not per_label:
                continue
            try:
                value = combine(per_label)
            except ValueError as err:
                raise BpsConfigError(f"{key} of cluster {cluster!r}: {err}.") from None
        if value is not None:
            values[field] = value
    return JobResources(**values)  # type: ignore[arg-type]
