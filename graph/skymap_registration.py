"""Sky maps in a repository: register a `RingsSkyMap` (records and config) and load it back."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from butler import ConflictingDefinitionError, DatasetType
from butler.butler import Butler, DatasetNotFoundError
from butler.errors import ButlerError
from butler.timing import log_duration

from .errors import SkyMapError
from .skymap import RingsSkyMap
from .skymap_config import RingsSkyMapConfig

__all__ = [
    "SKYMAP_DATASET_TYPE",
    "SKYMAP_RUN",
    "SKYMAP_STORAGE_CLASS",
    "SkyMapRegistration",
    "load_skymap",
    "register_skymap",
]

_LOG = logging.getLogger(__name__)


SKYMAP_DATASET_TYPE = "skyMap"
"""Dataset type holding a registered sky map's `RingsSkyMapConfig` (dimensions ``(skymap,)``)."""
SKYMAP_STORAGE_CLASS = "Config"
"""Storage class of `SKYMAP_DATASET_TYPE`: a pydantic model stored as YAML."""
SKYMAP_RUN = "skymaps"
"""RUN collection that `register_skymap` puts the sky map config into by default."""


@dataclass(frozen=True, slots=True)
class SkyMapRegistration:
    """What `register_skymap` did."""

    name: str
    """Sky map name (the ``skymap`` dimension value)."""
    hash: str
    """Hex digest of the sky map config, as stored in the skymap record."""
    collection: str
    """RUN collection holding the ``skyMap`` dataset."""
    inserted: bool
    """False when the same sky map was already registered under this name: nothing was written."""
    tract_ids: tuple[int, ...] = ()
    """Ids of the tract records written (empty when nothing was inserted)."""
    patches: int = 0
    """Number of patch records written."""


def register_skymap(
    butler: Butler, name: str, config: RingsSkyMapConfig | RingsSkyMap, *, collection: str = SKYMAP_RUN
) -> SkyMapRegistration:
    """Write a sky map into a repository: skymap, tract and patch records and the ``skyMap`` dataset.

    Only tracts and patches overlapping the config's ``ra_range``/``dec_range`` are written (all of
    them without a restriction); records carry outer regions, so visits are joined to every patch
    whose image they touch. Everything is written in one registry transaction. Registering the same
    config under the same name again writes nothing; a different config under a registered name
    raises `SkyMapError` naming the keys that differ.
    """
    skymap = config if isinstance(config, RingsSkyMap) else RingsSkyMap(config)
    registry = butler.registry
    existing = registry.query_dimension_records("skymap", data_id={"skymap": name})
    if existing:
        if existing[0].hash == skymap.hash:
            _LOG.info("Sky map %r is already registered with hash %s; nothing to do.", name, skymap.hash)
            return SkyMapRegistration(name, skymap.hash, collection, inserted=False)
        raise SkyMapError(_conflict_message(butler, name, existing[0].hash, skymap, collection))
    if skymap.restriction is None and skymap.num_tracts > 1000:
        _LOG.warning(
            "Sky map %r has no ra_range/dec_range: registering all %d tracts and every patch of each; "
            "restrict it to the survey area to register fewer.",
            name,
            skymap.num_tracts,
        )
    with log_duration(_LOG, f"Computed the tracts and patches of sky map {name!r}"):
        found = skymap.registered_patches()
        nx_max, ny_max = skymap.patch_count_max()
    tract_records = [{"skymap": name, "id": tract, "region": skymap.tract_region(tract)} for tract in found]
    patch_records = [
        {"skymap": name, "tract": tract, "id": patch, "cell_x": cell[0], "cell_y": cell[1], "region": polygon}
        for tract, patches in found.items()
        for patch, polygon in patches.items()
        for cell in [skymap.patch_cell(tract, patch)]
    ]
    skymap_record = {
        "name": name,
        "hash": skymap.hash,
        "tract_max": skymap.num_tracts,
        "patch_nx_max": nx_max,
        "patch_ny_max": ny_max,
    }
    dataset_type = DatasetType(
        SKYMAP_DATASET_TYPE, ["skymap"], SKYMAP_STORAGE_CLASS, universe=registry.universe
    )
    with registry.transaction(), log_duration(_LOG, f"Registered sky map {name!r}"):
        registry.register_run(collection)
        registry.register_dataset_type(dataset_type)
        try:
            inserted = registry.sync_dimension_records("skymap", [skymap_record])[0]
        except ConflictingDefinitionError as err:  # registered concurrently with another config
            raise SkyMapError(f"Sky map {name!r} was just registered with another definition: {err}") from err
        if not inserted:
            return SkyMapRegistration(name, skymap.hash, collection, inserted=False)
        registry.insert_dimension_records("tract", tract_records)
        registry.insert_dimension_records("patch", patch_records)
        butler.put(skymap.to_config(), SKYMAP_DATASET_TYPE, {"skymap": name}, run=collection)
    _LOG.info("Registered sky map %r: %d tracts, %d patches.", name, len(tract_records), len(patch_records))
    return SkyMapRegistration(name, skymap.hash, collection, True, tuple(found), len(patch_records))


def _conflict_message(
    butler: Butler, name: str, registered_hash: str, skymap: RingsSkyMap, collection: str
) -> str:
    """Why ``skymap`` cannot be registered as ``name``: the differing keys when the stored config is readable."""
    try:
        stored = butler.get(SKYMAP_DATASET_TYPE, {"skymap": name}, collections=[collection])
    except (ButlerError, SkyMapError):
        stored = None
    if isinstance(stored, RingsSkyMapConfig):
        new = skymap.config.model_dump()
        old = stored.model_dump()
        details = ", ".join(
            f"{key}: {old[key]!r} registered, {new[key]!r} given" for key in new if old[key] != new[key]
        )
    else:
        details = f"hash {registered_hash} registered, {skymap.hash} given"
    return (
        f"Sky map {name!r} is already registered with a different definition ({details}); register this one "
        "under another name, or use the registered definition."
    )


def load_skymap(
    source: Butler | RingsSkyMap | RingsSkyMapConfig | Mapping[str, Any],
    name: str | None = None,
    *,
    collections: str | Sequence[str] = SKYMAP_RUN,
) -> RingsSkyMap:
    """The sky map of a ``skyMap`` dataset object (what a task receives), a config, or a repository.

    With a `Butler`, ``name`` is the sky map to read from ``collections``.
    """
    if isinstance(source, RingsSkyMap):
        return source
    if isinstance(source, Butler):
        if name is None:
            raise SkyMapError("load_skymap needs the sky map name to read it from a repository.")
        try:
            source = _read_stored_config(source, name, collections)
        except DatasetNotFoundError as err:
            raise SkyMapError(
                f"No {SKYMAP_DATASET_TYPE} dataset for sky map {name!r} in {collections}; register it with "
                "'butler register-skymap'."
            ) from err
    return RingsSkyMap.from_config(source)


def _read_stored_config(butler: Butler, name: str, collections: str | Sequence[str]) -> RingsSkyMapConfig:
    """The stored config of sky map ``name``; `SkyMapError` if the dataset holds something else."""
    stored = butler.get(SKYMAP_DATASET_TYPE, {"skymap": name}, collections=collections)
    if not isinstance(stored, RingsSkyMapConfig):
        raise SkyMapError(
            f"The {SKYMAP_DATASET_TYPE} dataset of {name!r} holds a {type(stored).__name__}, not a RingsSkyMapConfig."
        )
    return stored
