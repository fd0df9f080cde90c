"""A job's butler (no registry) and the merge that registers what jobs wrote, idempotently."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from databases import DatabaseLocation
from registry_campaign import populate

from butler import DatasetRef, DatasetType
from butler.butler import Butler
from butler.datastore import DatastoreRecord
from butler.errors import ButlerError
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
    assert [ref.id for ref in report.missing] == [outputs[3].id]
    again = merge_outputs(butler.registry, butler.datastore, butler.storage_classes, outputs)
    assert (again.registered, again.already_registered, len(again.missing)) == (0, 3, 1)
    refs = butler.registry.query_datasets("calexp", "processing")
    assert {r.id for r in refs} == {r.id for r in outputs[:3]}
    assert np.array_equal(
        butler.get("calexp", instrument="DemoCam", visit=1, detector=2, collections="processing"),
        np.arange(4),
    )
    assert verify_datastore(butler.registry, butler.datastore).ok
