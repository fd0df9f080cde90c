"""Dataset types and datasets in the registry: registration, bulk insert, import, tagging, certification."""

from __future__ import annotations

import uuid

import pytest

from butler import (
    CollectionType,
    CollectionTypeError,
    ConflictingDefinitionError,
    DataCoordinate,
    DataIdValueError,
    DatasetIdGenerationMode,
    DatasetRef,
    DatasetType,
    DatasetTypeError,
    InvalidQueryError,
    MissingCollectionError,
    MissingDatasetTypeError,
    Registry,
    Timespan,
)

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "Exposure")
BIAS = DatasetType("bias", ["instrument", "detector"], "Exposure", is_calibration=True)


def raw_ids(exposures: range | list[int] = range(1, 7)) -> list[dict[str, object]]:
    return [{"instrument": "DemoCam", "exposure": e, "detector": d} for e in exposures for d in range(4)]


@pytest.fixture
def with_raws(populated: Registry) -> Registry:
    populated.register_dataset_type(RAW)
    populated.register_run("raw/all")
    populated.insert_datasets(RAW, raw_ids(), "raw/all")
    return populated


def count(registry: Registry, dataset_type: str, collections: str | list[str]) -> int:
    return len(registry.query_datasets(dataset_type, collections, find_first=False))


def test_register_dataset_type_is_idempotent_and_detects_conflicts(registry: Registry) -> None:
    assert registry.register_dataset_type(RAW) is True
    assert registry.register_dataset_type(RAW) is False
    conflicting = DatasetType("raw", ["instrument", "exposure"], "Image")
    with pytest.raises(
        ConflictingDefinitionError, match=r"dimensions .* storage class 'Exposure' != 'Image'"
    ):
        registry.register_dataset_type(conflicting)
    assert registry.get_dataset_type("raw") == RAW
    assert [t.name for t in registry.query_dataset_types("r*")] == ["raw"]


def test_component_and_unknown_dataset_types(registry: Registry) -> None:
    registry.register_dataset_type(RAW)
    with pytest.raises(DatasetTypeError, match="register its parent 'raw'"):
        registry.register_dataset_type(DatasetType("raw.wcs", RAW.dimensions, "Wcs"))
    with pytest.raises(MissingDatasetTypeError, match="did you mean 'raw'"):
        registry.get_dataset_type("rae")
    with pytest.raises(MissingDatasetTypeError, match="no component 'wcs'"):
        registry.get_dataset_type("raw.wcs")


def test_insert_and_get_datasets(with_raws: Registry) -> None:
    refs = with_raws.query_datasets("raw", "raw/all")
    assert len(refs) == 24
    ref = refs[0]
    assert with_raws.get_dataset(ref.id) == ref
    assert with_raws.get_dataset(str(ref.id)).data_id == ref.data_id  # type: ignore[union-attr]
    assert with_raws.get_dataset(uuid.uuid4()) is None


def test_duplicate_data_id_in_run_writes_nothing(with_raws: Registry) -> None:
    with_raws.register_run("raw/more")
    fresh = {"instrument": "DemoCam", "exposure": 1, "detector": 0}
    with pytest.raises(ConflictingDefinitionError, match="already exists in run 'raw/all'"):
        with_raws.insert_datasets("raw", [raw_ids([1])[0] | {"detector": 3}, *raw_ids([2])], "raw/all")
    with pytest.raises(ConflictingDefinitionError, match="given twice"):
        with_raws.insert_datasets("raw", [fresh, fresh], "raw/more")
    assert count(with_raws, "raw", "raw/all") == 24
    assert count(with_raws, "raw", "raw/more") == 0


