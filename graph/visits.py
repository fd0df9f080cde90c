"""Visit definition: group ingested science exposures into visits, with the sky regions that spatial queries and coadds use.

Each science exposure becomes a one-exposure visit with the same id. The visit's record (filter,
night, timespan, exposure time, program, zenith angle, region), its ``visit_definition`` row and one
``visit_detector_region`` per detector are synced in one transaction; the regions come from the
exposure's boresight and sky angle through the instrument's camera geometry. Running it again
defines nothing new.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from butler.butler import Butler
from butler.data_coordinate import DimensionRecord
from butler.errors import ButlerError
from butler.timing import log_duration

from .errors import InstrumentError
from .instrument import Instrument

__all__ = ["define_visits", "visit_records"]

_LOG = logging.getLogger(__name__)

SCIENCE = "science"
"""``observation_type`` of the exposures that become visits."""


def define_visits(
    butler: Butler,
    instrument: str | Instrument,
    *,
    collections: str | Sequence[str] | None = None,
    where: str | None = None,
) -> list[int]:
    """Define a visit for every science exposure of an instrument that has none yet.

    Parameters
    ----------
    butler
        The repository.
    instrument
        The instrument, or its name or class path (see `Instrument.from_name`); it must be registered.
    collections
        Only exposures with a raw dataset in these collections [default: every exposure record].
    where
        A WHERE expression further selecting exposures, e.g. ``"exposure.day_obs = 20251230"``.

    Returns
    -------
    visits
        Ids of the visits defined now, sorted (empty when every selected exposure already had one).
    """
    if not isinstance(instrument, Instrument):
        instrument = Instrument.from_name(instrument)
    registry = butler.registry
    instrument.check_registered(registry)
    exposures = _science_exposures(butler, instrument, collections, where)
    visits, definitions, detector_regions = visit_records(instrument, exposures)
    try:
        with registry.transaction(), log_duration(_LOG, f"Defined visits for {len(exposures)} exposure(s)"):
            inserted = registry.sync_dimension_records("visit", visits)
            registry.sync_dimension_records("visit_definition", definitions)
            registry.sync_dimension_records("visit_detector_region", detector_regions)
    except ButlerError as err:
        raise InstrumentError(f"Cannot define the visits of {instrument.name}: {err}") from err
    new = sorted(record["id"] for record, fresh in zip(visits, inserted, strict=True) if fresh)
    _LOG.info(
        "Defined %d new visit(s) of %s (%d science exposure(s) selected).",
        len(new),
        instrument.name,
        len(exposures),
    )
    return new


def _science_exposures(
    butler: Butler, instrument: Instrument, collections: str | Sequence[str] | None, where: str | None
) -> list[DimensionRecord]:
    registry = butler.registry
    condition = f"exposure.observation_type = '{SCIENCE}'"
    if where:
        condition += f" AND ({where})"
    data_id = {"instrument": instrument.name}
    try:
        records = registry.query_dimension_records("exposure", where=condition, data_id=data_id)
        if collections is not None:
            with_raws = {
                coordinate["exposure"]
                for coordinate in registry.query_data_ids(
                    ["exposure"],
                    datasets=instrument.raw_dataset_type.name,
                    collections=collections,
                    where=condition,
                    data_id=data_id,
                )
            }
            records = [r for r in records if r.id in with_raws]
    except ButlerError as err:
        raise InstrumentError(
            f"Cannot select the exposures of {instrument.name} to define visits: {err}"
        ) from err
    return records


def visit_records(
    instrument: Instrument, exposures: Sequence[DimensionRecord]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The visit, visit_definition and visit_detector_region records of one-exposure visits.

    Visit ids equal exposure ids. Returns (visits, definitions, detector regions).
    """
    visits: list[dict[str, Any]] = []
    definitions: list[dict[str, Any]] = []
    regions: list[dict[str, Any]] = []
    for exposure in exposures:
        pointing = (exposure.tracking_ra, exposure.tracking_dec, exposure.sky_angle)
        if any(value is None for value in pointing):
            raise InstrumentError(
                f"Exposure {exposure.id} of {instrument.name} has no pointing (tracking_ra, tracking_dec, "
                "sky_angle); cannot place it on the sky."
            )
        visits.append(
            {
                "instrument": instrument.name,
                "id": exposure.id,
                "name": exposure.obs_id,
                "physical_filter": exposure.physical_filter,
                "day_obs": exposure.day_obs,
                "timespan": exposure.timespan,
                "exposure_time": exposure.exposure_time,
                "science_program": exposure.science_program,
                "zenith_angle": exposure.zenith_angle,
                "region": instrument.visit_region(*pointing),
            }
        )
        definitions.append({"instrument": instrument.name, "exposure": exposure.id, "visit": exposure.id})
        regions.extend(
            {
                "instrument": instrument.name,
                "visit": exposure.id,
                "detector": detector.id,
                "region": instrument.visit_detector_region(*pointing, detector.id),
            }
            for detector in instrument.detectors
        )
    return visits, definitions, regions
