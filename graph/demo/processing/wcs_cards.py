"""An image's sky WCS kept as FITS cards in ``Image.metadata``: read it back and write it exactly."""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from ...errors import TaskExecutionError

__all__ = ["is_wcs_key", "pixel_scale_arcsec", "wcs_from_metadata", "wcs_to_metadata"]

_WCS_KEY = re.compile(
    r"(WCSAXES|RADESYS|EQUINOX|LONPOLE|LATPOLE|CTYPE[12]|CUNIT[12]|CRVAL[12]|CRPIX[12]|CDELT[12]|CD[12]_[12]|PC[12]_[12])"
)

_SIGNIFICANT_DIGITS = 13
"""Floats written to cards are rounded to this many significant digits so FITS reads them back exactly."""


def is_wcs_key(key: str) -> bool:
    """Whether a metadata key is one of the celestial WCS cards this module reads and writes."""
    return bool(_WCS_KEY.fullmatch(key))


def wcs_from_metadata(metadata: Mapping[str, Any], *, what: str = "image") -> WCS:
    """The celestial WCS described by the WCS cards in ``metadata`` (other cards are ignored).

    Raises `TaskExecutionError` naming ``what`` when the cards are missing or invalid.
    """
    cards = {key: value for key, value in metadata.items() if is_wcs_key(key)}
    missing = [
        key for key in ("CTYPE1", "CTYPE2", "CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2") if key not in cards
    ]
    if missing:
        raise TaskExecutionError(f"The {what} has no WCS: metadata lacks {', '.join(missing)}.")
    header = fits.Header()
    for key, value in cards.items():
        header[key] = value
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FITSFixedWarning)  # notices about absent optional cards
            wcs = WCS(header, naxis=2)
    except (ValueError, KeyError, TypeError, MemoryError) as err:  # astropy's WcsError is a ValueError
        raise TaskExecutionError(f"The {what}'s WCS cards are invalid: {err}") from err
    if not wcs.has_celestial:
        raise TaskExecutionError(
            f"The {what}'s WCS is not celestial (CTYPE {cards['CTYPE1']!r}, {cards['CTYPE2']!r})."
        )
    return wcs


def _exact(value: float) -> float:
    return float(f"{value:.{_SIGNIFICANT_DIGITS}g}")


def wcs_to_metadata(wcs: WCS) -> dict[str, Any]:
    """TAN-style cards (CTYPE, CUNIT, CRVAL, CRPIX, CD) of a celestial WCS, each exactly FITS-storable."""
    cd = wcs.wcs.cd if wcs.wcs.has_cd() else wcs.pixel_scale_matrix
    cards: dict[str, Any] = {}
    for axis in (1, 2):
        cards[f"CTYPE{axis}"] = str(wcs.wcs.ctype[axis - 1])
        cards[f"CUNIT{axis}"] = str(wcs.wcs.cunit[axis - 1]) or "deg"
        cards[f"CRVAL{axis}"] = _exact(float(wcs.wcs.crval[axis - 1]))
        cards[f"CRPIX{axis}"] = _exact(float(wcs.wcs.crpix[axis - 1]))
    for i in (1, 2):
        for j in (1, 2):
            cards[f"CD{i}_{j}"] = _exact(float(np.asarray(cd)[i - 1, j - 1]))
    return cards


def pixel_scale_arcsec(wcs: WCS) -> float:
    """Mean pixel scale at the reference point, arcsec per pixel (square root of the pixel area)."""
    return float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))) * 3600.0)
