"""The demo pipeline's tasks run through a real repository on a simulated DemoCam survey.

The repository is built with the butler commands a user types; quanta are assembled here by
hand (the quantum-graph builder comes later) and executed with `execute_quantum`, so every
dataset goes through the real datastore and formatters. The checks are science checks against
the simulated truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from democam_repository import EXAMPLES, build_democam_repository

from butler.butler import Butler
from butler.datasets import DatasetRef
from butler.image import Image
from graph.demo import camera
from graph.init_outputs import write_init_outputs
from graph.pipeline import Pipeline
from graph.pipeline_graph import PipelineGraph
from graph.quantum import Quantum
from graph.quantum_execution import QuantumStatus, execute_quantum
from graph.task import PipelineTask

RUN = "u/demo/run1"
INPUTS = "DemoCam/defaults"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A DemoCam repository built the way docs/democam.md tells a user to."""
    return build_democam_repository(tmp_path_factory.mktemp("democam"))


class Runner:
    """Assembles quanta of the demo pipeline by hand and runs them against a real Butler."""

    def __init__(self, butler: Butler) -> None:
        self.butler = butler
        self.graph = PipelineGraph.from_pipeline(Pipeline.from_yaml(str(EXAMPLES / "demo_pipeline.yaml")))
        self.graph.register_dataset_types(butler.registry)
        self.dataset_types = self.graph.resolve(butler.registry)
        self.tasks: dict[str, PipelineTask] = {
            label: node.task_class(config=node.config, name=label) for label, node in self.graph.tasks.items()
        }
        write_init_outputs(butler, self.tasks.values(), RUN)

    def output_ref(self, name: str, **data_id: object) -> DatasetRef:
        dataset_type = self.dataset_types[name]
        expanded = self.butler.registry.expand_data_id(data_id, dimensions=dataset_type.dimensions)
        return DatasetRef.new(dataset_type, expanded, RUN)

    def find(self, name: str, **data_id: object) -> DatasetRef:
        ref = self.butler.find_dataset(name, data_id, collections=[RUN, INPUTS])
        assert ref is not None, f"no {name} for {data_id}"
        return ref

    def run(
        self, label: str, inputs: dict[str, list[DatasetRef]], outputs: dict[str, str], **data_id: object
    ) -> Quantum:
        task = self.tasks[label]
        quantum_data_id = self.butler.registry.expand_data_id(
            data_id, dimensions=self.graph.task_dimensions(label)
        )
        connections = task.connections
        quantum = Quantum(
            label,
            quantum_data_id,
            inputs,
            {attr: [self.output_ref(connections.connection(attr).name, **data_id)] for attr in outputs},
            metadata_output=self.output_ref(f"{label}_metadata", **data_id),
            log_output=self.output_ref(f"{label}_log", **data_id),
        )
        outcome = execute_quantum(task, quantum, self.butler)
        assert outcome.status is QuantumStatus.SUCCEEDED
        return quantum


