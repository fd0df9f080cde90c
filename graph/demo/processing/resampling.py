"""Resampling (warping) an image, its variance and mask from its own WCS onto another pixel grid."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from astropy.wcs import WCS

from ...errors import TaskExecutionError
from .background import interpolate_mesh
from .masks import MASK_DTYPE, UNUSABLE, MaskBit

__all__ = ["KERNELS", "ResampledImage", "kernel_weights", "pixel_mapping", "resample"]

Kernel = Literal["bilinear", "lanczos3"]

KERNELS: tuple[str, ...] = ("bilinear", "lanczos3")
"""Interpolation kernels `resample` knows."""

_PROPAGATED = MaskBit.SAT | MaskBit.BAD
"""Input mask bits carried to an output pixel from the input pixels next to it."""


@dataclass(frozen=True, slots=True)
class ResampledImage:
    """The three planes of an image on the target grid."""

    image: np.ndarray
    """Pixel values (float32); NaN where the mask has NO_DATA or BAD."""
    variance: np.ndarray
    """Variance (float32), ignoring the covariance resampling introduces between neighbours."""
    mask: np.ndarray
    """SAT/BAD propagated from the nearest input pixels; NO_DATA where the input does not reach."""

    @property
    def covered(self) -> np.ndarray:
        """True where the output pixel has data."""
        result: np.ndarray = (self.mask & UNUSABLE) == 0
        return result


def pixel_mapping(
    src_wcs: WCS, dst_wcs: WCS, shape: tuple[int, int], *, grid_step: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Input-pixel coordinates (x, y; 0-based) of every output pixel centre of a ``shape`` grid.

    With ``grid_step`` > 1 the WCS transforms run only on every ``grid_step``-th row and column
    (plus the last) and the rest is bilinear in between — ample for smooth (TAN) projections.
    """
    height, width = shape
    if grid_step < 1:
        raise TaskExecutionError(f"Resampling: grid_step must be >= 1, got {grid_step}.")
    nodes_y = np.unique(np.r_[np.arange(0, height, grid_step), height - 1]).astype(float)
    nodes_x = np.unique(np.r_[np.arange(0, width, grid_step), width - 1]).astype(float)
    gx, gy = np.meshgrid(nodes_x, nodes_y)
    ra, dec = dst_wcs.all_pix2world(gx, gy, 0)
    u, v = src_wcs.all_world2pix(ra, dec, 0)
    if grid_step == 1:
        return np.asarray(u, dtype=float), np.asarray(v, dtype=float)
    return interpolate_mesh(u, nodes_y, nodes_x, shape), interpolate_mesh(v, nodes_y, nodes_x, shape)


def kernel_weights(fraction: np.ndarray, kernel: Kernel) -> tuple[np.ndarray, np.ndarray]:
    """Tap offsets and weights for positions ``floor(p) + fraction``.

    Returns
    -------
    offsets, weights
        Integer offsets from ``floor(p)`` (taps) and weights of shape (taps,) + fraction.shape,
        normalized to sum to one.
    """
    if kernel == "bilinear":
        offsets = np.array([0, 1])
    elif kernel == "lanczos3":
        offsets = np.arange(-2, 4)
    else:
        raise TaskExecutionError(f"Resampling: unknown kernel {kernel!r}; known: {', '.join(KERNELS)}.")
    distance = fraction[np.newaxis, ...] - offsets.reshape((-1,) + (1,) * fraction.ndim)
    if kernel == "bilinear":
        weights = np.clip(1.0 - np.abs(distance), 0.0, None)
    else:
        weights = np.where(np.abs(distance) < 3.0, np.sinc(distance) * np.sinc(distance / 3.0), 0.0)
    weights /= weights.sum(axis=0, keepdims=True)
    return offsets, weights


