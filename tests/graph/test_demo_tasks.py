"""The six demo PipelineTasks run on simulated DemoCam data (directly, and through run_quantum with a dict butler); the numbers are checked."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from astropy.stats import sigma_clipped_stats

from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef, DatasetType
from butler.dimensions import DimensionUniverse
from butler.formatters.fits import FitsImageFormatter
from butler.image import Image
from graph.demo import camera, simulate
from graph.demo.instrument import DemoCam
from graph.demo.processing.masks import MaskBit
from graph.demo.processing.measurement import aperture_photometry
from graph.demo.processing.wcs_cards import wcs_from_metadata
from graph.demo.tasks.calibrate import CalibrateConfig, CalibrateTask
from graph.demo.tasks.coadd import AssembleCoaddConfig, AssembleCoaddTask
from graph.demo.tasks.detect_coadd import DetectCoaddTask
from graph.demo.tasks.isr import IsrConfig, IsrTask
from graph.demo.tasks.source_extraction import SOURCE_COLUMNS
from graph.demo.tasks.visit_summary import SUMMARY_COLUMNS, ConsolidateVisitSummaryTask
from graph.demo.tasks.warp import MakeWarpConfig, MakeWarpTask, as_skymap, patch_metadata
from graph.errors import ConfigError, NoWorkFound, TaskExecutionError
from graph.pipeline import Pipeline
from graph.pipeline_graph import PipelineGraph
from graph.quantum_context import QuantumContext
from graph.skymap_config import RingsSkyMapConfig, read_skymap_config
from graph.task import PipelineTask

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "submit_templates" / "examples" / "demo_pipeline.yaml"
SKYMAP = REPO / "submit_templates" / "examples" / "demo_skymap.yaml"
SEED = 1
N_VISITS = 4


class Handle:
    """A stand-in for a deferred dataset handle that records what was read."""

    def __init__(self, image: Image) -> None:
        self._image = image
        self.reads: list[str | None] = []

    def get(self, *, component: str | None = None, parameters: Any = None, storage_class: Any = None) -> Any:
        self.reads.append(component)
        return self._image.metadata if component == "metadata" else self._image


@dataclass
class Survey:
    """Four r-band visits of the simulated survey, processed through calibrate."""

    pointings: list[simulate.Pointing]
    stars: simulate.CatalogStars
    refcat: pa.Table
    calexps: dict[int, list[Image]]
    srcs: dict[int, list[pa.Table]]
    skymap_config: RingsSkyMapConfig
    tract: int
    patch: int


def _calibrations(detector: int, physical_filter: str, epoch: int) -> tuple[Image, Image]:
    bias = flat = None
    for calib in DemoCam().curated_calibrations():
        data_id = dict(calib.data_id)
        if data_id["detector"] != detector:
            continue
        if calib.dataset_type == "bias":
            bias = calib.image
        elif data_id.get("physical_filter") == physical_filter and calib.image.metadata["FLATEPOC"] == epoch:
            flat = calib.image
    assert bias is not None and flat is not None
    return bias, flat


def _post_isr(
    pointing: simulate.Pointing, detector: int, stars: simulate.CatalogStars, seed: int = SEED
) -> Image:
    bias, flat = _calibrations(detector, pointing.physical_filter, camera.flat_epoch(pointing.begin))
    raw = simulate.simulate_raw(pointing, detector, stars, seed=seed)
    return IsrTask().run(raw=raw, bias=bias, flat=flat).post_isr


@pytest.fixture(scope="module")
def survey() -> Survey:
    pointings = simulate.plan_survey(N_VISITS, seed=SEED, nights=1, bands=["r"])
    stars = simulate.make_star_catalog(SEED)
    refcat = stars.to_arrow(simulate.REFCAT_MAG_NOISE, SEED)
    calibrate = CalibrateTask()
    calexps: dict[int, list[Image]] = {}
    srcs: dict[int, list[pa.Table]] = {}
    for pointing in pointings:
        for detector in range(len(camera.DETECTORS)):
            result = calibrate.run(post_isr=[_post_isr(pointing, detector, stars)], refcat=refcat)
            calexps.setdefault(pointing.exposure, []).append(result.calexp)
            srcs.setdefault(pointing.exposure, []).append(result.src)
    skymap_config = read_skymap_config(SKYMAP)
    tract, patch = as_skymap(skymap_config).find_tract_patch(simulate.CENTER_RA, simulate.CENTER_DEC)
    return Survey(pointings, stars, refcat, calexps, srcs, skymap_config, tract, patch)


@pytest.fixture(scope="module")
def warps(survey: Survey) -> list[Image]:
    task = MakeWarpTask()
    return [
        task.run(
            calexps=survey.calexps[p.exposure],
            sky_map=survey.skymap_config,
            tract=survey.tract,
            patch=survey.patch,
        ).warp
        for p in survey.pointings
    ]


def _truth_pixels(
    survey: Survey, pointing: simulate.Pointing, detector: int
) -> tuple[np.ndarray, np.ndarray]:
    wcs = camera.detector_wcs(pointing.ra, pointing.dec, pointing.sky_angle, detector)
    x, y = wcs.wcs_world2pix(survey.stars.ra, survey.stars.dec, 0)
    return np.asarray(x), np.asarray(y)


def _nearest(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    distance = np.hypot(x[:, None] - tx[None, :], y[:, None] - ty[None, :])
    return distance.argmin(axis=1), distance.min(axis=1)


def _round_trip(image: Image, tmp_path: Path) -> dict[str, Any]:
    """Write through the FITS formatter and read the metadata back (it must survive exactly)."""
    path = tmp_path / "image.fits"
    path.unlink(missing_ok=True)
    formatter = FitsImageFormatter()
    formatter.write(image, path)
    metadata: dict[str, Any] = formatter.read(path, None, component="metadata")  # type: ignore[arg-type]
    return metadata


# -- isr ---------------------------------------------------------------------------------------------


def test_isr_flattens_the_sky_and_builds_variance(survey: Survey) -> None:
    pointing = survey.pointings[0]
    raw = simulate.simulate_raw(pointing, 0, survey.stars, seed=SEED)
    raw.image[5, 7] = 70000.0
    bias, flat = _calibrations(0, pointing.physical_filter, camera.flat_epoch(pointing.begin))
    post = IsrTask().run(raw=raw, bias=bias, flat=flat).post_isr
    sky = camera.sky_level("r") / camera.gain(0)

    def block_levels(image: np.ndarray) -> np.ndarray:
        blocks = image.reshape(8, 32, 8, 32).transpose(0, 2, 1, 3).reshape(64, -1)
        return np.array([sigma_clipped_stats(b)[1] for b in blocks])

    flat_fielded = block_levels(post.image)
    vignetted = block_levels(raw.image - bias.image)
    assert np.max(np.abs(flat_fielded / sky - 1)) < 0.01  # flat to 1 %
    assert np.max(np.abs(vignetted / sky - 1)) > 0.03  # ... where the raw sky falls off by several %
    assert post.mask[5, 7] == MaskBit.SAT and int(np.count_nonzero(post.mask)) == 1
    # Variance: sky photons (flat-attenuated) and read noise in ADU², divided by flat² like the image.
    response = flat.image.astype(float)
    read_var = (camera.read_noise(0) / camera.gain(0)) ** 2 + bias.variance
    expected_var = (sky * response / camera.gain(0) + read_var) / response**2
    assert np.median(post.variance / expected_var) == pytest.approx(1.0, abs=0.01)
    # Noise in star-free blocks matches the variance plane.
    pulls = (post.image - np.median(post.image)) / np.sqrt(post.variance)
    assert sigma_clipped_stats(pulls, stdfunc="mad_std")[2] == pytest.approx(1.0, abs=0.05)
    md = post.metadata
    assert md["ISRBIAS"] is True and md["ISRFLAT"] is True and md["GAIN"] == camera.gain(0)
    assert wcs_from_metadata(md).wcs.ctype[0] == "RA---TAN"


def test_isr_options_and_connections(survey: Survey) -> None:
    pointing = survey.pointings[0]
    raw = simulate.simulate_raw(pointing, 1, survey.stars, seed=SEED)
    config = IsrConfig(do_bias=False, do_flat=False, gain=2.0, read_noise=4.0)
    task = IsrTask(config=config)
    assert task.connections.prerequisite_inputs == set()
    assert IsrTask().connections.prerequisite_inputs == {"bias", "flat"}
    post = task.run(raw=raw).post_isr
    assert np.median(post.image) > camera.BIAS_LEVEL_ADU  # bias still in
    assert post.metadata["ISRBIAS"] is False and post.metadata["GAIN"] == 2.0
    with pytest.raises(TaskExecutionError, match="no bias"):
        IsrTask().run(raw=raw)
    bias, flat = _calibrations(1, "g_demo", 0)
    with pytest.raises(TaskExecutionError, match="flat is for 'g_demo'"):
        IsrTask().run(raw=raw, bias=bias, flat=flat)
    del raw.metadata["GAIN"]
    with pytest.raises(TaskExecutionError, match="GAIN"):
        IsrTask().run(raw=raw, bias=bias, flat=_calibrations(1, pointing.physical_filter, 0)[1])


# -- calibrate ---------------------------------------------------------------------------------------


def test_calibrate_recovers_positions_zero_point_and_psf(survey: Survey, tmp_path: Path) -> None:
    offsets = []
    zp_errors = []
    for pointing in survey.pointings:
        expected_zp = None
        for detector, (calexp, src) in enumerate(
            zip(survey.calexps[pointing.exposure], survey.srcs[pointing.exposure], strict=True)
        ):
            md = calexp.metadata
            expected_zp = camera.zero_point("r") + 2.5 * math.log10(
                pointing.exposure_time / camera.gain(detector)
            )
            zp_errors.append(md["MAGZERO"] - expected_zp)
            assert md["MAGZERO_NSTAR"] >= 3 and 0 < md["MAGZERO_ERR"] < 0.05
            assert md["FWHM"] == pytest.approx(pointing.psf_sigma * 2.3548, rel=0.03)
            assert md["VISIT"] == pointing.exposure and md["DETECTOR"] == detector
            assert md["BGMEAN"] == pytest.approx(camera.sky_level("r") / camera.gain(detector), rel=0.01)
            # The calexp is background-subtracted.
            assert abs(sigma_clipped_stats(calexp.image)[1]) < 0.1 * md["BGRMS"]
            assert src.column_names == list(SOURCE_COLUMNS) and src.num_rows == md["NSRC"]
            x, y = src.column("x").to_numpy(), src.column("y").to_numpy()
            tx, ty = _truth_pixels(survey, pointing, detector)
            _, distance = _nearest(x, y, tx, ty)
            bright = (src.column("snr").to_numpy() > 30) & (src.column("flags").to_numpy() == 0)
            offsets.extend(distance[bright])
            # Sky positions come from the calexp WCS.
            ra, dec = wcs_from_metadata(md).all_pix2world(x, y, 0)
            assert np.allclose(ra, src.column("ra").to_numpy()) and np.allclose(
                dec, src.column("dec").to_numpy()
            )
    offsets_arr = np.array(offsets)
    assert offsets_arr.size > 50
    assert np.median(offsets_arr) < 0.1 and np.percentile(offsets_arr, 95) < 0.5
    errors = np.array(zp_errors)
    assert np.all(np.abs(errors) < 0.05) and abs(np.mean(errors)) < 0.01
    # The calexp's metadata survives FITS.
    calexp = survey.calexps[survey.pointings[0].exposure][0]
    assert _round_trip(calexp, tmp_path) == calexp.metadata


def test_calibrate_sums_a_visits_exposures(survey: Survey) -> None:
    pointing = survey.pointings[1]
    snaps = [_post_isr(pointing, 2, survey.stars, seed=seed) for seed in (SEED, SEED + 100)]
    result = CalibrateTask().run(post_isr=snaps, refcat=survey.refcat, visit=77)
    md = result.calexp.metadata
    single = survey.calexps[pointing.exposure][2].metadata
    assert md["NEXPOSE"] == 2 and md["EXPTIME"] == 2 * pointing.exposure_time and md["VISIT"] == 77
    # Twice the photons per ADU of zero point: +2.5 log10(2) mag.
    assert md["MAGZERO"] - single["MAGZERO"] == pytest.approx(2.5 * math.log10(2), abs=0.03)
    assert md["BGRMS"] == pytest.approx(single["BGRMS"] * math.sqrt(2), rel=0.05)
    assert result.src.column("id").to_numpy()[0] == (77 * 100 + 2) * 10_000 + 1
    with pytest.raises(TaskExecutionError, match="detectors"):
        CalibrateTask().run(post_isr=[snaps[0], _post_isr(pointing, 1, survey.stars)], refcat=survey.refcat)


def test_calibrate_config_switches_and_subtasks(survey: Survey) -> None:
    pointing = survey.pointings[0]
    raw = simulate.simulate_raw(pointing, 3, survey.stars, seed=SEED)
    bias, _ = _calibrations(3, pointing.physical_filter, 0)
    unflattened = IsrTask(config=IsrConfig(do_flat=False)).run(raw=raw, bias=bias).post_isr
    with pytest.raises(TaskExecutionError, match="not flat-fielded"):
        CalibrateTask().run(post_isr=[unflattened], refcat=survey.refcat)
    config = CalibrateConfig(require_flat_fielded=False, do_photo_cal=False)
    config.apply_overrides({"detection.nsigma": 10.0, "background.bin_size": 128}, "test")
    task = CalibrateTask(config=config)
    assert task.background.config.bin_size == 128 and task.detection.full_name == "calibrate.detection"
    result = task.run(post_isr=[unflattened])
    assert "MAGZERO" not in result.calexp.metadata and np.isnan(result.src.column("mag").to_numpy()).all()
    assert result.calexp.metadata["NSRC"] < survey.calexps[pointing.exposure][3].metadata["NSRC"]
    metadata = task.full_metadata()
    assert metadata["detection.n_detected"] == result.calexp.metadata["NSRC"]
    with pytest.raises(TaskExecutionError, match="no reference catalog"):
        CalibrateTask().run(post_isr=[_post_isr(pointing, 3, survey.stars)])
    wrong = survey.refcat.rename_columns(["id", "ra", "dec", "G", "R", "I"])
    with pytest.raises(TaskExecutionError, match="no column 'r_mag'"):
        CalibrateTask().run(post_isr=[_post_isr(pointing, 3, survey.stars)], refcat=wrong)


# -- consolidateVisitSummary ---------------------------------------------------------------------------


def test_visit_summary_reads_only_metadata(survey: Survey) -> None:
    pointing = survey.pointings[2]
    calexps = survey.calexps[pointing.exposure]
    handles = [Handle(calexp) for calexp in reversed(calexps)]
    table = ConsolidateVisitSummaryTask().run(calexps=handles).visit_summary
    assert all(handle.reads == ["metadata"] for handle in handles)
    assert table.num_rows == 4 and table.column("detector").to_pylist() == [0, 1, 2, 3]
    assert set(SUMMARY_COLUMNS) <= set(table.column_names)
    assert table.column("band").to_pylist() == ["r"] * 4
    assert table.column("visit").to_pylist() == [pointing.exposure] * 4
    for row, calexp in zip(table.to_pylist(), calexps, strict=True):
        assert row["zero_point"] == calexp.metadata["MAGZERO"] and row["n_sources"] == calexp.metadata["NSRC"]
        assert row["fwhm_arcsec"] == pytest.approx(row["fwhm_px"] * camera.PIXEL_SCALE_ARCSEC)
    # The detector centres are about one detector pitch apart on the sky.
    ra, dec = table.column("ra").to_numpy(), table.column("dec").to_numpy()
    separation = math.hypot((ra[1] - ra[0]) * math.cos(math.radians(dec[0])), dec[1] - dec[0]) * 3600
    assert separation == pytest.approx((256 + camera.GAP_PX) * camera.PIXEL_SCALE_ARCSEC, rel=0.01)
    # Images work too; a missing card gives NaN.
    bare = Image(calexps[0].image, calexps[0].mask, calexps[0].variance, {"DETECTOR": 0})
    row = ConsolidateVisitSummaryTask().run(calexps=[bare]).visit_summary.to_pylist()[0]
    assert math.isnan(row["zero_point"]) and row["n_sources"] == -1


# -- makeWarp ----------------------------------------------------------------------------------------


def test_make_warp_conserves_flux_on_the_patch(survey: Survey, warps: list[Image], tmp_path: Path) -> None:
    skymap = as_skymap(survey.skymap_config)
    patch_wcs = skymap.patch_wcs(survey.tract, survey.patch)
    warp = warps[0]
    pointing = survey.pointings[0]
    md = warp.metadata
    assert warp.image.shape == skymap.patch_shape(survey.tract, survey.patch)
    assert md["MAGZERO"] == 31.4 and md["BUNIT"] == "nJy" and md["VISIT"] == pointing.exposure
    assert md["TRACT"] == survey.tract and md["PATCH"] == survey.patch and md["NDETUSED"] >= 1
    uncovered = (warp.mask & MaskBit.NO_DATA) != 0
    assert uncovered.any() and np.isnan(warp.image[uncovered]).all()  # the chip gaps at least
    assert md["COVERAGE"] == pytest.approx(1 - uncovered.mean(), abs=1e-6)
    # Bright catalog stars: calexp aperture flux x flux scale == warp aperture flux.
    ratios = []
    for detector, calexp in enumerate(survey.calexps[pointing.exposure]):
        cx, cy = _truth_pixels(survey, pointing, detector)
        px, py = patch_wcs.wcs_world2pix(survey.stars.ra, survey.stars.dec, 0)
        bright = survey.stars.mags["r"] < 19.5
        inside = (
            bright
            & (cx > 12)
            & (cx < 243)
            & (cy > 12)
            & (cy < 243)
            & (px > 12)
            & (px < 327)
            & (py > 12)
            & (py < 327)
        )
        if not inside.any():
            continue
        scale = 10 ** (0.4 * (31.4 - calexp.metadata["MAGZERO"]))
        before = aperture_photometry(
            calexp.image, calexp.variance, cx[inside], cy[inside], radius=6, annulus=(8, 11)
        )
        after = aperture_photometry(
            np.nan_to_num(warp.image),
            np.nan_to_num(warp.variance),
            px[inside],
            py[inside],
            radius=6,
            annulus=(8, 11),
        )
        ratios.extend(after.flux / (before.flux * scale))
    assert len(ratios) >= 3
    assert np.median(ratios) == pytest.approx(1.0, abs=0.01) and np.all(np.abs(np.array(ratios) - 1) < 0.03)
    assert _round_trip(warp, tmp_path) == md


def test_make_warp_skips_detectors_off_the_patch_and_no_work(survey: Survey) -> None:
    skymap = as_skymap(survey.skymap_config)
    nx, _ = skymap.num_patches(survey.tract)
    far = survey.patch + 5 * nx  # five patch rows (10 arcmin) north
    calexps = survey.calexps[survey.pointings[0].exposure]
    with pytest.raises(NoWorkFound, match="No calexp"):
        MakeWarpTask().run(calexps=calexps, sky_map=survey.skymap_config, tract=survey.tract, patch=far)
    no_zp = Image(
        calexps[0].image,
        calexps[0].mask,
        calexps[0].variance,
        {k: v for k, v in calexps[0].metadata.items() if k != "MAGZERO"},
    )
    with pytest.raises(TaskExecutionError, match="no MAGZERO"):
        MakeWarpTask().run(
            calexps=[no_zp], sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch
        )
    bilinear = (
        MakeWarpTask(config=MakeWarpConfig(kernel="bilinear", target_zero_point=27.0))
        .run(calexps=calexps, sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch)
        .warp
    )
    assert bilinear.metadata["BUNIT"] == "scaled" and bilinear.metadata["MAGZERO"] == 27.0


# -- assembleCoadd -----------------------------------------------------------------------------------


def _noise_warps(survey: Survey, n: int, rng: np.random.Generator) -> list[Image]:
    skymap = as_skymap(survey.skymap_config)
    shape = skymap.patch_shape(survey.tract, survey.patch)
    result = []
    for visit in range(n):
        image = rng.normal(0.0, 10.0, shape).astype(np.float32)
        mask = np.zeros(shape, dtype=np.int32)
        image[:, :20] = np.nan
        mask[:, :20] = MaskBit.NO_DATA
        md = {
            **patch_metadata(skymap, survey.tract, survey.patch),
            "MAGZERO": 31.4,
            "FILTER": "r_demo",
            "VISIT": visit,
        }
        result.append(Image(image, mask, np.full(shape, 100.0, dtype=np.float32), md))
    return result


def test_coadd_noise_falls_as_one_over_sqrt_n(survey: Survey) -> None:
    rng = np.random.default_rng(5)
    noise = {}
    for n in (1, 4, 16):
        handles = [Handle(w) for w in _noise_warps(survey, n, rng)]
        coadd = (
            AssembleCoaddTask()
            .run(
                warps=handles, sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch, band="r"
            )
            .coadd
        )
        assert all(h.reads == [None] for h in handles)
        noise[n] = float(np.nanstd(coadd.image))
        md = coadd.metadata
        assert md["NINPUTS"] == n and md["NIMGMAX"] == n and md["BAND"] == "r"
        assert (coadd.mask[:, :20] == MaskBit.NO_DATA).all() and np.isnan(coadd.image[:, :20]).all()
        assert np.nanmedian(coadd.variance) == pytest.approx(100.0 / n)
    assert noise[1] / noise[4] == pytest.approx(2.0, rel=0.15)
    assert noise[1] / noise[16] == pytest.approx(4.0, rel=0.15)


def test_coadd_of_real_warps_and_its_checks(survey: Survey, warps: list[Image], tmp_path: Path) -> None:
    coadd = (
        AssembleCoaddTask()
        .run(warps=warps, sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch, band="r")
        .coadd
    )
    md = coadd.metadata
    assert md["NINPUTS"] == N_VISITS and md["NIMGMAX"] <= N_VISITS and md["MAGZERO"] == 31.4
    assert md["COVERAGE"] >= max(w.metadata["COVERAGE"] for w in warps)
    # Per-pixel noise agrees with the variance plane, which falls with the number of inputs.
    pulls = coadd.image / np.sqrt(coadd.variance)
    assert sigma_clipped_stats(pulls[np.isfinite(pulls)], stdfunc="mad_std")[2] == pytest.approx(1.0, abs=0.1)
    assert _round_trip(coadd, tmp_path) == md
    odd = Image(warps[0].image, warps[0].mask, warps[0].variance, {**warps[0].metadata, "MAGZERO": 27.0})
    with pytest.raises(TaskExecutionError, match="one MAGZERO"):
        AssembleCoaddTask().run(
            warps=[warps[1], odd], sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch
        )
    with pytest.raises(TaskExecutionError, match="band 'g'"):
        AssembleCoaddTask().run(
            warps=warps, sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch, band="g"
        )
    with pytest.raises(ConfigError, match="did you mean 'NO_DATA'"):
        AssembleCoaddConfig(bad_mask_planes=["NODATA"])


# -- detectCoadd -------------------------------------------------------------------------------------


def test_detect_coadd_finds_the_catalog_stars(survey: Survey, warps: list[Image]) -> None:
    coadd = (
        AssembleCoaddTask()
        .run(warps=warps, sky_map=survey.skymap_config, tract=survey.tract, patch=survey.patch, band="r")
        .coadd
    )
    table = DetectCoaddTask().run(coadd=coadd).detections
    assert table.column_names == list(SOURCE_COLUMNS) and table.num_rows > 10
    ids = table.column("id").to_numpy()
    assert ids[0] == (survey.tract * 10_000 + survey.patch) * 100_000 + 1
    wcs = wcs_from_metadata(coadd.metadata)
    tx, ty = wcs.wcs_world2pix(survey.stars.ra, survey.stars.dec, 0)
    x, y = table.column("x").to_numpy(), table.column("y").to_numpy()
    index, distance = _nearest(x, y, tx, ty)
    matched = distance < 1.0
    # Catalog stars bright enough, inside the patch and on pixels at least two visits covered are found.
    height, width = coadd.image.shape
    n_images = np.zeros(coadd.image.shape, dtype=int)
    for warp in warps:
        n_images += np.isfinite(warp.image)
    ix, iy = np.clip(np.rint(tx).astype(int), 0, width - 1), np.clip(np.rint(ty).astype(int), 0, height - 1)
    wanted = (survey.stars.mags["r"] < 21.0) & (tx > 10) & (tx < width - 10) & (ty > 10) & (ty < height - 10)
    wanted &= n_images[iy, ix] >= 2
    found = set(index[matched])
    assert wanted.sum() >= 5 and len(found & set(np.flatnonzero(wanted))) >= 0.9 * wanted.sum()
    # Positions and magnitudes (nJy zero point) agree with the truth for bright stars.
    mags = table.column("mag").to_numpy()
    bright = matched & (table.column("snr").to_numpy() > 30) & (table.column("flags").to_numpy() == 0)
    assert np.median(distance[bright]) < 0.15
    assert np.median(mags[bright] - survey.stars.mags["r"][index[bright]]) == pytest.approx(0.0, abs=0.03)
    ra, dec = wcs.all_pix2world(x, y, 0)
    assert np.allclose(ra, table.column("ra").to_numpy()) and np.allclose(dec, table.column("dec").to_numpy())


# -- the pipeline file -------------------------------------------------------------------------------


def test_demo_pipeline_builds_and_applies_parameters() -> None:
    pipeline = Pipeline.from_yaml(PIPELINE)
    assert pipeline.instrument == "DemoCam"
    assert [step.label for step in pipeline.steps] == ["step1", "step2"]
    configs = pipeline.make_configs()
    pipeline.check_contracts(configs)
    threshold = pipeline.parameters["detection_threshold"]
    assert configs["calibrate"].detection.nsigma == threshold == configs["detectCoadd"].detection.nsigma
    graph = PipelineGraph.from_pipeline(pipeline)
    assert set(graph.tasks) == {
        "isr",
        "calibrate",
        "consolidateVisitSummary",
        "makeWarp",
        "assembleCoadd",
        "detectCoadd",
    }


# -- run_quantum: data-ID values reach run() -----------------------------------------------------------


class DictButler:
    """A LimitedButler keeping objects in a dict by dataset id; records every read."""

    def __init__(self) -> None:
        self.objects: dict[Any, Any] = {}
        self.reads: list[str] = []

    def get(self, ref: DatasetRef, *, parameters: Any = None, storage_class: Any = None) -> Any:
        self.reads.append(ref.dataset_type.name)
        obj = self.objects[ref.id]
        component = ref.dataset_type.component
        return getattr(obj, component) if component else obj

    def put(self, obj: Any, ref: DatasetRef) -> DatasetRef:
        self.objects[ref.id] = obj
        return ref

    def exists(self, ref: DatasetRef) -> bool:
        return ref.id in self.objects


def _refs(
    task: PipelineTask,
    attr: str,
    data_ids: list[dict[str, Any]],
    butler: DictButler | None = None,
    objects: list[Any] | None = None,
) -> list[DatasetRef]:
    universe = DimensionUniverse.default()
    connection = task.connections.connection(attr)
    dataset_type = DatasetType(
        connection.name, connection.dimensions, connection.storage_class, universe=universe
    )  # type: ignore[attr-defined]
    refs = [
        DatasetRef.new(dataset_type, DataCoordinate.standardize(data_id, universe=universe), "run")
        for data_id in data_ids
    ]
    for ref, obj in zip(refs, objects or [], strict=False):
        assert butler is not None
        butler.put(obj, ref)
    return refs


def test_run_quantum_passes_data_id_values(survey: Survey, warps: list[Image]) -> None:
    butler = DictButler()
    pointing = survey.pointings[0]
    visit_id = {"instrument": "DemoCam", "visit": 4242}
    calexps = survey.calexps[pointing.exposure]

    calibrate = CalibrateTask()
    post_isr = _post_isr(pointing, 1, survey.stars)
    inputs = {
        "post_isr": _refs(
            calibrate,
            "post_isr",
            [{"instrument": "DemoCam", "exposure": pointing.exposure, "detector": 1}],
            butler,
            [post_isr],
        ),
        "refcat": _refs(calibrate, "refcat", [{}], butler, [survey.refcat]),
    }
    outputs = {
        "calexp": _refs(calibrate, "calexp", [{**visit_id, "detector": 1}]),
        "src": _refs(calibrate, "src", [{**visit_id, "detector": 1}]),
    }
    calibrate.run_quantum(QuantumContext(butler), inputs, outputs)
    assert butler.objects[outputs["calexp"][0].id].metadata["VISIT"] == 4242
    assert butler.objects[outputs["src"][0].id].column("id").to_numpy()[0] == (4242 * 100 + 1) * 10_000 + 1

    summary = ConsolidateVisitSummaryTask()
    butler.reads.clear()
    inputs = {
        "calexps": _refs(summary, "calexps", [{**visit_id, "detector": d} for d in range(4)], butler, calexps)
    }
    outputs = {"visit_summary": _refs(summary, "visit_summary", [visit_id])}
    summary.run_quantum(QuantumContext(butler), inputs, outputs)
    assert butler.reads == ["calexp.metadata"] * 4
    assert butler.objects[outputs["visit_summary"][0].id].num_rows == 4

    patch_id = {"skymap": "demo-rings", "tract": survey.tract, "patch": survey.patch}
    make_warp = MakeWarpTask()
    inputs = {
        "calexps": _refs(
            make_warp, "calexps", [{**visit_id, "detector": d} for d in range(4)], butler, calexps
        ),
        "sky_map": _refs(make_warp, "sky_map", [{"skymap": "demo-rings"}], butler, [survey.skymap_config]),
    }
    outputs = {"warp": _refs(make_warp, "warp", [{**patch_id, **visit_id}])}
    make_warp.run_quantum(QuantumContext(butler), inputs, outputs)
    warp = butler.objects[outputs["warp"][0].id]
    assert (warp.metadata["TRACT"], warp.metadata["PATCH"]) == (survey.tract, survey.patch)
    assert np.array_equal(warp.image, warps[0].image, equal_nan=True)

    assemble = AssembleCoaddTask()
    butler.reads.clear()
    inputs = {
        "warps": _refs(
            assemble,
            "warps",
            [{**patch_id, "instrument": "DemoCam", "visit": v} for v in range(N_VISITS)],
            butler,
            warps,
        ),
        "sky_map": inputs["sky_map"],
    }
    outputs = {"coadd": _refs(assemble, "coadd", [{**patch_id, "band": "r"}])}
    assemble.run_quantum(QuantumContext(butler), inputs, outputs)
    assert butler.reads == ["skyMap"] + ["deepCoadd_directWarp"] * N_VISITS  # warps read one by one
    assert butler.objects[outputs["coadd"][0].id].metadata["BAND"] == "r"
