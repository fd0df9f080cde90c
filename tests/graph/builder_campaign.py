"""A small repository for quantum-graph builder tests, and the three-task pipeline built over it.

Campaign: instrument DemoCam with detectors 0-3; six exposures, each its own visit (same id):
exposures 1-3 on night 20260501 (g, r, g), 4-6 on night 20260502 (r, g, r). Raws exist for every
exposure and detector except exposure 6 detector 3. Biases are certified for two epochs (before and
after 2026-05-02T00:00); flats exist for g only, so r exposures lack a flat. ``demo_refcat`` (no
dimensions) and datastore records for the raws complete the inputs. Skymap "sky", tract 0, four
patches; visit regions are placed so visit 1 overlaps patch 0 only.

Pipeline (tasks of `pipeline_test_tasks`): isr (exposure, detector) -> calibrate (visit, detector,
reads postISRCCD [multiple] and demo_refcat; init output src_schema) -> summary (visit; reads src
[multiple], the calexp.metadata component, init input src_schema).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pipeline_test_tasks as tasks

from butler import CollectionType, DatasetType, Registry, Timespan
from graph.builder import QuantumGraphBuilder
from graph.pipeline import Pipeline
from graph.pipeline_graph import PipelineGraph
from graph.quantum_graph import QuantumGraph

INPUTS = "inputs"
RAW_RUN = "raw/all"
CALIB = "calib"
DETECTORS = range(4)
BANDS = {1: "g", 2: "r", 3: "g", 4: "r", 5: "g", 6: "r"}
MISSING_RAW = (6, 3)
EPOCH_SPLIT = "2026-05-02T00:00:00"


def _box(ra: float, dec: float, size: float) -> dict[str, list[float]]:
    return {"box": [ra, ra + size, dec, dec + size]}


def populate(registry: Registry) -> dict[str, Any]:
    """Insert the campaign's dimension records and input datasets; returns refs by name."""
    inst: dict[str, Any] = {"instrument": "DemoCam"}
    registry.insert_dimension_records("instrument", [{"name": "DemoCam", "detector_max": 4}])
    registry.insert_dimension_records("band", [{"name": b} for b in "gr"])
    registry.insert_dimension_records(
        "physical_filter", [inst | {"name": f"{b}_01", "band": b} for b in "gr"]
    )
    registry.insert_dimension_records(
        "detector", [inst | {"id": d, "full_name": f"S{d}", "purpose": "SCIENCE"} for d in DETECTORS]
    )
    registry.insert_dimension_records(
        "day_obs",
        [
            inst
            | {"id": 20260501, "timespan": {"begin": "2026-05-01T12:00:00", "end": "2026-05-02T12:00:00"}},
            inst
            | {"id": 20260502, "timespan": {"begin": "2026-05-02T12:00:00", "end": "2026-05-03T12:00:00"}},
        ],
    )
    exposures, visits = [], []
    for exposure, band in BANDS.items():
        night = 20260501 if exposure <= 3 else 20260502
        date = "2026-05-01" if exposure <= 3 else "2026-05-02"
        common = inst | {
            "id": exposure,
            "physical_filter": f"{band}_01",
            "day_obs": night,
            "timespan": {"begin": f"{date}T2{exposure % 3}:00:00", "end": f"{date}T2{exposure % 3}:00:30"},
        }
        exposures.append(common | {"obs_id": f"DC{exposure}", "observation_type": "science"})
        visits.append(common | {"name": f"v{exposure}", "region": _box(10.05 + 0.1 * exposure, -0.95, 0.8)})
    registry.insert_dimension_records("exposure", exposures)
    registry.insert_dimension_records("visit", visits)
    registry.insert_dimension_records("visit_definition", [inst | {"exposure": e, "visit": e} for e in BANDS])
    registry.insert_dimension_records(
        "skymap", [{"name": "sky", "tract_max": 1, "patch_nx_max": 2, "patch_ny_max": 2}]
    )
    registry.insert_dimension_records(
        "tract", [{"skymap": "sky", "id": 0, "region": {"box": [10, 12, -1, 1]}}]
    )
    registry.insert_dimension_records(
        "patch",
        [
            {
                "skymap": "sky",
                "tract": 0,
                "id": 2 * r + c,
                "cell_x": c,
                "cell_y": r,
                "region": _box(10 + c, -1 + r, 1),
            }
            for r in range(2)
            for c in range(2)
        ],
    )
    registry.insert_dimension_records(
        "visit_detector_region",
        [
            inst | {"visit": v, "detector": d, "region": _box(10.05 + 0.1 * v + 0.2 * d, -0.95, 0.2)}
            for v in BANDS
            for d in DETECTORS
        ],
    )
    raw = DatasetType("raw", ["instrument", "exposure", "detector"], "Image", universe=registry.universe)
    bias = DatasetType(
        "bias", ["instrument", "detector"], "Image", is_calibration=True, universe=registry.universe
    )
    flat = DatasetType(
        "flat",
        ["instrument", "detector", "physical_filter"],
        "Image",
        is_calibration=True,
        universe=registry.universe,
    )
    refcat = DatasetType("demo_refcat", [], "ArrowTable", universe=registry.universe)
    for dataset_type in (raw, bias, flat, refcat):
        registry.register_dataset_type(dataset_type)
    registry.register_run(RAW_RUN)
    raws = registry.insert_datasets(
        raw,
        [inst | {"exposure": e, "detector": d} for e in BANDS for d in DETECTORS if (e, d) != MISSING_RAW],
        RAW_RUN,
    )
    registry.insert_datastore_records(
        {
            "dataset_id": ref.id,
            "datastore_name": "FileDatastore@<root>",
            "path": f"raw/{ref.data_id['exposure']}/{ref.data_id['detector']}.fits",
            "formatter": "butler.formatters.image.ImageFormatter",
            "storage_class": "Image",
            "file_size": 100,
        }
        for ref in raws
    )
    registry.register_collection(CALIB, CollectionType.CALIBRATION)
    registry.register_run("calib/early")
    registry.register_run("calib/late")
    early = registry.insert_datasets(bias, [inst | {"detector": d} for d in DETECTORS], "calib/early")
    late = registry.insert_datasets(bias, [inst | {"detector": d} for d in DETECTORS], "calib/late")
    flats = registry.insert_datasets(
        flat, [inst | {"detector": d, "physical_filter": "g_01"} for d in DETECTORS], "calib/early"
    )
    registry.certify(CALIB, early, Timespan.from_datetimes(None, EPOCH_SPLIT))
    registry.certify(CALIB, late, Timespan.from_datetimes(EPOCH_SPLIT, None))
    registry.certify(CALIB, flats, Timespan.from_datetimes(None, None))
    registry.register_run("refcats")
    refcats = registry.insert_datasets(refcat, [{}], "refcats")
    registry.register_collection(INPUTS, CollectionType.CHAINED)
    registry.set_collection_chain(INPUTS, [RAW_RUN, CALIB, "refcats"])
    return {"raw": raws, "bias_early": early, "bias_late": late, "flat": flats, "refcat": refcats}


def pipeline() -> Pipeline:
    """isr -> calibrate -> summary."""
    return Pipeline.from_tasks(
        {"isr": tasks.IsrTask, "calibrate": tasks.CalibrateTask, "summary": tasks.SummaryTask}
    )


def pipeline_graph() -> PipelineGraph:
    """The pipeline's graph."""
    return PipelineGraph.from_pipeline(pipeline())


@contextmanager
def quantum_graph(directory: Path, run: str) -> Iterator[QuantumGraph]:
    """The pipeline's quantum graph (output run ``run``) over the campaign in a new SQLite registry in
    ``directory``; the registry stays open while the block runs."""
    with Registry.create(f"sqlite:///{directory / 'registry.sqlite3'}") as registry:
        populate(registry)
        yield QuantumGraphBuilder(pipeline_graph(), registry, [INPUTS], run).build()
