"""Tests of dataset types, dataset refs and dataset ID generation (butler.datasets)."""

from __future__ import annotations

import uuid

import pytest

from butler.data_coordinate import DataCoordinate
from butler.datasets import DatasetIdGenerationMode, DatasetRef, DatasetType, dataset_id_for
from butler.dimensions import DimensionUniverse
from butler.errors import ButlerError, DatasetTypeError, DimensionNameError


@pytest.fixture
def universe() -> DimensionUniverse:
    """The packaged default universe."""
    return DimensionUniverse.default()


@pytest.fixture
def calexp() -> DatasetType:
    """A visit-detector dataset type."""
    return DatasetType("calexp", ["visit", "detector"], "ExposureF")


@pytest.fixture
def data_id() -> DataCoordinate:
    """A visit-detector data ID."""
    return DataCoordinate.standardize(instrument="HSC", visit=903334, detector=16)


# -- DatasetType ----------------------------------------------------------------------


def test_dataset_type_basics(calexp: DatasetType, universe: DimensionUniverse) -> None:
    assert calexp.name == "calexp"
    assert calexp.dimensions == universe.group(["visit", "detector"])
    assert calexp.storage_class_name == "ExposureF"
    assert not calexp.is_calibration
    assert calexp.parent_name == "calexp"
    assert calexp.component is None


def test_dataset_type_accepts_group(universe: DimensionUniverse) -> None:
    group = universe.group(["patch", "band"])
    dataset_type = DatasetType("deepCoadd", group, "ExposureF")
    assert dataset_type.dimensions is group


def test_dataset_type_with_custom_universe_argument(universe: DimensionUniverse) -> None:
    dataset_type = DatasetType("bias", ["detector"], "ExposureF", is_calibration=True, universe=universe)
    assert dataset_type.dimensions.required == ("instrument", "detector")
    assert dataset_type.is_calibration


def test_dataset_type_unknown_dimension() -> None:
    with pytest.raises(DimensionNameError, match="did you mean 'detector'"):
        DatasetType("calexp", ["visit", "detectors"], "ExposureF")


@pytest.mark.parametrize(
    "name",
    ["calexp", "_private", "src_2", "deepCoadd_calexp", "calexp.wcs", "calexp.wcs.sub", "A1"],
)
def test_valid_names(name: str) -> None:
    assert DatasetType(name, ["instrument"], "X").name == name


