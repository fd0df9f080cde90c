"""Sky background: a mesh of sigma-clipped medians interpolated back to full resolution, then subtracted."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from astropy.stats import sigma_clipped_stats

from ...errors import NoWorkFound, TaskExecutionError
from .masks import UNUSABLE, MaskBit

__all__ = ["Background", "estimate_background", "interpolate_mesh", "mesh_edges"]

_log = logging.getLogger(__name__)

DEFAULT_IGNORED = UNUSABLE | MaskBit.SAT | MaskBit.DETECTED
"""Mask bits whose pixels do not enter the background estimate by default."""


@dataclass(frozen=True, slots=True)
class Background:
    """A background model and its noise, on the image's pixel grid and on the mesh."""

    model: np.ndarray
    """Background level at every pixel (bilinear between mesh-cell centres), image units."""
    rms: np.ndarray
    """Background noise (robust standard deviation) at every pixel, image units."""
    mesh: np.ndarray
    """Sigma-clipped median of each mesh cell, shape (cells in y, cells in x)."""
    mesh_rms: np.ndarray
    """Robust standard deviation of each mesh cell."""
    bin_size: int
    """Mesh cell size, pixels."""

    @property
    def mean(self) -> float:
        """Mean background level over the image."""
        return float(np.mean(self.model))

    @property
    def mean_rms(self) -> float:
        """Mean background noise over the image."""
        return float(np.mean(self.rms))


def mesh_edges(length: int, bin_size: int) -> np.ndarray:
    """Cell boundaries along one axis: 0, bin_size, 2 bin_size, ..., length (the last cell may be short).

    A last cell shorter than half a bin is merged into its neighbour.
    """
    if bin_size < 1:
        raise TaskExecutionError(f"Background: bin_size must be a positive number of pixels, got {bin_size}.")
    edges = [*range(0, length, bin_size), length]
    if len(edges) > 2 and edges[-1] - edges[-2] < bin_size / 2:
        del edges[-2]
    return np.asarray(edges)


def interpolate_mesh(
    mesh: np.ndarray, centers_y: np.ndarray, centers_x: np.ndarray, shape: tuple[int, int]
) -> np.ndarray:
    """Bilinear interpolation of mesh values at cell centres onto every pixel of ``shape``.

    Beyond the outermost cell centres the nearest centre's value is kept (no extrapolation).
    """
    fy = np.interp(np.arange(shape[0]), centers_y, np.arange(len(centers_y), dtype=float))
    fx = np.interp(np.arange(shape[1]), centers_x, np.arange(len(centers_x), dtype=float))
    iy0 = np.minimum(np.floor(fy).astype(int), len(centers_y) - 1)
    ix0 = np.minimum(np.floor(fx).astype(int), len(centers_x) - 1)
    iy1 = np.minimum(iy0 + 1, len(centers_y) - 1)
    ix1 = np.minimum(ix0 + 1, len(centers_x) - 1)
    wy = (fy - iy0)[:, np.newaxis]
    wx = (fx - ix0)[np.newaxis, :]
    top = mesh[iy0][:, ix0] * (1 - wx) + mesh[iy0][:, ix1] * wx
    bottom = mesh[iy1][:, ix0] * (1 - wx) + mesh[iy1][:, ix1] * wx
    result: np.ndarray = top * (1 - wy) + bottom * wy
    return result


def estimate_background(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    bin_size: int = 64,
    clip_sigma: float = 3.0,
    clip_iterations: int = 5,
    ignored_bits: int = DEFAULT_IGNORED,
    min_good_fraction: float = 0.2,
) -> Background:
    """Estimate the background of ``image`` on a mesh of ``bin_size`` cells.

    Each cell's level is the sigma-clipped median of its usable pixels and its noise the
    sigma-clipped MAD-based standard deviation (unbiased for Gaussian noise). Cells with fewer than
    ``min_good_fraction`` usable pixels take the median of the other cells.

    Parameters
    ----------
    image
        Pixel values (NaN allowed where masked).
    mask
        `MaskBit` flags; pixels with any of ``ignored_bits`` (and non-finite pixels) are not used.
    bin_size
        Mesh cell size, pixels.
    clip_sigma, clip_iterations
        Sigma clipping threshold and maximum number of iterations.
    """
    data = np.asarray(image, dtype=np.float64)
    if data.ndim != 2:
        raise TaskExecutionError(f"Background: expected a 2-d image, got shape {data.shape}.")
    good = np.isfinite(data)
    if mask is not None:
        good &= (np.asarray(mask) & ignored_bits) == 0
    edges_y = mesh_edges(data.shape[0], bin_size)
    edges_x = mesh_edges(data.shape[1], bin_size)
    shape = (len(edges_y) - 1, len(edges_x) - 1)
    mesh = np.full(shape, np.nan)
    mesh_rms = np.full(shape, np.nan)
    for j in range(shape[0]):
        for i in range(shape[1]):
            cell = (slice(edges_y[j], edges_y[j + 1]), slice(edges_x[i], edges_x[i + 1]))
            values = data[cell][good[cell]]
            if values.size < max(3, min_good_fraction * data[cell].size):
                continue
            _, median, std = sigma_clipped_stats(
                values, sigma=clip_sigma, maxiters=clip_iterations, stdfunc="mad_std"
            )
            mesh[j, i] = median
            mesh_rms[j, i] = std
    empty = ~np.isfinite(mesh)
    if empty.all():  # e.g. a patch barely touched by the visit: nothing to measure, not an error
        raise NoWorkFound(
            f"Background: no mesh cell of {bin_size} px has {min_good_fraction:.0%} usable pixels "
            f"(image {data.shape}, {int(good.sum())} usable pixels)."
        )
    if empty.any():
        _log.debug("Background: %d of %d mesh cells filled from the others.", int(empty.sum()), empty.size)
        mesh[empty] = np.median(mesh[~empty])
        mesh_rms[empty] = np.median(mesh_rms[~empty])
    centers_y = (edges_y[:-1] + edges_y[1:] - 1) / 2.0
    centers_x = (edges_x[:-1] + edges_x[1:] - 1) / 2.0
    model = interpolate_mesh(mesh, centers_y, centers_x, data.shape)
    rms = interpolate_mesh(mesh_rms, centers_y, centers_x, data.shape)
    return Background(model=model, rms=rms, mesh=mesh, mesh_rms=mesh_rms, bin_size=bin_size)
