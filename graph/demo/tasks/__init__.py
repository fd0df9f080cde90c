"""DemoCam's PipelineTasks: step 1 (isr, calibrate, consolidateVisitSummary) and step 2 (makeWarp, assembleCoadd, detectCoadd).

Each task only calls the pure algorithms in `graph.demo.processing`; the pipeline is
``submit_templates/examples/demo_pipeline.yaml``.
"""

from .calibrate import CalibrateTask, PhotoCalTask
from .coadd import AssembleCoaddTask
from .detect_coadd import DetectCoaddTask
from .isr import IsrTask
from .source_extraction import SourceDetectionTask, SourceMeasurementTask, SubtractBackgroundTask
from .visit_summary import ConsolidateVisitSummaryTask
from .warp import MakeWarpTask

__all__ = [
    "AssembleCoaddTask",
    "CalibrateTask",
    "ConsolidateVisitSummaryTask",
    "DetectCoaddTask",
    "IsrTask",
    "MakeWarpTask",
    "PhotoCalTask",
    "SourceDetectionTask",
    "SourceMeasurementTask",
    "SubtractBackgroundTask",
]
