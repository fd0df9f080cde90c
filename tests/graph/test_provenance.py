"""Provenance from the graph plus the repository: what a dataset was made from, and what was derived from a raw."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from databases import DatabaseLocation
from test_transfer import OUTPUT_RUN, Run, make_graph, make_repository

from butler.butler import Butler
from butler.cli import main as butler_main
from butler.datasets import DatasetRef
from butler.task_metadata import TaskMetadata
from graph.cli.provenance_commands import query_provenance
from graph.errors import QuantumGraphError
from graph.provenance import ACTUAL_INPUTS_KEY, dataset_origin, derived_datasets, derived_table
from graph.qgraph_io import write_quantum_graph
from graph.quantum_graph import QuantumGraph
from graph.transfer import transfer_from_graph


@pytest.fixture
def butler(tmp_path: Path, database: DatabaseLocation) -> Iterator[Butler]:
    with Butler(make_repository(tmp_path / "repo", database)) as butler:
        yield butler


def _output(graph: QuantumGraph, name: str, detector: int | None = None) -> DatasetRef:
    return next(
        ref
        for ref in graph.all_output_refs()
        if ref.dataset_type.name == name and (detector is None or ref.data_id["detector"] == detector)
    )


def _input(butler: Butler, name: str, **data_id: object) -> DatasetRef:
    ref = butler.find_dataset(name, data_id, collections="inputs")
    assert ref is not None
    return ref


def _rewrite_metadata(butler: Butler, ref: DatasetRef, actual: list[DatasetRef]) -> None:
    """Replace a quantum's metadata file by one recording ``actual`` as the inputs read."""
    datastore = butler.file_datastore
    storage_class = butler.storage_classes["TaskMetadata"]
    records = datastore.with_file_sizes(datastore.predict_records(ref, storage_class))
    assert records is not None
    metadata = datastore.get(ref, records, storage_class)
    metadata[ACTUAL_INPUTS_KEY] = [str(r.id) for r in actual]
    datastore.remove_artifacts(records)
    datastore.put(TaskMetadata(metadata.to_dict()), ref, storage_class)