@pytest.fixture(scope="module")
def processed(repo: Path) -> Iterator[tuple[Runner, dict[str, object]]]:
    """Step 1 for the g-band visits, then a warp per visit, the coadd and its detections on one patch."""
    with Butler(repo, collections=[RUN, INPUTS], run=RUN) as butler:
        runner = Runner(butler)
        registry = butler.registry
        visits = sorted(r.id for r in registry.query_dimension_records("visit", where="band = 'g'"))
        for visit in visits:
            for detector in range(4):
                ids = {"instrument": "DemoCam", "exposure": visit, "detector": detector}
                runner.run(
                    "isr",
                    {
                        "raw": [runner.find("raw", **ids)],
                        "bias": [runner.find("bias", **ids)],
                        "flat": [runner.find("flat", **ids)],
                    },
                    {"post_isr": "postISRCCD"},
                    **ids,
                )
                runner.run(
                    "calibrate",
                    {"post_isr": [runner.find("postISRCCD", **ids)], "refcat": [runner.find("demo_refcat")]},
                    {"calexp": "calexp", "src": "src"},
                    instrument="DemoCam",
                    visit=visit,
                    detector=detector,
                )
            calexps = [runner.find("calexp", instrument="DemoCam", visit=visit, detector=d) for d in range(4)]
            runner.run(
                "consolidateVisitSummary",
                {"calexps": calexps},
                {"visit_summary": "visitSummary"},
                instrument="DemoCam",
                visit=visit,
            )
        # The patch under the middle of the first visit.
        patch_ids = registry.query_data_ids(
            ["visit", "patch"], where=f"visit = {visits[0]} AND skymap = 'demo-rings'"
        )
        patch = sorted(patch_ids, key=lambda d: d["patch"])[len(patch_ids) // 2]
        cell = {"skymap": "demo-rings", "tract": patch["tract"], "patch": patch["patch"]}
        sky_map = runner.find("skyMap", skymap="demo-rings")
        warps = []
        for visit in visits:
            overlapping = registry.query_data_ids(
                ["visit", "detector"],
                where=f"visit = {visit} AND skymap = 'demo-rings' AND tract = {cell['tract']} AND patch = {cell['patch']}",
            )
            if not overlapping:
                continue
            calexps = [
                runner.find("calexp", instrument="DemoCam", visit=visit, detector=d["detector"])
                for d in overlapping
            ]
            runner.run(
                "makeWarp",
                {"calexps": calexps, "sky_map": [sky_map]},
                {"warp": "deepCoadd_directWarp"},
                instrument="DemoCam",
                visit=visit,
                **cell,
            )
            warps.append(runner.find("deepCoadd_directWarp", instrument="DemoCam", visit=visit, **cell))
        runner.run(
            "assembleCoadd", {"warps": warps, "sky_map": [sky_map]}, {"coadd": "deepCoadd"}, band="g", **cell
        )
        runner.run(
            "detectCoadd",
            {"coadd": [runner.find("deepCoadd", band="g", **cell)]},
            {"detections": "deepCoadd_det"},
            band="g",
            **cell,
        )
        yield runner, {"visits": visits, "cell": cell, "warps": len(warps)}


def test_configs_packages_metadata_and_logs_are_written(processed: tuple[Runner, dict[str, object]]) -> None:
    runner, _ = processed
    butler = runner.butler
    for label in runner.graph.tasks:
        assert butler.get(f"{label}_config", {}, collections=RUN) == runner.graph.tasks[label].config
    assert "numpy" in butler.get("packages", {}, collections=RUN)
    metadata = butler.registry.query_datasets("calibrate_metadata", RUN)
    logs = butler.registry.query_datasets("calibrate_log", RUN)
    assert len(metadata) == len(logs) == 8
    assert butler.get(metadata[0])["quantum.status"] == "succeeded"
    assert any("calibrate" in record.name for record in butler.get(logs[0]))


def test_calibrate_recovers_zero_point_and_positions(processed: tuple[Runner, dict[str, object]]) -> None:
    runner, info = processed
    visit = info["visits"][0]  # type: ignore[index]
    for detector in range(4):
        calexp = runner.butler.get("calexp", instrument="DemoCam", visit=visit, detector=detector)
        assert isinstance(calexp, Image)
        expected = camera.zero_point("g") + 2.5 * np.log10(camera.EXPOSURE_TIME_S / camera.gain(detector))
        assert calexp.metadata["MAGZERO"] == pytest.approx(expected, abs=0.05)
    src = runner.butler.get("src", instrument="DemoCam", visit=visit, detector=1)
    refcat = runner.butler.get("demo_refcat", {})
    assert isinstance(src, pa.Table) and src.num_rows > 5
    bright = src.to_pandas().nsmallest(10, "mag")
    ref = refcat.to_pandas()
    cos_dec = np.cos(np.radians(ref["dec"].to_numpy()))
    offsets = []
    for ra, dec in zip(bright["ra"], bright["dec"], strict=True):
        separation = np.hypot((ref["ra"].to_numpy() - ra) * cos_dec, ref["dec"].to_numpy() - dec) * 3600
        offsets.append(separation.min() / camera.PIXEL_SCALE_ARCSEC)
    assert np.median(offsets) < 0.5  # pixels


def test_visit_summary_has_every_detector(processed: tuple[Runner, dict[str, object]]) -> None:
    runner, info = processed
    summary = runner.butler.get("visitSummary", instrument="DemoCam", visit=info["visits"][0])  # type: ignore[index]
    assert sorted(summary.column("detector").to_pylist()) == [0, 1, 2, 3]


def test_coadd_and_its_detections(processed: tuple[Runner, dict[str, object]]) -> None:
    runner, info = processed
    cell = info["cell"]
    coadd = runner.butler.get("deepCoadd", band="g", **cell)  # type: ignore[arg-type]
    assert isinstance(coadd, Image)
    assert np.isfinite(coadd.image).any()
    detections = runner.butler.get("deepCoadd_det", band="g", **cell)  # type: ignore[arg-type]
    assert detections.num_rows > 0
    assert info["warps"] == 2
