"""Source measurement on detected footprints: centroids, sizes (FWHM) and aperture fluxes with errors."""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clip, sigma_clipped_stats

from ...errors import TaskExecutionError

__all__ = [
    "SIGMA_TO_FWHM",
    "ApertureFlux",
    "aperture_correction",
    "SourceFlag",
    "Stamps",
    "adaptive_fwhm",
    "aperture_photometry",
    "cut_stamps",
    "first_moment_centroids",
    "gaussian_centroids",
]

SIGMA_TO_FWHM = 2.0 * math.sqrt(2.0 * math.log(2.0))
"""FWHM of a Gaussian in units of its sigma."""


class SourceFlag(enum.IntFlag):
    """Per-source measurement flags (the ``flags`` column of source tables)."""

    EDGE = 1 << 0
    """The aperture reaches past the image edge, or too little of the annulus is usable (< 5 pixels)."""
    BAD = 1 << 1
    """The aperture contains unusable (NaN) pixels; they count as zero flux."""
    SATURATED = 1 << 2
    """The aperture contains saturated pixels."""
    CENTROID = 1 << 3
    """The Gaussian-refined centroid failed to converge; the first-moment centroid is reported."""
    BLENDED = 1 << 4
    """Another source's footprint reaches into the aperture."""
    SHAPE = 1 << 5
    """The second-moment size failed; the FWHM is NaN."""


@dataclass(frozen=True, slots=True)
class Stamps:
    """Square cut-outs of an image around many positions, as (n, size, size) arrays."""

    values: np.ndarray
    """Pixel values (0 outside the image or where unusable)."""
    valid: np.ndarray
    """True where the stamp pixel lies inside the image and is usable."""
    inside: np.ndarray
    """True where the stamp pixel lies inside the image."""
    dx: np.ndarray
    """Column of each stamp pixel minus the position's x (broadcastable to values)."""
    dy: np.ndarray
    """Row of each stamp pixel minus the position's y (broadcastable to values)."""
    rows: np.ndarray
    """Image row of each stamp pixel (clipped into the image)."""
    cols: np.ndarray
    """Image column of each stamp pixel (clipped into the image)."""


def cut_stamps(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, radius: int, usable: np.ndarray | None = None
) -> Stamps:
    """Stamps of half-width ``radius`` centred on the pixels nearest to (``x``, ``y``)."""
    height, width = image.shape
    offsets = np.arange(-radius, radius + 1)
    cx = np.rint(np.asarray(x, dtype=float)).astype(int)
    cy = np.rint(np.asarray(y, dtype=float)).astype(int)
    rows = cy[:, None, None] + offsets[None, :, None]
    cols = cx[:, None, None] + offsets[None, None, :]
    inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
    rows_c = np.clip(rows, 0, height - 1)
    cols_c = np.clip(cols, 0, width - 1)
    values = np.asarray(image, dtype=np.float64)[rows_c, cols_c]
    valid = inside & np.isfinite(values)
    if usable is not None:
        valid &= usable[rows_c, cols_c]
    values = np.where(valid, values, 0.0)
    dx = cols - np.asarray(x, dtype=float)[:, None, None]
    dy = rows - np.asarray(y, dtype=float)[:, None, None]
    return Stamps(values, valid, inside, dx, dy, rows_c, cols_c)


