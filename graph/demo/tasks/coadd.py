"""Step 2b: ``assembleCoadd`` stacks a band's warps of one patch into a deepCoadd."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, cast

import numpy as np
import pydantic

from butler.datasets import DatasetRef
from butler.image import Image

from ...config import PipelineTaskConfig, field
from ...connections import Input, Output, PipelineTaskConnections
from ...errors import TaskExecutionError
from ...quantum_context import QuantumContext
from ...skymap import RingsSkyMap
from ...skymap_config import RingsSkyMapConfig
from ...task import PipelineTask, Struct
from .. import camera
from ..processing.coaddition import CoaddAccumulator
from ..processing.masks import MaskBit
from .warp import as_skymap, patch_metadata

__all__ = ["AssembleCoaddConfig", "AssembleCoaddConnections", "AssembleCoaddTask"]


class AssembleCoaddConnections(PipelineTaskConnections, dimensions=("skymap", "tract", "patch", "band")):
    """The band's warps of a patch in (read one at a time); one coadd out."""

    warps = Input(
        name="deepCoadd_directWarp",
        storage_class="Image",
        dimensions=("skymap", "tract", "patch", "instrument", "visit"),
        multiple=True,
        defer_load=True,
        doc="Warps of every visit in the band; read one by one so memory stays at one warp.",
    )
    sky_map = Input(
        name="skyMap",
        storage_class="Config",
        dimensions=("skymap",),
        doc="The sky map definition (checks the warps' grid).",
    )
    coadd = Output(
        name="deepCoadd",
        storage_class="Image",
        dimensions=("skymap", "tract", "patch", "band"),
        doc="Inverse-variance weighted mean of the warps; NINPUTS, NIMGMIN/MAX/MED in metadata.",
    )


class AssembleCoaddConfig(PipelineTaskConfig, connections=AssembleCoaddConnections):
    """Which warp pixels are stacked."""

    bad_mask_planes: list[str] = field(
        ["BAD", "NO_DATA"], doc="Mask planes (MaskBit names) whose pixels are left out of the stack."
    )

    @pydantic.field_validator("bad_mask_planes")
    @classmethod
    def _known_planes(cls, value: list[str]) -> list[str]:
        known = list(MaskBit.__members__)
        for name in value:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ValueError(f"unknown mask plane {name!r}{hint}; known: {', '.join(known)}")
        return value


class AssembleCoaddTask(PipelineTask):
    """Inverse-variance weighted mean of the warps, with a per-pixel count of contributing inputs.

    Warps arrive as deferred handles (or `Image` objects) and are read and added one at a time.
    """

    ConfigClass = AssembleCoaddConfig
    _DefaultName = "assembleCoadd"
    config: AssembleCoaddConfig

    def run_quantum(
        self,
        context: QuantumContext,
        inputs: Mapping[str, list[DatasetRef]],
        outputs: Mapping[str, list[DatasetRef]],
    ) -> None:
        """Read the inputs and pass the quantum's tract, patch and band to `run`."""
        values = context.get_inputs(self.connections, inputs)
        data_id = outputs["coadd"][0].data_id
        result = self.run(
            **values,
            tract=cast(int, data_id["tract"]),
            patch=cast(int, data_id["patch"]),
            band=str(data_id["band"]),
        )
        context.put_outputs(self.connections, result, outputs)

    def run(
        self,
        warps: list[Any],
        sky_map: RingsSkyMapConfig | RingsSkyMap,
        tract: int,
        patch: int,
        band: str | None = None,
    ) -> Struct:
        """Stack ``warps`` (deferred handles or Images) of patch ``patch`` of tract ``tract``."""
        if not warps:
            raise TaskExecutionError("AssembleCoaddTask: no warps given.")
        skymap = as_skymap(sky_map)
        shape = skymap.patch_shape(tract, patch)
        ignored = 0
        for name in self.config.bad_mask_planes:
            ignored |= MaskBit[name]
        accumulator = CoaddAccumulator(shape, ignored_bits=ignored)
        zero_points: set[float] = set()
        filters: set[str] = set()
        visits: list[int] = []
        exposure_time = 0.0
        with self.timer("assemble"):
            for item in warps:
                warp = item if isinstance(item, Image) else item.get()
                visit = warp.metadata.get("VISIT")
                if warp.image.shape != shape:
                    raise TaskExecutionError(
                        f"AssembleCoaddTask: the warp of visit {visit} has shape {warp.image.shape}; tract "
                        f"{tract} patch {patch} has {shape}."
                    )
                zero_points.add(float(warp.metadata.get("MAGZERO", float("nan"))))
                filters.add(str(warp.metadata.get("FILTER", "")))
                accumulator.add(warp.image, warp.variance, warp.mask)
                visits.append(int(visit) if visit is not None else -1)
                exposure_time += float(warp.metadata.get("EXPTIME", 0.0))
        if len(zero_points) != 1 or not all(np.isfinite(list(zero_points))):
            raise TaskExecutionError(
                f"AssembleCoaddTask: warps must share one MAGZERO; got {sorted(zero_points)}."
            )
        bands = {camera.PHYSICAL_FILTERS.get(name, name) for name in filters}
        if band is not None and bands - {band, ""}:
            raise TaskExecutionError(
                f"AssembleCoaddTask: coadding band {band!r} but warps are in {sorted(bands)}."
            )
        result = accumulator.result()
        covered = result.n_images[result.n_images > 0]
        metadata: dict[str, Any] = patch_metadata(skymap, tract, patch)
        metadata.update(
            {
                "BAND": band if band is not None else (sorted(bands)[0] if bands else ""),
                "MAGZERO": zero_points.pop(),
                "NINPUTS": len(visits),
                "NIMGMIN": int(covered.min()) if covered.size else 0,
                "NIMGMAX": int(covered.max()) if covered.size else 0,
                "NIMGMED": float(np.median(covered)) if covered.size else 0.0,
                "COVERAGE": round(result.covered_fraction, 6),
                "EXPTIME": exposure_time,
            }
        )
        self.metadata["n_inputs"] = len(visits)
        self.metadata["visits"] = visits
        self.log.info(
            "Coadded %d warps of tract %d patch %d: %.1f%% covered, up to %d inputs per pixel.",
            len(visits),
            tract,
            patch,
            100 * result.covered_fraction,
            metadata["NIMGMAX"],
        )
        return Struct(coadd=Image(result.image, result.mask, result.variance, metadata))
