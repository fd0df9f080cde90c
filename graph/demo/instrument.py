"""DemoCam as an `Instrument`: its registry records, raw-header translation, detector footprints and curated calibrations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

import numpy as np
from astropy.time import Time

from butler import DatasetType
from butler.image import Image

from ..errors import RawIngestError
from ..instrument import CuratedCalibration, DetectorInfo, Instrument, ObservationInfo
from . import camera

__all__ = ["RAW_HEADER_KEYS", "DemoCam"]

RAW_HEADER_KEYS: Mapping[str, type] = {
    "INSTRUME": str,
    "EXPID": int,
    "OBSID": str,
    "DETECTOR": int,
    "FILTER": str,
    "RA": float,
    "DEC": float,
    "ROTPA": float,
    "DATE-BEG": str,
    "DATE-END": str,
    "EXPTIME": float,
    "OBSTYPE": str,
    "PROGRAM": str,
    "ZENANGLE": float,
    "DAYOBS": int,
}
"""Primary-header keywords every DemoCam raw must have, with the type of their value."""

_BIAS_FRAMES = 20
"""How many bias frames the curated bias is (notionally) the mean of; sets its variance."""

_FLAT_VARIANCE = 1.0e-6
"""Variance of each curated flat-field pixel (relative response squared)."""


class DemoCam(Instrument):
    """The simulated four-detector camera of the quanta demo (see `graph.demo.camera`)."""

    name: ClassVar[str] = camera.INSTRUMENT_NAME
    detector_max: ClassVar[int] = len(camera.DETECTORS)
    exposure_max: ClassVar[int] = 99991231 * 100000 + 100000
    extra_default_collections: ClassVar[tuple[str, ...]] = ("refcats", "skymaps")

    @property
    def physical_filters(self) -> Mapping[str, str]:
        """``g_demo``, ``r_demo``, ``i_demo`` -> ``g``, ``r``, ``i``."""
        return camera.PHYSICAL_FILTERS

    @property
    def detectors(self) -> Sequence[DetectorInfo]:
        """S00, S01, S10, S11 (ids 0..3)."""
        return [DetectorInfo(d.id, d.name) for d in camera.DETECTORS]

    @property
    def calibration_dataset_types(self) -> tuple[DatasetType, ...]:
        """``bias`` (instrument, detector) and ``flat`` (instrument, detector, physical_filter), both Image."""
        return (
            DatasetType("bias", ("instrument", "detector"), "Image", is_calibration=True),
            DatasetType("flat", ("instrument", "detector", "physical_filter"), "Image", is_calibration=True),
        )

    # -- raws ---------------------------------------------------------------------------------------

    def translate_header(self, header: Mapping[str, Any], source: str = "header") -> ObservationInfo:
        """Read the `RAW_HEADER_KEYS` of a DemoCam raw; `RawIngestError` naming ``source`` and the key."""
        values: dict[str, Any] = {}
        for key, kind in RAW_HEADER_KEYS.items():
            if key not in header:
                raise RawIngestError(f"{source}: header has no {key!r} keyword (DemoCam raws need it).")
            value = header[key]
            ok = isinstance(value, kind) or (kind is float and isinstance(value, int))
            if isinstance(value, bool) or not ok:
                raise RawIngestError(
                    f"{source}: header {key} = {value!r} should be {kind.__name__}, not {type(value).__name__}."
                )
            values[key] = float(value) if kind is float else value
        if values["INSTRUME"] != self.name:
            raise RawIngestError(f"{source}: INSTRUME = {values['INSTRUME']!r}, not {self.name!r}.")
        if values["FILTER"] not in self.physical_filters:
            raise RawIngestError(
                f"{source}: FILTER = {values['FILTER']!r} is not a DemoCam filter "
                f"({', '.join(self.physical_filters)})."
            )
        if not 0 <= values["DETECTOR"] < self.detector_max:
            raise RawIngestError(
                f"{source}: DETECTOR = {values['DETECTOR']!r}; DemoCam has detectors 0..{self.detector_max - 1}."
            )
        if values["EXPID"] // 100000 != values["DAYOBS"]:
            raise RawIngestError(
                f"{source}: EXPID = {values['EXPID']} does not start with DAYOBS = {values['DAYOBS']} "
                "(exposure ids are YYYYMMDD * 100000 + sequence number)."
            )
        begin, end = (_tai_to_utc(values[k], k, source) for k in ("DATE-BEG", "DATE-END"))
        if end < begin:
            raise RawIngestError(
                f"{source}: DATE-END {values['DATE-END']} is before DATE-BEG {values['DATE-BEG']}."
            )
        return ObservationInfo(
            instrument=self.name,
            exposure=values["EXPID"],
            detector=values["DETECTOR"],
            obs_id=values["OBSID"],
            physical_filter=values["FILTER"],
            day_obs=values["DAYOBS"],
            begin=begin,
            end=end,
            exposure_time=values["EXPTIME"],
            observation_type=values["OBSTYPE"],
            science_program=values["PROGRAM"],
            zenith_angle=values["ZENANGLE"],
            tracking_ra=values["RA"],
            tracking_dec=values["DEC"],
            sky_angle=values["ROTPA"],
        )

    # -- geometry -----------------------------------------------------------------------------------

    def detector_corners(
        self, tracking_ra: float, tracking_dec: float, sky_angle: float, detector: int
    ) -> list[tuple[float, float]]:
        """The four outer pixel corners of a detector through its TAN WCS."""
        return camera.detector_corners(tracking_ra, tracking_dec, sky_angle, detector)

    # -- calibrations -------------------------------------------------------------------------------

    def curated_calibrations(self) -> list[CuratedCalibration]:
        """A bias per detector (valid from commissioning on) and a flat per detector, filter and epoch.

        Generated deterministically from the camera model; flat epoch ``i`` is valid from
        ``camera.FLAT_EPOCH_STARTS[i]`` until the next epoch starts (the last one: forever).
        """
        calibs = []
        for det in camera.DETECTORS:
            noise = camera.read_noise(det.id) / camera.gain(det.id)
            calibs.append(
                CuratedCalibration(
                    "bias",
                    {"instrument": self.name, "detector": det.id},
                    camera.CALIBRATION_START,
                    None,
                    _image(
                        camera.bias_model(det.id),
                        noise**2 / _BIAS_FRAMES,
                        {"OBSTYPE": "bias", "DETECTOR": det.id, "DETNAME": det.name, "BUNIT": "adu"},
                        camera.CALIBRATION_START,
                    ),
                )
            )
        starts = camera.FLAT_EPOCH_STARTS
        for epoch, start in enumerate(starts):
            end = starts[epoch + 1] if epoch + 1 < len(starts) else None
            for det in camera.DETECTORS:
                for physical_filter in self.physical_filters:
                    metadata = {
                        "OBSTYPE": "flat",
                        "DETECTOR": det.id,
                        "DETNAME": det.name,
                        "FILTER": physical_filter,
                        "FLATEPOC": epoch,
                    }
                    calibs.append(
                        CuratedCalibration(
                            "flat",
                            {"instrument": self.name, "detector": det.id, "physical_filter": physical_filter},
                            start,
                            end,
                            _image(
                                camera.flat_model(det.id, physical_filter, epoch),
                                _FLAT_VARIANCE,
                                metadata,
                                start,
                            ),
                        )
                    )
        return calibs


def _image(pixels: np.ndarray, variance: float, metadata: dict[str, Any], valid_from: datetime) -> Image:
    return Image(
        image=pixels,
        mask=np.zeros(pixels.shape, dtype=np.int32),
        variance=np.full(pixels.shape, variance, dtype=np.float32),
        metadata={"INSTRUME": camera.INSTRUMENT_NAME, **metadata, "CALIBDAT": valid_from.date().isoformat()},
    )


def _tai_to_utc(text: str, key: str, source: str) -> datetime:
    try:
        moment: datetime = Time(text, format="isot", scale="tai").utc.to_datetime()
    except ValueError as err:
        raise RawIngestError(
            f"{source}: {key} = {text!r} is not an ISO time (YYYY-MM-DDTHH:MM:SS[.fff]): {err}"
        ) from None
    return moment.replace(tzinfo=UTC)
