"""DemoCam's camera model: detector layout, WCS, and the bias/flat/noise/sky truths shared by the simulator, the curated calibrations and the demo tasks."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from astropy.wcs import WCS

__all__ = [
    "BANDS",
    "BIAS_LEVEL_ADU",
    "CALIBRATION_START",
    "DETECTORS",
    "DETECTOR_SHAPE",
    "DETECTOR_NAMES",
    "EXPOSURE_TIME_S",
    "FLAT_EPOCH_STARTS",
    "GAP_PX",
    "INSTRUMENT_NAME",
    "MODEL_SEED",
    "PHYSICAL_FILTERS",
    "PIXEL_SCALE_ARCSEC",
    "PSF_SIGMA_PX",
    "DetectorGeometry",
    "bias_model",
    "detector",
    "detector_corners",
    "detector_wcs",
    "detector_wcs_cards",
    "flat_epoch",
    "flat_model",
    "gain",
    "instrumental_flux",
    "read_noise",
    "sky_level",
    "zero_point",
]

INSTRUMENT_NAME = "DemoCam"
"""The instrument's name in data IDs and collection names."""

DETECTOR_SHAPE = (256, 256)
"""Pixels per detector as a numpy shape (rows = y, columns = x)."""

GAP_PX = 10
"""Gap between neighbouring detectors, in pixels."""

PIXEL_SCALE_ARCSEC = 0.4
"""Pixel scale, arcsec per pixel (the same everywhere: no optical distortion)."""

PHYSICAL_FILTERS: Mapping[str, str] = {"g_demo": "g", "r_demo": "r", "i_demo": "i"}
"""Physical filter name -> band."""

BANDS: tuple[str, ...] = ("g", "r", "i")
"""The bands DemoCam observes in, bluest first."""

EXPOSURE_TIME_S = 30.0
"""The survey's science exposure time, seconds."""

PSF_SIGMA_PX = 1.6
"""Typical Gaussian PSF sigma, pixels (the simulator varies it a little per visit)."""

BIAS_LEVEL_ADU = 1000.0
"""Nominal bias level, ADU (each detector adds a small offset)."""

MODEL_SEED = 20240601
"""Seed of the fixed per-pixel patterns in the bias and flat models (the camera's "hardware")."""

CALIBRATION_START = datetime(2020, 1, 1, tzinfo=UTC)
"""When the camera was commissioned: the start of validity of its first calibrations (UTC)."""

FLAT_EPOCH_STARTS: tuple[datetime, ...] = (CALIBRATION_START, datetime(2026, 1, 1, tzinfo=UTC))
"""UTC start of each flat-field epoch; epoch ``i`` lasts until epoch ``i + 1`` starts (the last: forever)."""

_GAIN = (1.50, 1.60, 1.45, 1.55)
"""Gain per detector, e-/ADU."""

_READ_NOISE = (5.0, 5.5, 4.8, 5.2)
"""Read noise per detector, electrons."""

_SKY_RATE = {"g": 20.0, "r": 35.0, "i": 50.0}
"""Sky background per band, electrons per second per pixel."""

_ZERO_POINT = {"g": 27.0, "r": 27.2, "i": 26.9}
"""AB magnitude giving 1 electron per second, per band."""


