"""Step 1b: ``calibrate`` turns a visit's postISRCCD(s) of one detector into a calexp and its ``src`` catalog."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pyarrow as pa
from astropy.wcs import WCS

from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetRef
from butler.image import Image

from ...config import Config, PipelineTaskConfig, field
from ...config_fields import ConfigurableField
from ...connections import Input, Output, PipelineTaskConnections, PrerequisiteInput
from ...errors import TaskExecutionError
from ...quantum_context import QuantumContext
from ...task import PipelineTask, Struct, Task
from .. import camera
from ..processing import photocal
from ..processing.wcs_cards import wcs_from_metadata
from .source_extraction import (
    SourceDetectionTask,
    SourceMeasurementTask,
    Sources,
    SubtractBackgroundTask,
)

__all__ = [
    "CalibrateConfig",
    "CalibrateConnections",
    "CalibrateTask",
    "PhotoCalConfig",
    "PhotoCalResult",
    "PhotoCalTask",
    "image_fwhm",
]

MAX_SOURCES_PER_DETECTOR = 10_000
"""Source ids are ``(visit * 100 + detector) * MAX_SOURCES_PER_DETECTOR + n``, n = 1, 2, ..."""


class PhotoCalConfig(Config):
    """How the photometric zero point is fitted."""

    match_radius_arcsec: float = field(
        1.0, doc="Largest source-reference separation accepted as a match, arcsec."
    )
    min_snr: float = field(10.0, doc="Only unflagged sources with at least this aperture S/N enter the fit.")
    ref_mag_err: float = field(0.01, doc="Uncertainty of the reference magnitudes, mag (weights the fit).")
    min_matches: int = field(3, doc="Fewer matched stars than this is an error.")
    clip_sigma: float = field(3.0, doc="Sigma clipping threshold of the per-star zero points.")
    clip_iterations: int = field(5, doc="Maximum sigma-clipping iterations.")
    ref_mag_column: str = field(
        "{band}_mag",
        doc="Reference catalog column of the magnitude to calibrate against ('{band}' is substituted).",
    )


@dataclass(frozen=True, slots=True)
class PhotoCalResult:
    """What `PhotoCalTask.run` returns."""

    zero_point: photocal.ZeroPoint
    """The fitted zero point."""
    source_index: np.ndarray
    """Indices of the matched sources."""
    ref_index: np.ndarray
    """Reference catalog rows matched to them."""


class PhotoCalTask(Task):
    """Match sources to the reference catalog through the image WCS and fit the zero point."""

    ConfigClass = PhotoCalConfig
    _DefaultName = "photo_cal"
    config: PhotoCalConfig

    def run(
        self, sources: Sources, wcs: WCS, shape: tuple[int, int], refcat: pa.Table, band: str
    ) -> PhotoCalResult:
        """Match ``sources`` (on an image of ``shape`` with ``wcs``) to ``refcat`` and fit the ``band`` zero point."""
        config = self.config
        column = config.ref_mag_column.format(band=band)
        if column not in refcat.column_names:
            raise TaskExecutionError(
                f"PhotoCalTask: the reference catalog has no column {column!r} (columns: {', '.join(refcat.column_names)})."
            )
        ref_ra = refcat.column("ra").to_numpy()
        ref_dec = refcat.column("dec").to_numpy()
        ref_mag = refcat.column(column).to_numpy()
        # Only references that land on (or just off) the image can match.
        px, py = wcs.all_world2pix(ref_ra, ref_dec, 0)
        margin = 10.0
        near = np.flatnonzero(
            (px > -margin) & (px < shape[1] + margin) & (py > -margin) & (py < shape[0] + margin)
        )
        usable = np.flatnonzero((sources.flags == 0) & (sources.snr >= config.min_snr))
        ra, dec = wcs.all_pix2world(sources.x[usable], sources.y[usable], 0)
        match = photocal.match_nearest(
            ra, dec, ref_ra[near], ref_dec[near], radius_arcsec=config.match_radius_arcsec
        )
        if len(match) < config.min_matches:
            raise TaskExecutionError(
                f"PhotoCalTask: only {len(match)} of {usable.size} usable sources matched the {near.size} "
                f"reference stars on the image within {config.match_radius_arcsec} arcsec; need "
                f"{config.min_matches} (is the WCS right?)."
            )
        source_index = usable[match.source]
        ref_index = near[match.reference]
        zero_point = photocal.fit_zero_point(
            ref_mag[ref_index],
            sources.flux[source_index],
            sources.flux_err[source_index],
            ref_mag_err=config.ref_mag_err,
            clip_sigma=config.clip_sigma,
            clip_iterations=config.clip_iterations,
        )
        self.metadata["n_matched"] = zero_point.n_matched
        self.metadata["zero_point"] = zero_point.value
        self.log.info(
            "Zero point %.4f +- %.4f from %d of %d matched stars (median separation %.3f arcsec).",
            zero_point.value,
            zero_point.error,
            zero_point.n_used,
            zero_point.n_matched,
            float(np.median(match.separation_arcsec)),
        )
        return PhotoCalResult(zero_point, source_index, ref_index)


class CalibrateConnections(PipelineTaskConnections, dimensions=("instrument", "visit", "detector")):
    """A visit's postISRCCDs (one per exposure) of one detector in; calexp and src out."""

    post_isr = Input(
        name="postISRCCD",
        storage_class="Image",
        dimensions=("instrument", "exposure", "detector"),
        multiple=True,
        doc="Post-ISR images of the visit's exposures (summed when there are several).",
    )
    refcat = PrerequisiteInput(
        name="demo_refcat",
        storage_class="ArrowTable",
        dimensions=(),
        doc="Reference catalog: ra, dec (deg) and <band>_mag (AB) columns.",
    )
    calexp = Output(
        name="calexp",
        storage_class="Image",
        dimensions=("instrument", "visit", "detector"),
        doc="Background-subtracted image (ADU) with MAGZERO, BGMEAN, BGRMS, NSRC, FWHM, ... in metadata.",
    )
    src = Output(
        name="src",
        storage_class="ArrowTable",
        dimensions=("instrument", "visit", "detector"),
        doc="Sources measured on the calexp (see graph.demo.tasks.source_extraction.SOURCE_COLUMNS).",
    )


