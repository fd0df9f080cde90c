"""Science tests of the demo algorithms on synthetic star fields with known truth."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pytest
from demo_images import add_noise, render_stars, star_field, tan_wcs

from butler.formatters.fits import _card
from graph.demo.processing import background, coaddition, detection, isr, measurement, photocal, resampling
from graph.demo.processing.masks import UNUSABLE, MaskBit
from graph.demo.processing.wcs_cards import pixel_scale_arcsec, wcs_from_metadata, wcs_to_metadata
from graph.errors import NoWorkFound, TaskExecutionError

SIGMA = 1.6


def _measure(image: np.ndarray, variance: np.ndarray, noise: np.ndarray | float, *, radius: float = 8.0):
    """Detect and measure: (x, y, flux, flux_err, fwhm, flags, first-moment x, y)."""
    det = detection.detect_sources(image, noise, nsigma=5.0, smoothing_sigma=SIGMA)
    x0, y0 = measurement.first_moment_centroids(image, det.labels, det.count)
    x, y, _ = measurement.gaussian_centroids(image, x0, y0, sigma=SIGMA)
    fwhm = measurement.adaptive_fwhm(image, x, y, guess_sigma=SIGMA)
    ap = measurement.aperture_photometry(
        image,
        variance,
        x,
        y,
        radius=radius,
        annulus=(12.0, 18.0),
        labels=det.labels,
        own_labels=np.arange(1, det.count + 1),
    )
    return x, y, ap.flux, ap.flux_err, fwhm, ap.flags, x0, y0


def _nearest(x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest truth position for each measured one, and the distance."""
    distance = np.hypot(x[:, None] - tx[None, :], y[:, None] - ty[None, :])
    return distance.argmin(axis=1), distance.min(axis=1)


# -- ISR ---------------------------------------------------------------------------------------------


def test_isr_flattens_sky_and_propagates_variance() -> None:
    rng = np.random.default_rng(11)
    shape = (128, 128)
    yy, xx = np.indices(shape)
    flat = 1.0 - 0.15 * ((xx - 64) ** 2 + (yy - 64) ** 2) / 64**2 + rng.normal(0, 0.01, shape)
    bias = 1000.0 + 0.02 * xx + rng.normal(0, 1.0, shape)
    gain, read_noise, sky = 1.5, 5.0, 800.0
    signal, _ = add_noise(rng, sky * flat, gain, read_noise)
    raw = signal + bias
    raw[10, 20] = 65535.0
    flat[30, 40] = 0.0
    result = isr.remove_instrument_signature(
        raw, gain=gain, read_noise=read_noise, bias=bias, flat=flat, saturation=60000.0
    )
    good = result.mask == 0
    assert result.image.dtype == np.float32 and result.mask.dtype == np.int32
    assert result.mask[10, 20] == MaskBit.SAT and result.mask[30, 40] == MaskBit.BAD
    assert np.isnan(result.image[30, 40]) and np.isnan(result.variance[30, 40])
    # The sky is flat to much better than 1 % once the vignetting is divided out.
    clean = np.where(good, result.image, np.nan)
    block_means = np.nanmean(clean.reshape(8, 16, 8, 16), axis=(1, 3))
    assert np.nanmax(np.abs(block_means / sky - 1)) < 0.01
    # The variance plane predicts the scatter: normalized residuals have unit variance.
    pulls = (result.image[good] - sky) / np.sqrt(result.variance[good])
    assert abs(np.std(pulls) - 1.0) < 0.03


def test_isr_without_bias_and_flat_and_errors() -> None:
    raw = np.full((4, 4), 100.0)
    result = isr.remove_instrument_signature(raw, gain=2.0, read_noise=4.0)
    assert np.allclose(result.image, 100.0) and np.allclose(result.variance, 50.0 + 4.0)
    with pytest.raises(TaskExecutionError, match="flat has shape"):
        isr.remove_instrument_signature(raw, gain=2.0, read_noise=4.0, flat=np.ones((3, 3)))
    with pytest.raises(TaskExecutionError, match="gain must be positive"):
        isr.remove_instrument_signature(raw, gain=0.0, read_noise=4.0)


# -- background --------------------------------------------------------------------------------------


