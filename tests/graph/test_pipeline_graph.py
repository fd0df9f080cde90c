"""Tests of graph.pipeline_graph: building, checking, accessing and resolving pipeline graphs."""

from __future__ import annotations

import pipeline_test_tasks as tasks
import pytest

from butler import DatasetType, Registry
from butler.storage_classes import StorageClassRegistry
from graph.config import PipelineTaskConfig
from graph.errors import (
    ConnectionDefinitionError,
    ContractError,
    DatasetTypeConflictError,
    DimensionMismatchError,
    DuplicateProducerError,
    PipelineCycleError,
    PipelineFileError,
    StorageClassMismatchError,
    SubsetError,
    TaskImportError,
    UnresolvedDatasetTypeError,
)
from graph.pipeline import Pipeline
from graph.pipeline_drawing import to_dot
from graph.pipeline_graph import PipelineGraph
from graph.pipeline_graph_nodes import can_convert

EXPOSURE_GROUP = ("instrument", "detector", "exposure")


def chain(**extra: type) -> Pipeline:
    return Pipeline.from_tasks(
        {"isr": tasks.IsrTask, "calibrate": tasks.CalibrateTask, "summary": tasks.SummaryTask, **extra}
    )


@pytest.fixture(scope="module")
def graph() -> PipelineGraph:
    return PipelineGraph.from_pipeline(chain())


def test_nodes_and_accessors(graph: PipelineGraph) -> None:
    assert list(graph.tasks) == ["isr", "calibrate", "summary"]
    isr = graph.tasks["isr"]
    assert isr.task_class is tasks.IsrTask
    assert isr.task_class_name == "pipeline_test_tasks.IsrTask"
    assert isr.config.frozen
    assert graph.task_dimensions("isr").required == EXPOSURE_GROUP
    assert [e.connection_name for e in isr.inputs] == ["raw"]
    assert [e.connection_name for e in isr.prerequisite_inputs] == ["bias", "flat"]
    assert [e.dataset_type_name for e in isr.outputs] == ["postISRCCD", "isr_metadata", "isr_log"]
    assert [e.dataset_type_name for e in graph.init_outputs("calibrate")] == [
        "src_schema",
        "calibrate_config",
    ]
    assert [e.dataset_type_name for e in graph.init_inputs("summary")] == ["src_schema"]

    post_isr = graph.dataset_types["postISRCCD"]
    assert post_isr.producer == "isr" and post_isr.consumers == ("calibrate",)
    assert post_isr.storage_class == "Image" and post_isr.dimensions.required == EXPOSURE_GROUP
    bias = graph.dataset_types["bias"]
    assert bias.is_prerequisite and bias.is_calibration and bias.producer is None
    assert graph.producer_of("calexp.metadata") == "calibrate"
    assert graph.consumers_of("calexp") == ("summary",)
    assert graph.dataset_types["src_schema"].is_init
    assert graph.dataset_types["calibrate_config"].storage_class == "Config"
    assert graph.dataset_types["calibrate_metadata"].storage_class == "TaskMetadata"
    assert graph.dataset_types["calibrate_log"].dimensions == graph.task_dimensions("calibrate")
    packages = graph.dataset_types["packages"]
    assert packages.storage_class == "Packages" and packages.is_init and packages.producer is None
    assert list(graph.overall_inputs()) == ["raw", "bias", "flat", "demo_refcat"]
    assert graph.upstream_tasks("summary") == ["calibrate"]
    assert set(graph.configs) == {"isr", "calibrate", "summary"}
    with pytest.raises(SubsetError, match="did you mean 'isr'"):
        graph.task_dimensions("isrr")
    with pytest.raises(UnresolvedDatasetTypeError, match="did you mean 'calexp'"):
        graph.producer_of("calexpp")


def test_topological_order_ignores_declaration_order() -> None:
    pipeline = Pipeline.from_tasks(
        {"summary": tasks.SummaryTask, "calibrate": tasks.CalibrateTask, "isr": tasks.IsrTask}
    )
    graph = PipelineGraph.from_pipeline(pipeline)
    assert list(graph.tasks) == ["isr", "calibrate", "summary"]


