"""Visit definition: records, regions from the camera geometry, idempotence, and overlaps with sky-map patches."""

from __future__ import annotations

from pathlib import Path

import pytest
from databases import DatabaseLocation
from lsst import sphgeom

from butler.butler import Butler
from butler.repository import create_repository
from graph.demo import camera
from graph.demo.instrument import DemoCam
from graph.demo.simulate import simulate
from graph.errors import InstrumentError, UnknownInstrumentError
from graph.raw_ingest import ingest_raws
from graph.visits import define_visits

EXPOSURES = [2025123000001, 2025123000002, 2025123100001, 2025123100002]


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("survey")
    simulate(out, visits=4, detectors=1, seed=21, calibrations=False)
    return out / "raw"


@pytest.fixture
def butler(database: DatabaseLocation, survey: Path, tmp_path: Path) -> Butler:
    create_repository(tmp_path / "repo", db=database.url, namespace=database.namespace)
    butler = Butler(tmp_path / "repo")
    DemoCam().register(butler.registry)
    ingest_raws(butler, [survey], transfer="direct", use_index=False)
    return butler


def _vector(ra: float, dec: float) -> sphgeom.UnitVector3d:
    return sphgeom.UnitVector3d(sphgeom.LonLat.fromDegrees(ra, dec))


def test_one_visit_per_science_exposure(butler: Butler) -> None:
    registry = butler.registry
    assert define_visits(butler, "DemoCam") == EXPOSURES
    assert define_visits(butler, "DemoCam") == []  # idempotent
    visits = registry.query_dimension_records("visit")
    assert [v.id for v in visits] == EXPOSURES
    exposures = {e.id: e for e in registry.query_dimension_records("exposure")}
    for visit in visits:
        exposure = exposures[visit.id]
        assert visit.name == exposure.obs_id
        assert visit.physical_filter == exposure.physical_filter
        assert visit.day_obs == exposure.day_obs
        assert visit.timespan == exposure.timespan
        assert visit.exposure_time == 30.0 and visit.science_program == "demo-survey"
        assert visit.zenith_angle == exposure.zenith_angle
        assert visit.region.contains(_vector(exposure.tracking_ra, exposure.tracking_dec))
    definitions = registry.query_dimension_records("visit_definition")
    assert [(d.exposure, d.visit) for d in definitions] == [(e, e) for e in EXPOSURES]
    regions = registry.query_dimension_records("visit_detector_region")
    assert len(regions) == 4 * len(EXPOSURES)
    for record in regions:
        exposure = exposures[record.visit]
        wcs = camera.detector_wcs(
            exposure.tracking_ra, exposure.tracking_dec, exposure.sky_angle, record.detector
        )
        ra, dec = wcs.wcs_pix2world([[127.5, 127.5]], 0)[0]
        assert record.region.contains(_vector(ra, dec))
        assert visits[EXPOSURES.index(record.visit)].region.contains(_vector(ra, dec))
        for other in range(4):
            if other != record.detector:
                ra, dec = camera.detector_wcs(
                    exposure.tracking_ra, exposure.tracking_dec, exposure.sky_angle, other
                ).wcs_pix2world([[127.5, 127.5]], 0)[0]
                assert not record.region.contains(_vector(ra, dec))
    # The raw's visit data ID now expands.
    data_ids = registry.query_data_ids(["visit", "detector"], where="visit.day_obs = 20251231")
    assert sorted((d["visit"], d["detector"]) for d in data_ids) == [
        (v, d) for v in EXPOSURES[2:] for d in range(4)
    ]
    butler.close()


def test_where_and_collections_select_exposures(butler: Butler) -> None:
    assert define_visits(butler, "DemoCam", where="exposure.day_obs = 20251231") == EXPOSURES[2:]
    with pytest.raises(InstrumentError, match="nothing_here"):
        define_visits(butler, "DemoCam", collections="nothing_here")
    butler.registry.register_run("empty")
    assert define_visits(butler, DemoCam(), collections=["empty"]) == []
    assert define_visits(butler, DemoCam(), collections=["DemoCam/raw/all"]) == EXPOSURES[:2]
    butler.close()


def test_non_science_exposures_get_no_visit(butler: Butler) -> None:
    (record,) = butler.registry.query_dimension_records("exposure", where="exposure = 2025123000001")
    values = record.to_dict() | {
        "id": 2025123000099,
        "obs_id": "DC_O_20251230_000099",
        "observation_type": "flat",
    }
    butler.registry.insert_dimension_records("exposure", [values])
    assert 2025123000099 not in define_visits(butler, "DemoCam")
    butler.close()


def test_errors(butler: Butler, tmp_path: Path) -> None:
    with pytest.raises(UnknownInstrumentError):
        define_visits(butler, "NoCam")
    with pytest.raises(InstrumentError, match="Cannot select the exposures"):
        define_visits(butler, "DemoCam", where="exposure.nonsense = 1")
    butler.close()
    create_repository(tmp_path / "empty")
    with Butler(tmp_path / "empty") as empty, pytest.raises(InstrumentError, match="not registered"):
        define_visits(empty, "DemoCam")


def test_visits_overlap_the_patches_they_cover(butler: Butler) -> None:
    """Patch records (as a sky map would register them) join to visits through their regions."""
    registry = butler.registry
    define_visits(butler, "DemoCam")

    def box(ra0: float, ra1: float, dec0: float, dec1: float) -> dict[str, list[float]]:
        return {"box": [ra0, ra1, dec0, dec1]}

    registry.insert_dimension_records(
        "skymap", [{"name": "demo", "hash": "0" * 64, "tract_max": 1, "patch_nx_max": 2, "patch_ny_max": 1}]
    )
    registry.insert_dimension_records(
        "tract", [{"skymap": "demo", "id": 0, "region": box(149.5, 150.5, 1.7, 2.7)}]
    )
    registry.insert_dimension_records(
        "patch",
        [
            # Patch 0 covers the survey field; patch 1 lies a degree away from it.
            {
                "skymap": "demo",
                "tract": 0,
                "id": 0,
                "cell_x": 0,
                "cell_y": 0,
                "region": box(149.9, 150.1, 2.1, 2.3),
            },
            {
                "skymap": "demo",
                "tract": 0,
                "id": 1,
                "cell_x": 1,
                "cell_y": 0,
                "region": box(151.0, 151.2, 2.1, 2.3),
            },
        ],
    )
    pairs = registry.query_data_ids(
        ["visit", "detector", "patch"], data_id={"instrument": "DemoCam", "skymap": "demo", "tract": 0}
    )
    assert {p["patch"] for p in pairs} == {0}
    assert {(p["visit"], p["detector"]) for p in pairs} == {(v, d) for v in EXPOSURES for d in range(4)}
    patches = registry.query_dimension_records(
        "patch", where=f"visit = {EXPOSURES[0]} AND instrument = 'DemoCam'"
    )
    assert [p.id for p in patches] == [0]
    butler.close()
