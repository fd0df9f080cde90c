"""Instruments: what a camera registers in a repository, how its raw headers translate into records, and where its collections live.

An `Instrument` subclass describes one camera to the data layer. Raw ingest (`graph.raw_ingest`)
asks it to translate headers, visit definition (`graph.visits`) asks it for detector footprints,
and ``butler register-instrument`` / ``write-curated-calibrations`` call `Instrument.register` and
`Instrument.write_curated_calibrations`. Instruments are plugins: they are found by short name
through the ``quanta.instruments`` entry-point group, or by dotted class path.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, ClassVar

from lsst import sphgeom

from butler import ChainMode, CollectionType, DatasetRef, DatasetType, Registry, Timespan
from butler.errors import ButlerError

from .errors import InstrumentError, UnknownInstrumentError

if TYPE_CHECKING:
    from butler.butler import Butler

__all__ = [
    "INSTRUMENT_ENTRY_POINTS",
    "CuratedCalibration",
    "DetectorInfo",
    "Instrument",
    "ObservationInfo",
    "installed_instruments",
]

_LOG = logging.getLogger(__name__)

INSTRUMENT_ENTRY_POINTS = "quanta.instruments"
"""Entry-point group under which packages register `Instrument` subclasses by short name."""


@dataclass(frozen=True, slots=True)
class DetectorInfo:
    """One detector as the registry records it."""

    id: int
    """Detector id (the ``detector`` data ID value)."""
    full_name: str
    """Human-readable name."""
    purpose: str = "SCIENCE"
    """SCIENCE, WAVEFRONT, GUIDER, ..."""


@dataclass(frozen=True, slots=True)
class ObservationInfo:
    """What one raw file's header says, in registry terms (one detector of one exposure)."""

    instrument: str
    """Instrument name."""
    exposure: int
    """Exposure id."""
    detector: int
    """Detector id."""
    obs_id: str
    """The instrument's own name for the exposure."""
    physical_filter: str
    """Physical filter name."""
    day_obs: int
    """Observing night, YYYYMMDD."""
    begin: datetime
    """Shutter open, aware UTC datetime."""
    end: datetime
    """Shutter close, aware UTC datetime."""
    exposure_time: float
    """Shutter-open time, seconds."""
    observation_type: str
    """science, bias, flat, ..."""
    science_program: str
    """Observing program."""
    zenith_angle: float
    """Zenith angle at mid-exposure, degrees."""
    tracking_ra: float
    """Boresight right ascension, degrees (ICRS)."""
    tracking_dec: float
    """Boresight declination, degrees (ICRS)."""
    sky_angle: float
    """Position angle of the focal-plane y axis east of north, degrees."""

    @property
    def data_id(self) -> dict[str, Any]:
        """The raw dataset's data ID (instrument, exposure, detector)."""
        return {"instrument": self.instrument, "exposure": self.exposure, "detector": self.detector}

    @property
    def timespan(self) -> Timespan:
        """[shutter open, shutter close)."""
        return Timespan.from_datetimes(self.begin, self.end)

    def exposure_record(self) -> dict[str, Any]:
        """The ``exposure`` dimension record this file implies."""
        return {
            "instrument": self.instrument,
            "id": self.exposure,
            "physical_filter": self.physical_filter,
            "day_obs": self.day_obs,
            "timespan": self.timespan,
            "obs_id": self.obs_id,
            "exposure_time": self.exposure_time,
            "observation_type": self.observation_type,
            "science_program": self.science_program,
            "zenith_angle": self.zenith_angle,
            "tracking_ra": self.tracking_ra,
            "tracking_dec": self.tracking_dec,
            "sky_angle": self.sky_angle,
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-able mapping (times as ISO strings); inverse of `from_json`."""
        values = dataclasses.asdict(self)
        values["begin"] = self.begin.isoformat()
        values["end"] = self.end.isoformat()
        return values

    @classmethod
    def from_json(cls, values: Mapping[str, Any]) -> ObservationInfo:
        """Rebuild from `to_json` output; `KeyError`/`TypeError`/`ValueError` if it does not fit."""
        fields = {f.name for f in dataclasses.fields(cls)}
        if set(values) != fields:
            raise KeyError(f"expected fields {sorted(fields)}, got {sorted(values)}")
        data = dict(values)
        data["begin"] = datetime.fromisoformat(data["begin"])
        data["end"] = datetime.fromisoformat(data["end"])
        return cls(**data)


def installed_instruments() -> dict[str, str]:
    """Short name -> entry-point target (``module:Class``) of every installed instrument."""
    return {ep.name: ep.value for ep in entry_points(group=INSTRUMENT_ENTRY_POINTS)}


class Instrument(ABC):
    """A camera as the data layer sees it.

    Subclasses give the name, filters and detectors (class attributes and properties), translate
    raw headers (`translate_header`), place detectors on the sky (`detector_corners`) and make
    their curated calibrations (`curated_calibrations`). Everything else — registration, dataset
    types, collection names, writing and certifying calibrations — is shared.
    """

    name: ClassVar[str]
    """Instrument name in data IDs and collection names."""

    raw_dataset_type_name: ClassVar[str] = "raw"
    """Name of the dataset type raw files are ingested as."""

    day_obs_offset: ClassVar[timedelta] = timedelta(hours=-12)
    """Offset from UTC that defines the observing day (day_obs changes at UTC - offset)."""

    detector_max: ClassVar[int]
    """One more than the largest detector id."""

    exposure_max: ClassVar[int]
    """One more than the largest exposure id (visit ids share it)."""

    translation_version: ClassVar[int] = 1
    """Bump when `translate_header` changes, so cached translations (raw ingest's sidecar index) are redone."""

    extra_default_collections: ClassVar[tuple[str, ...]] = ()
    """RUN collections appended to the defaults chain after raws and calibrations (e.g. refcats)."""

    # -- loading ----------------------------------------------------------------------------------

    @staticmethod
    def from_name(name: str) -> Instrument:
        """The instrument registered under ``name`` (entry point) or at dotted class path ``name``.

        Raises `UnknownInstrumentError` listing the installed instruments (with close matches)
        when nothing matches, and `InstrumentError` when the class cannot be loaded.
        """
        installed = {ep.name: ep for ep in entry_points(group=INSTRUMENT_ENTRY_POINTS)}
        if name in installed:
            try:
                cls = installed[name].load()
            except Exception as err:
                raise InstrumentError(
                    f"Cannot load instrument {name!r} from {installed[name].value}: {err}"
                ) from err
            return _instantiate(cls, installed[name].value)
        if "." in name:
            module_name, _, class_name = name.rpartition(".")
            try:
                module = importlib.import_module(module_name)
            except ImportError as err:
                raise UnknownInstrumentError(
                    f"Cannot import module {module_name!r} of instrument class {name!r}: {err}"
                ) from err
            try:
                cls = getattr(module, class_name)
            except AttributeError:
                raise UnknownInstrumentError(
                    f"Module {module_name!r} has no instrument class {class_name!r}."
                ) from None
            return _instantiate(cls, name)
        message = f"Unknown instrument {name!r}."
        close = difflib.get_close_matches(name, list(installed), n=3)
        if close:
            message += f" Did you mean {', '.join(repr(c) for c in close)}?"
        message += (
            f" Installed instruments: {', '.join(sorted(installed)) or 'none'}"
            " (or give a dotted class path, e.g. graph.demo.instrument.DemoCam)."
        )
        raise UnknownInstrumentError(message)

    @classmethod
    def class_path(cls) -> str:
        """Dotted import path of this class (stored in the instrument record)."""
        return f"{cls.__module__}.{cls.__qualname__}"

    # -- what the camera is -----------------------------------------------------------------------

    @property
    @abstractmethod
    def physical_filters(self) -> Mapping[str, str]:
        """Physical filter name -> band."""

    @property
    @abstractmethod
    def detectors(self) -> Sequence[DetectorInfo]:
        """Every detector, by id."""

    @property
    def bands(self) -> tuple[str, ...]:
        """The bands of the physical filters, without repeats, in filter order."""
        return tuple(dict.fromkeys(self.physical_filters.values()))

    # -- collections --------------------------------------------------------------------------------

    @property
    def raw_run(self) -> str:
        """RUN collection raws are ingested into by default: ``<name>/raw/all``."""
        return f"{self.name}/raw/all"

    @property
    def calibration_collection(self) -> str:
        """CALIBRATION collection calibrations are certified into: ``<name>/calib``."""
        return f"{self.name}/calib"

    def curated_calibration_run(self, valid_from: datetime) -> str:
        """RUN collection of curated calibrations valid from a time: ``<name>/calib/curated/<YYYYMMDDTHHMMSSZ>``."""
        return f"{self.name}/calib/curated/{valid_from.astimezone(UTC):%Y%m%dT%H%M%SZ}"

    @property
    def defaults_collection(self) -> str:
        """CHAINED collection of everything a pipeline needs to start: ``<name>/defaults``."""
        return f"{self.name}/defaults"

    @property
    def defaults_chain(self) -> tuple[str, ...]:
        """Children of `defaults_collection`, in search order."""
        return (self.raw_run, self.calibration_collection, *self.extra_default_collections)

    # -- dataset types -----------------------------------------------------------------------------

    @property
    def raw_dataset_type(self) -> DatasetType:
        """The dataset type of raw files: (instrument, exposure, detector), storage class Image."""
        return DatasetType(self.raw_dataset_type_name, ("instrument", "exposure", "detector"), "Image")

    @property
    def calibration_dataset_types(self) -> tuple[DatasetType, ...]:
        """Dataset types of the curated calibrations (none by default)."""
        return ()

    # -- registering -------------------------------------------------------------------------------

    def register(self, registry: Registry) -> int:
        """Insert the instrument, band, physical_filter and detector records; returns how many were new.

        Idempotent: records that exist with the same values are left alone. A record that exists
        with other values (e.g. a detector renamed) raises `InstrumentError` naming the difference.
        """
        instrument_record = {
            "name": self.name,
            "class_name": self.class_path(),
            "detector_max": self.detector_max,
            "visit_max": self.exposure_max,
            "exposure_max": self.exposure_max,
        }
        new = 0
        try:
            with registry.transaction():
                new += sum(registry.sync_dimension_records("instrument", [instrument_record]))
                new += sum(registry.sync_dimension_records("band", [{"name": b} for b in self.bands]))
                new += sum(
                    registry.sync_dimension_records(
                        "physical_filter",
                        [
                            {"instrument": self.name, "name": f, "band": b}
                            for f, b in self.physical_filters.items()
                        ],
                    )
                )
                new += sum(
                    registry.sync_dimension_records(
                        "detector",
                        [
                            {
                                "instrument": self.name,
                                "id": d.id,
                                "full_name": d.full_name,
                                "purpose": d.purpose,
                            }
                            for d in self.detectors
                        ],
                    )
                )
                registry.register_dataset_type(self.raw_dataset_type)
        except ButlerError as err:
            raise InstrumentError(f"Cannot register instrument {self.name}: {err}") from err
        _LOG.info("Registered instrument %s (%d new records).", self.name, new)
        return new

    def check_registered(self, registry: Registry) -> None:
        """Raise `InstrumentError` unless `register` has been run on this registry."""
        if not registry.query_dimension_records("instrument", data_id={"instrument": self.name}):
            raise InstrumentError(
                f"Instrument {self.name} is not registered in {registry.db_url}; run "
                f"'butler register-instrument REPO {self.name}' first."
            )

    def day_obs_timespan(self, day_obs: int) -> Timespan:
        """The observing day ``day_obs`` (YYYYMMDD) as a UTC interval, shifted by `day_obs_offset`."""
        day = date(day_obs // 10000, day_obs // 100 % 100, day_obs % 100)
        begin = datetime(day.year, day.month, day.day, tzinfo=UTC) - self.day_obs_offset
        return Timespan.from_datetimes(begin, begin + timedelta(days=1))

    def day_obs_record(self, day_obs: int) -> dict[str, Any]:
        """The ``day_obs`` dimension record of one observing day."""
        return {"instrument": self.name, "id": day_obs, "timespan": self.day_obs_timespan(day_obs)}

    def register_default_collections(self, registry: Registry) -> tuple[str, ...]:
        """Create the raw RUN, the CALIBRATION collection, the extra RUNs and the defaults CHAINED collection.

        Idempotent. An existing defaults chain keeps its children; missing ones are appended.
        Returns the chain's children.
        """
        with registry.transaction():
            registry.register_run(self.raw_run)
            registry.register_collection(self.calibration_collection, CollectionType.CALIBRATION)
            for run in self.extra_default_collections:
                if not registry.has_collection(run):
                    registry.register_run(run)
            registry.register_collection(self.defaults_collection, CollectionType.CHAINED)
            present = registry.get_collection_chain(self.defaults_collection)
            missing = [c for c in self.defaults_chain if c not in present]
            if missing:
                return registry.update_collection_chain(self.defaults_collection, missing, ChainMode.EXTEND)
            return present

    # -- raws ---------------------------------------------------------------------------------------

    @abstractmethod
    def translate_header(self, header: Mapping[str, Any], source: str = "header") -> ObservationInfo:
        """What a raw file's primary header says; `RawIngestError` naming ``source`` (the file) and the bad key."""

    # -- geometry ------------------------------------------------------------------------------------

    @abstractmethod
    def detector_corners(
        self, tracking_ra: float, tracking_dec: float, sky_angle: float, detector: int
    ) -> list[tuple[float, float]]:
        """(RA, Dec) in degrees of a detector's corners for a pointing (boresight and sky angle, degrees)."""

    def visit_detector_region(
        self, tracking_ra: float, tracking_dec: float, sky_angle: float, detector: int
    ) -> sphgeom.ConvexPolygon:
        """The sky region one detector covers for a pointing: the convex hull of its corners."""
        return _hull(self.detector_corners(tracking_ra, tracking_dec, sky_angle, detector))

    def visit_region(
        self, tracking_ra: float, tracking_dec: float, sky_angle: float
    ) -> sphgeom.ConvexPolygon:
        """The sky region the whole focal plane covers: the convex hull of every detector's corners."""
        corners = [
            corner
            for d in self.detectors
            for corner in self.detector_corners(tracking_ra, tracking_dec, sky_angle, d.id)
        ]
        return _hull(corners)

    # -- calibrations --------------------------------------------------------------------------------

    def curated_calibrations(self) -> list[CuratedCalibration]:
        """The calibrations that come with the instrument (none by default)."""
        return []

    def write_curated_calibrations(self, butler: Butler, collection: str | None = None) -> list[DatasetRef]:
        """Store the curated calibrations and certify them; returns the refs written now.

        Each calibration goes into RUN `curated_calibration_run` of its validity start and is
        certified into ``collection`` (default `calibration_collection`) over its validity range.
        Also registers the calibration dataset types and the default collections (see
        `register_default_collections`). Idempotent: calibrations already in their run are skipped.
        """
        self.check_registered(butler.registry)
        target = collection or self.calibration_collection
        registry = butler.registry
        written: list[DatasetRef] = []
        try:
            for dataset_type in self.calibration_dataset_types:
                registry.register_dataset_type(dataset_type)
            self.register_default_collections(registry)
            registry.register_collection(target, CollectionType.CALIBRATION)
            by_run: dict[str, list[CuratedCalibration]] = {}
            for calib in self.curated_calibrations():
                by_run.setdefault(self.curated_calibration_run(calib.valid_from), []).append(calib)
            for run, calibs in by_run.items():
                registry.register_run(run, doc=f"Curated calibrations of {self.name}.")
                existing = {
                    (ref.dataset_type.name, tuple(sorted(ref.data_id.required.items())))
                    for dataset_type in {c.dataset_type for c in calibs}
                    for ref in registry.query_datasets(dataset_type, run)
                }
                for calib in calibs:
                    key = (calib.dataset_type, tuple(sorted(_required(registry, calib).items())))
                    if key in existing:
                        continue
                    with registry.transaction():
                        ref = butler.put(calib.image, calib.dataset_type, calib.data_id, run=run)
                        registry.certify(target, [ref], calib.timespan)
                    written.append(ref)
        except ButlerError as err:
            raise InstrumentError(f"Cannot write the curated calibrations of {self.name}: {err}") from err
        _LOG.info(
            "Wrote and certified %d curated calibration(s) of %s into %s.", len(written), self.name, target
        )
        return written


@dataclass(frozen=True, slots=True)
class CuratedCalibration:
    """One calibration dataset that comes with an instrument."""

    dataset_type: str
    """Dataset type name (one of `Instrument.calibration_dataset_types`)."""
    data_id: Mapping[str, Any]
    """Its data ID (without the validity)."""
    valid_from: datetime
    """Start of validity (aware UTC)."""
    valid_to: datetime | None
    """End of validity (exclusive, aware UTC); None means forever."""
    image: Any
    """The dataset itself (an object of the dataset type's storage class)."""

    @property
    def timespan(self) -> Timespan:
        """[valid_from, valid_to)."""
        return Timespan.from_datetimes(self.valid_from, self.valid_to)


def _required(registry: Registry, calib: CuratedCalibration) -> dict[str, Any]:
    dimensions = registry.get_dataset_type(calib.dataset_type).dimensions
    return {k: calib.data_id[k] for k in dimensions.required}


def _hull(corners: Sequence[tuple[float, float]]) -> sphgeom.ConvexPolygon:
    vectors = [sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra, dec)) for ra, dec in corners]
    return sphgeom.ConvexPolygon.convexHull(vectors)


def _instantiate(cls: Any, where: str) -> Instrument:
    if not (isinstance(cls, type) and issubclass(cls, Instrument)):
        raise InstrumentError(f"{where} is not an Instrument subclass (got {cls!r}).")
    try:
        return cls()
    except TypeError as err:
        raise InstrumentError(f"Cannot create instrument {where}: {err}") from err
