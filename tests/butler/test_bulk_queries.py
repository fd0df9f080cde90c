"""Columnar bulk queries: a materialized data-ID table, dataset and calibration lookups joined to it."""

from __future__ import annotations

import uuid

import pyarrow as pa
import pyarrow.compute
import pytest

from butler import CollectionType, DatasetType, ExpressionError, InvalidQueryError, Registry, Timespan
from butler.bulk_queries import ids_from_hex

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "Exposure")
BIAS = DatasetType("bias", ["instrument", "detector"], "Exposure", is_calibration=True)
SKYMAP = DatasetType("skyMap", ["skymap"], "SkyMap")


def _uuids(column: pa.ChunkedArray) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=b) for b in column.to_pylist()]


@pytest.fixture
def repo(populated: Registry) -> Registry:
    """Raws of exposures 1-5 (detectors 0-3) in two runs, biases certified over two epochs, a sky map."""
    registry = populated
    for dataset_type in (RAW, BIAS, SKYMAP):
        registry.register_dataset_type(dataset_type)
    registry.register_run("raw/a")
    registry.register_run("raw/b")
    refs = registry.insert_datasets(
        RAW,
        [{"instrument": "DemoCam", "exposure": e, "detector": d} for e in range(1, 6) for d in range(4)],
        "raw/a",
    )
    registry.insert_datasets(RAW, [{"instrument": "DemoCam", "exposure": 1, "detector": 0}], "raw/b")
    registry.insert_datasets(SKYMAP, [{"skymap": "demo"}], "raw/a")
    registry.insert_datastore_records(
        {
            "dataset_id": ref.id,
            "datastore_name": "files",
            "path": f"raw/{ref.data_id['exposure']}_{ref.data_id['detector']}.fits",
            "formatter": "F",
            "storage_class": "Exposure",
            "file_size": 10,
        }
        for ref in refs
    )
    registry.register_run("calib/run")
    registry.register_run("calib/run2")
    registry.register_collection("calib", CollectionType.CALIBRATION)
    early = registry.insert_datasets(
        BIAS, [{"instrument": "DemoCam", "detector": d} for d in range(4)], "calib/run"
    )
    late = registry.insert_datasets(
        BIAS, [{"instrument": "DemoCam", "detector": d} for d in range(4)], "calib/run2"
    )
    # Exposures 1-3 are on 2026-05-01, 4-6 on 2026-05-02.
    registry.certify("calib", early, Timespan.from_datetimes(None, "2026-05-02T00:00:00"))
    registry.certify("calib", late, Timespan.from_datetimes("2026-05-02T00:00:00", None))
    registry.register_collection("inputs", CollectionType.CHAINED)
    registry.set_collection_chain("inputs", ["raw/b", "raw/a", "calib"])
    return registry


def test_rows_are_columnar_with_implied_values(repo: Registry) -> None:
    with repo.materialize_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections=["inputs"], where="band = 'g'"
    ) as rows:
        table = rows.table()
    assert table.column_names == list(repo.universe.group(["exposure", "detector"]).data_id_keys)
    assert table.schema.field("exposure").type == pa.int64()
    assert sorted(set(table.column("exposure").to_pylist())) == [3]  # exposure 6 has no raws
    assert set(table.column("band").to_pylist()) == {"g"}
    assert table.num_rows == 4


def test_spatial_join_and_dataset_constraints(repo: Registry) -> None:
    with repo.materialize_data_ids(
        ["visit", "detector", "patch", "exposure"], datasets=["raw", "skyMap"], collections=["inputs"]
    ) as rows:
        table = rows.table()
    pairs = set(zip(table.column("visit").to_pylist(), table.column("patch").to_pylist(), strict=True))
    # Visit 1 lies in patch 0; visit 2 straddles all four patches.
    assert {p for v, p in pairs if v == 1} == {0}
    assert {p for v, p in pairs if v == 2} == {0, 1, 2, 3}


def test_find_first_datasets_with_records(repo: Registry) -> None:
    with repo.materialize_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections=["inputs"], where="exposure IN (1, 2)"
    ) as rows:
        lookup = rows.find_datasets("raw", ["inputs"])
        everything = rows.find_datasets("raw", ["inputs"], find_first=False, with_records=False)
    datasets = lookup.datasets
    assert datasets.column_names[:2] == ["dataset_id", "run"]
    assert datasets.num_rows == 8
    runs = {
        (e, d): run
        for e, d, run in zip(
            datasets.column("exposure").to_pylist(),
            datasets.column("detector").to_pylist(),
            datasets.column("run").to_pylist(),
            strict=True,
        )
    }
    assert runs[(1, 0)] == "raw/b" and runs[(1, 1)] == "raw/a"
    assert everything.datasets.num_rows == 9 and everything.records.num_rows == 0
    # raw/b's dataset has no records; the seven from raw/a do.
    assert lookup.records.num_rows == 7
    assert set(_uuids(lookup.records.column("dataset_id"))) <= set(_uuids(datasets.column("dataset_id")))
    assert set(lookup.records.column("path").to_pylist()) >= {"raw/2_3.fits"}


