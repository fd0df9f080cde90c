"""Coaddition: the inverse-variance weighted mean of images on one pixel grid, with per-pixel input counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ...errors import TaskExecutionError
from .masks import MASK_DTYPE, UNUSABLE, MaskBit

__all__ = ["CoaddAccumulator", "CoaddResult", "coadd_images"]

_CARRIED = MaskBit.SAT
"""Input bits an output pixel keeps when any contributing input had them."""


@dataclass(frozen=True, slots=True)
class CoaddResult:
    """A coadd's planes and how many inputs made each pixel."""

    image: np.ndarray
    """Weighted mean (float32); NaN where no input has data."""
    variance: np.ndarray
    """1 / sum of weights (float32): the variance of the weighted mean; NaN where no input has data."""
    mask: np.ndarray
    """NO_DATA where no input contributes; SAT where any contributing input was saturated."""
    n_images: np.ndarray
    """Number of inputs contributing to each pixel (int16)."""

    @property
    def covered_fraction(self) -> float:
        """Fraction of pixels with at least one input."""
        return float(np.mean(self.n_images > 0))


class CoaddAccumulator:
    """Adds images (or sub-images) into running inverse-variance sums, one input at a time.

    Memory stays at a few planes of the output grid however many inputs there are, so the caller
    can read inputs one by one (deferred loading) and add each to a region of the output.
    """

    def __init__(self, shape: tuple[int, int], *, ignored_bits: int = UNUSABLE) -> None:
        self.shape = shape
        self.ignored_bits = ignored_bits
        self._weighted_sum = np.zeros(shape)
        self._weight_sum = np.zeros(shape)
        self._count = np.zeros(shape, dtype=np.int16)
        self._carried = np.zeros(shape, dtype=MASK_DTYPE)
        self.n_inputs = 0
        """Inputs added so far (whether or not they had usable pixels)."""

    def add(
        self,
        image: np.ndarray,
        variance: np.ndarray,
        mask: np.ndarray,
        region: tuple[slice, slice] | None = None,
    ) -> int:
        """Add one input covering ``region`` of the output (default: all of it); returns its usable pixels.

        A pixel contributes when it is finite, its variance positive and its mask free of ``ignored_bits``.
        """
        target = region or (slice(0, self.shape[0]), slice(0, self.shape[1]))
        expected = self._weight_sum[target].shape
        if np.shape(image) != expected or np.shape(variance) != expected or np.shape(mask) != expected:
            raise TaskExecutionError(
                f"Coadd: input {self.n_inputs} has shapes {np.shape(image)}/{np.shape(variance)}/"
                f"{np.shape(mask)}; its region of the output has {expected}."
            )
        data = np.asarray(image, dtype=np.float64)
        var = np.asarray(variance, dtype=np.float64)
        bits = np.asarray(mask)
        good = np.isfinite(data) & np.isfinite(var) & (var > 0) & ((bits & self.ignored_bits) == 0)
        weight = np.zeros(expected)
        np.divide(1.0, var, out=weight, where=good)
        self._weighted_sum[target] += np.where(good, data, 0.0) * weight
        self._weight_sum[target] += weight
        self._count[target] += good
        self._carried[target] |= np.where(good, bits & int(_CARRIED), 0).astype(MASK_DTYPE)
        self.n_inputs += 1
        return int(good.sum())

    def result(self) -> CoaddResult:
        """The weighted mean of everything added so far."""
        covered = self._count > 0
        out_image = np.full(self.shape, np.nan)
        out_var = np.full(self.shape, np.nan)
        out_image[covered] = self._weighted_sum[covered] / self._weight_sum[covered]
        out_var[covered] = 1.0 / self._weight_sum[covered]
        out_mask = self._carried.copy()
        out_mask[~covered] |= MaskBit.NO_DATA
        return CoaddResult(
            out_image.astype(np.float32), out_var.astype(np.float32), out_mask, self._count.copy()
        )


def coadd_images(
    images: Sequence[np.ndarray],
    variances: Sequence[np.ndarray],
    masks: Sequence[np.ndarray],
    *,
    ignored_bits: int = UNUSABLE,
) -> CoaddResult:
    """Inverse-variance weighted mean of images on the same grid (see `CoaddAccumulator`)."""
    if not images or not (len(images) == len(variances) == len(masks)):
        raise TaskExecutionError(
            f"Coadd: need at least one input and equal numbers of images, variances and masks; got "
            f"{len(images)}, {len(variances)}, {len(masks)}."
        )
    shape = np.shape(images[0])
    if len(shape) != 2:
        raise TaskExecutionError(f"Coadd: inputs must be 2-d images, the first has shape {shape}.")
    accumulator = CoaddAccumulator((shape[0], shape[1]), ignored_bits=ignored_bits)
    for image, variance, mask in zip(images, variances, masks, strict=True):
        accumulator.add(image, variance, mask)
    return accumulator.result()
