"""Small PipelineTasks for the pipeline, contract and pipeline-graph tests (importable as ``pipeline_test_tasks``).

A miniature DemoCam-like chain: ``IsrTask`` (raw -> postISRCCD) -> ``CalibrateTask`` (postISRCCD ->
calexp, src) -> ``SummaryTask`` (src per detector -> visitSummary per visit). The other classes each
exist to trigger one pipeline-graph error.
"""

from __future__ import annotations

from typing import Any

from graph.config import ChoiceField, Config, ConfigurableField, PipelineTaskConfig, TaskRegistry, field
from graph.connections import InitInput, InitOutput, Input, Output, PipelineTaskConnections, PrerequisiteInput
from graph.task import PipelineTask, Struct, Task

EXPOSURE = ("instrument", "exposure", "detector")
VISIT = ("instrument", "visit", "detector")


class _NoRun(PipelineTask):
    """Tasks here are only configured and connected, never run."""

    def run(self, **inputs: Any) -> Struct:
        return Struct()


# -- the main chain --------------------------------------------------------------------------------


class IsrConnections(PipelineTaskConnections, dimensions=EXPOSURE):
    raw = Input(name="raw", storage_class="Image", dimensions=EXPOSURE, doc="Raw exposure.")
    bias = PrerequisiteInput(
        name="bias", storage_class="Image", dimensions=("instrument", "detector"), is_calibration=True
    )
    flat = PrerequisiteInput(
        name="flat",
        storage_class="Image",
        dimensions=("instrument", "detector", "physical_filter"),
        is_calibration=True,
    )
    post_isr = Output(name="postISRCCD", storage_class="Image", dimensions=EXPOSURE, doc="Corrected.")


class IsrConfig(PipelineTaskConfig, connections=IsrConnections):
    do_bias: bool = field(True, doc="Subtract the bias.")
    do_flat: bool = field(True, doc="Divide by the flat.")
    flat_scale: float = field(1.0, doc="Scale applied to the flat.")
    saturation: int = field(65535, doc="Saturation level in ADU.")
    note: str = field("", doc="Free text.")


class IsrTask(_NoRun):
    ConfigClass = IsrConfig
    _DefaultName = "isr"


class DetectionConfig(Config):
    threshold: float = field(5.0, doc="Detection threshold in sigma.")


class DetectionTask(Task):
    """A sub-task of calibrate (``detection``, a ConfigurableField)."""

    ConfigClass = DetectionConfig
    _DefaultName = "detection"


class FastMeasurementConfig(Config):
    fast: bool = field(True, doc="Take shortcuts.")


class FastMeasurementTask(Task):
    """The ``fast`` choice of calibrate's ``measurement`` (a ChoiceField)."""

    ConfigClass = FastMeasurementConfig
    _DefaultName = "measurement"


MEASUREMENTS = TaskRegistry("Measurement implementations.")
MEASUREMENTS.register("simple", DetectionTask)
MEASUREMENTS.register("fast", FastMeasurementTask)


class CalibrateConnections(PipelineTaskConnections, dimensions=VISIT):
    post_isr = Input(name="postISRCCD", storage_class="Image", dimensions=EXPOSURE, multiple=True)
    refcat = PrerequisiteInput(name="demo_refcat", storage_class="ArrowTable", dimensions=())
    calexp = Output(name="calexp", storage_class="Image", dimensions=VISIT)
    src = Output(name="src", storage_class="ArrowTable", dimensions=VISIT)
    src_schema = InitOutput(name="src_schema", storage_class="StructuredDataDict")


class CalibrateConfig(PipelineTaskConfig, connections=CalibrateConnections):
    do_flat: bool = field(True, doc="Whether ISR was flat-fielded (must match isr.do_flat).")
    detection = ConfigurableField(target=DetectionTask, doc="How sources are detected.")
    measurement = ChoiceField(MEASUREMENTS, default="simple", doc="How sources are measured.")
    bands: list[str] = field(["g", "r", "i"], doc="Bands to calibrate.")


class CalibrateTask(_NoRun):
    ConfigClass = CalibrateConfig
    _DefaultName = "calibrate"


class SummaryConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    src = Input(name="src", storage_class="DataFrame", dimensions=VISIT, multiple=True)
    wcs_metadata = Input(
        name="calexp.metadata", storage_class="StructuredDataDict", dimensions=VISIT, multiple=True
    )
    src_schema = InitInput(name="src_schema", storage_class="StructuredDataDict")
    summary = Output(name="visitSummary", storage_class="ArrowTable", dimensions=("instrument", "visit"))


class SummaryConfig(PipelineTaskConfig, connections=SummaryConnections):
    columns: list[str] = field(["ra", "dec"], doc="Columns to keep.")


class SummaryTask(_NoRun):
    ConfigClass = SummaryConfig
    _DefaultName = "summary"


# -- tasks that break the graph --------------------------------------------------------------------


