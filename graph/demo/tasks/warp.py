"""Step 2a: ``makeWarp`` resamples a visit's calexps onto one patch grid at a common zero point."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, cast

import numpy as np
from astropy.wcs import WCS

from butler.datasets import DatasetRef
from butler.image import Image

from ...config import PipelineTaskConfig, field
from ...connections import Input, Output, PipelineTaskConnections
from ...errors import NoWorkFound, TaskExecutionError
from ...quantum_context import QuantumContext
from ...skymap import RingsSkyMap
from ...skymap_config import RingsSkyMapConfig
from ...task import PipelineTask, Struct
from ..processing.coaddition import CoaddAccumulator
from ..processing.photocal import flux_scale
from ..processing.resampling import resample
from ..processing.wcs_cards import wcs_from_metadata, wcs_to_metadata

__all__ = [
    "NJY_ZERO_POINT",
    "MakeWarpConfig",
    "MakeWarpConnections",
    "MakeWarpTask",
    "as_skymap",
    "patch_metadata",
]

NJY_ZERO_POINT = 31.4
"""AB magnitude of 1 nJy: with this zero point pixel values are in nanojansky."""

_CARRIED_CARDS = ("INSTRUME", "FILTER", "VISIT", "EXPTIME", "DATE-BEG", "DATE-END")
"""Calexp cards copied into the warp's metadata."""


class MakeWarpConnections(
    PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "instrument", "visit")
):
    """A visit's calexps and the sky map in; one warp of the patch out."""

    calexps = Input(
        name="calexp",
        storage_class="Image",
        dimensions=("instrument", "visit", "detector"),
        multiple=True,
        doc="Calibrated detector images of the visit (those overlapping the patch).",
    )
    sky_map = Input(
        name="skyMap",
        storage_class="Config",
        dimensions=("skymap",),
        doc="The sky map definition (a RingsSkyMapConfig).",
    )
    warp = Output(
        name="deepCoadd_directWarp",
        storage_class="Image",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
        doc="The visit resampled onto the patch (NO_DATA where no detector covers it), at target_zero_point.",
    )


class MakeWarpConfig(PipelineTaskConfig, connections=MakeWarpConnections):
    """Resampling options."""

    target_zero_point: float = field(
        NJY_ZERO_POINT, doc="Zero point warps are scaled to (AB mag of one pixel unit); 31.4 gives nJy."
    )
    kernel: Literal["lanczos3", "bilinear"] = field("lanczos3", doc="Interpolation kernel.")
    grid_step: int = field(
        8,
        doc="WCS transforms run every grid_step pixels and are interpolated between (1: every pixel).",
        ge=1,
    )
    conserve_flux: bool = field(
        True, doc="Scale by the pixel-area ratio so fluxes (not surface brightness) are kept."
    )


def as_skymap(sky_map: RingsSkyMapConfig | RingsSkyMap) -> RingsSkyMap:
    """The sky map of a ``skyMap`` dataset (a `RingsSkyMapConfig`), or the sky map itself."""
    return sky_map if isinstance(sky_map, RingsSkyMap) else RingsSkyMap.from_config(sky_map)


def patch_metadata(skymap: RingsSkyMap, tract: int, patch: int) -> dict[str, Any]:
    """WCS cards of a patch plus TRACT and PATCH."""
    return {**wcs_to_metadata(skymap.patch_wcs(tract, patch)), "TRACT": int(tract), "PATCH": int(patch)}