def resample(
    image: np.ndarray,
    variance: np.ndarray,
    mask: np.ndarray,
    src_wcs: WCS,
    dst_wcs: WCS,
    shape: tuple[int, int],
    *,
    kernel: Kernel = "lanczos3",
    conserve_flux: bool = True,
    grid_step: int = 1,
) -> ResampledImage:
    """Resample an image onto the ``shape`` pixel grid of ``dst_wcs``.

    Each output pixel centre is mapped through the sky to input-pixel coordinates and interpolated
    with ``kernel``; taps on unusable input pixels are left out and the remaining weights
    renormalized. An output pixel whose 2x2 nearest input pixels are all unusable, or that falls
    outside the input, is NO_DATA (NaN). With ``conserve_flux`` values are multiplied by the
    Jacobian determinant of the mapping (input pixels per output pixel), so that sums over a
    source are the same on both grids when the pixel scales differ.

    Parameters
    ----------
    image, variance, mask
        Input planes (mask: `MaskBit` flags).
    src_wcs, dst_wcs
        Sky WCS of the input and of the output grid.
    shape
        Output (rows, columns).
    kernel
        ``"bilinear"`` or ``"lanczos3"``.
    conserve_flux
        Scale by the pixel-area ratio (keep flux per source rather than surface brightness).
    grid_step
        See `pixel_mapping`.
    """
    data = np.asarray(image, dtype=np.float64)
    var_in = np.asarray(variance, dtype=np.float64)
    mask_in = np.asarray(mask)
    in_height, in_width = data.shape
    u, v = pixel_mapping(src_wcs, dst_wcs, shape, grid_step=grid_step)
    inside = (u >= -0.5) & (u < in_width - 0.5) & (v >= -0.5) & (v < in_height - 0.5)
    usable_in = np.isfinite(data) & np.isfinite(var_in) & ((mask_in & UNUSABLE) == 0)

    base_x = np.floor(u).astype(int)
    base_y = np.floor(v).astype(int)
    offsets_x, weights_x = kernel_weights(u - base_x, kernel)
    offsets_y, weights_y = kernel_weights(v - base_y, kernel)
    total = np.zeros(shape)
    total_var = np.zeros(shape)
    weight_sum = np.zeros(shape)
    near_usable = np.zeros(shape, dtype=bool)
    out_mask = np.zeros(shape, dtype=MASK_DTYPE)
    for jy, dy in enumerate(offsets_y):
        rows = base_y + dy
        rows_ok = (rows >= 0) & (rows < in_height)
        rows_c = np.clip(rows, 0, in_height - 1)
        for ix, dx in enumerate(offsets_x):
            cols = base_x + dx
            cols_c = np.clip(cols, 0, in_width - 1)
            tap_ok = rows_ok & (cols >= 0) & (cols < in_width) & usable_in[rows_c, cols_c]
            weight = np.where(tap_ok, weights_y[jy] * weights_x[ix], 0.0)
            total += weight * np.where(tap_ok, data[rows_c, cols_c], 0.0)
            total_var += weight**2 * np.where(tap_ok, var_in[rows_c, cols_c], 0.0)
            weight_sum += weight
            if dy in (0, 1) and dx in (0, 1):
                near_usable |= tap_ok
                out_mask |= np.where(
                    rows_ok & (cols >= 0) & (cols < in_width), mask_in[rows_c, cols_c], 0
                ) & int(_PROPAGATED)
    covered = inside & near_usable & (weight_sum > 0.1)
    out_image = np.full(shape, np.nan)
    out_var = np.full(shape, np.nan)
    out_image[covered] = total[covered] / weight_sum[covered]
    out_var[covered] = total_var[covered] / weight_sum[covered] ** 2
    if conserve_flux:
        jacobian = _jacobian(u, v)
        out_image[covered] *= jacobian[covered]
        out_var[covered] *= jacobian[covered] ** 2
    out_mask[~covered] |= MaskBit.NO_DATA
    out_mask[covered] &= ~MASK_DTYPE(MaskBit.BAD)
    return ResampledImage(out_image.astype(np.float32), out_var.astype(np.float32), out_mask)


def _jacobian(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """|det d(u, v)/d(x, y)|: input pixel area per output pixel."""
    if min(u.shape) < 2:
        return np.ones_like(u)
    du_dy, du_dx = np.gradient(u)
    dv_dy, dv_dx = np.gradient(v)
    result: np.ndarray = np.abs(du_dx * dv_dy - du_dy * dv_dx)
    return result
