"""The DemoCam survey simulator: determinism, headers, star positions, the reference catalog and the calibration files."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from astropy.io import fits
from astropy.wcs import WCS

from butler.formatters.fits import FitsImageFormatter
from butler.storage_classes import StorageClassRegistry
from graph.demo import camera
from graph.demo.instrument import RAW_HEADER_KEYS, DemoCam
from graph.demo.simulate import (
    CENTER_DEC,
    CENTER_RA,
    main,
    make_star_catalog,
    plan_survey,
    simulate,
    simulate_raw,
)


@pytest.fixture(scope="module")
def survey(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("sim")
    simulate(out, visits=6, detectors=4, seed=3)
    return out


def read_raw(path: Path):  # type: ignore[no-untyped-def]
    return FitsImageFormatter().read(path, StorageClassRegistry.default()["Image"])


def test_layout_and_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(tmp_path), "--visits", "4", "--detectors", "2", "--seed", "5", "--nights", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Simulated 4 visit(s) x 2 detector(s) (8 raw files) over 2 night(s) in g,r,i")
    assert out.count("\n") == 1
    raws = sorted(p.relative_to(tmp_path).as_posix() for p in (tmp_path / "raw").rglob("*.fits"))
    assert raws == [
        "raw/20251230/2025123000001/raw_2025123000001_0.fits",
        "raw/20251230/2025123000001/raw_2025123000001_1.fits",
        "raw/20251230/2025123000002/raw_2025123000002_0.fits",
        "raw/20251230/2025123000002/raw_2025123000002_1.fits",
        "raw/20251231/2025123100001/raw_2025123100001_0.fits",
        "raw/20251231/2025123100001/raw_2025123100001_1.fits",
        "raw/20251231/2025123100002/raw_2025123100002_0.fits",
        "raw/20251231/2025123100002/raw_2025123100002_1.fits",
    ]
    assert (tmp_path / "refcat" / "demo_refcat.parquet").is_file()
    assert (tmp_path / "calib" / "calibs.yaml").is_file()


def test_bad_arguments_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as info:
        main([str(tmp_path), "--bands", "g,z"])
    assert info.value.code == 2
    with pytest.raises(ValueError, match="DemoCam has 4 detectors"):
        simulate(tmp_path, detectors=5)


def test_plan_cycles_bands_over_nights() -> None:
    plan = plan_survey(7, seed=1, nights=3, bands=["r", "i"])
    assert [p.physical_filter for p in plan] == ["r_demo", "i_demo"] * 3 + ["r_demo"]
    assert [p.day_obs for p in plan] == [20251230] * 3 + [20251231] * 3 + [20260101]
    assert [p.exposure % 100000 for p in plan] == [1, 2, 3, 1, 2, 3, 1]
    for p in plan:
        assert p.exposure // 100000 == p.day_obs
        assert abs(p.ra - CENTER_RA) < 3 / 60 and abs(p.dec - CENTER_DEC) < 3 / 60
        assert 1 <= p.begin.hour <= 6  # local night in Chile
    assert plan_survey(7, seed=1, nights=3, bands=["r", "i"]) == plan
    assert plan_survey(7, seed=2, nights=3, bands=["r", "i"]) != plan


def test_deterministic_by_seed(tmp_path: Path, survey: Path) -> None:
    again = tmp_path / "again"
    start = time.perf_counter()
    simulate(again, visits=6, detectors=4, seed=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"simulating 6 visits x 4 detectors took {elapsed:.2f} s"
    for path in sorted((survey / "raw").rglob("*.fits")):
        assert (again / path.relative_to(survey)).read_bytes() == path.read_bytes()
    assert pq.read_table(again / "refcat" / "demo_refcat.parquet").equals(
        pq.read_table(survey / "refcat" / "demo_refcat.parquet")
    )
    other = tmp_path / "other"
    simulate(other, visits=1, detectors=1, seed=4, calibrations=False)
    name = "raw/20251230/2025123000001/raw_2025123000001_0.fits"
    assert not np.array_equal(read_raw(other / name).image, read_raw(survey / name).image)
    assert not (other / "calib").exists()


def test_raw_headers(survey: Path) -> None:
    path = survey / "raw/20251231/2025123100002/raw_2025123100002_3.fits"
    image = read_raw(path)
    assert image.image.shape == image.mask.shape == image.variance.shape == (256, 256)
    assert image.image.dtype == np.float32
    meta = image.metadata
    for key, kind in RAW_HEADER_KEYS.items():
        assert isinstance(meta[key], kind), key
    assert meta["INSTRUME"] == "DemoCam"
    assert meta["EXPID"] == 2025123100002 and meta["DAYOBS"] == 20251231
    assert meta["DETECTOR"] == 3 and meta["DETNAME"] == "S11"
    assert meta["FILTER"] == "r_demo"  # the 5th visit: g, r, i, g, r
    assert meta["EXPTIME"] == 30.0 and meta["OBSTYPE"] == "science"
    assert meta["DATE-BEG"] == "2026-01-01T01:31:37.000"  # TAI = UTC + 37 s
    assert meta["DATE-END"] == "2026-01-01T01:32:07.000"
    assert meta["GAIN"] == camera.gain(3)
    expected = camera.detector_wcs(meta["RA"], meta["DEC"], meta["ROTPA"], 3)
    from_header = WCS(fits.Header(meta))
    np.testing.assert_array_equal(from_header.wcs.cd, expected.wcs.cd)
    np.testing.assert_array_equal(from_header.wcs.crpix, expected.wcs.crpix)
    info = DemoCam().translate_header(meta, str(path))
    assert info.data_id == {"instrument": "DemoCam", "exposure": 2025123100002, "detector": 3}


def test_pixel_levels_follow_the_camera_model(survey: Path) -> None:
    image = read_raw(survey / "raw/20251230/2025123000002/raw_2025123000002_1.fits").image
    sky_adu = camera.sky_level("r") / camera.gain(1)
    background = np.median(image - camera.bias_model(1))
    assert background == pytest.approx(sky_adu * np.median(camera.flat_model(1, "r_demo", 0)), rel=0.02)


def test_stars_sit_where_the_wcs_puts_the_catalog(survey: Path) -> None:
    stars = make_star_catalog(3)
    refcat = pq.read_table(survey / "refcat" / "demo_refcat.parquet").to_pydict()
    np.testing.assert_array_equal(refcat["ra"], stars.ra)
    assert np.std(np.asarray(refcat["r_mag"]) - stars.mags["r"]) == pytest.approx(0.01, rel=0.2)
    checked = 0
    for path in sorted((survey / "raw" / "20251230").rglob("*.fits")):
        raw = read_raw(path)
        meta = raw.metadata
        det = meta["DETECTOR"]
        signal = (raw.image - camera.bias_model(det)) / camera.flat_model(det, meta["FILTER"], 0)
        signal -= np.median(signal)
        x, y = WCS(fits.Header(meta)).wcs_world2pix(stars.ra, stars.dec, 0)
        band = camera.PHYSICAL_FILTERS[meta["FILTER"]]
        bright = stars.mags[band] < 19.5
        inside = bright & (x > 8) & (x < 247) & (y > 8) & (y < 247)
        for xc, yc in zip(x[inside], y[inside], strict=True):
            neighbours = np.hypot(x - xc, y - yc)
            if np.sort(neighbours)[1] < 10:  # another star nearby would pull the centroid
                continue
            ix, iy = round(xc), round(yc)
            cut = signal[iy - 5 : iy + 6, ix - 5 : ix + 6]
            grid_y, grid_x = np.mgrid[iy - 5 : iy + 6, ix - 5 : ix + 6]
            total = cut.sum()
            assert abs((cut * grid_x).sum() / total - xc) < 0.5
            assert abs((cut * grid_y).sum() / total - yc) < 0.5
            checked += 1
    assert checked >= 10


def test_simulate_raw_is_repeatable_in_memory() -> None:
    (pointing,) = plan_survey(1, seed=9)
    stars = make_star_catalog(9)
    first = simulate_raw(pointing, 2, stars, seed=9)
    assert first == simulate_raw(pointing, 2, stars, seed=9)
    assert not np.array_equal(first.image, simulate_raw(pointing, 2, stars, seed=10).image)


def test_calibration_files_and_manifest(survey: Path) -> None:
    manifest = yaml.safe_load((survey / "calib" / "calibs.yaml").read_text())["calibrations"]
    assert len(manifest) == 4 + 4 * 3 * 2
    flats = [e for e in manifest if e["dataset_type"] == "flat"]
    validity = sorted({(e["valid_from"], e["valid_to"]) for e in flats})
    assert validity == [
        ("2020-01-01T00:00:00+00:00", "2026-01-01T00:00:00+00:00"),
        ("2026-01-01T00:00:00+00:00", None),
    ]
    entry = next(e for e in flats if e["data_id"] == {"instrument": "DemoCam", "detector": 2, "physical_filter": "i_demo"} and e["valid_to"] is None)  # fmt: skip
    flat = read_raw(survey / "calib" / entry["path"])
    np.testing.assert_array_equal(flat.image, camera.flat_model(2, "i_demo", 1))
    biases = [e for e in manifest if e["dataset_type"] == "bias"]
    assert {e["data_id"]["detector"] for e in biases} == {0, 1, 2, 3}
    assert all(e["valid_to"] is None for e in biases)


def test_flat_epochs_differ_slightly() -> None:
    old, new = camera.flat_model(0, "g_demo", 0), camera.flat_model(0, "g_demo", 1)
    assert 0 < np.abs(new - old).mean() < 0.02
    assert camera.flat_model(0, "g_demo", 0) is not old  # callers get their own copy
    with pytest.raises(KeyError, match="flat epochs"):
        camera.flat_model(0, "g_demo", 2)