def test_calibrations_by_validity_range(repo: Registry) -> None:
    early = {r.id for r in repo.query_datasets("bias", "calib/run", find_first=False)}
    late = {r.id for r in repo.query_datasets("bias", "calib/run2", find_first=False)}
    with repo.materialize_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections=["inputs"]
    ) as rows:
        lookup = rows.find_calibrations("bias", ["inputs"], "exposure")
    table = lookup.datasets
    assert table.num_rows == 5 * 4
    assert table.column_names == ["dataset_id", "run", "instrument", "detector", "exposure"]
    by_exposure: dict[int, set[uuid.UUID]] = {}
    for exposure, dataset_id in zip(
        table.column("exposure").to_pylist(), _uuids(table.column("dataset_id")), strict=True
    ):
        by_exposure.setdefault(exposure, set()).add(dataset_id)
    assert by_exposure[1] == by_exposure[3] and by_exposure[4] == by_exposure[5]
    assert by_exposure[1].isdisjoint(by_exposure[4])
    assert by_exposure[1] == early and by_exposure[4] == late
    assert set(table.column("run").to_pylist()) == {"calib/run", "calib/run2"}
    assert lookup.records.num_rows == 0


def test_nothing_found_is_explained(repo: Registry) -> None:
    dims = ["exposure", "detector"]
    with repo.materialize_data_ids(
        dims, datasets=["raw"], collections=["inputs"], where="exposure = 6"
    ) as rows:
        assert len(rows) == 0
        assert rows.find_datasets("raw", ["inputs"]).datasets.num_rows == 0
    reasons = repo.explain_empty_data_ids(
        dims, datasets=["raw"], collections=["inputs"], where="exposure = 6"
    )
    assert reasons == [
        f"no raw datasets in collections ['inputs'] have data IDs of {repo.universe.group(dims)} "
        "matching 'exposure = 6'"
    ]
    assert repo.explain_empty_data_ids(dims, datasets=["raw"], collections=["calib"]) == [
        "no raw datasets in collections ['calib']"
    ]
    assert "matches no dimension records" in repo.explain_empty_data_ids(dims, where="band = 'z'")[0]
    with pytest.raises(ExpressionError), repo.materialize_data_ids(dims, where="band = 3"):
        pass


def test_first_calibration_collection_wins_and_unbounded_ranges(repo: Registry) -> None:
    registry = repo
    registry.register_collection("calib/override", CollectionType.CALIBRATION)
    registry.register_run("calib/run3")
    override = registry.insert_datasets(BIAS, [{"instrument": "DemoCam", "detector": 0}], "calib/run3")
    registry.certify("calib/override", override, Timespan(None, None))
    with registry.materialize_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections=["inputs"]
    ) as rows:
        first = rows.find_calibrations("bias", ["calib/override", "calib"], "exposure").datasets
        last = rows.find_calibrations("bias", ["calib", "calib/override"], "exposure").datasets
    detector0 = first.filter(pa.compute.equal(first.column("detector"), 0))
    assert set(_uuids(detector0.column("dataset_id"))) == {override[0].id}
    assert detector0.num_rows == 5 and first.num_rows == 20
    assert override[0].id not in set(_uuids(last.column("dataset_id")))


def test_values_that_need_quoting_survive_the_transfer(repo: Registry) -> None:
    registry = repo
    tricky = ["a,b", "it's", 'say "hi"', "two\nlines", "NULL", ""]
    refs = registry.query_datasets("raw", "raw/a", where="exposure = 2")
    registry.insert_datastore_records(
        {
            "dataset_id": ref.id,
            "datastore_name": "second",
            "component": text,
            "path": f"p/{text}",
            "formatter": "F",
            "storage_class": "Exposure",
            "checksum": None if i % 2 else text,
        }
        for i, (ref, text) in enumerate(zip(refs, tricky, strict=False))
    )
    with repo.materialize_data_ids(
        ["exposure", "detector"], datasets=["raw"], collections=["raw/a"], where="exposure = 2"
    ) as rows:
        lookup = rows.find_datasets("raw", ["raw/a"])
    assert lookup.datasets.num_rows == 4  # one row per dataset although some have two records
    second = lookup.records.filter(pa.compute.equal(lookup.records.column("datastore_name"), "second"))
    assert sorted(second.column("component").to_pylist()) == sorted(tricky[:4])
    assert sorted(second.column("path").to_pylist()) == sorted(f"p/{t}" for t in tricky[:4])
    checksums = second.column("checksum").to_pylist()
    assert checksums.count(None) == 2 and set(checksums) - {None} <= set(tricky)
    assert set(lookup.records.column("file_size").to_pylist()) <= {10, None}


def test_hex_ids_convert_in_bulk() -> None:
    ids = [uuid.uuid4() for _ in range(5)]
    array = ids_from_hex([str(i) for i in ids[:2]] + [i.hex for i in ids[2:]])
    assert [uuid.UUID(bytes=b) for b in array.to_pylist()] == ids
    with pytest.raises(InvalidQueryError):
        ids_from_hex(["xyz"])
