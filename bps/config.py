"""The submit config: load a submit YAML, merge its layers, expand variables, validate, look up.

Lookup order for every key (the one place it is defined; docs/bps-config.md explains it):

1. the command line (``overrides`` of `load_bps_config`);
2. ``cluster.<name>`` (or the ``finalJob`` section for the final job);
3. ``pipetask.<label>``;
4. ``site.<site>`` (``site`` argument, else ``computeSite``);
5. top level, file by file: the submit YAML, its ``includeConfigs`` (a later include beats an
   earlier one; an included file beats what it includes), the engine's defaults file, then
   ``submit_templates/bps_defaults.yaml``; in each file a ``payload:`` value beats a top-level one;
6. values bps defines itself: ``operator`` (login name), ``timestamp`` (UTC, ``20261126T230000Z``),
   ``uniqProcName`` (``outputRun`` with ``/`` -> ``_``).

Sections 2-4 are searched across all files (highest file first) before the top level.
"""

from __future__ import annotations

import getpass
import logging
import os
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

import submit_templates
from bps.config_expand import expand_value, format_scalar
from bps.config_keys import (
    JOB_PLACEHOLDERS,
    JOB_SECTION_KEYS,
    PAYLOAD_KEYS,
    SECTION_KEYS,
    TOP_KEYS,
    did_you_mean,
    short_cluster_algorithm,
    short_site_class,
    short_wms_name,
)
from bps.config_loader import Layer, load_layers, load_yaml, referenced_names, validate_layers
from bps.config_models import ClusterSpec, FinalJobSettings, PayloadSettings, SubmitSettings, ValueSource
from bps.config_settings import build_cluster_specs, build_submit_settings, validate_engine_settings
from bps.errors import BpsConfigError, BpsError
from bps.job_values import JOB_FIELDS, convert_job_value, job_resources
from bps.plugin_registry import load_service_class
from bps.wms import WmsSettings
from bps.workflow import JobResources

__all__ = [
    "JOB_PLACEHOLDERS",
    "MISSING",
    "BpsConfig",
    "ClusterSpec",
    "FinalJobSettings",
    "PayloadSettings",
    "SubmitSettings",
    "ValueSource",
    "bps_defaults_path",
    "load_bps_config",
]

_LOG = logging.getLogger(__name__)


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""Default of `BpsConfig.get`: a key that no layer sets is an error."""

_BUILTIN_LAYER = "bps defined"
_Scope = tuple[str | None, str | None, str | None]


def bps_defaults_path() -> Path:
    """The packaged defaults, ``submit_templates/bps_defaults.yaml``."""
    return Path(submit_templates.__file__).parent / "bps_defaults.yaml"


@cache
def _bps_defaults() -> dict[str, Any]:
    return load_yaml(bps_defaults_path())


def load_bps_config(path: Path | str, overrides: Mapping[str, object] | None = None) -> BpsConfig:
    """Load a submit YAML with its includes, the engine's and the packaged defaults.

    ``overrides`` are command-line values by camelCase key (None values are ignored). Raises
    `BpsConfigError` naming the file and key for syntax errors, unknown keys, wrong types,
    undefined or cyclic variables and missing include files.
    """
    path = Path(path)
    command_line = {key: value for key, value in (overrides or {}).items() if value is not None}
    for key in command_line:
        if key not in TOP_KEYS:
            raise BpsConfigError(f"command line: {key}: unknown key{did_you_mean(key, TOP_KEYS) or '.'}")
    layers = load_layers(path)
    defaults = Layer("bps defaults", bps_defaults_path(), _bps_defaults())
    probe = BpsConfig(path, Layer("command line", None, command_line), [*layers, defaults])
    engine = str(probe.get("wmsServiceClass"))
    plugin_layers = _plugin_layers(engine)
    all_layers = [*layers, *plugin_layers, defaults]
    validate_layers(all_layers, referenced_names(all_layers))
    _check_job_value_types(all_layers)
    config = BpsConfig(path, Layer("command line", None, command_line), all_layers)
    config._finish()
    return config


def _plugin_layers(engine: str) -> list[Layer]:
    """The engine's defaults file as a layer; nothing when the engine cannot be loaded (yet)."""
    try:
        service = load_service_class(engine)
    except BpsError as err:
        _LOG.debug("No engine defaults for %r: %s", engine, err)
        return []
    if service.defaults_file is None:
        return []
    name = getattr(service, "name", engine)
    return [Layer(f"plugin defaults ({name})", service.defaults_file, load_yaml(service.defaults_file))]


