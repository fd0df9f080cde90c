"""Step 2c: ``detectCoadd`` detects and measures sources on a deepCoadd: the deepCoadd_det catalog."""

from __future__ import annotations

from typing import Any, cast

import numpy as np

from butler.image import Image

from ...config import PipelineTaskConfig, field
from ...config_fields import ConfigurableField
from ...connections import Input, Output, PipelineTaskConnections
from ...errors import TaskExecutionError
from ...task import PipelineTask, Struct
from ..processing.wcs_cards import wcs_from_metadata
from .source_extraction import SourceDetectionTask, SourceMeasurementTask, SubtractBackgroundTask

__all__ = ["MAX_SOURCES_PER_PATCH", "DetectCoaddConfig", "DetectCoaddConnections", "DetectCoaddTask"]

MAX_SOURCES_PER_PATCH = 100_000
"""Source ids are ``(tract * 10000 + patch) * MAX_SOURCES_PER_PATCH + n``, n = 1, 2, ..."""


class DetectCoaddConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    """One coadd in, its source catalog out."""

    coadd = Input(
        name="deepCoadd",
        storage_class="Image",
        dimensions=("skymap", "tract", "patch", "band"),
        doc="The coadd of the patch in the band (WCS and MAGZERO in metadata).",
    )
    detections = Output(
        name="deepCoadd_det",
        storage_class="ArrowTable",
        dimensions=("skymap", "tract", "patch", "band"),
        doc="Sources found on the coadd, ra/dec through the patch WCS, mag from its MAGZERO.",
    )


class DetectCoaddConfig(PipelineTaskConfig, connections=DetectCoaddConnections):
    """Sub-task configs of coadd detection."""

    do_background: bool = field(True, doc="Subtract a residual background before detecting.")
    background = ConfigurableField(target=SubtractBackgroundTask, doc="Residual background estimation.")
    detection = ConfigurableField(target=SourceDetectionTask, doc="Source detection.")
    measurement = ConfigurableField(target=SourceMeasurementTask, doc="Centroids, FWHM and aperture fluxes.")


class DetectCoaddTask(PipelineTask):
    """Detect sources on a coadd above ``detection.nsigma`` times its noise and measure them."""

    ConfigClass = DetectCoaddConfig
    _DefaultName = "detectCoadd"
    config: DetectCoaddConfig

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.background = cast(SubtractBackgroundTask, self.make_subtask("background"))
        self.detection = cast(SourceDetectionTask, self.make_subtask("detection"))
        self.measurement = cast(SourceMeasurementTask, self.make_subtask("measurement"))

    def run(self, coadd: Image) -> Struct:
        """Detect and measure; noise is the background RMS (or the variance plane without background)."""
        metadata = coadd.metadata
        wcs = wcs_from_metadata(metadata, what="deepCoadd")
        image = coadd
        if self.config.do_background:
            subtracted = self.background.run(coadd)
            image = subtracted.image
            noise: np.ndarray | float = subtracted.background.rms**2
        else:
            noise = np.asarray(coadd.variance, dtype=np.float64)
        found = self.detection.run(image, noise)
        detected = Image(image.image, found.mask, image.variance, dict(metadata))
        sources = self.measurement.run(detected, found.detections)
        tract, patch = int(metadata.get("TRACT", 0)), int(metadata.get("PATCH", 0))
        if len(sources) >= MAX_SOURCES_PER_PATCH:
            raise TaskExecutionError(
                f"DetectCoaddTask: {len(sources)} sources on tract {tract} patch {patch}; ids allow "
                f"{MAX_SOURCES_PER_PATCH - 1} (raise detection.nsigma)."
            )
        ids = (tract * 10_000 + patch) * MAX_SOURCES_PER_PATCH + np.arange(1, len(sources) + 1)
        zero_point = metadata.get("MAGZERO")
        table = sources.to_table(ids, wcs, float(zero_point) if isinstance(zero_point, int | float) else None)
        self.metadata["n_sources"] = len(sources)
        self.log.info("Found %d sources on tract %d patch %d.", len(sources), tract, patch)
        return Struct(detections=table)
