"""Step 1a: ``isr`` turns a raw into a postISRCCD (bias-subtracted, flat-fielded, with variance and mask)."""

from __future__ import annotations

from typing import Any

from butler.image import Image

from ...config import PipelineTaskConfig, field
from ...connections import Input, Output, PipelineTaskConnections, PrerequisiteInput
from ...errors import TaskExecutionError
from ...task import PipelineTask, Struct
from ..processing.isr import remove_instrument_signature
from ..processing.masks import MaskBit

__all__ = ["IsrConfig", "IsrConnections", "IsrTask"]


class IsrConnections(PipelineTaskConnections, dimensions=("instrument", "exposure", "detector")):
    """One raw in, one postISRCCD out; bias and flat are calibrations looked up by validity range."""

    raw = Input(
        name="raw",
        storage_class="Image",
        dimensions=("instrument", "exposure", "detector"),
        doc="Raw detector image, ADU, with the camera's header cards (GAIN, RDNOISE, WCS).",
    )
    bias = PrerequisiteInput(
        name="bias",
        storage_class="Image",
        dimensions=("instrument", "detector"),
        is_calibration=True,
        doc="Master bias, ADU.",
    )
    flat = PrerequisiteInput(
        name="flat",
        storage_class="Image",
        dimensions=("instrument", "detector", "physical_filter"),
        is_calibration=True,
        doc="Master flat field (relative response, 1 at the boresight).",
    )
    post_isr = Output(
        name="postISRCCD",
        storage_class="Image",
        dimensions=("instrument", "exposure", "detector"),
        doc="Bias-subtracted, flat-fielded image (ADU) with variance (ADU²) and mask.",
    )

    def __init__(self, *, config: PipelineTaskConfig | None = None) -> None:
        super().__init__(config=config)
        if config is not None and not getattr(config, "do_bias", True):
            self.prerequisite_inputs.discard("bias")
        if config is not None and not getattr(config, "do_flat", True):
            self.prerequisite_inputs.discard("flat")


class IsrConfig(PipelineTaskConfig, connections=IsrConnections):
    """Which corrections ISR applies and the detector properties it needs."""

    do_bias: bool = field(True, doc="Subtract the master bias (without it the bias connection is dropped).")
    do_flat: bool = field(True, doc="Divide by the master flat (without it the flat connection is dropped).")
    saturation_level: float = field(
        60000.0, doc="Raw level (ADU, before bias subtraction) at and above which pixels are flagged SAT."
    )
    min_flat: float = field(0.05, doc="Flat values below this make a pixel BAD instead of being divided by.")
    gain: float | None = field(None, doc="Gain, electrons per ADU; None: the raw's GAIN card.")
    read_noise: float | None = field(None, doc="Read noise, electrons; None: the raw's RDNOISE card.")


class IsrTask(PipelineTask):
    """Instrument signature removal: subtract bias, divide by flat, build variance and mask planes.

    The variance is Poisson (signal / gain) plus read noise, divided by flat² like the image; mask
    bits (`graph.demo.processing.masks.MaskBit`) flag saturated (SAT) and dead-flat (BAD) pixels.
    Metadata keeps the raw's cards (WCS included) and adds ISRBIAS/ISRFLAT (what was applied).
    """

    ConfigClass = IsrConfig
    _DefaultName = "isr"
    config: IsrConfig

    def run(self, raw: Image, bias: Image | None = None, flat: Image | None = None) -> Struct:
        """Process one raw; ``bias``/``flat`` are required when ``do_bias``/``do_flat``."""
        config = self.config
        if config.do_bias and bias is None:
            raise TaskExecutionError("IsrTask: do_bias is set but no bias was given.")
        if config.do_flat and flat is None:
            raise TaskExecutionError("IsrTask: do_flat is set but no flat was given.")
        if config.do_flat and flat is not None:
            _check_filter(raw.metadata, flat.metadata)
        gain = _detector_value(config.gain, raw.metadata, "GAIN", "gain")
        read_noise = _detector_value(config.read_noise, raw.metadata, "RDNOISE", "read_noise")
        with self.timer("isr"):
            result = remove_instrument_signature(
                raw.image,
                gain=gain,
                read_noise=read_noise,
                bias=bias.image if config.do_bias and bias is not None else None,
                flat=flat.image if config.do_flat and flat is not None else None,
                saturation=config.saturation_level,
                raw_mask=raw.mask,
                min_flat=config.min_flat,
                bias_variance=bias.variance if config.do_bias and bias is not None else None,
                flat_variance=flat.variance if config.do_flat and flat is not None else None,
            )
        n_saturated = int(((result.mask & MaskBit.SAT) != 0).sum())
        n_bad = int(((result.mask & MaskBit.BAD) != 0).sum())
        self.metadata["n_saturated"] = n_saturated
        self.metadata["n_bad"] = n_bad
        self.log.info("ISR done: %d saturated and %d bad pixels.", n_saturated, n_bad)
        metadata: dict[str, Any] = {
            **raw.metadata,
            "GAIN": gain,
            "RDNOISE": read_noise,
            "ISRBIAS": bool(config.do_bias),
            "ISRFLAT": bool(config.do_flat),
            "SATLEVEL": float(config.saturation_level),
        }
        return Struct(post_isr=Image(result.image, result.mask, result.variance, metadata))


def _detector_value(configured: float | None, metadata: dict[str, Any], card: str, name: str) -> float:
    if configured is not None:
        return float(configured)
    value = metadata.get(card)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TaskExecutionError(
            f"IsrTask: the raw has no numeric {card} card (got {value!r}); set config {name} instead."
        )
    return float(value)


def _check_filter(raw: dict[str, Any], flat: dict[str, Any]) -> None:
    raw_filter, flat_filter = raw.get("FILTER"), flat.get("FILTER")
    if raw_filter is not None and flat_filter is not None and raw_filter != flat_filter:
        raise TaskExecutionError(
            f"IsrTask: the raw was taken in {raw_filter!r} but the flat is for {flat_filter!r}."
        )
