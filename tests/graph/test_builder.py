"""QuantumGraphBuilder on a small campaign: quanta, inputs, calibrations, pruning, options and errors."""

from __future__ import annotations

import json
import uuid
from typing import Any

import builder_campaign as campaign
import pytest

from butler import Registry
from graph.builder import QuantumGraphBuilder, default_output_run
from graph.errors import QuantumGraphBuildError
from graph.quantum_graph import EdgeKind, QuantumGraph

RUN = "u/test/run"


@pytest.fixture
def repo(registry: Registry) -> tuple[Registry, dict[str, Any]]:
    return registry, campaign.populate(registry)


def build(registry: Registry, where: str = "", **kwargs: Any) -> QuantumGraph:
    collections = kwargs.pop("inputs", [campaign.INPUTS])
    run = kwargs.pop("run", RUN)
    return QuantumGraphBuilder(campaign.pipeline_graph(), registry, collections, run, where, **kwargs).build()


def test_quanta_inputs_and_pruning(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    graph = build(registry)
    # r exposures (2, 4, 6) have no flat: their isr quanta are pruned, and so is everything downstream.
    g_exposures = [e for e, band in campaign.BANDS.items() if band == "g"]
    assert graph.quantum_count("isr") == len(g_exposures) * 4
    assert graph.quantum_count("calibrate") == len(g_exposures) * 4
    assert graph.quantum_count("summary") == len(g_exposures)
    summary = graph.pruned_summary()
    assert summary["isr"] == {"needs a flat for flat: no flat in ['inputs'] valid at the exposure's time": 11}
    assert list(summary["calibrate"].values()) == [11]
    assert "upstream isr quanta were pruned" in next(iter(summary["calibrate"]))
    assert list(summary["summary"].values()) == [3]
    pruned_ids = [json.loads(text) for text in graph.pruned.column("data_id").to_pylist()]
    assert {d["exposure"] for d in pruned_ids if "exposure" in d} == {2, 4, 6}
    for quantum in graph.quanta_of("isr"):
        assert [ref.dataset_type.name for ref in quantum.inputs["raw"]] == ["raw"]
        assert quantum.data_id["band"] == "g" and quantum.data_id.has_full_values
        assert quantum.outputs["post_isr"][0].run == RUN
        assert quantum.metadata_output is not None and quantum.log_output is not None


def test_calibrations_follow_the_validity_ranges(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, refs = repo
    graph = build(registry)
    early = {r.data_id["detector"]: r.id for r in refs["bias_early"]}
    late = {r.data_id["detector"]: r.id for r in refs["bias_late"]}
    for quantum in graph.quanta_of("isr"):
        (bias,) = quantum.inputs["bias"]
        expected = early if quantum.data_id["exposure"] <= 3 else late
        assert bias.id == expected[quantum.data_id["detector"]]
        assert bias.dataset_type.is_calibration and bias.run in ("calib/early", "calib/late")
        (flat,) = quantum.inputs["flat"]
        assert flat.data_id["physical_filter"] == "g_01" and flat.data_id["band"] == "g"


def test_multiple_inputs_components_and_init_datasets(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, refs = repo
    graph = build(registry)
    calexps = {ref.data_id: ref.id for q in graph.quanta_of("calibrate") for ref in q.outputs["calexp"]}
    for quantum in graph.quanta_of("summary"):
        metadata = quantum.inputs["wcs_metadata"]
        assert {ref.dataset_type.name for ref in metadata} == {"calexp.metadata"}
        visit = quantum.data_id["visit"]
        detectors = 3 if visit == campaign.MISSING_RAW[0] else 4
        assert len(metadata) == len(quantum.inputs["src"]) == detectors
        assert {ref.id for ref in metadata} <= set(calexps.values())
        assert quantum.init_inputs["src_schema"].id == graph.init_refs("calibrate")["src_schema"].id
    calibrate = next(graph.quanta_of("calibrate"))
    assert calibrate.inputs["refcat"][0].id == refs["refcat"][0].id
    init = graph.init_refs("calibrate")
    assert set(init) == {"_config", "src_schema"}
    assert init["_config"].dataset_type.name == "calibrate_config"
    assert graph.packages_ref().dataset_type.name == "packages"
    kinds = set(graph.init_edges.column("kind").to_pylist())
    assert kinds == {EdgeKind.CONFIG, EdgeKind.INIT_OUTPUT, EdgeKind.INIT_INPUT, EdgeKind.PACKAGES}


def test_existing_inputs_have_datastore_records(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    graph = build(registry)
    raws = [ref for q in graph.quanta_of("isr") for ref in q.inputs["raw"]]
    records = graph.records_of(ref.id for ref in raws)
    assert set(records) == {ref.id for ref in raws}
    ref = raws[0]
    (record,) = records[ref.id]
    assert record.path == f"raw/{ref.data_id['exposure']}/{ref.data_id['detector']}.fits"
    # Only raws some quantum reads are kept (r-band raws were pruned with their quanta).
    assert graph.dataset_count("raw") == len(raws)
    assert graph.datastore_records.num_rows == len(raws)


def test_where_and_bind_constrain_everything(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    graph = build(registry, "exposure IN (:e) AND detector < 2", bind={"e": [1, 3]})
    assert graph.quantum_count("isr") == 4
    assert graph.quantum_count("summary") == 2
    assert graph.metadata.where.startswith("exposure IN") and graph.metadata.bind == {"e": [1, 3]}


def test_skip_existing_in_and_extend_run(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    pipeline = campaign.pipeline_graph()
    pipeline.register_dataset_types(registry)
    registry.register_run(RUN)
    # isr of exposure 1 finished (postISRCCD + metadata) for every detector; detector 0 of
    # exposure 3 only wrote postISRCCD (no metadata: it failed afterwards).
    done = [{"instrument": "DemoCam", "exposure": 1, "detector": d} for d in campaign.DETECTORS]
    written = registry.insert_datasets("postISRCCD", done, RUN)
    registry.insert_datasets("isr_metadata", done, RUN)
    registry.insert_datasets("postISRCCD", [{"instrument": "DemoCam", "exposure": 3, "detector": 0}], RUN)
    with pytest.raises(QuantumGraphBuildError, match="already exists; pass --extend-run"):
        build(registry)
    with pytest.raises(QuantumGraphBuildError, match="Outputs of isr already exist in output run") as info:
        build(registry, extend_run=True)
    assert "4 postISRCCD" not in str(info.value) or "5 postISRCCD" in str(info.value)
    with pytest.raises(QuantumGraphBuildError, match="1 postISRCCD"):
        build(registry, extend_run=True, skip_existing_in=[RUN])
    graph = build(registry, extend_run=True, skip_existing_in=[RUN], clobber_outputs=True)
    assert graph.quantum_count("isr") == 12 - 4
    assert graph.metadata.skip_existing_in == (RUN,) and graph.metadata.clobber_outputs
    skipped = graph.pruned_summary()["isr"]
    assert skipped[f"skipped: outputs already exist in {[RUN]}"] == 4
    # calibrate of visit 1 reads the existing postISRCCDs (resolved refs, not predicted ones).
    quantum = next(q for q in graph.quanta_of("calibrate") if q.data_id["visit"] == 1)
    (post_isr,) = quantum.inputs["post_isr"]
    assert post_isr.id in {ref.id for ref in written}
    table = graph.datasets["postISRCCD"]
    produced = dict(
        zip(table.column("dataset_id").to_pylist(), table.column("produced").to_pylist(), strict=True)
    )
    assert produced[post_isr.id.bytes] is False


def test_default_output_run_and_metadata(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    run = default_output_run("u/me")
    assert run.startswith("u/me/") and run.endswith("Z")
    graph = build(registry, run=run, output="u/me", pipeline_yaml="tasks: {}\n")
    metadata = graph.metadata
    assert metadata.output == "u/me" and metadata.output_run == run
    assert metadata.input_collections == (campaign.INPUTS,)
    assert metadata.universe_name == registry.universe.name and metadata.pipeline_yaml == "tasks: {}\n"
    assert not registry.has_collection(run) and not registry.has_collection("u/me")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"inputs": ["inptus"]}, "Unknown input collection 'inptus'; did you mean 'inputs'"),
        ({"where": "band = "}, "Invalid data query 'band = '"),
        ({"where": "bnad = 'g'"}, "Unknown identifier 'bnad'"),
        ({"where": "band = 'z'"}, "matches no dimension records"),
        ({"where": "band = :b"}, "Unknown bind parameter ':b'"),
        ({"inputs": [campaign.CALIB]}, "no raw datasets in collections ['calib']"),
        (
            {"where": "exposure = 6 AND detector = 3"},
            "no raw datasets in collections ['inputs'] have data IDs",
        ),
    ],
)
def test_bad_input_is_named(
    repo: tuple[Registry, dict[str, Any]], kwargs: dict[str, Any], message: str
) -> None:
    registry, _ = repo
    kwargs = dict(kwargs)
    where = kwargs.pop("where", "")
    with pytest.raises(QuantumGraphBuildError) as info:
        build(registry, where, **kwargs)
    assert message in str(info.value)


def test_extend_run_needs_the_run(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    with pytest.raises(QuantumGraphBuildError, match="--extend-run was given but output run"):
        build(registry, extend_run=True)


def test_ids_are_unique_and_refs_consistent(repo: tuple[Registry, dict[str, Any]]) -> None:
    registry, _ = repo
    graph = build(registry)
    node_ids = graph.node_ids()
    assert len(set(node_ids)) == len(node_ids) == graph.quantum_count()
    dataset_ids = [i for table in graph.datasets.values() for i in table.column("dataset_id").to_pylist()]
    assert len(set(dataset_ids)) == len(dataset_ids)
    assert all(uuid.UUID(bytes=i).version == 4 for i in node_ids_bytes(graph))
    outputs = list(graph.all_output_refs())
    produced = sum(sum(t.column("produced").to_pylist()) for t in graph.datasets.values())
    assert len(outputs) == produced


def node_ids_bytes(graph: QuantumGraph) -> list[bytes]:
    return [i for table in graph.quanta.values() for i in table.column("node_id").to_pylist()]