def _check_job_value_types(layers: list[Layer]) -> None:
    """Check job keys whose values are literal (no variables) in every layer and section."""
    for layer in layers:
        places: list[tuple[str, Mapping[str, Any]]] = [(layer.name, layer.top)]
        for kind in ("cluster", "pipetask", "site"):
            places.extend((f"{kind}.{name}", layer.section(kind, name)) for name in layer.section(kind))
        places.append(("finalJob", layer.section("finalJob")))
        for place, values in places:
            for key in JOB_FIELDS.keys() & values.keys():
                raw = values[key]
                if not (isinstance(raw, str) and ("{" in raw or "$" in raw)):
                    convert_job_value(key, raw, ValueSource(raw, place, layer.file))


class BpsConfig:
    """A loaded submit config (frozen: values are looked up, never set)."""

    def __init__(self, path: Path, command_line: Layer, layers: list[Layer]) -> None:
        self.path = path.resolve()
        """The submit YAML."""
        self._command_line = command_line
        self._layers = tuple(layers)
        self._builtins: dict[str, object] = {
            "operator": _login_name(),
            "timestamp": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "uniqProcName": "{outputRun}",
        }
        self._cache: dict[tuple[str, _Scope], tuple[object, ValueSource] | None] = {}
        self._resources: dict[tuple[str | None, tuple[tuple[str, int], ...], str | None], JobResources] = {}
        self._expanding: list[str] = []
        self._compute_site: str | None = None
        self._settings: SubmitSettings | None = None
        self._clusters: Mapping[str, ClusterSpec] = {}

    def _finish(self) -> SubmitSettings:
        """Resolve ``computeSite``, validate the typed settings and the clusters, then freeze."""
        site = self.resolve("computeSite", site="")
        self._compute_site = format_scalar(site[0]) if site is not None else None
        self._settings = settings = build_submit_settings(self)
        self._clusters = build_cluster_specs(self)
        self._frozen = True
        return settings

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"BpsConfig is frozen; cannot set {name}")
        super().__setattr__(name, value)

    # -- typed views -------------------------------------------------------------------------

    @property
    def settings(self) -> SubmitSettings:
        """The typed top-level settings."""
        return self._settings if self._settings is not None else self._finish()

    @property
    def clusters(self) -> Mapping[str, ClusterSpec]:
        """The ``cluster:`` definitions by name."""
        return self._clusters

    @property
    def compute_site(self) -> str | None:
        """The ``computeSite`` whose ``site.<name>`` section is searched by default."""
        return self._compute_site

    # -- lookups -----------------------------------------------------------------------------

    def sources(
        self, key: str, *, cluster: str | None = None, pipetask: str | None = None, site: str | None = None
    ) -> Iterator[ValueSource]:
        """Every layer that sets ``key`` in this scope, in lookup order (raw values)."""
        if key in self._command_line.top:
            yield ValueSource(self._command_line.top[key], "command line", None)
        for kind, name in (("cluster", cluster), ("pipetask", pipetask)):
            if name is None:
                continue
            layer_name = "finalJob" if name == "finalJob" else f"{kind}.{name}"
            for layer in self._layers:
                section = layer.section("finalJob") if name == "finalJob" else layer.section(kind, name)
                if key in section:
                    yield ValueSource(section[key], layer_name, layer.file)
        site_name = self._compute_site if site is None else site
        if site_name:
            for layer in self._layers:
                section = layer.section("site", site_name)
                if key in section:
                    yield ValueSource(section[key], f"site.{site_name}", layer.file)
        for layer in self._layers:
            if key in layer.top:
                yield ValueSource(layer.top[key], layer.name, layer.file)
        if key in self._builtins:
            yield ValueSource(self._builtins[key], _BUILTIN_LAYER, None)

    def explain(
        self, key: str, *, cluster: str | None = None, pipetask: str | None = None, site: str | None = None
    ) -> list[ValueSource]:
        """Every layer that sets ``key`` (raw values), the winner first."""
        return list(self.sources(key, cluster=cluster, pipetask=pipetask, site=site))

    def resolve(
        self, key: str, *, cluster: str | None = None, pipetask: str | None = None, site: str | None = None
    ) -> tuple[object, ValueSource] | None:
        """The expanded winning value and its source, or None when no layer sets ``key``.

        ``site=""`` searches no site section.
        """
        scope = (cluster, pipetask, site)
        cache_key = (key, scope)
        if cache_key in self._cache:
            return self._cache[cache_key]
        source = next(self.sources(key, cluster=cluster, pipetask=pipetask, site=site), None)
        if source is None:
            self._cache[cache_key] = None
            return None
        value = self._normalize(key, self.expand(source.value, key, source, scope))
        self._cache[cache_key] = (value, source)
        return value, source

    def expand(self, raw: object, key: str, source: ValueSource, scope: _Scope) -> object:
        """Expand ``{var}`` and ``${ENV}`` in ``raw`` (the value of ``key`` from ``source``)."""
        if key in self._expanding:
            chain = " -> ".join(f"{{{name}}}" for name in self._expanding[self._expanding.index(key) :])
            raise BpsConfigError(f"{_where(source)}{key}: variable cycle {chain} -> {{{key}}}.")
        self._expanding.append(key)
        try:
            value = expand_value(raw, lambda name: self._variable(name, key, source, scope), JOB_PLACEHOLDERS)
        finally:
            self._expanding.pop()
        if isinstance(raw, str) and isinstance(value, str) and raw == raw.rstrip():
            value = value.rstrip()  # an empty trailing {extraRunQuantumOptions} leaves no blank
        if key == "uniqProcName" and source.layer == _BUILTIN_LAYER:
            value = format_scalar(value).replace("/", "_")
        return value

    def _variable(self, name: str, user: str, source: ValueSource, scope: _Scope) -> object:
        found = self.resolve(name, cluster=scope[0], pipetask=scope[1], site=scope[2])
        if found is None and name in TOP_KEYS:
            hint = f"payload.{name}" if name in PAYLOAD_KEYS else name
            raise BpsConfigError(
                f"{self.path}: {source.key_path(user)} ({_origin(source)}) uses {{{name}}}, but no layer "
                f"sets {name}; set {hint} in the submit file or on the command line."
            )
        if found is None:
            known = {k for layer in self._layers for k in layer.top} | set(self._builtins)
            hint = did_you_mean(name, known)
            raise BpsConfigError(
                f"{_where(source)}{source.key_path(user)}: undefined variable {{{name}}}{hint or '.'}"
            )
        return found[0]

    @staticmethod
    def _normalize(key: str, value: object) -> object:
        if isinstance(value, str):
            if key == "wmsServiceClass":
                return short_wms_name(value)
            if key == "clusterAlgorithm":
                return short_cluster_algorithm(value)
            if key == "class":
                return short_site_class(value)
        return value

    def get(
        self,
        key: str,
        *,
        cluster: str | None = None,
        pipetask: str | None = None,
        site: str | None = None,
        default: object = MISSING,
    ) -> object:
        """The value of ``key`` in this scope, expanded (job placeholders stay literal).

        Sections (``payload``, ``site``, ``environment``, ...) are returned merged across layers.
        Raises `BpsConfigError` when no layer sets ``key`` and no ``default`` is given.
        """
        if key in SECTION_KEYS and key != "environment":
            return self.section(key)
        if key == "environment":
            return self.environment(cluster=cluster, pipetask=pipetask, site=site)
        found = self.resolve(key, cluster=cluster, pipetask=pipetask, site=site)
        if found is not None:
            return found[0]
        if default is MISSING:
            raise BpsConfigError(f"{self.path}: {key}: not set in any layer.")
        return default

    def section(self, kind: str, name: str | None = None) -> dict[str, Any]:
        """A section merged across files (higher files win key by key), raw (not expanded)."""
        merged: dict[str, Any] = {}
        for layer in reversed(self._layers):
            _deep_update(merged, layer.section(kind, name))
        return merged

    def command(self, key: str, *, cluster: str | None = None, pipetask: str | None = None) -> str:
        """A command line template (``runQuantumCommand``, ``createQuantumGraph``, ``command1``).

        Fully expanded except the job placeholders (``{qgraphNodeId}``) and ``<FILE:name>`` markers.
        """
        value = self.get(key, cluster=cluster, pipetask=pipetask)
        if not isinstance(value, str):
            source = next(self.sources(key, cluster=cluster, pipetask=pipetask))
            raise BpsConfigError(f"{_where(source)}{key}: expected a command line, got {value!r}.")
        return re.sub(r"[ \t]{2,}", " ", value.strip())

    def environment(
        self, *, cluster: str | None = None, pipetask: str | None = None, site: str | None = None
    ) -> dict[str, str]:
        """The ``environment:`` variables for a job: all scopes merged (higher scopes win), expanded."""
        result: dict[str, str] = {}
        scope = (cluster, pipetask, site)
        for source in reversed(self.explain("environment", cluster=cluster, pipetask=pipetask, site=site)):
            if not isinstance(source.value, Mapping):
                raise BpsConfigError(
                    f"{_where(source)}environment: expected a mapping, got {source.value!r}."
                )
            for name, raw in source.value.items():
                value = self.expand(raw, f"environment.{name}", source, scope)
                result[str(name)] = format_scalar(value)
        return result

    def job_resources(
        self, *, cluster: str | None, label_counts: Mapping[str, int], site: str | None = None
    ) -> JobResources:
        """Resources of a job of ``cluster`` (or None) running ``label_counts`` quanta per task label.

        Use ``label_counts={"pipetaskInit": 1}`` for the init job and ``cluster="finalJob"`` for the
        final job. See `bps.job_values` for how values of several labels combine.
        """
        key = (cluster, tuple(sorted(label_counts.items())), site)
        found = self._resources.get(key)
        if found is None:
            found = self._resources[key] = job_resources(
                self, cluster=cluster, label_counts=label_counts, site=site
            )
        return found

    def engine_settings(self, settings_class: type[WmsSettings]) -> WmsSettings:
        """The ``site.<computeSite>`` section, minus job keys, validated into the engine's settings."""
        site = self._compute_site or ""
        raw: dict[str, tuple[object, ValueSource]] = {}
        for layer in reversed(self._layers):
            for key, value in layer.section("site", site).items():
                raw[key] = (value, ValueSource(value, f"site.{site}", layer.file))
        if not any(site in layer.section("site") for layer in self._layers):
            known = sorted({name for layer in self._layers for name in layer.section("site")})
            raise BpsConfigError(
                f"{self.path}: computeSite: no site.{site} section (sites: {', '.join(known) or 'none'})."
            )
        values = {
            key: self._normalize(key, self.expand(value, key, source, (None, None, site)))
            for key, (value, source) in raw.items()
            if key not in JOB_SECTION_KEYS
        }
        return validate_engine_settings(settings_class, values, {k: s for k, (_, s) in raw.items()}, site)

    # -- dumps -------------------------------------------------------------------------------

    def items(self) -> Iterator[tuple[str, object, ValueSource]]:
        """Every resolved leaf as (dotted key path, expanded value, source), sections flattened."""
        tops = {k for layer in (self._command_line, *self._layers) for k in layer.top} | set(self._builtins)
        for key in sorted(tops - SECTION_KEYS - PAYLOAD_KEYS):
            yield from self._item(key, key, (None, None, None))
        for key in sorted(PAYLOAD_KEYS & tops):
            yield from self._item(f"payload.{key}", key, (None, None, None))
        for name in sorted(self.section("finalJob")):
            yield from self._item(f"finalJob.{name}", name, ("finalJob", None, ""))
        for kind in ("cluster", "pipetask", "site"):
            for section in sorted(self.section(kind)):
                for name in sorted(self.section(kind, section)):
                    scope: _Scope = {
                        "cluster": (section, None, ""),
                        "pipetask": (None, section, ""),
                        "site": (None, None, section),
                    }[kind]
                    yield from self._item(f"{kind}.{section}.{name}", name, scope)
        for name, value in sorted(self.environment().items()):
            source = next(s for s in self.explain("environment") if name in s.value)  # type: ignore[operator]
            yield f"environment.{name}", value, source

    def _item(self, path: str, key: str, scope: _Scope) -> Iterator[tuple[str, object, ValueSource]]:
        try:
            found = self.resolve(key, cluster=scope[0], pipetask=scope[1], site=scope[2])
        except BpsConfigError as err:
            # A template that needs an unset key (createQuantumGraph without pipelineYaml when a
            # qgraphFile is given) stays as written; using it raises the error.
            _LOG.debug("%s kept unexpanded: %s", path, err)
            source = next(self.sources(key, cluster=scope[0], pipetask=scope[1], site=scope[2]))
            found = (source.value, source)
        if found is not None:
            yield path, found[0], found[1]

    def dump_yaml(self) -> str:
        """The fully resolved config as YAML (saved in the submit directory); loads back unchanged."""
        tree: dict[str, Any] = {}
        for path, value, _ in self.items():
            if path == "includeConfigs":
                continue
            node = tree
            *parents, leaf = _split_path(path)
            for part in parents:
                node = node.setdefault(part, {})
            node[leaf] = _escape_braces(value)
        return yaml.safe_dump(tree, sort_keys=False, default_flow_style=False, width=1000)


def _escape_braces(value: object) -> object:
    """Resolved text with literal braces written as ``{{``/``}}`` again (placeholders kept)."""
    if isinstance(value, list):
        return [_escape_braces(item) for item in value]
    if not isinstance(value, str) or ("{" not in value and "}" not in value):
        return value
    text = value.replace("{", "{{").replace("}", "}}")
    for name in JOB_PLACEHOLDERS:
        text = text.replace(f"{{{{{name}}}}}", f"{{{name}}}")
    return text


def _split_path(path: str) -> list[str]:
    head, _, rest = path.partition(".")
    if head in {"cluster", "pipetask", "site"} and rest:
        name, _, leaf = rest.rpartition(".")
        return [head, name, leaf]
    return [head, rest] if rest else [head]


def _deep_update(target: dict[str, Any], update: Mapping[str, Any]) -> None:
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _deep_update(target[key], value)
        else:
            target[key] = dict(value) if isinstance(value, Mapping) else value


def _where(source: ValueSource) -> str:
    return f"{source.file}: " if source.file is not None else f"{source.layer}: "


def _origin(source: ValueSource) -> str:
    return source.layer if source.file is None else f"{source.layer}, {source.file.name}"


def _login_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return os.environ.get("USER", "unknown")