def test_configured_dataset_type_names_and_subset() -> None:
    pipeline = chain()
    pipeline.add_task("isr2", tasks.IsrTask, {"connections.post_isr": "postISRCCD2", "do_flat": False})
    graph = PipelineGraph.from_pipeline(pipeline)
    assert graph.producer_of("postISRCCD2") == "isr2"
    assert graph.tasks["isr2"].config.do_flat is False
    assert graph.consumers_of("raw") == ("isr", "isr2")
    sub = graph.subset(["calibrate", "summary"])
    assert list(sub.tasks) == ["calibrate", "summary"]
    assert "postISRCCD" in sub.overall_inputs()
    assert sub.tasks["calibrate"] is graph.tasks["calibrate"]


def test_contracts_checked_before_building() -> None:
    pipeline = chain()
    pipeline.add_contract("isr.do_flat == calibrate.do_flat", "flat-fielding must agree")
    pipeline.add_config_override("isr", "do_flat", False)
    with pytest.raises(ContractError, match=r"isr.do_flat == calibrate.do_flat \(flat-fielding must agree\)"):
        PipelineGraph.from_pipeline(pipeline)
    pipeline.add_config_override("calibrate", "do_flat", False)
    PipelineGraph.from_pipeline(pipeline)


def test_contracts_reach_sub_task_configs() -> None:
    pipeline = chain()
    pipeline.add_contract("calibrate.detection.threshold > 4 and calibrate.measurement.name == 'simple'")
    pipeline.add_contract("calibrate.detection.target == 'pipeline_test_tasks.DetectionTask'")
    pipeline.add_contract("calibrate.measurement.name != 'fast' or calibrate.measurement.fast")
    PipelineGraph.from_pipeline(pipeline)
    pipeline.add_config_overrides("calibrate", {"measurement.name": "fast", "measurement.fast": False})
    with pytest.raises(ContractError) as info:
        PipelineGraph.from_pipeline(pipeline)
    text = str(info.value)
    assert "calibrate.measurement.name='fast'" in text and "calibrate.measurement.fast=False" in text
    assert "calibrate.detection.threshold > 4" in text
    assert "Instance" not in text  # only leaf values are shown, not sub-task objects


def test_two_producers() -> None:
    pipeline = chain(isr2=tasks.IsrTask)
    with pytest.raises(DuplicateProducerError) as info:
        PipelineGraph.from_pipeline(pipeline)
    text = str(info.value)
    assert "'postISRCCD'" in text and "isr.post_isr" in text and "isr2.post_isr" in text


def test_output_named_like_automatic_dataset_type() -> None:
    pipeline = chain()
    pipeline.add_task("other", tasks.IsrTask, {"connections.post_isr": "isr_metadata"})
    with pytest.raises(DuplicateProducerError, match=r"'isr_metadata' is produced by two tasks"):
        PipelineGraph.from_pipeline(pipeline)


def test_cycle_is_shown() -> None:
    pipeline = chain(loop=tasks.LoopTask)
    pipeline.add_config_override("loop", "connections.raw", "raw")
    pipeline.add_config_override("isr", "connections.raw", "raw")
    with pytest.raises(PipelineCycleError) as info:
        PipelineGraph.from_pipeline(pipeline)
    text = str(info.value)
    assert "cycle" in text
    cycle = text.split(": ", 1)[1].rstrip(".").split(" -> ")
    assert cycle[0] == cycle[-1]
    assert {"isr", "postISRCCD", "calibrate", "calexp", "loop", "raw"} == set(cycle)


def test_prerequisite_must_not_be_produced() -> None:
    with pytest.raises(
        DatasetTypeConflictError, match=r"'bias' is a prerequisite input of isr.bias but is produced by"
    ):
        PipelineGraph.from_pipeline(chain(makesBias=tasks.MakesBiasTask))


