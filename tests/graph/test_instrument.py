"""Instrument plugins: loading by name, registration, header translation, geometry and curated calibrations."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from databases import DatabaseLocation
from lsst import sphgeom

from butler import CollectionType, Registry
from butler.butler import Butler
from butler.repository import create_repository
from graph.demo import camera
from graph.demo.instrument import DemoCam
from graph.errors import InstrumentError, RawIngestError, UnknownInstrumentError
from graph.instrument import Instrument, ObservationInfo, installed_instruments


def header(**changes: Any) -> dict[str, Any]:
    """A valid DemoCam raw header (exposure 2025123000007, detector 2), with changes (None deletes)."""
    values: dict[str, Any] = {
        "INSTRUME": "DemoCam",
        "EXPID": 2025123000007,
        "OBSID": "DC_O_20251230_000007",
        "DETECTOR": 2,
        "DETNAME": "S10",
        "FILTER": "r_demo",
        "RA": 150.01,
        "DEC": 2.19,
        "ROTPA": 3.5,
        "DATE-BEG": "2025-12-31T03:00:37.000",
        "DATE-END": "2025-12-31T03:01:07.000",
        "EXPTIME": 30.0,
        "OBSTYPE": "science",
        "PROGRAM": "demo-survey",
        "ZENANGLE": 31.5,
        "DAYOBS": 20251230,
    }
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            del values[key]
        else:
            values[key] = value
    return values


# -- loading ---------------------------------------------------------------------------------------


def test_from_name_loads_the_entry_point_and_class_paths() -> None:
    assert installed_instruments()["DemoCam"] == "graph.demo.instrument:DemoCam"
    assert isinstance(Instrument.from_name("DemoCam"), DemoCam)
    assert isinstance(Instrument.from_name("graph.demo.instrument.DemoCam"), DemoCam)
    assert DemoCam.class_path() == "graph.demo.instrument.DemoCam"


def test_unknown_instrument_lists_installed_names_and_close_matches() -> None:
    with pytest.raises(
        UnknownInstrumentError, match=r"Did you mean 'DemoCam'\?.*Installed instruments: DemoCam"
    ):
        Instrument.from_name("DemoCm")
    with pytest.raises(UnknownInstrumentError, match="Cannot import module 'nowhere.at_all'"):
        Instrument.from_name("nowhere.at_all.Cam")
    with pytest.raises(UnknownInstrumentError, match="has no instrument class 'NoCam'"):
        Instrument.from_name("graph.demo.instrument.NoCam")
    with pytest.raises(InstrumentError, match="is not an Instrument subclass"):
        Instrument.from_name("graph.demo.camera.DetectorGeometry")


def test_collection_names_follow_rubin_conventions() -> None:
    cam = DemoCam()
    assert cam.raw_run == "DemoCam/raw/all"
    assert cam.calibration_collection == "DemoCam/calib"
    assert cam.defaults_collection == "DemoCam/defaults"
    assert cam.defaults_chain == ("DemoCam/raw/all", "DemoCam/calib", "refcats", "skymaps")
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert cam.curated_calibration_run(start) == "DemoCam/calib/curated/20260101T000000Z"


# -- registration ----------------------------------------------------------------------------------


def test_register_is_idempotent(registry: Registry) -> None:
    cam = DemoCam()
    assert cam.register(registry) == 1 + 3 + 3 + 4
    assert cam.register(registry) == 0
    (record,) = registry.query_dimension_records("instrument")
    assert record.class_name == "graph.demo.instrument.DemoCam"
    assert record.detector_max == 4
    detectors = registry.query_dimension_records("detector")
    assert [(d.id, d.full_name, d.purpose) for d in detectors] == [
        (0, "S00", "SCIENCE"),
        (1, "S01", "SCIENCE"),
        (2, "S10", "SCIENCE"),
        (3, "S11", "SCIENCE"),
    ]
    filters = {r.name: r.band for r in registry.query_dimension_records("physical_filter")}
    assert filters == {"g_demo": "g", "r_demo": "r", "i_demo": "i"}
    assert registry.get_dataset_type("raw") == cam.raw_dataset_type


def test_register_refuses_conflicting_records(registry: Registry) -> None:
    registry.insert_dimension_records("instrument", [{"name": "DemoCam", "detector_max": 4}])
    registry.insert_dimension_records(
        "detector", [{"instrument": "DemoCam", "id": 0, "full_name": "renamed", "purpose": "SCIENCE"}]
    )
    with pytest.raises(InstrumentError, match="Cannot register instrument DemoCam"):
        DemoCam().register(registry)


def test_check_registered_names_the_command(registry: Registry) -> None:
    with pytest.raises(InstrumentError, match="butler register-instrument REPO DemoCam"):
        DemoCam().check_registered(registry)


def test_day_obs_timespan_is_noon_to_noon_utc() -> None:
    span = DemoCam().day_obs_timespan(20251230)
    assert span.begin == datetime(2025, 12, 30, 12, tzinfo=UTC)
    assert span.end == datetime(2025, 12, 31, 12, tzinfo=UTC)


# -- header translation ----------------------------------------------------------------------------


def test_translate_header() -> None:
    info = DemoCam().translate_header(header(), "raw.fits")
    assert info.data_id == {"instrument": "DemoCam", "exposure": 2025123000007, "detector": 2}
    # TAI is 37 s ahead of UTC.
    assert info.begin == datetime(2025, 12, 31, 3, 0, 0, tzinfo=UTC)
    assert info.end == datetime(2025, 12, 31, 3, 0, 30, tzinfo=UTC)
    record = info.exposure_record()
    assert record["physical_filter"] == "r_demo"
    assert record["day_obs"] == 20251230
    assert record["tracking_ra"] == 150.01
    assert record["sky_angle"] == 3.5
    assert ObservationInfo.from_json(info.to_json()) == info


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"FILTER": None}, "header has no 'FILTER' keyword"),
        ({"EXPTIME": "thirty"}, "EXPTIME = 'thirty' should be float, not str"),
        ({"FILTER": "z_demo"}, "FILTER = 'z_demo' is not a DemoCam filter"),
        ({"DETECTOR": 9}, "DemoCam has detectors 0..3"),
        ({"EXPID": 2025123100007}, "does not start with DAYOBS"),
        ({"DATE_BEG": "yesterday"}, "DATE-BEG = 'yesterday' is not an ISO time"),
        ({"DATE_END": "2025-12-31T02:00:00.000"}, "is before DATE-BEG"),
        ({"INSTRUME": "OtherCam"}, "INSTRUME = 'OtherCam', not 'DemoCam'"),
    ],
)
def test_translate_header_names_the_bad_key(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(RawIngestError, match=rf"^raw\.fits: .*{message}"):
        DemoCam().translate_header(header(**changes), "raw.fits")


# -- geometry --------------------------------------------------------------------------------------


def _vector(ra: float, dec: float) -> sphgeom.UnitVector3d:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra, dec))


@pytest.mark.parametrize("sky_angle", [0.0, 4.0, 90.0])
def test_detector_regions_contain_their_pixels_and_tile_the_visit(sky_angle: float) -> None:
    cam = DemoCam()
    visit_region = cam.visit_region(150.0, 2.2, sky_angle)
    for det in camera.DETECTORS:
        region = cam.visit_detector_region(150.0, 2.2, sky_angle, det.id)
        wcs = camera.detector_wcs(150.0, 2.2, sky_angle, det.id)
        (ra, dec), (ra_out, dec_out) = wcs.wcs_pix2world([[127.5, 127.5], [127.5, 280.0]], 0)
        assert region.contains(_vector(ra, dec))
        assert not region.contains(_vector(ra_out, dec_out))
        assert visit_region.contains(_vector(ra, dec))
    # The gap between detectors is inside the visit region but in no detector region.
    gap = camera.detector_wcs(150.0, 2.2, sky_angle, 0).wcs_pix2world([[260.5, 127.5]], 0)[0]
    assert visit_region.contains(_vector(*gap))
    assert not any(
        cam.visit_detector_region(150.0, 2.2, sky_angle, d).contains(_vector(*gap)) for d in range(4)
    )


def test_detector_wcs_matches_the_camera_layout() -> None:
    scale = camera.PIXEL_SCALE_ARCSEC / 3600
    for det in camera.DETECTORS:
        wcs = camera.detector_wcs(150.0, 2.2, 0.0, det.id)
        # The boresight sits half a gap plus half a detector from the detector centre.
        ra, dec = wcs.wcs_pix2world([[127.5, 127.5]], 0)[0]
        assert dec - 2.2 == pytest.approx(det.center_y * scale, rel=1e-4)
        assert (ra - 150.0) * np.cos(np.radians(dec)) == pytest.approx(-det.center_x * scale, rel=1e-3)


# -- curated calibrations --------------------------------------------------------------------------


def _exposure(exposure: int, begin: datetime, physical_filter: str = "g_demo") -> dict[str, Any]:
    day_obs = exposure // 100000
    info = ObservationInfo(
        "DemoCam", exposure, 0, f"DC_O_{exposure}", physical_filter, day_obs, begin, begin.replace(second=30),
        30.0, "science", "demo-survey", 30.0, 150.0, 2.2, 0.0,
    )  # fmt: skip
    return info.exposure_record()


@pytest.fixture
def calibrated(database: DatabaseLocation, tmp_path: Path) -> Butler:
    create_repository(tmp_path / "repo", db=database.url, namespace=database.namespace)
    butler = Butler(tmp_path / "repo")
    cam = DemoCam()
    cam.register(butler.registry)
    butler.registry.sync_dimension_records(
        "day_obs", [cam.day_obs_record(20251230), cam.day_obs_record(20251231)]
    )
    butler.registry.sync_dimension_records(
        "exposure",
        [
            _exposure(2025123000001, datetime(2025, 12, 31, 2, tzinfo=UTC)),
            _exposure(2025123100001, datetime(2026, 1, 1, 2, tzinfo=UTC)),
        ],
    )
    return butler


def test_curated_calibrations_are_certified_and_found_by_exposure(calibrated: Butler) -> None:
    butler, cam = calibrated, DemoCam()
    refs = cam.write_curated_calibrations(butler)
    assert len(refs) == 4 + 4 * 3 * 2
    registry = butler.registry
    assert registry.get_collection_type("DemoCam/calib") is CollectionType.CALIBRATION
    assert registry.get_collection_chain("DemoCam/defaults") == (
        "DemoCam/raw/all",
        "DemoCam/calib",
        "refcats",
        "skymaps",
    )
    assert registry.get_collection_type("refcats") is CollectionType.RUN
    assert registry.get_dataset_type("flat").is_calibration
    # Two flat epochs: the night before 2026-01-01 gets the first, the night after the second.
    runs = []
    for exposure in (2025123000001, 2025123100001):
        data_id = {"instrument": "DemoCam", "exposure": exposure, "detector": 1}
        (flat,) = registry.query_datasets("flat", "DemoCam/calib", data_id=data_id)
        (bias,) = registry.query_datasets("bias", "DemoCam/defaults", data_id=data_id)
        assert flat.data_id["physical_filter"] == "g_demo"
        assert bias.run == "DemoCam/calib/curated/20200101T000000Z"
        runs.append(flat.run)
        image = butler.get(flat)
        expected = camera.flat_model(1, "g_demo", epoch=0 if exposure == 2025123000001 else 1)
        np.testing.assert_array_equal(image.image, expected)
        assert image.metadata["FILTER"] == "g_demo"
    assert runs == ["DemoCam/calib/curated/20200101T000000Z", "DemoCam/calib/curated/20260101T000000Z"]
    every_flat = registry.query_datasets(
        "flat", "DemoCam/calib", data_id={"instrument": "DemoCam"}, find_first=False
    )
    assert len(every_flat) == 24
    # Idempotent: nothing new the second time.
    assert cam.write_curated_calibrations(butler) == []
    butler.close()


def test_curated_calibrations_need_the_instrument_registered(tmp_path: Path) -> None:
    create_repository(tmp_path / "repo")
    with Butler(tmp_path / "repo") as butler, pytest.raises(InstrumentError, match="not registered"):
        DemoCam().write_curated_calibrations(butler)


def test_curated_calibrations_into_another_collection(tmp_path: Path) -> None:
    create_repository(tmp_path / "repo")
    with Butler(tmp_path / "repo") as butler:
        DemoCam().register(butler.registry)
        DemoCam().write_curated_calibrations(butler, "DemoCam/calib/other")
        refs = butler.registry.query_datasets(
            "bias", "DemoCam/calib/other", data_id={"instrument": "DemoCam"}, find_first=False
        )
        assert len(refs) == 4