def test_insert_errors_name_the_problem(with_raws: Registry) -> None:
    with pytest.raises(DataIdValueError, match="exposure.*no exposure record.*99"):
        with_raws.insert_datasets(
            "raw", [{"instrument": "DemoCam", "exposure": 99, "detector": 0}], "raw/all"
        )
    with pytest.raises(MissingCollectionError, match="did you mean 'raw/all'"):
        with_raws.insert_datasets("raw", raw_ids([1]), "raw/al")
    with_raws.register_collection("tagged", CollectionType.TAGGED)
    with pytest.raises(CollectionTypeError, match="not RUN"):
        with_raws.insert_datasets("raw", raw_ids([1]), "tagged")
    with pytest.raises(ConflictingDefinitionError, match="does not match"):
        with_raws.insert_datasets(
            DatasetType("raw", ["instrument"], "Exposure"), [{"instrument": "DemoCam"}], "raw/all"
        )
    assert count(with_raws, "raw", "raw/all") == 24


def test_deterministic_ids_and_idempotent_import(with_raws: Registry, registry: Registry) -> None:
    with_raws.register_run("det")
    refs = with_raws.insert_datasets("raw", raw_ids([1]), "det", DatasetIdGenerationMode.DATAID_TYPE_RUN)
    again = [
        DatasetRef.new(r.dataset_type, r.data_id, "det", DatasetIdGenerationMode.DATAID_TYPE_RUN)
        for r in refs
    ]
    assert [r.id for r in again] == [r.id for r in refs]
    # Import under the same UUIDs: the first time stores, the second changes nothing.
    with_raws.register_run("imported")
    predicted = [DatasetRef(r.dataset_type, r.data_id, "imported", uuid.uuid4()) for r in refs]
    assert len(with_raws.import_datasets(predicted)) == 4
    assert with_raws.import_datasets(predicted) == []
    assert count(with_raws, "raw", "imported") == 4
    clash = DatasetRef(
        RAW,
        DataCoordinate.standardize(raw_ids([2])[0], dimensions=RAW.dimensions),
        "imported",
        predicted[0].id,
    )
    with pytest.raises(ConflictingDefinitionError, match="another type, run or data ID"):
        with_raws.import_datasets([clash])


def test_tagged_collections(with_raws: Registry) -> None:
    with_raws.register_collection("best", CollectionType.TAGGED, doc="hand-picked")
    refs = with_raws.query_datasets("raw", "raw/all", where="exposure = 1")
    with_raws.associate("best", refs)
    with_raws.associate("best", refs)  # already there: fine
    assert {r.id for r in with_raws.query_datasets("raw", "best")} == {r.id for r in refs}
    assert {r.run for r in with_raws.query_datasets("raw", "best")} == {"raw/all"}
    with_raws.register_run("raw/other")
    other = with_raws.insert_datasets("raw", raw_ids([1])[:1], "raw/other")
    with pytest.raises(ConflictingDefinitionError, match="already holds another raw"):
        with_raws.associate("best", other)
    with_raws.disassociate("best", refs[:2])
    assert count(with_raws, "raw", "best") == 2
    with pytest.raises(CollectionTypeError):
        with_raws.associate("raw/all", refs)


def test_certify_refuses_overlapping_validity(populated: Registry) -> None:
    populated.register_dataset_type(BIAS)
    populated.register_run("calib/run")
    populated.register_collection("calib", CollectionType.CALIBRATION)
    first = populated.insert_datasets(
        BIAS, [{"instrument": "DemoCam", "detector": d} for d in range(4)], "calib/run"
    )
    populated.register_run("calib/run2")
    second = populated.insert_datasets(
        BIAS, [{"instrument": "DemoCam", "detector": d} for d in range(4)], "calib/run2"
    )
    may = Timespan.from_datetimes("2026-05-01T00:00:00", "2026-05-02T00:00:00")
    populated.certify("calib", first, may)
    with pytest.raises(ConflictingDefinitionError, match="already valid"):
        populated.certify("calib", second, Timespan.from_datetimes("2026-05-01T23:00:00", None))
    populated.certify("calib", second, Timespan.from_datetimes("2026-05-02T00:00:00", None))
    populated.register_dataset_type(RAW)
    raw = populated.insert_datasets(RAW, raw_ids([1])[:1], "calib/run")
    with pytest.raises(DatasetTypeError, match="not a calibration"):
        populated.certify("calib", raw, may)
    assert len(populated.query_datasets("bias", "calib", find_first=False)) == 8