def test_background_recovers_smooth_sky_under_stars() -> None:
    rng = np.random.default_rng(3)
    shape = (256, 256)
    yy, xx = np.indices(shape)
    sky = 400.0 + 0.08 * xx + 0.04 * yy
    field = star_field(rng, shape, sky=sky, n_stars=40)
    bg = background.estimate_background(field.image, bin_size=64)
    true_noise = np.sqrt(field.variance.min())
    assert bg.mesh.shape == (4, 4)
    # A linear sky is reproduced by the bilinear mesh inside the outer cell centres, to a
    # fraction of the noise (stars bias the medians slightly upward).
    inner = (slice(32, 224), slice(32, 224))
    residual = bg.model[inner] - sky[inner]
    assert abs(np.median(residual)) < 0.15 * true_noise
    assert np.max(np.abs(residual)) < 0.6 * true_noise
    assert np.median(bg.rms) == pytest.approx(np.sqrt(np.median(field.variance)), rel=0.03)


def test_background_mesh_edges_masks_and_empty_cells() -> None:
    assert list(background.mesh_edges(256, 64)) == [0, 64, 128, 192, 256]
    assert list(background.mesh_edges(200, 64)) == [0, 64, 128, 200]  # an 8-px last cell merges
    assert list(background.mesh_edges(230, 64)) == [0, 64, 128, 192, 230]
    image = np.full((128, 128), 10.0)
    image[:64, :64] = 1e6
    mask = np.zeros(image.shape, dtype=np.int32)
    mask[:64, :64] = MaskBit.NO_DATA
    bg = background.estimate_background(image, mask, bin_size=64)
    assert np.allclose(bg.model, 10.0)
    with pytest.raises(NoWorkFound, match="no mesh cell"):
        background.estimate_background(image, np.full(image.shape, MaskBit.BAD, dtype=np.int32), bin_size=64)
    with pytest.raises(TaskExecutionError, match="bin_size"):
        background.estimate_background(image, bin_size=0)


# -- detection ---------------------------------------------------------------------------------------


def _flood_fill_labels(foreground: np.ndarray, connectivity: int) -> np.ndarray:
    """Reference labelling by breadth-first flood fill."""
    labels = np.zeros(foreground.shape, dtype=int)
    steps = [(0, 1), (1, 0), (0, -1), (-1, 0)]
    if connectivity == 8:
        steps += [(1, 1), (1, -1), (-1, 1), (-1, -1)]
    current = 0
    for start in zip(*np.nonzero(foreground), strict=True):
        if labels[start]:
            continue
        current += 1
        labels[start] = current
        queue = deque([start])
        while queue:
            y, x = queue.popleft()
            for dy, dx in steps:
                ny, nx = y + dy, x + dx
                inside = 0 <= ny < foreground.shape[0] and 0 <= nx < foreground.shape[1]
                if inside and foreground[ny, nx] and not labels[ny, nx]:
                    labels[ny, nx] = current
                    queue.append((ny, nx))
    return labels


@pytest.mark.parametrize("connectivity", [4, 8])
def test_label_components_matches_flood_fill(connectivity: int) -> None:
    rng = np.random.default_rng(connectivity)
    foreground = rng.random((60, 70)) < 0.45
    labels, count = detection.label_components(foreground, connectivity=connectivity)
    expected = _flood_fill_labels(foreground, connectivity)
    assert count == expected.max()
    # Same partition, same (raster-order) numbering.
    assert np.array_equal(labels, expected)


def test_label_components_long_snake_and_empty() -> None:
    snake = np.zeros((41, 41), dtype=bool)
    snake[::2, :] = True
    snake[1::4, -1] = True
    snake[3::4, 0] = True
    labels, count = detection.label_components(snake, connectivity=4)
    assert count == 1 and (labels[snake] == 1).all()
    assert detection.label_components(np.zeros((5, 5), dtype=bool)) == (pytest.approx(np.zeros((5, 5))), 0)
    with pytest.raises(TaskExecutionError, match="connectivity"):
        detection.label_components(snake, connectivity=6)


def test_detection_threshold_min_pixels_and_smoothing() -> None:
    rng = np.random.default_rng(5)
    noise = rng.normal(0.0, 1.0, (200, 200))
    # Pure noise: a 5-sigma threshold on the matched-filtered image finds (almost) nothing.
    assert detection.detect_sources(noise, 1.0, nsigma=5.0, smoothing_sigma=SIGMA).count <= 1
    # A faint star (S/N ~ 12 in the matched filter) is found only thanks to the smoothing.
    star = render_stars((200, 200), np.array([100.3]), np.array([80.6]), np.array([70.0]), SIGMA)
    found = detection.detect_sources(noise + star, 1.0, nsigma=5.0, smoothing_sigma=SIGMA)
    assert found.count == 1
    assert (found.peak_x[0], found.peak_y[0]) in {(100, 81), (100, 80), (101, 81), (101, 80)}
    assert 8 < found.peak_significance[0] < 16
    assert (found.labels[found.footprint_mask] == 1).all()
    assert detection.detect_sources(noise + star, 1.0, nsigma=5.0, smoothing_sigma=None).count == 0
    assert (
        detection.detect_sources(
            noise + star, 1.0, nsigma=5.0, smoothing_sigma=SIGMA, min_pixels=10_000
        ).count
        == 0
    )