def first_moment_centroids(
    image: np.ndarray, labels: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """Flux-weighted mean position of the positive pixels of each footprint (labels 1..count)."""
    data = np.asarray(image, dtype=np.float64)
    weights = np.where(np.isfinite(data) & (labels > 0), np.clip(data, 0.0, None), 0.0).ravel()
    rows, cols = np.indices(data.shape)
    flat_labels = labels.ravel()
    total = np.bincount(flat_labels, weights=weights, minlength=count + 1)[1:]
    sum_x = np.bincount(flat_labels, weights=weights * cols.ravel(), minlength=count + 1)[1:]
    sum_y = np.bincount(flat_labels, weights=weights * rows.ravel(), minlength=count + 1)[1:]
    # A footprint with no positive flux (impossible above a positive threshold) falls back to its mean pixel.
    npix = np.bincount(flat_labels, minlength=count + 1)[1:]
    mean_x = np.bincount(flat_labels, weights=cols.ravel().astype(float), minlength=count + 1)[1:]
    mean_y = np.bincount(flat_labels, weights=rows.ravel().astype(float), minlength=count + 1)[1:]
    positive = total > 0
    x = np.where(positive, sum_x / np.where(positive, total, 1.0), mean_x / np.maximum(npix, 1))
    y = np.where(positive, sum_y / np.where(positive, total, 1.0), mean_y / np.maximum(npix, 1))
    return x, y


def gaussian_centroids(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    sigma: float,
    usable: np.ndarray | None = None,
    iterations: int = 20,
    tolerance: float = 1e-4,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor ``XWIN``-style), refined from starting positions.

    Iterates ``x <- x + 2 sum(w I dx) / sum(w I)`` with a circular Gaussian window of ``sigma``
    centred on the current estimate; the fixed point is unbiased for symmetric sources and the
    window suppresses the noise of the footprint's outskirts.

    Returns
    -------
    x, y, converged
        Refined positions (the starting ones where the iteration failed) and which converged.
    """
    x0 = np.asarray(x, dtype=float).copy()
    y0 = np.asarray(y, dtype=float).copy()
    cx, cy = x0.copy(), y0.copy()
    radius = math.ceil(4 * sigma)
    active = np.ones(x0.size, dtype=bool)
    converged = np.zeros(x0.size, dtype=bool)
    for _ in range(iterations):
        if not active.any():
            break
        stamps = cut_stamps(image, cx[active], cy[active], radius, usable)
        weight = np.exp(-0.5 * (stamps.dx**2 + stamps.dy**2) / sigma**2) * stamps.valid
        wi = weight * stamps.values
        total = wi.sum(axis=(1, 2))
        ok = total > 0
        shift_x = np.zeros_like(total)
        shift_y = np.zeros_like(total)
        shift_x[ok] = 2.0 * (wi * stamps.dx).sum(axis=(1, 2))[ok] / total[ok]
        shift_y[ok] = 2.0 * (wi * stamps.dy).sum(axis=(1, 2))[ok] / total[ok]
        index = np.flatnonzero(active)
        cx[index] += shift_x
        cy[index] += shift_y
        failed = ~ok | (np.hypot(cx[index] - x0[index], cy[index] - y0[index]) > 2 * sigma + 1)
        done = ok & ~failed & (np.hypot(shift_x, shift_y) < tolerance)
        converged[index[done]] = True
        active[index[done | failed]] = False
    good = converged
    return np.where(good, cx, x0), np.where(good, cy, y0), good


def adaptive_fwhm(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    guess_sigma: float,
    usable: np.ndarray | None = None,
    iterations: int = 10,
) -> np.ndarray:
    """FWHM (pixels) from Gaussian-weighted second moments, adapting the weight to the source.

    For a Gaussian source of width s measured with a Gaussian weight of width w the weighted moment
    is m = s² w² / (s² + w²); inverting gives s, which becomes the next weight. Returns NaN where the
    iteration fails (too faint, or a negative moment).
    """
    n = np.size(x)
    weight_var = np.full(n, float(guess_sigma) ** 2)
    result = np.full(n, np.nan)
    radius = math.ceil(5 * guess_sigma)
    stamps = cut_stamps(image, np.asarray(x, float), np.asarray(y, float), radius, usable)
    r2 = stamps.dx**2 + stamps.dy**2
    ok = np.ones(n, dtype=bool)
    for _ in range(iterations):
        weight = np.exp(-0.5 * r2 / weight_var[:, None, None]) * stamps.valid
        wi = weight * stamps.values
        total = wi.sum(axis=(1, 2))
        ok &= total > 0
        moment = np.where(ok, 0.5 * (wi * r2).sum(axis=(1, 2)) / np.where(ok, total, 1.0), np.nan)
        ok &= (moment > 0) & (moment < weight_var)
        source_var = np.where(ok, moment * weight_var / np.where(ok, weight_var - moment, 1.0), np.nan)
        ok &= source_var < (radius / 2.0) ** 2
        weight_var = np.where(ok, source_var, weight_var)
    result[ok] = SIGMA_TO_FWHM * np.sqrt(weight_var[ok])
    return result


@dataclass(frozen=True, slots=True)
class ApertureFlux:
    """Circular-aperture photometry of many sources."""

    flux: np.ndarray
    """Flux inside the aperture minus the local background, image units x pixels."""
    flux_err: np.ndarray
    """1-sigma error of ``flux`` from the variance plane and the local background's uncertainty."""
    local_background: np.ndarray
    """Sigma-clipped median of the annulus, image units per pixel."""
    flags: np.ndarray
    """`SourceFlag` bits (EDGE, BAD, SATURATED, BLENDED) per source (int32)."""


def _aperture_fraction(dx: np.ndarray, dy: np.ndarray, radius: float, subpixels: int) -> np.ndarray:
    """Fraction of each pixel (offsets dx, dy of its centre) inside a circle of ``radius``."""
    sub = (np.arange(subpixels) + 0.5) / subpixels - 0.5
    sx = dx[..., None, None] + sub[None, :]
    sy = dy[..., None, None] + sub[:, None]
    result: np.ndarray = ((sx**2 + sy**2) <= radius**2).mean(axis=(-2, -1))
    return result


def aperture_photometry(
    image: np.ndarray,
    variance: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    *,
    radius: float,
    annulus: tuple[float, float],
    usable: np.ndarray | None = None,
    saturated: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    own_labels: np.ndarray | None = None,
    subpixels: int = 5,
    clip_sigma: float = 3.0,
) -> ApertureFlux:
    """Sum the pixels within ``radius`` of each position and subtract the annulus median times the area.

    Partial pixels at the aperture edge count by the fraction of a ``subpixels`` x ``subpixels``
    grid inside the circle. The error is sqrt(sum f² var + (area x err(local background))²), with
    the error of a median taken as 1.2533 sigma / sqrt(n).

    Parameters
    ----------
    image, variance
        Background-subtracted pixels and their variance.
    x, y
        Aperture centres, pixels.
    radius
        Aperture radius, pixels.
    annulus
        Inner and outer radii of the local-background annulus, pixels.
    usable
        Pixels with usable values (default: finite).
    saturated
        Saturated pixels (flag SATURATED when inside the aperture).
    labels, own_labels
        Footprint ids and each source's own id: annulus pixels on any footprint are excluded, and
        another footprint inside the aperture flags BLENDED.
    """
    inner, outer = annulus
    if not (0 < radius <= inner < outer):
        raise TaskExecutionError(
            f"Aperture photometry: need 0 < radius <= annulus inner < annulus outer; got radius {radius}, "
            f"annulus {annulus}."
        )
    data = np.asarray(image, dtype=np.float64)
    ok = np.isfinite(data) & np.isfinite(variance) if usable is None else usable & np.isfinite(data)
    xs = np.asarray(x, dtype=float)
    ys = np.asarray(y, dtype=float)
    n = xs.size
    flags = np.zeros(n, dtype=np.int32)
    if n == 0:
        empty = np.zeros(0)
        return ApertureFlux(empty, empty, empty, flags)

    ring_stamps = cut_stamps(data, xs, ys, math.ceil(outer) + 1, ok)
    r2 = ring_stamps.dx**2 + ring_stamps.dy**2
    in_ring = (r2 >= inner**2) & (r2 <= outer**2)
    ring_ok = in_ring & ring_stamps.valid
    if labels is not None:
        ring_ok &= labels[ring_stamps.rows, ring_stamps.cols] == 0
    values = ring_stamps.values.reshape(n, -1)
    masked = ~ring_ok.reshape(n, -1)
    n_ring = (~masked).sum(axis=1)
    background = np.zeros(n)
    background_err = np.zeros(n)
    measurable = n_ring >= 5
    if measurable.any():
        _, median, std = sigma_clipped_stats(
            values[measurable], mask=masked[measurable], sigma=clip_sigma, axis=1, stdfunc="mad_std"
        )
        background[measurable] = np.asarray(median, dtype=float)
        background_err[measurable] = 1.2533 * np.asarray(std, dtype=float) / np.sqrt(n_ring[measurable])

    stamp_radius = math.ceil(radius) + 1
    stamps = cut_stamps(data, xs, ys, stamp_radius, ok)
    fraction = _aperture_fraction(stamps.dx, stamps.dy, radius, subpixels)
    var = np.asarray(variance, dtype=np.float64)[stamps.rows, stamps.cols]
    var = np.where(stamps.valid, var, 0.0)
    area = fraction.sum(axis=(1, 2))
    raw_sum = (fraction * stamps.values).sum(axis=(1, 2))
    flux = raw_sum - area * background
    flux_err = np.sqrt((fraction**2 * var).sum(axis=(1, 2)) + (area * background_err) ** 2)

    in_aperture = fraction > 0
    edge = (in_aperture & ~stamps.inside).any(axis=(1, 2)) | ~measurable
    flags[edge] |= SourceFlag.EDGE
    flags[(in_aperture & stamps.inside & ~stamps.valid).any(axis=(1, 2))] |= SourceFlag.BAD
    if saturated is not None:
        sat = saturated[stamps.rows, stamps.cols] & stamps.inside & in_aperture
        flags[sat.any(axis=(1, 2))] |= SourceFlag.SATURATED
    if labels is not None and own_labels is not None:
        stamp_labels = labels[stamps.rows, stamps.cols]
        other = (stamp_labels > 0) & (stamp_labels != np.asarray(own_labels)[:, None, None])
        flags[(other & in_aperture & stamps.inside).any(axis=(1, 2))] |= SourceFlag.BLENDED
    return ApertureFlux(flux, flux_err, background, flags)


def aperture_correction(
    small: ApertureFlux,
    large: ApertureFlux,
    *,
    min_snr: float,
    min_stars: int,
    fwhm: float | None = None,
    radius: float | None = None,
    clip_sigma: float = 3.0,
) -> tuple[float, int]:
    """Factor turning small-aperture fluxes into total fluxes, and the number of stars that measured it.

    Per-star ratios ``large.flux / small.flux`` of unflagged sources whose small-aperture S/N is at
    least ``min_snr`` are sigma-clipped around their median (blends and background errors, which
    the large aperture magnifies, fall out) and averaged with inverse-variance weights, so the
    brightest stars dominate. With fewer than ``min_stars`` of them the Gaussian value
    ``1 / (1 - exp(-radius² / 2 sigma²))`` for a PSF of ``fwhm`` (pixels) at the small ``radius`` is
    used (0 stars); without those either, 1.
    """
    snr = np.divide(small.flux, small.flux_err, out=np.zeros_like(small.flux), where=small.flux_err > 0)
    good = (small.flags == 0) & (large.flags == 0) & (snr >= min_snr) & (small.flux > 0) & (large.flux > 0)
    if good.sum() >= max(min_stars, 1):
        ratio = large.flux[good] / small.flux[good]
        error = ratio * np.hypot(
            large.flux_err[good] / large.flux[good], small.flux_err[good] / small.flux[good]
        )
        clipped = sigma_clip(ratio, sigma=clip_sigma, maxiters=5, stdfunc="mad_std", cenfunc="median")
        keep = ~np.ma.getmaskarray(clipped)
        weights = 1.0 / np.maximum(error[keep], 1e-12) ** 2
        return float(np.sum(weights * ratio[keep]) / np.sum(weights)), int(keep.sum())
    if fwhm is not None and radius is not None and math.isfinite(fwhm) and fwhm > 0:
        sigma = fwhm / SIGMA_TO_FWHM
        return 1.0 / (1.0 - math.exp(-(radius**2) / (2.0 * sigma**2))), 0
    return 1.0, 0
