"""Building the typed views of a loaded config: `SubmitSettings`, `ClusterSpec`, engine settings.

Validation errors become `BpsConfigError` messages naming the file, the key path, the value and
what was expected.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, ValidationError

from bps.config_keys import PAYLOAD_KEYS, did_you_mean, is_final_command_key
from bps.config_models import ClusterSpec, SubmitSettings, ValueSource
from bps.errors import BpsConfigError
from bps.wms import WmsSettings

if TYPE_CHECKING:
    from bps.config import BpsConfig

__all__ = ["build_cluster_specs", "build_submit_settings", "validate_engine_settings"]

_SECTIONS = {"payload", "finalJob", "environment"}


def build_submit_settings(config: BpsConfig) -> SubmitSettings:
    """Resolve every `SubmitSettings` key in ``config`` and validate the result."""
    sources: dict[str, ValueSource] = {}

    def take(target: dict[str, object], key: str, path: str, cluster: str | None = None) -> None:
        found = config.resolve(key, cluster=cluster)
        if found is not None:
            target[key] = found[0]
            sources[path] = found[1]

    data: dict[str, object] = {}
    for name, field in SubmitSettings.model_fields.items():
        alias = field.alias or name
        if alias not in _SECTIONS:
            take(data, alias, alias)
    if isinstance(data.get("includeConfigs"), str):
        data["includeConfigs"] = [p.strip() for p in str(data["includeConfigs"]).split(",") if p.strip()]
    payload: dict[str, object] = {}
    for key in sorted(PAYLOAD_KEYS):
        take(payload, key, f"payload.{key}")
    collections = payload.get("inCollection")
    if isinstance(collections, list):
        payload["inCollection"] = ",".join(map(str, collections))
    final: dict[str, object] = {}
    for key in ("whenRun", "updateOutputChain"):
        take(final, key, f"finalJob.{key}", cluster="finalJob")
    commands = sorted(
        (k for k in config.section("finalJob") if is_final_command_key(k)), key=lambda k: int(k[7:])
    )
    final["commands"] = [config.command(key, cluster="finalJob") for key in commands]
    data.update(payload=payload, finalJob=final, environment=config.environment())
    try:
        return SubmitSettings.model_validate(data)
    except ValidationError as err:
        raise BpsConfigError(_messages(err, sources, config, "")) from None


def build_cluster_specs(config: BpsConfig) -> dict[str, ClusterSpec]:
    """The ``cluster.<name>`` definitions, validated."""
    specs = {}
    for name in config.section("cluster"):
        specs[name] = _cluster_spec(config, name)
    return specs


def _cluster_spec(config: BpsConfig, name: str) -> ClusterSpec:
    def value(key: str) -> tuple[object, ValueSource] | None:
        found = config.resolve(key, cluster=name, site="")
        return found if found is not None and found[1].layer == f"cluster.{name}" else None

    def fail(key: str, found: tuple[object, ValueSource], expected: str) -> BpsConfigError:
        where = f"{found[1].file}: " if found[1].file is not None else ""
        return BpsConfigError(f"{where}cluster.{name}.{key}: expected {expected}, got {found[0]!r}.")

    def names(key: str) -> tuple[str, ...]:
        found = value(key)
        if found is None or found[0] is None:
            return ()
        raw = found[0]
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(item.strip() for item in raw)
        raise fail(key, found, "a comma-separated string or a list of names")

    pairs = []
    for item in names("equalDimensions"):
        left, sep, right = item.partition(":")
        if not sep or not left.strip() or not right.strip() or ":" in right:
            raise fail("equalDimensions", value("equalDimensions"), "pairs like 'visit:exposure'")  # type: ignore[arg-type]
        pairs.append((left.strip(), right.strip()))
    method = value("findDependencyMethod")
    if method is not None and method[0] not in {"sink", "source", None}:
        raise fail("findDependencyMethod", method, "sink or source")
    limits: dict[str, int | None] = {}
    for key in ("partitionMaxClusters", "partitionMaxSize"):
        found = value(key)
        raw = found[0] if found is not None else None
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or raw < 1):
            raise fail(key, found, "a positive integer")  # type: ignore[arg-type]
        limits[key] = raw
    return ClusterSpec(
        name=name,
        pipetasks=names("pipetasks"),
        dimensions=names("dimensions"),
        equal_dimensions=tuple(pairs),
        find_dependency_method=None if method is None else method[0],  # type: ignore[arg-type]
        partition_max_clusters=limits["partitionMaxClusters"],
        partition_max_size=limits["partitionMaxSize"],
    )


def validate_engine_settings(
    settings_class: type[WmsSettings],
    values: Mapping[str, Any],
    sources: Mapping[str, ValueSource],
    site: str,
) -> WmsSettings:
    """Validate a site section's engine keys into ``settings_class``."""
    try:
        return settings_class.model_validate(dict(values))
    except ValidationError as err:
        raise BpsConfigError(_messages(err, sources, None, f"site.{site}.", settings_class)) from None


def _field_keys(model: type[BaseModel]) -> list[str]:
    """The YAML keys a model accepts: aliases and validation-alias choices."""
    keys = set()
    for name, field in model.model_fields.items():
        keys.add(field.alias or name)
        choices = field.validation_alias
        if isinstance(choices, AliasChoices):
            keys.update(c for c in choices.choices if isinstance(c, str))
        elif isinstance(choices, str):
            keys.add(choices)
    return sorted(keys)


def _messages(
    err: ValidationError,
    sources: Mapping[str, ValueSource],
    config: BpsConfig | None,
    prefix: str,
    model: type[BaseModel] = SubmitSettings,
) -> str:
    lines = []
    for error in err.errors():
        path = ".".join(str(part) for part in error["loc"])
        source = sources.get(path) or sources.get(str(error["loc"][0]) if error["loc"] else "")
        if source is not None and source.file is not None:
            where = f"{source.file}: "
        else:
            where = f"{config.path}: " if config is not None else ""
        full = f"{prefix}{path}"
        if error["type"] == "extra_forbidden":
            known = _field_keys(model)
            hint = did_you_mean(str(error["loc"][-1]), known) or f"; known keys: {', '.join(sorted(known))}."
            lines.append(f"{where}{full}: unknown key{hint}")
        elif error["type"] == "missing":
            lines.append(f"{where}{full}: required, but no layer sets it.")
        else:
            message = error["msg"].removeprefix("Value error, ")
            lines.append(f"{where}{full}: {message}; got {error['input']!r}.")
    return "\n".join(lines)
