"""Text for ``bps config-dump FILE [--explain KEY]``: resolved values and the layers they come from."""

from __future__ import annotations

from collections.abc import Mapping

from bps.config import BpsConfig
from bps.config_keys import (
    CLUSTER_KEYS,
    COMPAT_KEYS,
    FINAL_JOB_KEYS,
    TOP_KEYS,
    did_you_mean,
    is_final_command_key,
)
from bps.config_models import ValueSource
from bps.errors import BpsConfigError

__all__ = [
    "dump_text",
    "explain_text",
    "format_config_dump",
    "format_explain",
    "format_value",
    "parse_key_path",
]


def format_value(value: object) -> str:
    """A value as it reads in YAML flow style (``''`` for an empty string)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value if value.strip() == value and value else repr(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {format_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    return str(value)


def _origin(source: ValueSource) -> str:
    if (
        source.file is None
        or source.layer in {"submit file", "bps defaults"}
        or source.layer.startswith(("include ", "plugin defaults"))
    ):
        return source.layer
    return f"{source.layer} ({source.file.name})"


def format_config_dump(config: BpsConfig) -> str:
    """Every resolved value, one per line as ``key: value  # layer``, sections as dotted paths."""
    rows = [(path, format_value(value), _origin(source)) for path, value, source in config.items()]
    width = min(max((len(p) + len(v) + 2 for p, v, _ in rows), default=0), 80)
    lines = [f"# {config.path}: resolved values; '# ...' names the layer each comes from"]
    lines += [f"{f'{p}: {v}':<{width}}  # {origin}" for p, v, origin in rows]
    return "\n".join(lines) + "\n"


def parse_key_path(path: str) -> tuple[str, dict[str, str]]:
    """``pipetask.isr.requestMemory`` -> (``requestMemory``, {"pipetask": "isr"}); also cluster/site/
    finalJob/payload prefixes. A plain key has no scope."""
    head, _, rest = path.partition(".")
    if head in {"cluster", "pipetask", "site"} and rest.count(".") >= 1:
        name, _, key = rest.rpartition(".")
        return key, {head: name}
    if head == "finalJob" and rest:
        return rest, {"cluster": "finalJob"}
    if head == "payload" and rest:
        return rest, {}
    return path, {}


def format_explain(
    config: BpsConfig,
    key: str,
    *,
    cluster: str | None = None,
    pipetask: str | None = None,
    site: str | None = None,
) -> str:
    """Every layer that sets ``key`` in this scope, the winner first, and the expanded value.

    ``key`` may carry its scope as a dotted path (``pipetask.isr.requestMemory``).
    """
    leaf, scope = parse_key_path(key)
    cluster = scope.get("cluster", cluster)
    pipetask = scope.get("pipetask", pipetask)
    site = scope.get("site", site)
    sources = config.explain(leaf, cluster=cluster, pipetask=pipetask, site=site)
    known = TOP_KEYS | CLUSTER_KEYS | FINAL_JOB_KEYS | COMPAT_KEYS | {"class"}
    if not sources and leaf not in known and not is_final_command_key(leaf):
        raise BpsConfigError(f"{config.path}: {key}: unknown key{did_you_mean(leaf, known) or '.'}")
    labels = [f"{name}={value}" for name, value in (("cluster", cluster), ("pipetask", pipetask)) if value]
    labels.append(f"site={site if site is not None else config.compute_site}")
    title = f"{leaf} ({', '.join(labels)})"
    if not sources:
        return f"{title}: not set in any layer.\n"
    value = config.get(leaf, cluster=cluster, pipetask=pipetask, site=site)
    lines = [f"{title} = {format_value(value)}"]
    width = max(len(s.layer) for s in sources)
    for index, source in enumerate(sources):
        mark = "used" if index == 0 else "    "
        where = str(source.file) if source.file is not None else "-"
        lines.append(f"  {mark}  {source.layer:<{width}}  {format_value(source.value)}    [{where}]")
    return "\n".join(lines) + "\n"


dump_text = format_config_dump
"""Alias used by ``bps.cli.config_commands``."""
explain_text = format_explain
"""Alias used by ``bps.cli.config_commands``."""