def test_grow_mask_is_a_disc() -> None:
    seed = np.zeros((11, 11), dtype=bool)
    seed[5, 5] = True
    grown = detection.grow_mask(seed, 2)
    assert grown.sum() == 13 and grown[5, 3] and not grown[3, 3]
    assert np.array_equal(detection.grow_mask(seed, 0), seed)


# -- measurement -------------------------------------------------------------------------------------


def test_detect_and_measure_recovers_positions_fluxes_and_fwhm() -> None:
    rng = np.random.default_rng(7)
    field = star_field(rng, n_stars=40)
    bg = background.estimate_background(field.image, bin_size=64)
    image = field.image - bg.model
    x, y, flux, flux_err, fwhm, flags, x0, y0 = _measure(image, field.variance, bg.rms**2)
    index, distance = _nearest(x, y, field.x, field.y)
    assert len(x) == len(field.x) and np.unique(index).size == len(field.x)
    assert distance.max() < 0.5
    bright = field.flux[index] > 5e4
    assert np.median(distance[bright]) < 0.05
    # The Gaussian-windowed centroid beats the footprint's first moment.
    first = np.hypot(x0 - field.x[index], y0 - field.y[index])
    assert np.median(distance) < np.median(first)
    ratio = flux / field.flux[index]
    assert abs(np.median(ratio) - 1) < 0.01 and np.all(np.abs(ratio[bright] - 1) < 0.02)
    pulls = (flux - field.flux[index]) / flux_err
    assert 0.8 < np.std(pulls) < 1.25 and np.abs(pulls).max() < 4
    # The FWHM of the pixel-integrated Gaussian: sqrt(sigma² + 1/12) * 2.3548.
    assert np.nanmedian(fwhm[bright]) == pytest.approx(math.sqrt(SIGMA**2 + 1 / 12) * 2.3548, rel=0.02)
    assert (flags == 0).all()


def test_measurement_flags() -> None:
    shape = (100, 100)
    xs, ys = np.array([3.0, 50.0, 60.0, 30.0]), np.array([50.0, 50.0, 50.0, 30.0])
    image = render_stars(shape, xs, ys, np.full(4, 1e4), SIGMA)
    variance = np.ones(shape)
    labels = np.zeros(shape, dtype=np.int32)
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        labels[int(y) - 2 : int(y) + 3, int(x) - 2 : int(x) + 3] = i + 1
    usable = np.ones(shape, dtype=bool)
    usable[31, 31] = False
    saturated = np.zeros(shape, dtype=bool)
    saturated[30, 30] = True
    ap = measurement.aperture_photometry(
        image,
        variance,
        xs,
        ys,
        radius=8.0,
        annulus=(12.0, 16.0),
        usable=usable,
        saturated=saturated,
        labels=labels,
        own_labels=np.arange(1, 5),
    )
    flag = measurement.SourceFlag
    assert ap.flags[0] & flag.EDGE
    assert ap.flags[1] & flag.BLENDED and ap.flags[2] & flag.BLENDED
    assert ap.flags[3] == flag.BAD | flag.SATURATED
    with pytest.raises(TaskExecutionError, match="annulus"):
        measurement.aperture_photometry(image, variance, xs, ys, radius=8.0, annulus=(6.0, 9.0))
    empty = measurement.aperture_photometry(
        image, variance, np.zeros(0), np.zeros(0), radius=3, annulus=(4, 6)
    )
    assert empty.flux.size == 0


# -- photometric calibration -------------------------------------------------------------------------


