"""Synthetic star fields for the demo science tests: Gaussian stars, sky, Poisson and read noise, TAN WCSs."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

_erf = np.vectorize(math.erf, otypes=[float])


def tan_wcs(
    ra: float,
    dec: float,
    shape: tuple[int, int],
    *,
    scale_arcsec: float = 0.4,
    rotation_deg: float = 0.0,
    crpix: tuple[float, float] | None = None,
) -> WCS:
    """A TAN WCS with north up (rotated by ``rotation_deg``), east left, reference point at the centre."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [ra, dec]
    wcs.wcs.crpix = list(crpix) if crpix else [(shape[1] + 1) / 2, (shape[0] + 1) / 2]
    scale = scale_arcsec / 3600.0
    theta = math.radians(rotation_deg)
    wcs.wcs.cd = [
        [-scale * math.cos(theta), scale * math.sin(theta)],
        [scale * math.sin(theta), scale * math.cos(theta)],
    ]
    wcs.pixel_shape = (shape[1], shape[0])
    return wcs


def render_stars(
    shape: tuple[int, int], x: np.ndarray, y: np.ndarray, flux: np.ndarray, sigma: float
) -> np.ndarray:
    """Circular Gaussian stars integrated over each pixel (exact, via erf), total ``flux`` each."""
    image = np.zeros(shape)
    radius = math.ceil(6 * sigma)
    norm = 1.0 / (math.sqrt(2.0) * sigma)
    for xc, yc, f in zip(x, y, flux, strict=True):
        x0, x1 = max(0, int(xc) - radius), min(shape[1], int(xc) + radius + 2)
        y0, y1 = max(0, int(yc) - radius), min(shape[0], int(yc) + radius + 2)
        if x0 >= x1 or y0 >= y1:
            continue
        ex = np.arange(x0, x1 + 1) - 0.5 - xc
        ey = np.arange(y0, y1 + 1) - 0.5 - yc
        px = np.diff(0.5 * _erf(ex * norm))
        py = np.diff(0.5 * _erf(ey * norm))
        image[y0:y1, x0:x1] += f * np.outer(py, px)
    return image


def random_positions(
    rng: np.random.Generator, shape: tuple[int, int], n: int, *, margin: float, min_separation: float
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random positions at least ``margin`` from the edges and ``min_separation`` apart."""
    xs: list[float] = []
    ys: list[float] = []
    for _ in range(100 * n):
        if len(xs) == n:
            break
        x = rng.uniform(margin, shape[1] - 1 - margin)
        y = rng.uniform(margin, shape[0] - 1 - margin)
        if all((x - a) ** 2 + (y - b) ** 2 >= min_separation**2 for a, b in zip(xs, ys, strict=True)):
            xs.append(x)
            ys.append(y)
    return np.array(xs), np.array(ys)


@dataclass
class StarField:
    """A noisy image of known stars, in ADU, with its true variance."""

    image: np.ndarray
    variance: np.ndarray
    x: np.ndarray
    y: np.ndarray
    flux: np.ndarray
    sky: np.ndarray
    sigma: float
    gain: float
    read_noise: float


def add_noise(
    rng: np.random.Generator, expected_adu: np.ndarray, gain: float, read_noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson (in electrons) plus Gaussian read noise; returns (noisy ADU, true variance ADU²)."""
    electrons = rng.poisson(np.clip(expected_adu, 0, None) * gain).astype(float)
    noisy = electrons / gain + rng.normal(0.0, read_noise / gain, expected_adu.shape)
    return noisy, np.clip(expected_adu, 0, None) / gain + (read_noise / gain) ** 2


def star_field(
    rng: np.random.Generator,
    shape: tuple[int, int] = (256, 256),
    *,
    n_stars: int = 40,
    sigma: float = 1.6,
    sky: float | np.ndarray = 500.0,
    gain: float = 1.5,
    read_noise: float = 5.0,
    flux_range: tuple[float, float] = (3e3, 3e5),
    margin: float = 20.0,
    min_separation: float = 16.0,
) -> StarField:
    """A field of ``n_stars`` isolated stars (log-uniform fluxes in ADU) on a sky level or map."""
    x, y = random_positions(rng, shape, n_stars, margin=margin, min_separation=min_separation)
    flux = np.exp(rng.uniform(math.log(flux_range[0]), math.log(flux_range[1]), x.size))
    sky_map = np.broadcast_to(np.asarray(sky, dtype=float), shape)
    expected = sky_map + render_stars(shape, x, y, flux, sigma)
    image, variance = add_noise(rng, expected, gain, read_noise)
    return StarField(image, variance, x, y, flux, np.array(sky_map), sigma, gain, read_noise)