def test_calibration_lookup_uses_exposure_time(populated: Registry) -> None:
    populated.register_dataset_type(BIAS)
    populated.register_run("calib/a")
    populated.register_run("calib/b")
    populated.register_collection("calib", CollectionType.CALIBRATION)
    detectors = [{"instrument": "DemoCam", "detector": d} for d in range(4)]
    early = populated.insert_datasets(BIAS, detectors, "calib/a")
    late = populated.insert_datasets(BIAS, detectors, "calib/b")
    populated.certify("calib", early, Timespan.from_datetimes(None, "2026-05-02T12:00:00"))
    populated.certify("calib", late, Timespan.from_datetimes("2026-05-02T12:00:00", None))
    on_day_one = populated.query_datasets(
        "bias", "calib", data_id={"instrument": "DemoCam", "exposure": 1, "detector": 2}
    )
    on_day_two = populated.query_datasets(
        "bias", "calib", where="instrument = 'DemoCam' AND exposure = 5 AND detector = 2"
    )
    assert [r.run for r in on_day_one] == ["calib/a"]
    assert [r.run for r in on_day_two] == ["calib/b"]
    with pytest.raises(InvalidQueryError, match="needs a time"):
        populated.query_datasets("bias", "calib")
    assert len(populated.query_datasets("bias", "calib", find_first=False)) == 8


def test_decertify_trims_and_splits(populated: Registry) -> None:
    populated.register_dataset_type(BIAS)
    populated.register_run("calib/a")
    populated.register_collection("calib", CollectionType.CALIBRATION)
    (bias,) = populated.insert_datasets(BIAS, [{"instrument": "DemoCam", "detector": 0}], "calib/a")
    populated.certify("calib", [bias], Timespan.from_datetimes(None, None))
    hole = Timespan.from_datetimes("2026-05-01T21:30:00", "2026-05-02T21:30:00")
    assert populated.decertify("calib", "bias", hole) == 1

    def valid_for(exposure: int) -> bool:
        found = populated.query_datasets(
            "bias", "calib", data_id={"instrument": "DemoCam", "exposure": exposure, "detector": 0}
        )
        return bool(found)

    # Exposures start at 21:00, 22:00, 20:00 on day one (1-3) and again on day two (4-6).
    assert [valid_for(e) for e in range(1, 7)] == [True, False, True, False, True, False]


@pytest.mark.slow
def test_bulk_insert_is_one_transaction(registry: Registry) -> None:
    """100k+ refs go in together; one bad data ID at the very end leaves none of them behind."""
    registry.insert_dimension_records("instrument", [{"name": "Cam"}])
    registry.insert_dimension_records("band", [{"name": "g"}])
    registry.insert_dimension_records("physical_filter", [{"instrument": "Cam", "name": "g", "band": "g"}])
    registry.insert_dimension_records("day_obs", [{"instrument": "Cam", "id": 1}])
    registry.insert_dimension_records("detector", [{"instrument": "Cam", "id": d} for d in range(100)])
    registry.insert_dimension_records(
        "exposure",
        [{"instrument": "Cam", "id": e, "physical_filter": "g", "day_obs": 1} for e in range(1001)],
    )
    registry.register_dataset_type(RAW)
    registry.register_run("bulk")
    good = [{"instrument": "Cam", "exposure": e, "detector": d} for e in range(1000) for d in range(100)]
    with pytest.raises(DataIdValueError, match="exposure"):
        registry.insert_datasets(
            "raw", [*good, {"instrument": "Cam", "exposure": 5000, "detector": 0}], "bulk"
        )
    assert count(registry, "raw", "bulk") == 0
    extra = [{"instrument": "Cam", "exposure": 1000, "detector": d} for d in range(100)]
    assert len(registry.insert_datasets("raw", good + extra, "bulk")) == 100_100
    assert count(registry, "raw", "bulk") == 100_100