def test_zero_point_from_reference_catalog() -> None:
    rng = np.random.default_rng(13)
    shape = (256, 256)
    wcs = tan_wcs(150.0, 2.2, shape, rotation_deg=20.0)
    field = star_field(rng, shape, n_stars=40, flux_range=(5e3, 3e5))
    true_zp = 28.3
    ref_mag = true_zp - 2.5 * np.log10(field.flux)
    # The reference catalog also holds stars off the image; a few catalog magnitudes are wrong.
    ref_ra, ref_dec = wcs.all_pix2world(field.x, field.y, 0)
    extra_ra, extra_dec = wcs.all_pix2world(rng.uniform(-300, 600, 30), rng.uniform(300, 600, 30), 0)
    ref_mag = ref_mag + rng.normal(0, 0.01, ref_mag.size)
    ref_mag[:3] -= 1.0
    bg = background.estimate_background(field.image, bin_size=64)
    x, y, flux, *_ = _measure(field.image - bg.model, field.variance, bg.rms**2)
    ra, dec = wcs.all_pix2world(x, y, 0)
    match = photocal.match_nearest(
        ra,
        dec,
        np.r_[ref_ra, extra_ra],
        np.r_[ref_dec, extra_dec],
        radius_arcsec=1.0,
    )
    assert len(match) == 40 and match.separation_arcsec.max() < 0.3
    zp = photocal.fit_zero_point(np.r_[ref_mag, np.zeros(30)][match.reference], flux[match.source])
    assert zp.value == pytest.approx(true_zp, abs=0.02)
    assert zp.n_matched == 40 and zp.n_used <= 37 and 0 < zp.error < 0.01
    assert photocal.flux_scale(zp.value, zp.value + 2.5) == pytest.approx(10.0)


def test_matching_prefers_closest_and_zero_point_errors() -> None:
    ra = np.array([10.0, 10.0 + 0.3 / 3600, 20.0])
    dec = np.array([0.0, 0.0, 0.0])
    match = photocal.match_nearest(
        ra, dec, np.array([10.0 + 0.25 / 3600]), np.array([0.0]), radius_arcsec=1.0
    )
    assert list(match.source) == [1] and list(match.reference) == [0]
    assert photocal.match_nearest(ra, dec, np.zeros(0), np.zeros(0), radius_arcsec=1.0).source.size == 0
    with pytest.raises(TaskExecutionError, match="positive flux"):
        photocal.fit_zero_point(np.array([20.0]), np.array([-5.0]))


# -- WCS cards ---------------------------------------------------------------------------------------


def test_wcs_cards_round_trip_exactly_through_fits() -> None:
    wcs = tan_wcs(150.123456789, 2.2, (300, 200), rotation_deg=33.3, scale_arcsec=0.4 / 3)
    cards = wcs_to_metadata(wcs)
    for key, value in cards.items():
        _card(key, value)  # the FITS formatter accepts every card exactly
    back = wcs_from_metadata({**cards, "EXPTIME": 30.0, "DATE-BEG": "2025-01-01T00:00:00"})
    x, y = np.array([0.0, 199.0, 57.3]), np.array([0.0, 299.0, 123.4])
    assert np.allclose(
        np.array(back.all_pix2world(x, y, 0)), np.array(wcs.all_pix2world(x, y, 0)), atol=1e-10, rtol=0
    )
    assert pixel_scale_arcsec(back) == pytest.approx(0.4 / 3)
    with pytest.raises(TaskExecutionError, match="lacks CRPIX1"):
        wcs_from_metadata({key: value for key, value in cards.items() if key != "CRPIX1"}, what="calexp")


# -- resampling --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kernel", ["lanczos3", "bilinear"])
def test_resampling_conserves_flux_and_maps_positions(kernel: resampling.Kernel) -> None:
    rng = np.random.default_rng(17)
    shape = (200, 200)
    src = tan_wcs(150.0, 2.2, shape, rotation_deg=10.0)
    dst = tan_wcs(150.0 + 3.3 / 3600, 2.2 - 2.1 / 3600, (220, 230), rotation_deg=-25.0, scale_arcsec=0.45)
    field = star_field(rng, shape, n_stars=25, sky=0.0, read_noise=3.0, flux_range=(2e4, 2e5))
    mask = np.zeros(shape, dtype=np.int32)
    warped = resampling.resample(field.image, field.variance, mask, src, dst, (220, 230), kernel=kernel)
    ra, dec = src.all_pix2world(field.x, field.y, 0)
    tx, ty = dst.all_world2pix(ra, dec, 0)
    inside = (tx > 20) & (tx < 210) & (ty > 20) & (ty < 200)
    inside &= np.array(
        [
            warped.covered[int(b) - 12 : int(b) + 13, int(a) - 12 : int(a) + 13].all()
            for a, b in zip(tx, ty, strict=True)
        ]
    )
    assert inside.sum() >= 8
    before = measurement.aperture_photometry(
        field.image, field.variance, field.x[inside], field.y[inside], radius=9.0, annulus=(10.0, 12.0)
    )
    after = measurement.aperture_photometry(
        np.nan_to_num(warped.image),
        np.nan_to_num(warped.variance),
        tx[inside],
        ty[inside],
        radius=9.0 / 1.125,
        annulus=(10 / 1.125, 12 / 1.125),
    )
    ratio = after.flux / before.flux
    assert abs(np.median(ratio) - 1) < 0.01 and np.all(np.abs(ratio - 1) < 0.02)
    x, y, _ = measurement.gaussian_centroids(
        np.nan_to_num(warped.image), tx[inside], ty[inside], sigma=SIGMA / 1.125
    )
    assert np.median(np.hypot(x - tx[inside], y - ty[inside])) < 0.05
    # Pixels the input does not reach are NO_DATA and NaN.
    uncovered = ~warped.covered
    assert uncovered.any() and np.isnan(warped.image[uncovered]).all()
    assert (warped.mask[uncovered] & MaskBit.NO_DATA).all()


