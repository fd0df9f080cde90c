"""FITS files for images (the Image storage class): pixels and metadata in the primary HDU, MASK and VARIANCE extensions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from ..formatter import Formatter, FormatterError
from ..image import Image
from ..storage_classes import StorageClass, StorageClassError
from ._checks import as_storage_class, check_component, check_write_type, library_errors

__all__ = ["FitsImageFormatter"]

_PLANE_HDUS = {"image": 0, "mask": "MASK", "variance": "VARIANCE"}
"""Component -> HDU holding it (index or EXTNAME)."""

_STRUCTURAL_KEYWORDS = frozenset(
    {"SIMPLE", "BITPIX", "NAXIS", "EXTEND", "XTENSION", "PCOUNT", "GCOUNT", "GROUPS", "BSCALE", "BZERO"}
    | {"BLANK", "EXTNAME", "END", "COMMENT", "HISTORY", "CONTINUE", "CHECKSUM", "DATASUM", ""}
)
"""Keywords FITS or astropy write themselves; metadata may not use them (in any case)."""

_STANDARD_KEYWORD = re.compile(r"[A-Z0-9_-]{1,8}")
_NAXIS_N = re.compile(r"NAXIS\d+")

# Warnings count as errors here only when the warning filter turns them into exceptions
# (otherwise astropy warns and then fails with one of the other errors).
_READ_ERRORS = (OSError, ValueError, TypeError, KeyError, IndexError, StorageClassError, AstropyWarning)

BBox = tuple[tuple[int, int], tuple[int, int]]


class FitsImageFormatter(Formatter):
    """An `Image` as a FITS file: image and metadata in the primary HDU, extensions MASK and VARIANCE.

    Metadata values must be scalars (bool, int, float, printable-ASCII str) that FITS stores exactly;
    keys that are not standard keywords (up to 8 of ``A-Z0-9_-``) are written as HIERARCH cards, which
    keep their case. Components are read alone, each from its own HDU. Read parameter: ``bbox`` =
    ``((y_min, y_max), (x_min, x_max))``, half-open, read through the HDU section so only that region
    is read; it applies to the full image and to the plane components.
    """

    extension = ".fits"
    parameter_names = frozenset({"bbox"})
    component_names = frozenset({"image", "mask", "variance", "metadata"})

    def read(
        self,
        path: Path,
        storage_class: StorageClass,
        component: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> Any:
        """The `Image` at ``path``, or one component of it; ``storage_class`` is checked for the full image only."""
        check_component(self, component)
        bbox = (parameters or {}).get("bbox")
        with (
            library_errors(self, "read", path, _READ_ERRORS),
            path.open("rb") as stream,
            fits.open(stream, memmap=False, lazy_load_hdus=True) as hdus,
        ):
            if component == "metadata":
                return _metadata(hdus[0].header)
            if component is not None:
                return self._plane(hdus[_PLANE_HDUS[component]], bbox, path)
            image = Image(
                image=self._plane(hdus[0], bbox, path),
                mask=self._plane(hdus["MASK"], bbox, path),
                variance=self._plane(hdus["VARIANCE"], bbox, path),
                metadata=_metadata(hdus[0].header),
            )
        return as_storage_class(self, image, storage_class, path)

    def write(self, obj: Any, path: Path) -> None:
        """Write an `Image`; `FormatterError` naming the key for metadata FITS cannot hold exactly."""
        check_write_type(self, obj, (Image,))
        header = fits.Header([_card(key, value) for key, value in obj.metadata.items()])
        with library_errors(self, "write", path, (ValueError, TypeError, KeyError, AstropyWarning)):
            hdus = fits.HDUList(
                [
                    fits.PrimaryHDU(obj.image, header=header),
                    fits.ImageHDU(obj.mask, name="MASK"),
                    fits.ImageHDU(obj.variance, name="VARIANCE"),
                ]
            )
            with path.open("wb") as stream:
                hdus.writeto(stream)

    @staticmethod
    def _plane(hdu: Any, bbox: Any, path: Path) -> np.ndarray:
        """The data of ``hdu`` in native byte order, only inside ``bbox`` if given."""
        if not hdu.shape:  # NAXIS = 0
            raise FormatterError(f"FitsImageFormatter: HDU {hdu.name or 0} of {path} holds no data.")
        if bbox is None:
            return _native(hdu.data)
        (y0, y1), (x0, x1) = _checked_bbox(bbox, hdu.shape, path)
        if y0 == y1 or x0 == x1:  # astropy's section returns the wrong shape for an empty region.
            return np.empty((y1 - y0, x1 - x0), dtype=hdu.section.dtype.newbyteorder("="))
        return _native(hdu.section[y0:y1, x0:x1])


def _card(key: Any, value: Any) -> Any:
    """The header card for metadata ``key``; `FormatterError` unless it reads back exactly."""
    if not isinstance(key, str):
        raise FormatterError(f"FitsImageFormatter: metadata key {key!r} is not a string.")
    if key.upper() in _STRUCTURAL_KEYWORDS or _NAXIS_N.fullmatch(key.upper()):
        raise FormatterError(f"FitsImageFormatter: metadata key {key!r} is a reserved FITS keyword.")
    if isinstance(value, np.generic):
        value = value.item()
    if not isinstance(value, bool | int | float | str):
        raise FormatterError(
            f"FitsImageFormatter: metadata {key!r} is a {type(value).__name__}; FITS headers hold only "
            "bool, int, float and str values."
        )
    keyword = key if _STANDARD_KEYWORD.fullmatch(key) else f"HIERARCH {key}"
    try:
        card = fits.Card(keyword, value)
        parsed = fits.Card.fromstring(card.image)
        exact = parsed.keyword == key and type(parsed.value) is type(value) and parsed.value == value
    except (ValueError, AstropyWarning) as err:
        raise FormatterError(f"FitsImageFormatter: metadata {key!r} cannot be a FITS card: {err}") from err
    if not exact:
        raise FormatterError(
            f"FitsImageFormatter: metadata {key!r} = {value!r} would read back as "
            f"{parsed.keyword!r} = {parsed.value!r}."
        )
    return card


def _metadata(header: Any) -> dict[str, Any]:
    """The metadata cards of a primary header (everything FITS itself did not put there)."""
    return {
        card.keyword: card.value
        for card in header.cards
        if card.keyword.upper() not in _STRUCTURAL_KEYWORDS and not _NAXIS_N.fullmatch(card.keyword.upper())
    }


def _checked_bbox(bbox: Any, shape: tuple[int, ...], path: Path) -> BBox:
    """``bbox`` as ((y0, y1), (x0, x1)) after checking it lies inside an image of ``shape``."""
    try:
        (y0, y1), (x0, x1) = bbox
        bounds = [
            int(v) for v in (y0, y1, x0, x1) if isinstance(v, int | np.integer) and not isinstance(v, bool)
        ]
    except (TypeError, ValueError):
        bounds = []
    if len(bounds) != 4:
        raise FormatterError(
            f"FitsImageFormatter: bbox must be ((y_min, y_max), (x_min, x_max)), not {bbox!r}."
        )
    y0, y1, x0, x1 = bounds
    if len(shape) != 2 or not (0 <= y0 <= y1 <= shape[0] and 0 <= x0 <= x1 <= shape[1]):
        raise FormatterError(
            f"FitsImageFormatter: bbox {bbox!r} is not inside the image of shape {shape} in {path}."
        )
    return (y0, y1), (x0, x1)


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` in native byte order (FITS data is big-endian), swapped in place when possible."""
    if array.dtype.isnative:
        return array
    if array.flags.writeable:
        return array.byteswap(inplace=True).view(array.dtype.newbyteorder("="))
    return array.astype(array.dtype.newbyteorder("="))