def test_origin_of_an_output_lists_predicted_inputs(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all()
    sums = _output(graph, "sums", 1)
    origin = dataset_origin(butler, graph, sums.id)
    assert (origin.dataset_type, origin.data_id, origin.run) == (
        "sums",
        {"instrument": "Cam", "detector": 1},
        OUTPUT_RUN,
    )
    assert origin.task == "add"
    assert origin.quantum_data_id == {"instrument": "Cam", "detector": 1}
    assert origin.node_id == str(graph.node_ids("add")[1])
    assert not origin.registered
    numbers, offset = (
        _input(butler, "numbers", instrument="Cam", detector=1),
        _input(butler, "offset", instrument="Cam"),
    )
    assert [(i.kind, i.dataset_id) for i in origin.inputs] == [
        ("input", str(numbers.id)),
        ("prerequisite", str(offset.id)),
    ]

    transfer_from_graph(butler, graph, register_dataset_types=True)
    assert dataset_origin(butler, graph, sums.id).registered


def test_actual_inputs_from_the_quantum_metadata(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all()
    total = _output(graph, "total")
    sums = [_output(graph, "sums", d) for d in range(4)]
    _rewrite_metadata(butler, _output(graph, "gather_metadata"), sums[:3])
    origin = dataset_origin(butler, graph, total.id)
    assert origin.actual_inputs_recorded
    assert [(i.dataset_id, i.read) for i in origin.inputs] == [(str(r.id), r in sums[:3]) for r in sums]


def test_actual_inputs_are_recorded_by_execution(butler: Butler) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all()
    origin = dataset_origin(butler, graph, _output(graph, "total").id)
    assert origin.actual_inputs_recorded
    assert [i.read for i in origin.inputs] == [True] * 4  # through deferred handles
    sums = dataset_origin(butler, graph, _output(graph, "sums", 2).id)
    assert [(i.kind, i.read) for i in sums.inputs] == [("input", True), ("prerequisite", True)]


def test_origin_of_inputs_and_init_outputs(butler: Butler) -> None:
    graph = make_graph(butler)
    raw = _input(butler, "numbers", instrument="Cam", detector=0)
    origin = dataset_origin(butler, graph, raw.id)
    assert origin.task is None and origin.inputs == [] and origin.registered
    config = graph.init_output_refs("add")["_config"]
    origin = dataset_origin(butler, graph, config.id)
    assert origin.task == "add" and origin.node_id is None
    with pytest.raises(QuantumGraphError, match="not in the quantum graph"):
        dataset_origin(butler, graph, DatasetRef.new(raw.dataset_type, raw.data_id, "elsewhere").id)


def test_derived_from_a_raw_transitively(butler: Butler) -> None:
    graph = make_graph(butler)
    raw = _input(butler, "numbers", instrument="Cam", detector=1)
    derived = derived_datasets(butler, graph, raw.id)
    assert [(d.generation, d.dataset_type, d.data_id) for d in derived] == [
        (1, "sums", {"instrument": "Cam", "detector": 1}),
        (2, "total", {"instrument": "Cam"}),
    ]
    assert [d.id for d in (_output(graph, "sums", 1), _output(graph, "total"))] == [
        uuid.UUID(d.dataset_id) for d in derived
    ]
    assert not any(d.registered for d in derived)
    with_metadata = derived_datasets(butler, graph, raw.id, include_metadata=True)
    assert sorted(d.dataset_type for d in with_metadata) == [
        "add_log",
        "add_metadata",
        "gather_log",
        "gather_metadata",
        "sums",
        "total",
    ]

    Run(butler, graph).all()
    transfer_from_graph(butler, graph, register_dataset_types=True)
    assert all(d.registered for d in derived_datasets(butler, graph, raw.id))


def test_derived_from_a_prerequisite_reaches_every_quantum(butler: Butler) -> None:
    graph = make_graph(butler)
    offset = _input(butler, "offset", instrument="Cam")
    table = derived_table(graph, [offset.id])
    assert table.column("dataset_type").to_pylist() == ["sums"] * 4 + ["total"]
    assert table.column("generation").to_pylist() == [1, 1, 1, 1, 2]
    total = _output(graph, "total")
    assert derived_table(graph, [total.id]).num_rows == 0  # nothing reads it


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(butler_main.commands, "query-provenance", query_provenance)


@pytest.mark.usefixtures("commands")
def test_cli_query_provenance(butler: Butler, tmp_path: Path) -> None:
    graph = make_graph(butler)
    Run(butler, graph).all()
    path = tmp_path / "run.qg"
    write_quantum_graph(graph, path)
    repo = str(butler.file_datastore.root.ospath)
    total = _output(graph, "total")
    runner = CliRunner()
    result = runner.invoke(
        butler_main,
        ["query-provenance", repo, str(path), "--dataset-id", str(total.id)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert result.output.startswith(
        f"total {{instrument=Cam}} in {OUTPUT_RUN} (id {total.id}; not registered)"
    )
    assert "Produced by gather {instrument=Cam}" in result.output
    assert "read = ?" not in result.output
    assert result.output.count("sums") == 4

    raw = _input(butler, "numbers", instrument="Cam", detector=2)
    derived = runner.invoke(
        butler_main, ["query-provenance", repo, str(path), "--dataset-id", str(raw.id), "--derived", "--json"]
    )
    assert derived.exit_code == 0, derived.output
    assert [(d["dataset_type"], d["generation"]) for d in json.loads(derived.output)] == [
        ("sums", 1),
        ("total", 2),
    ]

    bad = runner.invoke(butler_main, ["query-provenance", repo, str(path), "--dataset-id", "not-a-uuid"])
    assert bad.exit_code == 2 and "not a dataset UUID" in bad.output
    unknown = runner.invoke(
        butler_main,
        ["query-provenance", repo, str(path), "--dataset-id", "00000000-0000-0000-0000-000000000001"],
    )
    assert unknown.exit_code == 1 and "not in the quantum graph" in unknown.output