def test_resampling_constant_image_masks_and_grid_step() -> None:
    shape = (64, 64)
    src = tan_wcs(150.0, 2.2, shape)
    dst = tan_wcs(150.0 + 5 / 3600, 2.2, shape, rotation_deg=45.0)
    image = np.full(shape, 7.0)
    variance = np.full(shape, 2.0)
    mask = np.zeros(shape, dtype=np.int32)
    mask[40:44, 20:24] = MaskBit.SAT
    mask[10:12, 10:12] = MaskBit.BAD
    image[10:12, 10:12] = np.nan
    exact = resampling.resample(image, variance, mask, src, dst, shape, conserve_flux=False)
    covered = exact.covered
    assert np.allclose(exact.image[covered], 7.0, rtol=1e-5)
    # Interpolation averages noise down, except within a pixel of the input's edge where the
    # truncated kernel is renormalized.
    u, v = resampling.pixel_mapping(src, dst, shape)
    interior = covered & (u > 3) & (u < 60) & (v > 3) & (v < 60) & ((u - 10.5) ** 2 + (v - 10.5) ** 2 > 25)
    assert np.all(exact.variance[interior] <= 2.0 + 1e-5) and np.median(exact.variance[covered]) < 1.7
    assert (exact.mask & MaskBit.SAT).any()
    assert not (exact.mask[covered] & MaskBit.BAD).any()
    coarse = resampling.resample(image, variance, mask, src, dst, shape, conserve_flux=False, grid_step=8)
    assert np.array_equal(coarse.covered, covered)
    assert np.allclose(np.nan_to_num(coarse.image), np.nan_to_num(exact.image), atol=1e-4)
    with pytest.raises(TaskExecutionError, match="unknown kernel"):
        resampling.resample(image, variance, mask, src, dst, shape, kernel="cubic")  # type: ignore[arg-type]


# -- coaddition --------------------------------------------------------------------------------------


def test_coadd_noise_falls_as_one_over_sqrt_n() -> None:
    rng = np.random.default_rng(19)
    shape = (128, 128)
    noise = {}
    for n in (1, 4, 16):
        images = [rng.normal(0.0, 10.0, shape) for _ in range(n)]
        result = coaddition.coadd_images(images, [np.full(shape, 100.0)] * n, [np.zeros(shape, np.int32)] * n)
        noise[n] = float(np.std(result.image))
        assert np.allclose(result.variance, 100.0 / n) and (result.n_images == n).all()
    assert noise[1] / noise[4] == pytest.approx(2.0, rel=0.15)
    assert noise[1] / noise[16] == pytest.approx(4.0, rel=0.15)


def test_coadd_weights_no_data_and_counts() -> None:
    shape = (4, 4)
    a = np.full(shape, 1.0)
    b = np.full(shape, 4.0)
    mask_a = np.zeros(shape, np.int32)
    mask_b = np.zeros(shape, np.int32)
    mask_a[:, 0] = MaskBit.NO_DATA
    a[:, 0] = np.nan
    mask_a[:, 1] = MaskBit.NO_DATA
    mask_b[:, 1] = MaskBit.NO_DATA
    mask_b[0, 3] = MaskBit.SAT
    result = coaddition.coadd_images([a, b], [np.full(shape, 1.0), np.full(shape, 3.0)], [mask_a, mask_b])
    # weights 1 and 1/3: (1 + 4/3) / (4/3) = 1.75, variance 1 / (4/3)
    assert result.image[0, 2] == pytest.approx(1.75) and result.variance[0, 2] == pytest.approx(0.75)
    assert result.image[0, 0] == pytest.approx(4.0) and result.n_images[0, 0] == 1
    assert np.isnan(result.image[:, 1]).all() and (result.mask[:, 1] == MaskBit.NO_DATA).all()
    assert (result.n_images[:, 1] == 0).all() and result.mask[0, 3] == MaskBit.SAT
    assert int(UNUSABLE) == MaskBit.BAD | MaskBit.NO_DATA
    with pytest.raises(TaskExecutionError, match="at least one input"):
        coaddition.coadd_images([], [], [])
    with pytest.raises(TaskExecutionError, match="input 1 has shapes"):
        coaddition.coadd_images([a, a[:2]], [a, a[:2]], [mask_a, mask_a[:2]])