@dataclass(frozen=True, slots=True)
class DetectorGeometry:
    """One detector's place in the focal plane."""

    id: int
    """Detector id (the ``detector`` data ID value)."""
    name: str
    """Detector name, ``S<row><column>``."""
    row: int
    """Grid row (0 = bottom, towards -y)."""
    column: int
    """Grid column (0 = left, towards -x)."""
    center_x: float
    """Focal-plane x of the detector centre relative to the boresight, pixels."""
    center_y: float
    """Focal-plane y of the detector centre relative to the boresight, pixels."""

    @property
    def shape(self) -> tuple[int, int]:
        """Pixels as a numpy shape (y, x)."""
        return DETECTOR_SHAPE

    def focal_plane(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Focal-plane coordinates (pixels from the boresight) of 0-based detector pixel positions."""
        cy = (DETECTOR_SHAPE[0] - 1) / 2
        cx = (DETECTOR_SHAPE[1] - 1) / 2
        return x - cx + self.center_x, y - cy + self.center_y


def _layout() -> tuple[DetectorGeometry, ...]:
    pitch_y = DETECTOR_SHAPE[0] + GAP_PX
    pitch_x = DETECTOR_SHAPE[1] + GAP_PX
    result = []
    for row in range(2):
        for column in range(2):
            result.append(
                DetectorGeometry(
                    id=row * 2 + column,
                    name=f"S{row}{column}",
                    row=row,
                    column=column,
                    center_x=(column - 0.5) * pitch_x,
                    center_y=(row - 0.5) * pitch_y,
                )
            )
    return tuple(result)


DETECTORS: tuple[DetectorGeometry, ...] = _layout()
"""The four science detectors, by id."""

DETECTOR_NAMES: tuple[str, ...] = tuple(d.name for d in DETECTORS)
"""Detector names by id."""


def detector(detector_id: int) -> DetectorGeometry:
    """The geometry of one detector; `KeyError` for an id DemoCam does not have."""
    if not 0 <= detector_id < len(DETECTORS):
        raise KeyError(f"DemoCam has detectors 0..{len(DETECTORS) - 1}; got {detector_id!r}.")
    return DETECTORS[detector_id]


# -- astrometry ------------------------------------------------------------------------------------


def detector_wcs_cards(ra: float, dec: float, sky_angle: float, detector_id: int) -> dict[str, Any]:
    """FITS TAN WCS cards of one detector for a pointing.

    Parameters
    ----------
    ra, dec
        Boresight, degrees.
    sky_angle
        Position angle of the focal-plane +y axis, degrees east of north.
    detector_id
        The detector.

    Returns
    -------
    cards
        ``CTYPE1/2``, ``CUNIT1/2``, ``CRVAL1/2`` (the boresight), ``CRPIX1/2`` (the boresight in this
        detector's 1-based pixel coordinates) and ``CD1_1..CD2_2`` (degrees per pixel). Numbers are
        rounded to 12 significant digits, so that a FITS header holds them exactly and the WCS
        built from a header equals `detector_wcs`.
    """
    geom = detector(detector_id)
    scale = PIXEL_SCALE_ARCSEC / 3600.0
    theta = math.radians(sky_angle)
    cos, sin = math.cos(theta), math.sin(theta)
    cy = (DETECTOR_SHAPE[0] - 1) / 2
    cx = (DETECTOR_SHAPE[1] - 1) / 2
    return {
        "CTYPE1": "RA---TAN",
        "CTYPE2": "DEC--TAN",
        "CUNIT1": "deg",
        "CUNIT2": "deg",
        "CRVAL1": _exact(ra),
        "CRVAL2": _exact(dec),
        "CRPIX1": _exact(cx - geom.center_x + 1.0),
        "CRPIX2": _exact(cy - geom.center_y + 1.0),
        "CD1_1": _exact(-scale * cos),
        "CD1_2": _exact(scale * sin),
        "CD2_1": _exact(scale * sin),
        "CD2_2": _exact(scale * cos),
    }


def _exact(value: float) -> float:
    """``value`` rounded to 12 significant digits (short enough for a FITS card to hold exactly)."""
    return float(f"{float(value):.12g}") + 0.0  # + 0.0 turns -0.0 into 0.0


def detector_wcs(ra: float, dec: float, sky_angle: float, detector_id: int) -> WCS:
    """The TAN WCS of one detector for a pointing (see `detector_wcs_cards` for the arguments)."""
    wcs = WCS(naxis=2)
    cards = detector_wcs_cards(ra, dec, sky_angle, detector_id)
    wcs.wcs.ctype = [cards["CTYPE1"], cards["CTYPE2"]]
    wcs.wcs.cunit = [cards["CUNIT1"], cards["CUNIT2"]]
    wcs.wcs.crval = [cards["CRVAL1"], cards["CRVAL2"]]
    wcs.wcs.crpix = [cards["CRPIX1"], cards["CRPIX2"]]
    wcs.wcs.cd = [[cards["CD1_1"], cards["CD1_2"]], [cards["CD2_1"], cards["CD2_2"]]]
    wcs.pixel_shape = (DETECTOR_SHAPE[1], DETECTOR_SHAPE[0])
    return wcs


def detector_corners(ra: float, dec: float, sky_angle: float, detector_id: int) -> list[tuple[float, float]]:
    """Sky positions (RA, Dec in degrees) of a detector's four outer pixel corners, in pixel order (0,0), (w,0), (w,h), (0,h)."""
    height, width = DETECTOR_SHAPE
    xs = np.array([-0.5, width - 0.5, width - 0.5, -0.5])
    ys = np.array([-0.5, -0.5, height - 0.5, height - 0.5])
    sky_ra, sky_dec = detector_wcs(ra, dec, sky_angle, detector_id).wcs_pix2world(xs, ys, 0)
    return [(float(a), float(d)) for a, d in zip(sky_ra, sky_dec, strict=True)]


# -- photometry and noise --------------------------------------------------------------------------


def gain(detector_id: int) -> float:
    """Gain of a detector, electrons per ADU."""
    return _GAIN[detector(detector_id).id]


def read_noise(detector_id: int) -> float:
    """Read noise of a detector, electrons (rms per pixel)."""
    return _READ_NOISE[detector(detector_id).id]


def sky_level(band: str, exposure_time: float = EXPOSURE_TIME_S) -> float:
    """Mean sky background in one exposure, electrons per pixel."""
    return _SKY_RATE[_band(band)] * exposure_time


def zero_point(band: str) -> float:
    """AB magnitude that gives 1 electron per second in ``band`` (above the atmosphere, flat = 1)."""
    return _ZERO_POINT[_band(band)]


def instrumental_flux(
    mag: np.ndarray | float, band: str, exposure_time: float = EXPOSURE_TIME_S
) -> np.ndarray:
    """Total electrons a source of AB magnitude ``mag`` deposits in one exposure."""
    return np.asarray(exposure_time * 10.0 ** (-0.4 * (np.asarray(mag, dtype=float) - zero_point(band))))


def _band(band_or_filter: str) -> str:
    band = PHYSICAL_FILTERS.get(band_or_filter, band_or_filter)
    if band not in _SKY_RATE:
        raise KeyError(
            f"DemoCam has bands {', '.join(BANDS)} (filters {', '.join(PHYSICAL_FILTERS)}); got {band_or_filter!r}."
        )
    return band


# -- calibration truths ----------------------------------------------------------------------------


def _pixel_grid(detector_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Focal-plane x, y of every pixel centre of a detector (arrays of DETECTOR_SHAPE)."""
    y, x = np.mgrid[0 : DETECTOR_SHAPE[0], 0 : DETECTOR_SHAPE[1]]
    return detector(detector_id).focal_plane(x.astype(float), y.astype(float))


def bias_model(detector_id: int, seed: int = MODEL_SEED) -> np.ndarray:
    """The true bias of a detector, ADU (float32, DETECTOR_SHAPE): level + column ramp + fixed pattern."""
    return _bias(detector(detector_id).id, seed).copy()


@functools.lru_cache(maxsize=16)
def _bias(detector_id: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 1, detector_id])
    x = np.arange(DETECTOR_SHAPE[1], dtype=float)
    ramp = 2.0 * x / DETECTOR_SHAPE[1]
    pattern = rng.normal(0.0, 1.5, DETECTOR_SHAPE)
    bias = (BIAS_LEVEL_ADU + 5.0 * detector_id + ramp[np.newaxis, :] + pattern).astype(np.float32)
    bias.flags.writeable = False
    return bias


def flat_epoch(when: datetime) -> int:
    """The flat-field epoch (index into `FLAT_EPOCH_STARTS`) in force at an aware datetime; -1 before the first."""
    return sum(1 for start in FLAT_EPOCH_STARTS if when >= start) - 1


def flat_model(detector_id: int, physical_filter: str, epoch: int = 0, seed: int = MODEL_SEED) -> np.ndarray:
    """The true flat field of a detector in a filter (float32, DETECTOR_SHAPE); 1 at the boresight.

    A smooth radial fall-off from the boresight (vignetting, stronger in bluer filters) times a
    per-pixel response variation (~1 % rms) fixed by ``seed``, detector, filter and epoch (later
    epochs are the same pattern, slightly changed: dust moved, the vignetting deepened a little).
    """
    band_index = BANDS.index(_band(physical_filter))
    if not 0 <= epoch < len(FLAT_EPOCH_STARTS):
        raise KeyError(f"DemoCam has flat epochs 0..{len(FLAT_EPOCH_STARTS) - 1}; got {epoch!r}.")
    return _flat(detector(detector_id).id, band_index, epoch, seed).copy()


@functools.lru_cache(maxsize=64)
def _flat(detector_id: int, band_index: int, epoch: int, seed: int) -> np.ndarray:
    fx, fy = _pixel_grid(detector_id)
    half_diagonal = math.hypot(DETECTOR_SHAPE[1] + GAP_PX / 2, DETECTOR_SHAPE[0] + GAP_PX / 2)
    r2 = (fx**2 + fy**2) / half_diagonal**2
    depth = 0.12 - 0.03 * band_index + 0.02 * epoch
    vignetting = 1.0 - depth * r2
    base = np.random.default_rng([seed, 2, detector_id, band_index]).normal(0.0, 0.01, DETECTOR_SHAPE)
    response = 1.0 + base
    if epoch > 0:
        response += np.random.default_rng([seed, 3, detector_id, band_index, epoch]).normal(
            0.0, 0.003, DETECTOR_SHAPE
        )
    flat: np.ndarray = (vignetting * response).astype(np.float32)
    flat.flags.writeable = False
    return flat