class CalibrateConfig(PipelineTaskConfig, connections=CalibrateConnections):
    """Sub-task configs and the calibration switches."""

    background = ConfigurableField(target=SubtractBackgroundTask, doc="Sky background estimation.")
    detection = ConfigurableField(target=SourceDetectionTask, doc="Source detection.")
    measurement = ConfigurableField(target=SourceMeasurementTask, doc="Centroids, FWHM and aperture fluxes.")
    photo_cal = ConfigurableField(target=PhotoCalTask, doc="Reference matching and zero point.")
    background_iterations: int = field(
        2, doc="Background estimates; each after the first masks the sources the previous pass detected."
    )
    do_photo_cal: bool = field(True, doc="Fit the zero point (without it calexps carry no MAGZERO).")
    require_flat_fielded: bool = field(
        True,
        doc="Refuse postISRCCDs that were not flat-fielded (ISRFLAT false): their zero point would vary.",
    )
    min_fwhm_snr: float = field(
        50.0, doc="Unflagged sources with at least this S/N (at least the 3 best) set the image FWHM."
    )


class CalibrateTask(PipelineTask):
    """Background, detection, measurement and photometric calibration of one detector of one visit.

    The background is estimated ``background_iterations`` times, each pass masking the footprints
    the previous detection found, then sources are detected above ``detection.nsigma`` times the
    background RMS, measured, matched to the reference catalog and used to fit the zero point
    (MAGZERO: AB mag of 1 ADU in the calexp).
    """

    ConfigClass = CalibrateConfig
    _DefaultName = "calibrate"
    config: CalibrateConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.background = cast(SubtractBackgroundTask, self.make_subtask("background"))
        self.detection = cast(SourceDetectionTask, self.make_subtask("detection"))
        self.measurement = cast(SourceMeasurementTask, self.make_subtask("measurement"))
        if self.config.do_photo_cal:
            self.photo_cal = cast(PhotoCalTask, self.make_subtask("photo_cal"))

    def run_quantum(
        self,
        context: QuantumContext,
        inputs: Mapping[str, list[DatasetRef]],
        outputs: Mapping[str, list[DatasetRef]],
    ) -> None:
        """Read the inputs and pass the visit id of the quantum to `run`."""
        values = context.get_inputs(self.connections, inputs)
        visit = _data_id_value(outputs["calexp"][0].data_id, "visit")
        context.put_outputs(self.connections, self.run(**values, visit=visit), outputs)

    def run(self, post_isr: list[Image], refcat: pa.Table | None = None, visit: int | None = None) -> Struct:
        """Calibrate one detector; ``visit`` defaults to the first exposure's EXPID (one-exposure visits)."""
        config = self.config
        exposure = self._combine(post_isr)
        metadata = dict(exposure.metadata)
        if config.require_flat_fielded and metadata.get("ISRFLAT") is False:
            raise TaskExecutionError(
                "CalibrateTask: the postISRCCD was not flat-fielded (ISRFLAT = F); set isr.do_flat or "
                "calibrate.require_flat_fielded = False."
            )
        visit = int(visit if visit is not None else metadata.get("EXPID", 0))
        detector = int(metadata.get("DETECTOR", 0))
        wcs = wcs_from_metadata(metadata, what="postISRCCD")

        with self.timer("characterize"):
            original = exposure
            for _ in range(max(1, config.background_iterations)):
                subtracted = self.background.run(original)
                found = self.detection.run(subtracted.image, subtracted.background.rms**2)
                original = Image(original.image, found.mask, original.variance, original.metadata)
            calexp = Image(subtracted.image.image, found.mask, exposure.variance, metadata)
            sources = self.measurement.run(calexp, found.detections)
        model = subtracted.background

        zero_point: photocal.ZeroPoint | None = None
        if config.do_photo_cal:
            if refcat is None:
                raise TaskExecutionError(
                    "CalibrateTask: do_photo_cal is set but no reference catalog was given."
                )
            band = camera.PHYSICAL_FILTERS.get(
                str(metadata.get("FILTER", "")), str(metadata.get("FILTER", ""))
            )
            with self.timer("photo_cal"):
                zero_point = self.photo_cal.run(sources, wcs, calexp.image.shape, refcat, band).zero_point

        if len(sources) >= MAX_SOURCES_PER_DETECTOR:
            raise TaskExecutionError(
                f"CalibrateTask: {len(sources)} sources on detector {detector}; ids allow "
                f"{MAX_SOURCES_PER_DETECTOR - 1} (raise detection.nsigma)."
            )
        ids = (visit * 100 + detector) * MAX_SOURCES_PER_DETECTOR + np.arange(1, len(sources) + 1)
        src = sources.to_table(ids, wcs, zero_point.value if zero_point else None)

        height, width = calexp.image.shape
        center_ra, center_dec = wcs.all_pix2world((width - 1) / 2.0, (height - 1) / 2.0, 0)
        metadata.update(
            {
                "VISIT": visit,
                "BGMEAN": round(model.mean, 6),
                "BGRMS": round(model.mean_rms, 6),
                "NSRC": len(sources),
                "APCORR": round(sources.aperture_correction, 6),
                "CENTRA": round(float(center_ra), 9),
                "CENTDEC": round(float(center_dec), 9),
            }
        )
        fwhm = image_fwhm(sources, config.min_fwhm_snr)
        if fwhm is not None:
            metadata["FWHM"] = round(fwhm, 6)
        if zero_point is not None:
            metadata["MAGZERO"] = round(zero_point.value, 6)
            if np.isfinite(zero_point.error):
                metadata["MAGZERO_ERR"] = round(zero_point.error, 6)
            metadata["MAGZERO_RMS"] = round(zero_point.scatter, 6)
            metadata["MAGZERO_NSTAR"] = zero_point.n_used
        for key in ("BGMEAN", "BGRMS", "NSRC"):
            self.metadata[key.lower()] = metadata[key]
        self.log.info(
            "Visit %d detector %d: %d sources, background %.1f +- %.2f ADU%s.",
            visit,
            detector,
            len(sources),
            model.mean,
            model.mean_rms,
            f", zero point {zero_point.value:.3f}" if zero_point else "",
        )
        return Struct(
            calexp=Image(calexp.image, calexp.mask, calexp.variance, metadata),
            src=src,
        )

    def _combine(self, exposures: list[Image]) -> Image:
        """The sum of a visit's exposures of one detector (the only one when there is one)."""
        if not exposures:
            raise TaskExecutionError("CalibrateTask: no postISRCCD given.")
        first = exposures[0]
        if len(exposures) == 1:
            return first
        detectors = {e.metadata.get("DETECTOR") for e in exposures}
        shapes = {e.image.shape for e in exposures}
        if len(detectors) > 1 or len(shapes) > 1:
            raise TaskExecutionError(
                f"CalibrateTask: the exposures to sum come from detectors {sorted(map(str, detectors))} with "
                f"shapes {sorted(shapes)}; expected one detector."
            )
        image = np.sum([e.image.astype(np.float64) for e in exposures], axis=0).astype(np.float32)
        variance = np.sum([e.variance.astype(np.float64) for e in exposures], axis=0).astype(np.float32)
        mask = np.bitwise_or.reduce([e.mask for e in exposures])
        metadata = dict(first.metadata)
        metadata["EXPTIME"] = float(sum(float(e.metadata.get("EXPTIME", 0.0)) for e in exposures))
        metadata["NEXPOSE"] = len(exposures)
        self.log.info("Summed %d exposures of detector %s.", len(exposures), first.metadata.get("DETECTOR"))
        return Image(image, mask, variance, metadata)


def image_fwhm(sources: Sources, min_snr: float, min_stars: int = 3) -> float | None:
    """Median FWHM (pixels) of unflagged sources with S/N >= ``min_snr``, or of the ``min_stars`` best; None if none."""
    candidates = np.flatnonzero((sources.flags == 0) & np.isfinite(sources.fwhm))
    if candidates.size == 0:
        return None
    chosen = candidates[sources.snr[candidates] >= min_snr]
    if chosen.size < min_stars:
        chosen = candidates[np.argsort(-sources.snr[candidates])[:min_stars]]
    return float(np.median(sources.fwhm[chosen]))


def _data_id_value(data_id: DataCoordinate, key: str) -> int:
    return int(cast(int, data_id[key]))
