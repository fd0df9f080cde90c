"""A small composite image type (pixels, mask, variance, metadata) and its storage-class delegate."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .storage_classes import StorageClassError

__all__ = ["Image", "ImageDelegate"]

_COMPONENTS = ("image", "mask", "variance", "metadata")


@dataclass
class Image:
    """An image with a mask and a variance plane of the same shape, plus free-form metadata."""

    image: np.ndarray
    """Pixel values."""
    mask: np.ndarray
    """Integer bit mask per pixel."""
    variance: np.ndarray
    """Per-pixel variance, in the units of ``image`` squared."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Header-like key-value pairs (FITS-card compatible scalars)."""

    def __post_init__(self) -> None:
        shapes = {self.image.shape, self.mask.shape, self.variance.shape}
        if len(shapes) != 1:
            raise StorageClassError(
                f"Image planes must have one shape; got image {self.image.shape}, mask {self.mask.shape}, "
                f"variance {self.variance.shape}."
            )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Image):
            return NotImplemented
        return (
            _same_pixels(self.image, other.image)
            and np.array_equal(self.mask, other.mask)
            and _same_pixels(self.variance, other.variance)
            and self.metadata == other.metadata
        )


def _same_pixels(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal arrays, where NaN (no data) equals NaN."""
    if a.shape != b.shape:
        return False
    floating = np.issubdtype(a.dtype, np.inexact) and np.issubdtype(b.dtype, np.inexact)
    return bool(np.array_equal(a, b, equal_nan=floating))


class ImageDelegate:
    """Splits an `Image` into components and assembles it; applies the ``bbox`` read parameter."""

    def get_component(self, obj: Image, component: str) -> Any:
        """One plane or the metadata."""
        if component not in _COMPONENTS:
            raise StorageClassError(f"Image has no component {component!r}; it has {', '.join(_COMPONENTS)}.")
        return getattr(obj, component)

    def disassemble(self, obj: Image) -> dict[str, Any]:
        """Every component by name."""
        return {name: getattr(obj, name) for name in _COMPONENTS}

    def assemble(self, components: Mapping[str, Any]) -> Image:
        """An `Image` from its components."""
        return Image(**{name: components[name] for name in _COMPONENTS})

    def apply_parameters(self, obj: Image, parameters: Mapping[str, Any]) -> Image:
        """The sub-image inside ``bbox`` = ((y_min, y_max), (x_min, x_max)), half-open."""
        if "bbox" not in parameters:
            return obj
        (y0, y1), (x0, x1) = parameters["bbox"]
        height, width = obj.image.shape
        if not (0 <= y0 <= y1 <= height and 0 <= x0 <= x1 <= width):
            raise StorageClassError(
                f"bbox {parameters['bbox']} is outside the image (rows 0..{height}, columns 0..{width})."
            )
        cut = (slice(y0, y1), slice(x0, x1))
        return Image(obj.image[cut], obj.mask[cut], obj.variance[cut], dict(obj.metadata))