class LoopConnections(PipelineTaskConnections, dimensions=EXPOSURE):
    """Reads calexp-shaped data back into the ISR input: with the chain above, a cycle."""

    calexp = Input(name="calexp", storage_class="Image", dimensions=VISIT, multiple=True)
    raw = Output(name="raw_again", storage_class="Image", dimensions=EXPOSURE)


class LoopConfig(PipelineTaskConfig, connections=LoopConnections):
    pass


class LoopTask(_NoRun):
    ConfigClass = LoopConfig
    _DefaultName = "loop"


class TableAsImageConnections(PipelineTaskConnections, dimensions=VISIT):
    src = Input(name="src", storage_class="Image", dimensions=VISIT)
    out = Output(name="srcImage", storage_class="Image", dimensions=VISIT)


class TableAsImageConfig(PipelineTaskConfig, connections=TableAsImageConnections):
    pass


class TableAsImageTask(_NoRun):
    """Reads the ArrowTable ``src`` as an Image: incompatible storage classes."""

    ConfigClass = TableAsImageConfig
    _DefaultName = "tableAsImage"


class WrongDimensionsConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    src = Input(name="src", storage_class="ArrowTable", dimensions=("instrument", "visit"), multiple=True)
    out = Output(name="wrongOut", storage_class="ArrowTable", dimensions=("instrument", "visit"))


class WrongDimensionsConfig(PipelineTaskConfig, connections=WrongDimensionsConnections):
    pass


class WrongDimensionsTask(_NoRun):
    """Declares ``src`` with (instrument, visit) while the producer writes (instrument, visit, detector)."""

    ConfigClass = WrongDimensionsConfig
    _DefaultName = "wrongDimensions"


class NotMultipleConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    src = Input(name="src", storage_class="ArrowTable", dimensions=VISIT)
    out = Output(name="notMultipleOut", storage_class="ArrowTable", dimensions=("instrument", "visit"))


class NotMultipleConfig(PipelineTaskConfig, connections=NotMultipleConnections):
    pass


class NotMultipleTask(_NoRun):
    """Reads per-detector ``src`` in a per-visit task without ``multiple=True``."""

    ConfigClass = NotMultipleConfig
    _DefaultName = "notMultiple"


class OutputDimensionsConnections(PipelineTaskConnections, dimensions=("instrument", "visit")):
    out = Output(name="tooDetailed", storage_class="ArrowTable", dimensions=VISIT)


class OutputDimensionsConfig(PipelineTaskConfig, connections=OutputDimensionsConnections):
    pass


class OutputDimensionsTask(_NoRun):
    """Writes an output with a dimension (detector) the task does not have."""

    ConfigClass = OutputDimensionsConfig
    _DefaultName = "outputDimensions"


class UnknownDimensionConnections(PipelineTaskConnections, dimensions=("instrument", "visitt")):
    out = Output(name="whatever", storage_class="ArrowTable", dimensions=("instrument",))


class UnknownDimensionConfig(PipelineTaskConfig, connections=UnknownDimensionConnections):
    pass


class UnknownDimensionTask(_NoRun):
    """Task dimensions name a dimension that does not exist."""

    ConfigClass = UnknownDimensionConfig
    _DefaultName = "unknownDimension"


class MakesBiasConnections(PipelineTaskConnections, dimensions=("instrument", "detector")):
    bias = Output(
        name="bias", storage_class="Image", dimensions=("instrument", "detector"), is_calibration=True
    )


class MakesBiasConfig(PipelineTaskConfig, connections=MakesBiasConnections):
    pass


class MakesBiasTask(_NoRun):
    """Produces ``bias``, which ISR reads as a prerequisite."""

    ConfigClass = MakesBiasConfig
    _DefaultName = "makesBias"


class BadComponentConnections(PipelineTaskConnections, dimensions=VISIT):
    wcs = Input(name="calexp.wcs", storage_class="StructuredDataDict", dimensions=VISIT)
    out = Output(name="wcsOut", storage_class="StructuredDataDict", dimensions=VISIT)


class BadComponentConfig(PipelineTaskConfig, connections=BadComponentConnections):
    pass


class BadComponentTask(_NoRun):
    """Reads component ``wcs`` of an Image, which has no such component."""

    ConfigClass = BadComponentConfig
    _DefaultName = "badComponent"


class ParentAndComponentConnections(PipelineTaskConnections, dimensions=VISIT):
    calexp = Input(name="calexp", storage_class="Image", dimensions=VISIT)
    calexp_metadata = Input(name="calexp.metadata", storage_class="StructuredDataDict", dimensions=VISIT)
    out = Output(name="calexpCopy", storage_class="Image", dimensions=VISIT)


class ParentAndComponentConfig(PipelineTaskConfig, connections=ParentAndComponentConnections):
    pass


class ParentAndComponentTask(_NoRun):
    """Reads ``calexp`` and its ``metadata`` component through two connections."""

    ConfigClass = ParentAndComponentConfig
    _DefaultName = "parentAndComponent"
