"""Dimension records in the registry: bulk insert, idempotent sync, expansion, materialized spatial overlaps."""

from __future__ import annotations

import pytest
from registry_campaign import box

from butler import (
    ConflictingDefinitionError,
    DataIdError,
    DataIdValueError,
    Registry,
    Timespan,
)


def _exposure_count(registry: Registry) -> int:
    return len(registry.query_dimension_records("exposure"))


def test_records_round_trip_with_timespan_and_region(populated: Registry) -> None:
    (exposure,) = populated.query_dimension_records(
        "exposure", data_id={"instrument": "DemoCam", "exposure": 2}
    )
    assert exposure.id == 2
    assert exposure.physical_filter == "i_01"
    assert exposure.obs_id == "DC_0002"
    assert exposure.timespan == Timespan.from_datetimes("2026-05-01T22:00:00", "2026-05-01T22:00:30")
    (visit,) = populated.query_dimension_records("visit", where="visit = 1")
    assert visit.region.contains(visit.region.getBoundingCircle().getCenter())


def test_insert_is_all_or_nothing_on_duplicate(populated: Registry) -> None:
    before = _exposure_count(populated)
    new = {"instrument": "DemoCam", "id": 100, "physical_filter": "g_01", "day_obs": 20260501}
    duplicate = {"instrument": "DemoCam", "id": 1, "physical_filter": "g_01", "day_obs": 20260501}
    with pytest.raises(ConflictingDefinitionError, match="already exist"):
        populated.insert_dimension_records("exposure", [new, duplicate])
    assert _exposure_count(populated) == before
    assert populated.insert_dimension_records("exposure", [new, duplicate], skip_existing=True) == 1
    assert _exposure_count(populated) == before + 1


def test_insert_rejects_reference_without_record(populated: Registry) -> None:
    bad = {"instrument": "DemoCam", "id": 100, "physical_filter": "z_99", "day_obs": 20260501}
    with pytest.raises(DataIdValueError, match="physical_filter.*z_99"):
        populated.insert_dimension_records("exposure", [bad])
    with pytest.raises(DataIdValueError, match="instrument"):
        populated.insert_dimension_records("detector", [{"instrument": "NoCam", "id": 1}])
    assert _exposure_count(populated) == 6


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"instrument": "DemoCam", "id": 7, "exposure_tim": 1.0}, "did you mean 'exposure_time'"),
        ({"instrument": "DemoCam", "id": "seven"}, "must be an integer"),
        ({"instrument": "DemoCam", "id": 7, "exposure_time": "long"}, "'exposure_time' must be float"),
        ({"id": 7}, "missing required field 'instrument'"),
        ({"instrument": "DemoCam", "id": 7, "timespan": "tonight"}, "timespan"),
    ],
)
def test_bad_records_are_named(populated: Registry, record: dict[str, object], message: str) -> None:
    with pytest.raises(DataIdError, match=message):
        populated.insert_dimension_records("exposure", [record])
    assert _exposure_count(populated) == 6


def test_bad_region_is_named(registry: Registry) -> None:
    registry.insert_dimension_records("skymap", [{"name": "s"}])
    with pytest.raises(DataIdError, match="polygon"):
        registry.insert_dimension_records("tract", [{"skymap": "s", "id": 0, "region": {"triangle": [1, 2]}}])


def test_sync_is_idempotent_and_names_conflicting_fields(registry: Registry) -> None:
    record = {"name": "DemoCam", "detector_max": 4, "class_name": "demo.DemoCam"}
    assert registry.sync_dimension_records("instrument", [record]) == [True]
    assert registry.sync_dimension_records("instrument", [record]) == [False]
    changed = record | {"detector_max": 5}
    with pytest.raises(ConflictingDefinitionError, match=r"detector_max: 4 in registry, 5 given"):
        registry.sync_dimension_records("instrument", [{"name": "Other"}, changed])
    # The whole call failed, so the other record was not inserted either.
    assert [r.name for r in registry.query_dimension_records("instrument")] == ["DemoCam"]


