"""Source detection: PSF-smoothed significance, threshold, connected footprints (numpy union-find), peaks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import TaskExecutionError
from .masks import UNUSABLE

__all__ = [
    "Detections",
    "convolve_separable",
    "detect_sources",
    "gaussian_kernel_1d",
    "grow_mask",
    "label_components",
    "significance_map",
]


@dataclass(frozen=True, slots=True)
class Detections:
    """Footprints of the sources found above threshold and their peaks."""

    labels: np.ndarray
    """Footprint id per pixel (int32): 0 = background, 1..count = source."""
    count: int
    """Number of footprints."""
    npix: np.ndarray
    """Pixels in each footprint (index i is footprint i + 1)."""
    peak_x: np.ndarray
    """Column of each footprint's highest-significance pixel."""
    peak_y: np.ndarray
    """Row of each footprint's highest-significance pixel."""
    peak_significance: np.ndarray
    """Significance (smoothed S/N) at each peak."""

    @property
    def footprint_mask(self) -> np.ndarray:
        """True on every pixel that belongs to a footprint."""
        result: np.ndarray = self.labels > 0
        return result


def gaussian_kernel_1d(sigma: float, radius: int | None = None) -> np.ndarray:
    """A normalized 1-d Gaussian sampled at integer offsets -radius..radius (default radius ceil(4 sigma))."""
    if not sigma > 0:
        raise TaskExecutionError(f"Detection: smoothing sigma must be positive, got {sigma!r}.")
    radius = math.ceil(4 * sigma) if radius is None else radius
    offsets = np.arange(-radius, radius + 1, dtype=float)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    result: np.ndarray = kernel / kernel.sum()
    return result


