"""Photometric calibration: match sources to a reference catalog on the sky and fit the zero point."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clip

from ...errors import TaskExecutionError

__all__ = ["Match", "ZeroPoint", "fit_zero_point", "flux_scale", "match_nearest", "unit_vectors"]


@dataclass(frozen=True, slots=True)
class Match:
    """Pairs of (source, reference) indices, one reference per source and one source per reference."""

    source: np.ndarray
    """Index into the source list."""
    reference: np.ndarray
    """Index into the reference list."""
    separation_arcsec: np.ndarray
    """Angular separation of each pair, arcsec."""

    def __len__(self) -> int:
        return int(self.source.size)


@dataclass(frozen=True, slots=True)
class ZeroPoint:
    """A fitted photometric zero point: mag = value - 2.5 log10(flux)."""

    value: float
    """Sigma-clipped median (or weighted mean) of ref_mag + 2.5 log10(flux), mag."""
    error: float
    """Uncertainty of ``value``, mag (see `fit_zero_point`)."""
    scatter: float
    """Clipped standard deviation of the per-star zero points, mag."""
    n_matched: int
    """Matched stars offered to the fit."""
    n_used: int
    """Stars left after sigma clipping."""


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """(n, 3) Cartesian unit vectors of sky positions in degrees."""
    ra = np.radians(np.asarray(ra_deg, dtype=float))
    dec = np.radians(np.asarray(dec_deg, dtype=float))
    return np.stack([np.cos(dec) * np.cos(ra), np.cos(dec) * np.sin(ra), np.sin(dec)], axis=-1)


def match_nearest(
    ra1: np.ndarray,
    dec1: np.ndarray,
    ra2: np.ndarray,
    dec2: np.ndarray,
    *,
    radius_arcsec: float,
    chunk: int = 1024,
) -> Match:
    """Match each position of list 1 to its nearest neighbour in list 2 within ``radius_arcsec``.

    Brute force in chunks (callers pre-select references near the image); a reference claimed by
    several sources goes to the closest one.
    """
    v1 = unit_vectors(ra1, dec1)
    v2 = unit_vectors(ra2, dec2)
    if v1.shape[0] == 0 or v2.shape[0] == 0:
        empty = np.zeros(0, dtype=int)
        return Match(empty, empty, np.zeros(0))
    best = np.empty(v1.shape[0], dtype=int)
    best_dot = np.empty(v1.shape[0])
    for start in range(0, v1.shape[0], chunk):
        dots = v1[start : start + chunk] @ v2.T
        best[start : start + chunk] = np.argmax(dots, axis=1)
        best_dot[start : start + chunk] = np.max(dots, axis=1)
    separation = np.degrees(np.arccos(np.clip(best_dot, -1.0, 1.0))) * 3600.0
    within = np.flatnonzero(separation <= radius_arcsec)
    order = within[np.lexsort((separation[within], best[within]))]
    first = np.r_[True, best[order][1:] != best[order][:-1]] if order.size else np.zeros(0, dtype=bool)
    chosen = np.sort(order[first])
    return Match(chosen, best[chosen], separation[chosen])


def fit_zero_point(
    ref_mag: np.ndarray,
    flux: np.ndarray,
    flux_err: np.ndarray | None = None,
    *,
    ref_mag_err: float = 0.0,
    clip_sigma: float = 3.0,
    clip_iterations: int = 5,
) -> ZeroPoint:
    """Zero point from matched reference magnitudes and instrumental fluxes (positive fluxes only).

    Per-star zero points ``ref_mag + 2.5 log10(flux)`` are sigma-clipped around their median.
    Without ``flux_err`` the result is the median of the survivors and its error 1.2533 x their
    standard deviation / sqrt(n). With ``flux_err`` it is their inverse-variance weighted mean
    (per-star variance (1.0857 flux_err / flux)² + ``ref_mag_err``²) and its error the larger of
    the formal one and the scatter-based one.
    """
    mags = np.asarray(ref_mag, dtype=float)
    fluxes = np.asarray(flux, dtype=float)
    errors = None if flux_err is None else np.asarray(flux_err, dtype=float)
    good = np.isfinite(mags) & np.isfinite(fluxes) & (fluxes > 0)
    if errors is not None:
        good &= np.isfinite(errors) & (errors > 0)
    n_matched = int(good.sum())
    if n_matched == 0:
        raise TaskExecutionError(
            f"Photometric calibration: none of {mags.size} matched stars has a positive flux and a "
            "finite reference magnitude."
        )
    per_star = mags[good] + 2.5 * np.log10(fluxes[good])
    clipped = sigma_clip(per_star, sigma=clip_sigma, maxiters=clip_iterations, stdfunc="mad_std")
    keep = ~np.ma.getmaskarray(clipped)
    kept = per_star[keep]
    scatter = float(np.std(kept)) if kept.size > 1 else 0.0
    if errors is None:
        value = float(np.median(kept))
        error = 1.2533 * scatter / math.sqrt(kept.size) if kept.size > 1 else float("nan")
    else:
        variance = (2.5 / math.log(10.0) * errors[good][keep] / fluxes[good][keep]) ** 2 + ref_mag_err**2
        weights = 1.0 / variance
        value = float(np.sum(weights * kept) / np.sum(weights))
        formal = 1.0 / math.sqrt(float(np.sum(weights)))
        error = max(formal, scatter / math.sqrt(kept.size)) if kept.size > 1 else formal
    return ZeroPoint(value, error, scatter, n_matched, int(kept.size))


def flux_scale(zero_point: float, target_zero_point: float) -> float:
    """Factor turning fluxes with ``zero_point`` into fluxes with ``target_zero_point`` (same magnitudes)."""
    return float(10.0 ** (0.4 * (target_zero_point - zero_point)))