class MakeWarpTask(PipelineTask):
    """Resample each calexp of a visit onto the patch and combine them (detectors do not overlap).

    Each calexp is resampled only onto the part of the patch its footprint covers, after scaling
    by ``10**(0.4 (target_zero_point - MAGZERO))`` so that every warp has the same zero point.
    """

    ConfigClass = MakeWarpConfig
    _DefaultName = "makeWarp"
    config: MakeWarpConfig

    def run_quantum(
        self,
        context: QuantumContext,
        inputs: Mapping[str, list[DatasetRef]],
        outputs: Mapping[str, list[DatasetRef]],
    ) -> None:
        """Read the inputs and pass the quantum's tract and patch to `run`."""
        values = context.get_inputs(self.connections, inputs)
        data_id = outputs["warp"][0].data_id
        tract, patch = cast(int, data_id["tract"]), cast(int, data_id["patch"])
        result = self.run(**values, tract=tract, patch=patch)
        context.put_outputs(self.connections, result, outputs)

    def run(
        self,
        calexps: list[Image],
        sky_map: RingsSkyMapConfig | RingsSkyMap,
        tract: int,
        patch: int,
    ) -> Struct:
        """Warp ``calexps`` onto patch ``patch`` of tract ``tract``; `NoWorkFound` if none reaches it."""
        config = self.config
        skymap = as_skymap(sky_map)
        patch_wcs = skymap.patch_wcs(tract, patch)
        shape = skymap.patch_shape(tract, patch)
        accumulator = CoaddAccumulator(shape)
        used = []
        with self.timer("warp"):
            for calexp in calexps:
                detector = calexp.metadata.get("DETECTOR")
                calexp_wcs = wcs_from_metadata(calexp.metadata, what=f"calexp of detector {detector}")
                region = _overlap(calexp_wcs, calexp.image.shape, patch_wcs, shape)
                if region is None:
                    self.log.debug("Detector %s does not reach the patch.", detector)
                    continue
                zero_point = calexp.metadata.get("MAGZERO")
                if not isinstance(zero_point, int | float):
                    raise TaskExecutionError(
                        f"MakeWarpTask: the calexp of detector {detector} has no MAGZERO (was calibrate run "
                        "with do_photo_cal?)."
                    )
                scale = flux_scale(float(zero_point), config.target_zero_point)
                rows, cols = region
                sub_wcs = patch_wcs.deepcopy()
                sub_wcs.wcs.crpix = [patch_wcs.wcs.crpix[0] - cols.start, patch_wcs.wcs.crpix[1] - rows.start]
                warped = resample(
                    calexp.image.astype(np.float64) * scale,
                    calexp.variance.astype(np.float64) * scale**2,
                    calexp.mask,
                    calexp_wcs,
                    sub_wcs,
                    (rows.stop - rows.start, cols.stop - cols.start),
                    kernel=config.kernel,
                    conserve_flux=config.conserve_flux,
                    grid_step=config.grid_step,
                )
                if accumulator.add(warped.image, warped.variance, warped.mask, region):
                    used.append(calexp)
        if not used:
            raise NoWorkFound(f"No calexp of the visit has pixels on tract {tract} patch {patch}.")
        combined = accumulator.result()
        first = used[0].metadata
        metadata: dict[str, Any] = {key: first[key] for key in _CARRIED_CARDS if key in first}
        metadata.update(patch_metadata(skymap, tract, patch))
        metadata.update(
            {
                "MAGZERO": float(config.target_zero_point),
                "BUNIT": "nJy" if math.isclose(config.target_zero_point, NJY_ZERO_POINT) else "scaled",
                "NDETUSED": len(used),
                "COVERAGE": round(combined.covered_fraction, 6),
            }
        )
        self.metadata["n_detectors"] = len(used)
        self.metadata["coverage"] = combined.covered_fraction
        self.log.info(
            "Warped %d detector(s) onto tract %d patch %d: %.1f%% covered.",
            len(used),
            tract,
            patch,
            100 * combined.covered_fraction,
        )
        return Struct(warp=Image(combined.image, combined.mask, combined.variance, metadata))


def _overlap(
    wcs: WCS, calexp_shape: tuple[int, ...], patch_wcs: WCS, shape: tuple[int, int]
) -> tuple[slice, slice] | None:
    """Rows and columns of the patch a calexp's footprint (plus a margin) covers; None if none."""
    height, width = calexp_shape
    edge_x = np.r_[
        np.linspace(-0.5, width - 0.5, 9),
        np.full(9, width - 0.5),
        np.linspace(-0.5, width - 0.5, 9),
        np.full(9, -0.5),
    ]
    edge_y = np.r_[
        np.full(9, -0.5),
        np.linspace(-0.5, height - 0.5, 9),
        np.full(9, height - 0.5),
        np.linspace(-0.5, height - 0.5, 9),
    ]
    ra, dec = wcs.all_pix2world(edge_x, edge_y, 0)
    px, py = patch_wcs.all_world2pix(ra, dec, 0)
    x0 = max(0, math.floor(float(np.min(px))) - 1)
    x1 = min(shape[1], math.ceil(float(np.max(px))) + 2)
    y0 = max(0, math.floor(float(np.min(py))) - 1)
    y1 = min(shape[0], math.ceil(float(np.max(py))) + 2)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)