def test_storage_class_mismatch() -> None:
    with pytest.raises(StorageClassMismatchError) as info:
        PipelineGraph.from_pipeline(chain(tableAsImage=tasks.TableAsImageTask))
    text = str(info.value)
    assert "tableAsImage.src" in text and "'Image'" in text and "'ArrowTable'" in text
    assert "calibrate.src" in text


def test_component_checks() -> None:
    # summary reads calexp.metadata (Image has a metadata component) and src as DataFrame (convertible).
    graph = PipelineGraph.from_pipeline(chain())
    edge = next(e for e in graph.tasks["summary"].inputs if e.component)
    assert edge.full_name == "calexp.metadata" and edge.dataset_type_name == "calexp"
    both = PipelineGraph.from_pipeline(chain(copy=tasks.ParentAndComponentTask))
    assert [e.full_name for e in both.edges_of("calexp")] == [
        "calexp", "calexp.metadata", "calexp", "calexp.metadata"
    ]  # fmt: skip
    assert both.consumers_of("calexp") == ("summary", "copy")
    assert (
        both.to_networkx().edges["dataset_type:calexp", "task:copy"]["connection"]
        == "calexp, calexp_metadata"
    )
    with pytest.raises(StorageClassMismatchError, match=r"has no component 'wcs'"):
        PipelineGraph.from_pipeline(chain(badComponent=tasks.BadComponentTask))


def test_dimension_errors() -> None:
    with pytest.raises(DimensionMismatchError) as info:
        PipelineGraph.from_pipeline(chain(wrongDimensions=tasks.WrongDimensionsTask))
    assert "calibrate.src" in str(info.value) and "wrongDimensions.src" in str(info.value)
    with pytest.raises(DimensionMismatchError, match="declare it multiple=True"):
        PipelineGraph.from_pipeline(chain(notMultiple=tasks.NotMultipleTask))
    with pytest.raises(
        DimensionMismatchError, match=r"output 'tooDetailed' has dimensions \(instrument, detector, visit\)"
    ):
        PipelineGraph.from_pipeline(chain(outputDimensions=tasks.OutputDimensionsTask))
    with pytest.raises(DimensionMismatchError, match=r"unknownDimension.*'visitt'.*did you mean 'visit'"):
        PipelineGraph.from_pipeline(chain(unknownDimension=tasks.UnknownDimensionTask))


def test_unknown_storage_class_and_task_class() -> None:
    pipeline = Pipeline.from_tasks({"isr": tasks.IsrTask})
    with pytest.raises(StorageClassMismatchError, match=r"unknown storage class 'Image'"):
        PipelineGraph.from_pipeline(pipeline, storage_classes=StorageClassRegistry([]))
    with pytest.raises(TaskImportError, match="no module named 'no_such_module'"):
        PipelineGraph.from_pipeline(Pipeline.from_tasks({"x": "no_such_module.Task"}))


def test_steps_order_is_checked() -> None:
    pipeline = chain()
    pipeline.add_subset("first", ["summary"])
    pipeline.add_subset("second", ["isr", "calibrate"])
    pipeline.add_step("first", ["instrument"])
    pipeline.add_step("second", ["instrument", "visit"])
    with pytest.raises(PipelineFileError, match=r"task 'summary' reads .* in the later step 'second'"):
        PipelineGraph.from_pipeline(pipeline)
    ordered = chain()
    ordered.add_subset("first", ["isr", "calibrate"])
    ordered.add_subset("second", ["summary"])
    ordered.add_step("first", ["instrument", "visit"])
    ordered.add_step("second", ["instrument"])
    graph = PipelineGraph.from_pipeline(ordered)
    assert [(step.label, labels) for step, labels in graph.steps] == [
        ("first", ("isr", "calibrate")),
        ("second", ("summary",)),
    ]
    bad = chain()
    bad.add_subset("all", ["isr", "calibrate", "summary"])
    bad.add_step("all", ["visitt"])
    with pytest.raises(DimensionMismatchError, match="unknown dimension 'visitt'"):
        PipelineGraph.from_pipeline(bad)


