"""Tests of data IDs (butler.data_coordinate.DataCoordinate) without a registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from butler.data_coordinate import DataCoordinate
from butler.dimensions import DimensionUniverse
from butler.errors import ButlerError, DataIdError


@pytest.fixture
def universe() -> DimensionUniverse:
    """The packaged default universe."""
    return DimensionUniverse.default()


@pytest.fixture
def full_exposure_id() -> DataCoordinate:
    """An exposure data ID with its implied values."""
    return DataCoordinate.standardize(
        {"instrument": "HSC", "exposure": 903334},
        physical_filter="HSC-R",
        band="r",
        day_obs=20240101,
    )


def test_standardize_mapping(universe: DimensionUniverse) -> None:
    data_id = DataCoordinate.standardize({"instrument": "HSC", "visit": 12, "detector": 3})
    assert data_id.dimensions == universe.group(["visit", "detector"])
    assert data_id.universe is universe
    assert data_id.required == {"instrument": "HSC", "detector": 3, "visit": 12}
    assert data_id.required_values == ("HSC", 3, 12)
    assert data_id["visit"] == 12
    assert not data_id.has_full_values
    assert not data_id.has_records


def test_standardize_kwargs_and_mapping_merge() -> None:
    from_kwargs = DataCoordinate.standardize(instrument="HSC", detector=3)
    merged = DataCoordinate.standardize({"instrument": "HSC", "detector": 1}, detector=3)
    assert from_kwargs == merged
    assert merged["detector"] == 3


def test_standardize_with_universe_argument(universe: DimensionUniverse) -> None:
    data_id = DataCoordinate.standardize(universe=universe, skymap="rings", tract=9813, patch=40)
    assert data_id.required_values == ("rings", 9813, 40)


def test_standardize_empty(universe: DimensionUniverse) -> None:
    data_id = DataCoordinate.standardize()
    assert data_id == DataCoordinate.make_empty(universe)
    assert len(data_id) == 0
    assert data_id.has_full_values
    assert repr(data_id) == "{}"


def test_standardize_from_data_coordinate(full_exposure_id: DataCoordinate) -> None:
    again = DataCoordinate.standardize(full_exposure_id)
    assert again == full_exposure_id
    assert again.has_full_values
    with_detector = DataCoordinate.standardize(full_exposure_id, detector=5)
    assert with_detector.required == {"instrument": "HSC", "detector": 5, "exposure": 903334}


def test_unknown_key_suggests() -> None:
    with pytest.raises(DataIdError, match=r"Unknown data ID key 'detectr'; did you mean 'detector'"):
        DataCoordinate.standardize(instrument="HSC", detectr=3)


def test_unknown_key_without_close_match_lists_dimensions() -> None:
    with pytest.raises(DataIdError, match=r"known: instrument, .*patch\.") as info:
        DataCoordinate.standardize(instrument="HSC", qqqqqq=3)
    # Join elements are not data ID keys and are not offered.
    assert "visit_definition" not in str(info.value)


def test_join_element_is_not_a_data_id_key() -> None:
    with pytest.raises(DataIdError, match="Unknown data ID key 'visit_detector_region'"):
        DataCoordinate.standardize(instrument="HSC", visit=1, detector=2, visit_detector_region=3)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"instrument": "HSC", "detector": "5"}, "'detector' must be an integer, got str '5'"),
        ({"instrument": "HSC", "detector": True}, "'detector' must be an integer, got bool True"),
        ({"instrument": "HSC", "detector": 5.0}, "'detector' must be an integer, got float 5.0"),
        ({"instrument": "HSC", "detector": None}, "'detector' must be an integer, got NoneType None"),
        ({"instrument": 7}, "'instrument' must be a string, got int 7"),
        ({"instrument": b"HSC"}, "'instrument' must be a string, got bytes"),
    ],
    ids=["str-for-int", "bool", "float", "none", "int-for-str", "bytes"],
)
def test_wrong_value_type(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(DataIdError, match=message):
        DataCoordinate.standardize(kwargs)


def test_data_id_error_is_value_error() -> None:
    with pytest.raises(ValueError, match="must be an integer"):
        DataCoordinate.standardize(instrument="HSC", detector="x")
    assert issubclass(DataIdError, ButlerError)


def test_numpy_integer_becomes_int() -> None:
    data_id = DataCoordinate.standardize(instrument="HSC", detector=np.int64(5))
    assert type(data_id["detector"]) is int
    assert data_id == DataCoordinate.standardize(instrument="HSC", detector=5)


def test_missing_required_keys_are_listed(universe: DimensionUniverse) -> None:
    with pytest.raises(DataIdError, match=r"missing required key\(s\) instrument for dimensions"):
        DataCoordinate.standardize(exposure=1)
    with pytest.raises(
        DataIdError, match=r"\{instrument: 'HSC'\} is missing required key\(s\) detector, visit"
    ):
        DataCoordinate.standardize(instrument="HSC", dimensions=universe.group(["visit", "detector"]))


def test_string_length_limit() -> None:
    assert DataCoordinate.standardize(instrument="x" * 32)["instrument"] == "x" * 32
    with pytest.raises(DataIdError, match="'instrument' is longer than 32 characters"):
        DataCoordinate.standardize(instrument="x" * 33)


def test_extra_known_dimensions_dropped_with_dimensions(universe: DimensionUniverse) -> None:
    group = universe.group(["exposure"])
    data_id = DataCoordinate.standardize(
        instrument="HSC", exposure=1, detector=3, skymap="rings", dimensions=group
    )
    assert data_id.dimensions == group
    assert dict(data_id) == {"instrument": "HSC", "exposure": 1}
    assert "detector" not in data_id


def test_extra_unknown_key_still_rejected_with_dimensions(universe: DimensionUniverse) -> None:
    with pytest.raises(DataIdError, match="did you mean 'exposure'"):
        DataCoordinate.standardize(
            instrument="HSC", exposure=1, exposur=1, dimensions=universe.group(["exposure"])
        )


def test_implied_values_kept_when_all_given(
    full_exposure_id: DataCoordinate, universe: DimensionUniverse
) -> None:
    assert full_exposure_id.dimensions == universe.group(["exposure"])
    assert full_exposure_id.has_full_values
    assert full_exposure_id["band"] == "r"
    assert full_exposure_id["physical_filter"] == "HSC-R"
    assert full_exposure_id["day_obs"] == 20240101
    assert dict(zip(full_exposure_id.dimensions.data_id_keys, full_exposure_id.full_values, strict=True)) == {
        "instrument": "HSC",
        "exposure": 903334,
        "band": "r",
        "physical_filter": "HSC-R",
        "day_obs": 20240101,
    }
    assert len(full_exposure_id) == 5


def test_implied_values_dropped_when_some_missing() -> None:
    data_id = DataCoordinate.standardize(instrument="HSC", exposure=1, physical_filter="HSC-R")
    assert not data_id.has_full_values
    assert dict(data_id) == {"instrument": "HSC", "exposure": 1}
    with pytest.raises(KeyError, match="'band' is implied and this data ID was not expanded"):
        data_id["band"]
    assert data_id.get("band") is None
    with pytest.raises(DataIdError, match="has no implied values"):
        _ = data_id.full_values


def test_implied_values_are_type_checked() -> None:
    with pytest.raises(DataIdError, match="'day_obs' must be an integer"):
        DataCoordinate.standardize(
            instrument="HSC", exposure=1, physical_filter="HSC-R", band="r", day_obs="x"
        )


def test_equality_and_hash_ignore_implied(full_exposure_id: DataCoordinate) -> None:
    minimal = DataCoordinate.standardize(instrument="HSC", exposure=903334)
    assert minimal == full_exposure_id
    assert hash(minimal) == hash(full_exposure_id)
    assert len({minimal, full_exposure_id}) == 1
    assert minimal != DataCoordinate.standardize(instrument="HSC", exposure=903335)
    assert minimal != DataCoordinate.standardize(instrument="LSSTCam", exposure=903334)


def test_equality_needs_same_dimensions() -> None:
    a = DataCoordinate.standardize(instrument="HSC", detector=1)
    b = DataCoordinate.standardize(instrument="HSC", detector=1, exposure=1)
    assert a != b
    # A data ID is not equal to a plain dict with the same items.
    assert a != {"instrument": "HSC", "detector": 1}


def test_subset(full_exposure_id: DataCoordinate, universe: DimensionUniverse) -> None:
    assert full_exposure_id.subset(full_exposure_id.dimensions) is full_exposure_id
    instrument_only = full_exposure_id.subset(universe.group(["instrument"]))
    assert dict(instrument_only) == {"instrument": "HSC"}
    assert instrument_only.dimensions == universe.group(["instrument"])
    physical_filter = full_exposure_id.subset(universe.group(["physical_filter"]))
    assert physical_filter.has_full_values
    assert dict(physical_filter) == {"instrument": "HSC", "physical_filter": "HSC-R", "band": "r"}
    # An implied value of the parent becomes a required one of the subset.
    band = full_exposure_id.subset(universe.group(["band"]))
    assert band.required == {"band": "r"}


def test_subset_needs_values(universe: DimensionUniverse) -> None:
    minimal = DataCoordinate.standardize(instrument="HSC", exposure=1)
    with pytest.raises(DataIdError, match="no value for physical_filter"):
        minimal.subset(universe.group(["physical_filter"]))
    with pytest.raises(DataIdError, match="no value for detector"):
        minimal.subset(universe.group(["detector"]))


def test_mapping_and_required_views(full_exposure_id: DataCoordinate) -> None:
    assert full_exposure_id.required == {"instrument": "HSC", "exposure": 903334}
    assert full_exposure_id.mapping == {
        "instrument": "HSC",
        "exposure": 903334,
        "band": "r",
        "physical_filter": "HSC-R",
        "day_obs": 20240101,
    }
    assert list(full_exposure_id) == list(full_exposure_id.dimensions.data_id_keys)
    assert "band" in full_exposure_id
    assert "detector" not in full_exposure_id
    with pytest.raises(KeyError):
        full_exposure_id["detector"]
    # The views are copies: changing them does not change the data ID.
    full_exposure_id.mapping["exposure"] = 0
    assert full_exposure_id["exposure"] == 903334


def test_records_absent_without_registry(full_exposure_id: DataCoordinate) -> None:
    assert not full_exposure_id.has_records
    with pytest.raises(DataIdError, match="has no dimension records"):
        _ = full_exposure_id.records


def test_repr() -> None:
    data_id = DataCoordinate.standardize(instrument="HSC", visit=12, detector=3)
    assert repr(data_id) == "{instrument: 'HSC', detector: 3, visit: 12}"


def test_to_simple_round_trips(full_exposure_id: DataCoordinate) -> None:
    simple = full_exposure_id.to_simple()
    assert simple == full_exposure_id.mapping
    assert DataCoordinate.standardize(json.loads(json.dumps(simple))) == full_exposure_id
    assert DataCoordinate.standardize(yaml.safe_load(yaml.safe_dump(simple))).has_full_values


def test_numpy_string_becomes_plain_str() -> None:
    data_id = DataCoordinate.standardize(instrument=np.str_("HSC"), detector=1)
    yaml.safe_dump(data_id.to_simple())
    assert type(data_id["instrument"]) is str