def convolve_separable(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve ``image`` with ``outer(kernel, kernel)`` (odd-length 1-d kernel), zero outside the image."""
    if kernel.ndim != 1 or kernel.size % 2 != 1:
        raise TaskExecutionError(
            f"Detection: a separable kernel must be 1-d with odd length, got {kernel.shape}."
        )
    radius = kernel.size // 2
    data = np.asarray(image, dtype=np.float64)
    height, width = data.shape
    padded = np.pad(data, ((0, 0), (radius, radius)))
    rows = np.zeros_like(data)
    for k, weight in enumerate(kernel):
        rows += weight * padded[:, k : k + width]
    padded = np.pad(rows, ((radius, radius), (0, 0)))
    result = np.zeros_like(data)
    for k, weight in enumerate(kernel):
        result += weight * padded[k : k + height, :]
    return result


def significance_map(
    image: np.ndarray,
    noise_variance: np.ndarray | float,
    usable: np.ndarray | None = None,
    *,
    smoothing_sigma: float | None = None,
) -> np.ndarray:
    """Signal-to-noise of each pixel, after matched filtering with a Gaussian of ``smoothing_sigma``.

    With smoothing, S = (I * k) / sqrt(V * k²): the optimal point-source detection statistic for a
    Gaussian PSF of that width. Unusable pixels contribute neither signal nor noise.

    Parameters
    ----------
    image
        Background-subtracted pixels.
    noise_variance
        Per-pixel (or constant) noise variance, image units squared.
    usable
        Pixels allowed to contribute (default: finite image and variance).
    smoothing_sigma
        Gaussian sigma of the matched filter, pixels; None: no smoothing.
    """
    data = np.asarray(image, dtype=np.float64)
    variance = np.broadcast_to(np.asarray(noise_variance, dtype=np.float64), data.shape)
    ok = np.isfinite(data) & np.isfinite(variance) & (variance > 0)
    if usable is not None:
        ok &= usable
    signal = np.where(ok, data, 0.0)
    noise = np.where(ok, variance, 0.0)
    if smoothing_sigma:
        kernel = gaussian_kernel_1d(smoothing_sigma)
        signal = convolve_separable(signal, kernel)
        noise = convolve_separable(noise, kernel**2)
    result = np.zeros_like(signal)
    np.divide(signal, np.sqrt(noise), out=result, where=noise > 0)
    return result


def label_components(foreground: np.ndarray, *, connectivity: int = 8) -> tuple[np.ndarray, int]:
    """Label the connected regions of a boolean image without recursion (vectorized union-find).

    Every pair of touching foreground pixels is an edge; roots are hooked onto the smallest root
    they touch and paths are compressed by pointer jumping until no edge joins two trees.

    Parameters
    ----------
    foreground
        Pixels to group.
    connectivity
        4 (edges only) or 8 (edges and corners).

    Returns
    -------
    labels, count
        Region id per pixel (int32; 0 = not foreground, regions numbered 1..count in raster order of
        their first pixel) and the number of regions.
    """
    if connectivity not in (4, 8):
        raise TaskExecutionError(f"Detection: connectivity must be 4 or 8, got {connectivity!r}.")
    fg = np.asarray(foreground, dtype=bool)
    labels = np.zeros(fg.shape, dtype=np.int32)
    n = int(fg.sum())
    if n == 0:
        return labels, 0
    index = np.full(fg.shape, -1, dtype=np.int64)
    index[fg] = np.arange(n)
    offsets = [(0, 1), (1, 0)] + ([(1, 1), (1, -1)] if connectivity == 8 else [])
    height, width = fg.shape
    sources: list[np.ndarray] = []
    targets: list[np.ndarray] = []
    for dy, dx in offsets:
        a = index[0 : height - dy, max(0, -dx) : width - max(0, dx)]
        b = index[dy:height, max(0, dx) : width - max(0, -dx)]
        linked = (a >= 0) & (b >= 0)
        sources.append(a[linked])
        targets.append(b[linked])
    edge_a = np.concatenate(sources)
    edge_b = np.concatenate(targets)
    parent = np.arange(n, dtype=np.int64)
    while True:
        root_a = parent[edge_a]
        root_b = parent[edge_b]
        differ = root_a != root_b
        if not differ.any():
            break
        low = np.minimum(root_a[differ], root_b[differ])
        high = np.maximum(root_a[differ], root_b[differ])
        np.minimum.at(parent, high, low)
        while True:  # pointer jumping: every node points at its tree's root afterwards
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    _, compact = np.unique(parent, return_inverse=True)
    labels[fg] = compact.astype(np.int32) + 1
    return labels, int(compact.max()) + 1


def grow_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` dilated by a disc of ``radius`` pixels (by OR of shifted copies)."""
    grown = np.asarray(mask, dtype=bool).copy()
    if radius <= 0:
        return grown
    source = grown.copy()
    height, width = grown.shape
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if (dy, dx) == (0, 0) or dy * dy + dx * dx > radius * radius:
                continue
            ys = slice(max(0, dy), height + min(0, dy))
            yd = slice(max(0, -dy), height + min(0, -dy))
            xs = slice(max(0, dx), width + min(0, dx))
            xd = slice(max(0, -dx), width + min(0, -dx))
            grown[yd, xd] |= source[ys, xs]
    return grown


def detect_sources(
    image: np.ndarray,
    noise_variance: np.ndarray | float,
    mask: np.ndarray | None = None,
    *,
    nsigma: float = 5.0,
    smoothing_sigma: float | None = 1.6,
    min_pixels: int = 5,
    ignored_bits: int = UNUSABLE,
) -> Detections:
    """Find sources: pixels whose (smoothed) significance exceeds ``nsigma``, grouped into footprints.

    Parameters
    ----------
    image
        Background-subtracted pixels.
    noise_variance
        Background noise variance per pixel (e.g. the background RMS squared) or a constant.
    mask
        `MaskBit` flags; pixels with ``ignored_bits`` contribute nothing and are never detected.
    nsigma
        Detection threshold in units of the (smoothed) background noise.
    smoothing_sigma
        Gaussian sigma of the PSF-matched smoothing, pixels; None: no smoothing.
    min_pixels
        Footprints with fewer pixels are dropped.
    """
    data = np.asarray(image, dtype=np.float64)
    usable = np.isfinite(data)
    if mask is not None:
        usable &= (np.asarray(mask) & ignored_bits) == 0
    significance = significance_map(data, noise_variance, usable, smoothing_sigma=smoothing_sigma)
    labels, count = label_components((significance > nsigma) & usable)
    npix = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    keep = np.flatnonzero(npix >= min_pixels) + 1
    if keep.size < count:
        remap = np.zeros(count + 1, dtype=np.int32)
        remap[keep] = np.arange(1, keep.size + 1, dtype=np.int32)
        labels = remap[labels]
        npix = npix[keep - 1]
        count = int(keep.size)
    peak_y, peak_x, peak_value = _peaks(labels, count, significance)
    return Detections(labels, count, npix, peak_x, peak_y, peak_value)


def _peaks(labels: np.ndarray, count: int, values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and value of the maximum of ``values`` inside each footprint."""
    flat_labels = labels.ravel()
    inside = np.flatnonzero(flat_labels)
    order = np.lexsort((values.ravel()[inside], flat_labels[inside]))
    sorted_labels = flat_labels[inside][order]
    last = (
        np.flatnonzero(np.r_[sorted_labels[1:] != sorted_labels[:-1], True]) if count else np.array([], int)
    )
    best = inside[order][last]
    rows, cols = np.divmod(best, labels.shape[1])
    return rows, cols, values.ravel()[best]
