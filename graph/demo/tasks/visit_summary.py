"""Step 1c: ``consolidateVisitSummary`` gathers every calexp's calibration numbers of a visit into one table."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from butler.image import Image

from ...config import PipelineTaskConfig, field
from ...connections import Input, Output, PipelineTaskConnections
from ...task import PipelineTask, Struct
from .. import camera

__all__ = [
    "SUMMARY_COLUMNS",
    "ConsolidateVisitSummaryConfig",
    "ConsolidateVisitSummaryConnections",
    "ConsolidateVisitSummaryTask",
]

SUMMARY_COLUMNS: dict[str, tuple[str, str]] = {
    "visit": ("VISIT", "int"),
    "detector": ("DETECTOR", "int"),
    "physical_filter": ("FILTER", "str"),
    "exposure_time": ("EXPTIME", "float"),
    "zero_point": ("MAGZERO", "float"),
    "zero_point_err": ("MAGZERO_ERR", "float"),
    "zero_point_nstar": ("MAGZERO_NSTAR", "int"),
    "bg_mean": ("BGMEAN", "float"),
    "bg_rms": ("BGRMS", "float"),
    "n_sources": ("NSRC", "int"),
    "fwhm_px": ("FWHM", "float"),
    "ra": ("CENTRA", "float"),
    "dec": ("CENTDEC", "float"),
}
"""visitSummary column -> (calexp metadata card, type); a missing card gives NaN (float) or -1 (int).

The table also has ``band`` (from the physical filter) and ``fwhm_arcsec``."""


class ConsolidateVisitSummaryConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    """Every calexp of a visit in (metadata only); one visitSummary table out."""

    calexps = Input(
        name="calexp",
        storage_class="Image",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        defer_load=True,
        doc="The visit's calexps; only their metadata component is read.",
    )
    visit_summary = Output(
        name="visitSummary",
        storage_class="ArrowTable",
        dimensions=("instrument", "visit"),
        doc="One row per detector: zero point, background, source count, FWHM, centre (see SUMMARY_COLUMNS).",
    )


class ConsolidateVisitSummaryConfig(PipelineTaskConfig, connections=ConsolidateVisitSummaryConnections):
    """Options of the visit summary."""

    pixel_scale_arcsec: float = field(
        0.4, doc="Detector pixel scale, arcsec/pixel (for the fwhm_arcsec column)."
    )


class ConsolidateVisitSummaryTask(PipelineTask):
    """One row per detector from each calexp's metadata, read through deferred handles.

    Reading the ``metadata`` component only (a FITS header) instead of three 256x256 planes per
    detector is what ``defer_load=True`` is for: the task decides what, and how much, to read.
    """

    ConfigClass = ConsolidateVisitSummaryConfig
    _DefaultName = "consolidateVisitSummary"
    config: ConsolidateVisitSummaryConfig

    def run(self, calexps: list[Any]) -> Struct:
        """``calexps``: deferred handles (with ``get(component=...)``) or `Image` objects."""
        rows = [self._metadata(item) for item in calexps]
        rows.sort(key=lambda md: int(md.get("DETECTOR", -1)))
        columns: dict[str, Any] = {}
        for column, (card, kind) in SUMMARY_COLUMNS.items():
            values = [md.get(card) for md in rows]
            if kind == "int":
                columns[column] = np.array([-1 if v is None else int(v) for v in values], dtype=np.int64)
            elif kind == "float":
                columns[column] = np.array([math.nan if v is None else float(v) for v in values], dtype=float)
            else:
                columns[column] = pa.array(["" if v is None else str(v) for v in values], type=pa.string())
        columns["band"] = pa.array(
            [camera.PHYSICAL_FILTERS.get(str(md.get("FILTER", "")), "") for md in rows], type=pa.string()
        )
        columns["fwhm_arcsec"] = columns["fwhm_px"] * self.config.pixel_scale_arcsec
        table = pa.table(columns)
        self.metadata["n_detectors"] = len(rows)
        self.log.info("Visit summary of %d detector(s).", len(rows))
        return Struct(visit_summary=table)

    @staticmethod
    def _metadata(item: Any) -> dict[str, Any]:
        if isinstance(item, Image):
            return dict(item.metadata)
        return dict(item.get(component="metadata"))
