"""Mask-plane bits shared by every demo processing step, from ISR through coadd detection.

Pixels flagged ``BAD`` or ``NO_DATA`` hold NaN in both the image and the variance plane, so a step
that forgets the mask fails loudly instead of averaging in a made-up value. ``SAT`` pixels keep their
(clipped) value. Mask planes are ``int32``.
"""

from __future__ import annotations

import enum

import numpy as np

__all__ = ["MASK_DTYPE", "UNUSABLE", "MaskBit", "empty_mask"]


class MaskBit(enum.IntFlag):
    """One bit per pixel condition; a pixel's mask value is the OR of its conditions."""

    BAD = 1 << 0
    """Defective pixel: the flat field there is zero, negative or non-finite (image/variance NaN)."""
    SAT = 1 << 1
    """Saturated: the raw value reached the saturation level (value kept, not trustworthy)."""
    NO_DATA = 1 << 2
    """No input covered this pixel (warps and coadds outside every detector; image/variance NaN)."""
    DETECTED = 1 << 3
    """Part of a detected source footprint (above the detection threshold)."""


UNUSABLE = MaskBit.BAD | MaskBit.NO_DATA
"""Bits whose pixels carry no usable value (NaN); every statistic ignores them."""

MASK_DTYPE = np.int32
"""dtype of mask planes."""


def empty_mask(shape: tuple[int, ...]) -> np.ndarray:
    """An all-clear mask plane of ``shape``."""
    return np.zeros(shape, dtype=MASK_DTYPE)
