"""Instrument signature removal: raw ADU -> bias-subtracted, flat-fielded pixels with variance and mask."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import TaskExecutionError
from .masks import MASK_DTYPE, MaskBit

__all__ = ["IsrResult", "pixel_variance", "remove_instrument_signature"]


@dataclass(frozen=True, slots=True)
class IsrResult:
    """The three planes of a post-ISR image."""

    image: np.ndarray
    """Bias-subtracted, flat-fielded pixels, ADU (float32); NaN where the mask has BAD."""
    variance: np.ndarray
    """Per-pixel variance, ADU² (float32); NaN where the mask has BAD."""
    mask: np.ndarray
    """`MaskBit` flags (int32): raw mask bits ORed with SAT and BAD."""


def pixel_variance(signal_adu: np.ndarray, gain: float, read_noise: float) -> np.ndarray:
    """Variance of bias-subtracted pixels, ADU²: Poisson ``signal / gain`` plus ``(read_noise / gain)²``.

    Parameters
    ----------
    signal_adu
        Bias-subtracted pixel values, ADU (negative values count as zero signal).
    gain
        Electrons per ADU.
    read_noise
        Read noise, electrons rms.
    """
    if not gain > 0:
        raise TaskExecutionError(f"ISR: gain must be positive (electrons per ADU), got {gain!r}.")
    poisson = np.clip(np.asarray(signal_adu, dtype=np.float64), 0.0, None) / gain
    result: np.ndarray = poisson + (read_noise / gain) ** 2
    return result


def remove_instrument_signature(
    raw: np.ndarray,
    *,
    gain: float,
    read_noise: float,
    bias: np.ndarray | None = None,
    flat: np.ndarray | None = None,
    saturation: float | None = None,
    raw_mask: np.ndarray | None = None,
    min_flat: float = 0.05,
    bias_variance: np.ndarray | None = None,
    flat_variance: np.ndarray | None = None,
) -> IsrResult:
    """Subtract the bias, divide by the flat and build the variance and mask planes.

    Parameters
    ----------
    raw
        Raw pixel values, ADU.
    gain
        Electrons per ADU.
    read_noise
        Read noise, electrons rms.
    bias
        Master bias, ADU, same shape as ``raw``; None skips bias subtraction.
    flat
        Master flat (unit mean response), same shape; None skips flat-fielding.
    saturation
        Raw level (ADU, before bias subtraction) at and above which a pixel is flagged SAT; None: never.
    raw_mask
        Mask bits already set on the raw (kept).
    min_flat
        Flat values below this (or non-finite) make the pixel BAD instead of dividing by ~0.
    bias_variance, flat_variance
        Variance planes of the master bias (ADU²) and flat; added to the propagated variance.

    Returns
    -------
    result
        Image and variance in ADU / ADU² (variance divided by flat² like the image by flat).
    """
    data = np.asarray(raw, dtype=np.float64)
    planes = {"bias": bias, "flat": flat, "raw mask": raw_mask, "bias variance": bias_variance}
    planes["flat variance"] = flat_variance
    for name, plane in planes.items():
        if plane is not None and np.shape(plane) != data.shape:
            raise TaskExecutionError(f"ISR: {name} has shape {np.shape(plane)}; the raw has {data.shape}.")
    mask = (
        np.zeros(data.shape, dtype=MASK_DTYPE)
        if raw_mask is None
        else np.asarray(raw_mask, MASK_DTYPE).copy()
    )
    if saturation is not None:
        mask[data >= saturation] |= MaskBit.SAT
    signal = data - np.asarray(bias, dtype=np.float64) if bias is not None else data.copy()
    variance = pixel_variance(signal, gain, read_noise)
    if bias is not None and bias_variance is not None:
        variance += np.asarray(bias_variance, dtype=np.float64)
    if flat is not None:
        response = np.asarray(flat, dtype=np.float64)
        bad = ~np.isfinite(response) | (response < min_flat)
        mask[bad] |= MaskBit.BAD
        safe = np.where(bad, 1.0, response)
        signal /= safe
        variance /= safe**2
        if flat_variance is not None:
            # d(s/f) = ds/f - s df/f²: the flat's own noise adds (s/f)² var_f / f².
            variance += signal**2 * np.asarray(flat_variance, dtype=np.float64) / safe**2
    bad_pixels = (mask & MaskBit.BAD) != 0
    signal[bad_pixels] = np.nan
    variance[bad_pixels] = np.nan
    return IsrResult(signal.astype(np.float32), variance.astype(np.float32), mask)