def test_can_convert() -> None:
    registry = StorageClassRegistry.default()
    assert can_convert("ArrowTable", "DataFrame", registry)
    assert can_convert("DataFrame", "ArrowTable", registry)
    assert can_convert("Image", "Image", registry)
    assert not can_convert("ArrowTable", "Image", registry)
    assert not can_convert("Nope", "Image", registry)


def test_networkx_export_draws(graph: PipelineGraph) -> None:
    exported = graph.to_networkx()
    assert exported.nodes["task:isr"]["kind"] == "task"
    assert exported.nodes["task:isr"]["task_class"] == "pipeline_test_tasks.IsrTask"
    assert exported.nodes["dataset_type:bias"]["is_prerequisite"]
    assert exported.edges["dataset_type:bias", "task:isr"]["prerequisite"]
    assert exported.edges["task:calibrate", "dataset_type:src_schema"]["init"]
    assert "dataset_type:packages" in exported
    small = graph.to_networkx(include_automatic=False)
    assert "dataset_type:isr_metadata" not in small and "dataset_type:packages" not in small
    assert "postISRCCD" in to_dot(small)


def test_resolve_without_registry(graph: PipelineGraph) -> None:
    resolved = graph.resolve()
    assert resolved["bias"] == DatasetType("bias", ("instrument", "detector"), "Image", is_calibration=True)
    assert resolved["isr_config"] == DatasetType("isr_config", (), "Config")
    assert resolved["packages"].storage_class_name == "Packages"
    assert set(resolved) == set(graph.dataset_types)


def _register_inputs(registry: Registry) -> None:
    for dataset_type in (
        DatasetType("raw", ("instrument", "exposure", "detector"), "Image"),
        DatasetType("bias", ("instrument", "detector"), "Image", is_calibration=True),
        DatasetType("flat", ("instrument", "detector", "physical_filter"), "Image", is_calibration=True),
        DatasetType("demo_refcat", (), "ArrowTable"),
    ):
        registry.register_dataset_type(dataset_type)


def test_resolve_with_registry(registry: Registry, graph: PipelineGraph) -> None:
    with pytest.raises(UnresolvedDatasetTypeError) as info:
        graph.resolve(registry)
    assert "raw, bias, flat, demo_refcat" in str(info.value)
    _register_inputs(registry)
    registry.register_dataset_type(DatasetType("src", ("instrument", "visit", "detector"), "DataFrame"))
    resolved = graph.resolve(registry)
    assert resolved["src"].storage_class_name == "DataFrame"  # the registry wins; ArrowTable converts
    added = graph.register_dataset_types(registry)
    assert "postISRCCD" in added and "packages" in added and "src" not in added and "raw" not in added
    assert graph.register_dataset_types(registry) == []


def test_resolve_conflicts_with_registry(registry: Registry, graph: PipelineGraph) -> None:
    _register_inputs(registry)
    registry.register_dataset_type(DatasetType("calexp", ("instrument", "visit"), "Image"))
    registry.register_dataset_type(
        DatasetType("postISRCCD", ("instrument", "exposure", "detector"), "ArrowTable")
    )
    with pytest.raises(DatasetTypeConflictError) as info:
        graph.resolve(registry)
    text = str(info.value)
    assert "calexp: dimensions (instrument, visit) in the registry" in text
    assert "isr.post_isr writes storage class 'Image'" in text
    assert "calibrate.post_isr" in text


def test_connections_errors_are_named() -> None:
    class Broken(tasks.IsrConnections):
        def __init__(self, *, config: object = None) -> None:
            raise RuntimeError("boom")

    class BrokenConfig(PipelineTaskConfig, connections=Broken):
        pass

    class BrokenTask(tasks.IsrTask):
        ConfigClass = BrokenConfig  # type: ignore[assignment]

    with pytest.raises(
        ConnectionDefinitionError, match=r"Task 'broken': constructing Broken raised RuntimeError: boom"
    ):
        PipelineGraph.from_pipeline(Pipeline.from_tasks({"broken": BrokenTask}))