@pytest.mark.parametrize(
    "name",
    ["", "2calexp", "cal-exp", "cal exp", "calexp.", ".wcs", "calexp..wcs", "calexp.2wcs", "calexp/wcs", "é"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(
        DatasetTypeError, match=r"Invalid dataset type name .*letters, digits and underscores"
    ):
        DatasetType(name, ["instrument"], "X")


def test_name_with_trailing_newline_is_invalid() -> None:
    with pytest.raises(DatasetTypeError):
        DatasetType("calexp\n", ["instrument"], "X")


def test_non_string_name_is_invalid() -> None:
    with pytest.raises(DatasetTypeError, match="Invalid dataset type name 5"):
        DatasetType(5, ["instrument"], "X")  # type: ignore[arg-type]


@pytest.mark.parametrize("storage_class", ["", None])
def test_storage_class_required(storage_class: object) -> None:
    with pytest.raises(DatasetTypeError, match="'calexp' needs a storage class name"):
        DatasetType("calexp", ["instrument"], storage_class)  # type: ignore[arg-type]


def test_dataset_type_error_hierarchy() -> None:
    assert issubclass(DatasetTypeError, ButlerError)
    assert issubclass(DatasetTypeError, ValueError)


def test_component_names() -> None:
    wcs = DatasetType("calexp.wcs", ["visit", "detector"], "Wcs")
    assert wcs.parent_name == "calexp"
    assert wcs.component == "wcs"
    nested = DatasetType("calexp.wcs.sub", ["visit"], "X")
    assert nested.parent_name == "calexp"
    assert nested.component == "wcs.sub"


def test_make_component(calexp: DatasetType) -> None:
    wcs = calexp.make_component("wcs", "Wcs")
    assert wcs.name == "calexp.wcs"
    assert wcs.component == "wcs"
    assert wcs.parent_name == "calexp"
    assert wcs.dimensions == calexp.dimensions
    assert wcs.storage_class_name == "Wcs"
    bias = DatasetType("bias", ["detector"], "ExposureF", is_calibration=True)
    assert bias.make_component("image", "ImageF").is_calibration


def test_make_component_of_component_fails(calexp: DatasetType) -> None:
    with pytest.raises(DatasetTypeError, match="'calexp.wcs' is already a component dataset type"):
        calexp.make_component("wcs", "Wcs").make_component("x", "Y")


def test_make_component_bad_name(calexp: DatasetType) -> None:
    with pytest.raises(DatasetTypeError, match="Invalid dataset type name 'calexp.1x'"):
        calexp.make_component("1x", "Y")


def test_equality_and_hash(calexp: DatasetType) -> None:
    same = DatasetType("calexp", ["detector", "visit", "instrument"], "ExposureF")
    assert same == calexp
    assert hash(same) == hash(calexp)
    assert len({same, calexp}) == 1
    assert calexp != DatasetType("calexp2", ["visit", "detector"], "ExposureF")
    assert calexp != DatasetType("calexp", ["visit"], "ExposureF")
    assert calexp != DatasetType("calexp", ["visit", "detector"], "Exposure")
    assert calexp != DatasetType("calexp", ["visit", "detector"], "ExposureF", is_calibration=True)
    assert calexp != "calexp"


def test_differences(calexp: DatasetType) -> None:
    assert calexp.differences(DatasetType("calexp", ["visit", "detector"], "ExposureF")) == []
    other = DatasetType("calexp", ["visit"], "Exposure", is_calibration=True)
    assert calexp.differences(other) == [
        "dimensions {instrument, band, physical_filter, detector, day_obs, visit} != "
        "{instrument, band, physical_filter, day_obs, visit}",
        "storage class 'ExposureF' != 'Exposure'",
        "is_calibration False != True",
    ]
    only_storage = DatasetType("calexp", ["visit", "detector"], "Exposure")
    assert calexp.differences(only_storage) == ["storage class 'ExposureF' != 'Exposure'"]


def test_repr(calexp: DatasetType) -> None:
    assert repr(calexp) == (
        "DatasetType('calexp', {instrument, band, physical_filter, detector, day_obs, visit}, 'ExposureF')"
    )
    bias = DatasetType("bias", ["detector"], "ExposureF", is_calibration=True)
    assert repr(bias) == "DatasetType('bias', {instrument, detector}, 'ExposureF', is_calibration=True)"


# -- dataset IDs and refs -----------------------------------------------------------------


def test_dataid_type_run_is_deterministic(calexp: DatasetType, data_id: DataCoordinate) -> None:
    mode = DatasetIdGenerationMode.DATAID_TYPE_RUN
    first = dataset_id_for(calexp, data_id, "HSC/runs/1", mode)
    assert first == dataset_id_for(calexp, data_id, "HSC/runs/1", mode)
    assert first.version == 5
    # Implied values do not change the ID.
    full = DataCoordinate.standardize(data_id, physical_filter="HSC-R", band="r", day_obs=20240101)
    assert full.has_full_values
    assert dataset_id_for(calexp, full, "HSC/runs/1", mode) == first
    # Any change in run, data ID or dataset type does.
    others = {
        dataset_id_for(calexp, data_id, "HSC/runs/2", mode),
        dataset_id_for(calexp, DataCoordinate.standardize(data_id, detector=17), "HSC/runs/1", mode),
        dataset_id_for(calexp.make_component("wcs", "Wcs"), data_id, "HSC/runs/1", mode),
        dataset_id_for(DatasetType("src", calexp.dimensions, "SourceCatalog"), data_id, "HSC/runs/1", mode),
    }
    assert len(others) == 4
    assert first not in others


_COLLISION_BUG = (
    "bug: DATAID_TYPE_RUN joins name, values and run with ';' ',' '=' unescaped, so distinct "
    "(data ID, run) pairs can get the same UUID"
)


def test_dataid_type_run_value_and_run_do_not_collide() -> None:
    mode = DatasetIdGenerationMode.DATAID_TYPE_RUN
    flat = DatasetType("flat_band", ["band"], "X")
    a = dataset_id_for(flat, DataCoordinate.standardize(band="g;x"), "y", mode)
    b = dataset_id_for(flat, DataCoordinate.standardize(band="g"), "x;y", mode)
    assert a != b


def test_dataid_type_run_values_do_not_collide() -> None:
    mode = DatasetIdGenerationMode.DATAID_TYPE_RUN
    thing = DatasetType("filter_thing", ["physical_filter"], "X")
    a = DataCoordinate.standardize(instrument="a,physical_filter=b", physical_filter="c")
    b = DataCoordinate.standardize(instrument="a", physical_filter="b,physical_filter=c")
    assert a != b
    assert dataset_id_for(thing, a, "run", mode) != dataset_id_for(thing, b, "run", mode)


def test_unique_mode_is_random(calexp: DatasetType, data_id: DataCoordinate) -> None:
    ids = {dataset_id_for(calexp, data_id, "run", DatasetIdGenerationMode.UNIQUE) for _ in range(20)}
    assert len(ids) == 20
    assert all(i.version == 4 for i in ids)


def test_ref_new_default_mode_is_unique(calexp: DatasetType, data_id: DataCoordinate) -> None:
    a = DatasetRef.new(calexp, data_id, "run")
    b = DatasetRef.new(calexp, data_id, "run")
    assert a.id != b.id
    assert a != b


def test_ref_new_deterministic(calexp: DatasetType, data_id: DataCoordinate) -> None:
    mode = DatasetIdGenerationMode.DATAID_TYPE_RUN
    a = DatasetRef.new(calexp, data_id, "run", mode)
    assert a == DatasetRef.new(calexp, data_id, "run", mode)
    assert a.id == dataset_id_for(calexp, data_id, "run", mode)
    assert a != DatasetRef.new(calexp, data_id, "run2", mode)


def test_ref_equality_is_by_id(calexp: DatasetType, data_id: DataCoordinate) -> None:
    dataset_id = uuid.uuid4()
    a = DatasetRef(calexp, data_id, "run1", dataset_id)
    # Same ID, different everything else: still the same dataset.
    other_id = DataCoordinate.standardize(data_id, detector=99)
    b = DatasetRef(DatasetType("src", ["visit"], "SourceCatalog"), other_id, "run2", dataset_id)
    assert a == b
    assert hash(a) == hash(b)
    assert len({a, b}) == 1
    c = DatasetRef(calexp, data_id, "run1", uuid.uuid4())
    assert a != c
    assert a != dataset_id


def test_ref_is_frozen(calexp: DatasetType, data_id: DataCoordinate) -> None:
    ref = DatasetRef.new(calexp, data_id, "run")
    with pytest.raises(AttributeError):
        ref.run = "other"  # type: ignore[misc]


def test_ref_repr(calexp: DatasetType, data_id: DataCoordinate) -> None:
    dataset_id = uuid.UUID("00000000-0000-4000-8000-000000000001")
    ref = DatasetRef(calexp, data_id, "run", dataset_id)
    assert repr(ref) == (
        "DatasetRef('calexp', {instrument: 'HSC', detector: 16, visit: 903334}, run='run', "
        "id=00000000-0000-4000-8000-000000000001)"
    )