def test_aperture_correction_measured_and_modelled() -> None:
    rng = np.random.default_rng(23)
    field = star_field(rng, n_stars=30, sky=200.0, flux_range=(2e4, 3e5))
    image = field.image - 200.0
    small = measurement.aperture_photometry(
        image, field.variance, field.x, field.y, radius=3.0, annulus=(12, 18)
    )
    large = measurement.aperture_photometry(
        image, field.variance, field.x, field.y, radius=9.0, annulus=(12, 18)
    )
    # The truth: the same apertures on one noise-free star (pixel-integrated, so a bit wider than SIGMA).
    clean = render_stars((64, 64), np.array([32.3]), np.array([31.8]), np.array([1.0]), SIGMA)
    ones = np.ones((64, 64))
    truth = (
        measurement.aperture_photometry(
            clean, ones, np.array([32.3]), np.array([31.8]), radius=9.0, annulus=(12, 18)
        ).flux
        / measurement.aperture_photometry(
            clean, ones, np.array([32.3]), np.array([31.8]), radius=3.0, annulus=(12, 18)
        ).flux
    )[0]
    measured, n_stars = measurement.aperture_correction(small, large, min_snr=30.0, min_stars=3)
    assert n_stars >= 20 and measured == pytest.approx(truth, rel=0.01)
    gaussian = 1.0 / (1.0 - math.exp(-9.0 / (2 * SIGMA**2)))
    fwhm = SIGMA * measurement.SIGMA_TO_FWHM
    model = measurement.aperture_correction(small, large, min_snr=30.0, min_stars=1000, fwhm=fwhm, radius=3.0)
    assert model == (pytest.approx(gaussian), 0)
    assert measurement.aperture_correction(small, large, min_snr=1e9, min_stars=3) == (1.0, 0)


def test_weighted_zero_point() -> None:
    rng = np.random.default_rng(29)
    flux = np.exp(rng.uniform(math.log(1e3), math.log(1e5), 200))
    flux_err = np.sqrt(flux + 400.0)
    measured = flux + rng.normal(0.0, flux_err)
    ref_mag = 25.0 - 2.5 * np.log10(flux)
    weighted = photocal.fit_zero_point(ref_mag, measured, flux_err)
    plain = photocal.fit_zero_point(ref_mag, measured)
    assert weighted.value == pytest.approx(25.0, abs=3 * weighted.error)
    assert weighted.error < plain.error and weighted.n_used == plain.n_used
    with pytest.raises(TaskExecutionError, match="positive flux"):
        photocal.fit_zero_point(ref_mag[:2], measured[:2], np.zeros(2))


def test_coadd_accumulator_adds_regions() -> None:
    accumulator = coaddition.CoaddAccumulator((10, 10))
    accumulator.add(
        np.full((4, 5), 2.0), np.full((4, 5), 1.0), np.zeros((4, 5), np.int32), (slice(0, 4), slice(0, 5))
    )
    accumulator.add(
        np.full((4, 5), 4.0), np.full((4, 5), 1.0), np.zeros((4, 5), np.int32), (slice(2, 6), slice(3, 8))
    )
    result = accumulator.result()
    assert result.image[0, 0] == 2.0 and result.image[3, 4] == 3.0 and result.image[5, 7] == 4.0
    assert result.n_images[3, 4] == 2 and result.n_images.sum() == 40 and accumulator.n_inputs == 2
    assert result.covered_fraction == pytest.approx(0.36)
    with pytest.raises(TaskExecutionError, match="region of the output"):
        accumulator.add(
            np.zeros((3, 3)), np.zeros((3, 3)), np.zeros((3, 3), np.int32), (slice(0, 4), slice(0, 4))
        )