def test_same_record_twice_in_one_batch_is_refused(registry: Registry) -> None:
    with pytest.raises(ConflictingDefinitionError, match="given twice"):
        registry.insert_dimension_records("band", [{"name": "g"}, {"name": "g"}])
    assert registry.query_dimension_records("band") == []


def test_expand_data_id_fills_implied_values_and_records(populated: Registry) -> None:
    data_id = populated.expand_data_id(instrument="DemoCam", exposure=3, detector=1)
    assert data_id.has_full_values
    assert data_id["band"] == "g"
    assert data_id["physical_filter"] == "g_01"
    assert data_id["day_obs"] == 20260501
    assert data_id.records["detector"].full_name == "S01"
    assert data_id.records["band"].name == "g"


def test_expand_data_id_errors(populated: Registry) -> None:
    with pytest.raises(DataIdValueError, match="No exposure record"):
        populated.expand_data_id(instrument="DemoCam", exposure=99)
    with pytest.raises(
        DataIdValueError, match="physical_filter='r_01' but the registry's records say 'g_01'"
    ):
        populated.expand_data_id(instrument="DemoCam", exposure=3, physical_filter="r_01")
    with pytest.raises(DataIdError, match="missing required key"):
        populated.expand_data_id(exposure=3)


def _overlaps(registry: Registry, where: str) -> set[tuple[int, int]]:
    data_ids = registry.query_data_ids(["visit", "detector"], where=where)
    return {(d["visit"], d["detector"]) for d in data_ids}


def test_spatial_overlaps_are_materialized_and_joinable(populated: Registry) -> None:
    assert _overlaps(populated, "skymap = 'demo' AND tract = 0 AND patch = 3") == {
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
    }
    assert _overlaps(populated, "skymap = 'demo' AND patch = 0") == {(1, d) for d in range(4)} | {(2, 0)}
    patches = populated.query_data_ids(
        ["patch"], where="visit = 2 AND detector = 3 AND instrument = 'DemoCam'"
    )
    assert {p["patch"] for p in patches} == {3}
    patches = populated.query_data_ids(["tract", "patch"], data_id={"instrument": "DemoCam", "visit": 1})
    assert {p["patch"] for p in patches} == {0}


def test_overlaps_found_whichever_side_is_inserted_first(registry: Registry) -> None:
    registry.insert_dimension_records("instrument", [{"name": "Cam"}])
    registry.insert_dimension_records("band", [{"name": "g"}])
    registry.insert_dimension_records("physical_filter", [{"instrument": "Cam", "name": "g", "band": "g"}])
    registry.insert_dimension_records("day_obs", [{"instrument": "Cam", "id": 1}])
    registry.insert_dimension_records("detector", [{"instrument": "Cam", "id": 0}])
    registry.insert_dimension_records(
        "visit", [{"instrument": "Cam", "id": 1, "physical_filter": "g", "day_obs": 1}]
    )
    registry.insert_dimension_records(
        "visit_detector_region",
        [{"instrument": "Cam", "visit": 1, "detector": 0, "region": box(0.2, 0.4, 0.2, 0.4)}],
    )
    registry.insert_dimension_records("skymap", [{"name": "s"}])
    registry.insert_dimension_records("tract", [{"skymap": "s", "id": 0, "region": box(0, 1, 0, 1)}])
    registry.insert_dimension_records(
        "patch",
        [
            {"skymap": "s", "tract": 0, "id": 0, "region": box(0, 0.5, 0, 0.5)},
            {"skymap": "s", "tract": 0, "id": 1, "region": box(0.5, 1, 0.5, 1)},
        ],
    )
    found = registry.query_data_ids(["patch"], data_id={"instrument": "Cam", "visit": 1, "detector": 0})
    assert [d["patch"] for d in found] == [0]
