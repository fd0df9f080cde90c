"""A job's butler (no registry) and the merge that registers what jobs wrote, idempotently."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from databases import DatabaseLocation
from registry_campaign import populate

from butler import DatasetRef, DatasetType, merge
from butler.butler import Butler
from butler.datastore import DatastoreRecord
from butler.errors import ButlerError, ConflictingDefinitionError
from butler.merge import merge_outputs
from butler.quantum_backed import QuantumBackedButler
from butler.repository import create_repository
from butler.verify import verify_datastore

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "StructuredDataDict")
CALEXP = DatasetType("calexp", ["instrument", "visit", "detector"], "NumpyArray")


@pytest.fixture
def butler(database: DatabaseLocation, tmp_path: Path) -> Iterator[Butler]:
    create_repository(tmp_path / "repo", db=database.url, namespace=database.namespace)
    butler = Butler(tmp_path / "repo", run="raw/all")
    populate(butler.registry)
    butler.registry.register_dataset_type(RAW)
    butler.registry.register_dataset_type(CALEXP)
    for detector in range(4):
        butler.put({"pixels": detector}, "raw", instrument="DemoCam", exposure=1, detector=detector)
    butler.registry.register_run("processing")
    yield butler
    butler.close()


def job_butler(butler: Butler, outputs: list[DatasetRef]) -> QuantumBackedButler:
    """What a quantum graph would give a job: input refs with their records, predicted output refs."""
    inputs = {}
    for ref in butler.registry.query_datasets("raw", "raw/all"):
        rows = butler.registry.fetch_datastore_records(butler.datastore.name, [ref.id])
        inputs[ref] = [DatastoreRecord.from_row(r) for r in rows]
    return QuantumBackedButler(butler.datastore, butler.storage_classes, inputs, outputs)


def predicted_outputs(butler: Butler) -> list[DatasetRef]:
    return [
        DatasetRef.new(
            CALEXP, butler.registry.expand_data_id(instrument="DemoCam", visit=1, detector=d), "processing"
        )
        for d in range(4)
    ]


@pytest.fixture(params=["by-id", "whole-run"])
def lookup(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways the merge asks which refs are registered: by ID (few refs) and the run's whole list."""
    monkeypatch.setattr(merge, "_LOOKUP_BY_ID_BELOW", 1_000_000 if request.param == "by-id" else 0)
    return str(request.param)


def test_job_reads_inputs_and_writes_outputs_without_registry(butler: Butler) -> None:
    outputs = predicted_outputs(butler)
    qbb = job_butler(butler, outputs)
    butler.registry.close()  # the job has no database connection at all
    inputs = list(qbb._inputs.values())
    value = qbb.get(inputs[0])
    qbb.put(np.full((2, 2), value["pixels"]), outputs[0])
    qbb.put(np.zeros(3), outputs[1])
    with pytest.raises(ButlerError, match="already written"):
        qbb.put(np.zeros(3), outputs[1])
    with pytest.raises(ButlerError, match="not a predicted output"):
        qbb.put(np.zeros(3), DatasetRef.new(CALEXP, outputs[0].data_id, "processing"))
    assert np.array_equal(qbb.get(outputs[0]), np.full((2, 2), value["pixels"]))
    provenance = qbb.provenance()
    assert provenance.actual_inputs == {inputs[0].id, outputs[0].id}
    assert provenance.outputs == {outputs[0].id, outputs[1].id}
    assert provenance.available_inputs == {ref.id for ref in inputs}
    assert len(qbb.written_records()) == 2


def test_merge_registers_what_exists_and_is_idempotent(butler: Butler) -> None:
    outputs = predicted_outputs(butler)
    qbb = job_butler(butler, outputs)
    for ref in outputs[:3]:  # the fourth quantum failed
        qbb.put(np.arange(4), ref)
    report = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs, batch_size=2)
    assert (report.registered, report.already_registered) == (3, 0)
    assert report.missing == 1 and report.missing_by_type == {"calexp": 1}
    assert [ref.id for ref in report.missing_sample] == [outputs[3].id]
    again = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs)
    assert (again.registered, again.already_registered, again.missing) == (0, 3, 1)
    refs = butler.registry.query_datasets("calexp", "processing")
    assert {r.id for r in refs} == {r.id for r in outputs[:3]}
    assert np.array_equal(
        butler.get("calexp", instrument="DemoCam", visit=1, detector=2, collections="processing"),
        np.arange(4),
    )
    assert verify_datastore(butler.registry, butler.datastore).ok


@pytest.mark.usefixtures("lookup")
def test_remerge_looks_only_for_unregistered_files(butler: Butler, monkeypatch: pytest.MonkeyPatch) -> None:
    outputs = predicted_outputs(butler)
    qbb = job_butler(butler, outputs)
    for ref in outputs[:3]:
        qbb.put(np.arange(4), ref)
    first = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs[:2])
    assert (first.registered, first.already_registered, first.missing) == (2, 0, 0)
    looked_for: list[str] = []
    with_file_sizes = butler.datastore.with_file_sizes

    def spy(records: list[DatastoreRecord]) -> list[DatastoreRecord] | None:
        looked_for.extend(record.path for record in records)
        return with_file_sizes(records)

    monkeypatch.setattr(butler.datastore, "with_file_sizes", spy)
    again = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs, batch_size=3)
    assert (again.registered, again.already_registered, again.missing) == (1, 2, 1)
    assert len(looked_for) == 2  # outputs[2] (registered now) and outputs[3] (missing) only
    assert [ref.id for ref in again.missing_sample] == [outputs[3].id]
    assert verify_datastore(butler.registry, butler.datastore).ok


@pytest.mark.usefixtures("lookup")
def test_merge_refuses_a_registered_id_with_another_data_id(butler: Butler) -> None:
    outputs = predicted_outputs(butler)
    qbb = job_butler(butler, outputs)
    for ref in outputs[:2]:
        qbb.put(np.arange(4), ref)
    merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs[:1])
    clash = DatasetRef(CALEXP, outputs[1].data_id, "processing", outputs[0].id)
    with pytest.raises(ConflictingDefinitionError, match="another type, run or data ID"):
        merge_outputs(butler.registry, butler.datastore, butler.storage_classes, [clash])


def test_merge_keeps_a_bounded_sample_of_missing_outputs(
    butler: Butler, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(merge, "MISSING_SAMPLE_SIZE", 2)
    outputs = predicted_outputs(butler)
    report = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs, batch_size=3)
    assert (report.registered, report.missing, report.missing_by_type) == (0, 4, {"calexp": 4})
    assert [ref.id for ref in report.missing_sample] == [ref.id for ref in outputs[:2]]
