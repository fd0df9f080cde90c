"""Tests of the dimension universe (butler.dimensions) and its packaged YAML definition."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from butler.dimensions import DimensionGroup, DimensionUniverse, FieldType
from butler.errors import ButlerError, DimensionNameError

EXPECTED_ELEMENTS = (
    "instrument",
    "detector",
    "physical_filter",
    "band",
    "day_obs",
    "exposure",
    "visit",
    "visit_detector_region",
    "skymap",
    "tract",
    "patch",
)

SMALL_UNIVERSE = """\
name: tiny
version: 3
elements:
  camera:
    doc: A camera.
    key: {name: name, type: string, length: 16}
  colour:
    key: {name: name, type: string, length: 8}
  frame:
    key: {name: id, type: int}
    requires: [camera]
    implies: [colour]
    timespan: true
    metadata:
      - {name: exposure_time, type: float, doc: Seconds.}
  sky:
    key: {name: id, type: int}
    region: true
  frame_sky:
    requires: [frame, sky]
    region: true
spatial_joins:
  - [frame_sky, sky]
"""


@pytest.fixture
def universe() -> DimensionUniverse:
    """The packaged default universe."""
    return DimensionUniverse.default()


def write_universe(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dimensions.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# -- the default universe --------------------------------------------------------


def test_default_name_and_version(universe: DimensionUniverse) -> None:
    assert universe.name == "quanta"
    assert universe.version == 2
    assert repr(universe) == "DimensionUniverse('quanta', version=2)"


def test_default_is_cached() -> None:
    assert DimensionUniverse.default() is DimensionUniverse.default()


@pytest.mark.parametrize("name", EXPECTED_ELEMENTS)
def test_default_has_element(universe: DimensionUniverse, name: str) -> None:
    assert name in universe
    assert universe[name].name == name


def test_join_elements_are_not_dimensions(universe: DimensionUniverse) -> None:
    for name in ("visit_detector_region", "visit_definition"):
        assert not universe[name].is_dimension
        assert universe[name].key is None
        assert name not in universe.dimension_names
    assert universe["visit_definition"].always_join
    assert universe["visit_detector_region"].has_region


def test_elements_are_in_dependency_order(universe: DimensionUniverse) -> None:
    order = [e.name for e in universe.elements]
    for element in universe.elements:
        for dependency in element.requires + element.implies:
            assert order.index(dependency) < order.index(element.name), (element.name, dependency)


def test_implication_chain(universe: DimensionUniverse) -> None:
    assert "physical_filter" in universe["exposure"].implies
    assert "band" in universe["physical_filter"].implies
    assert "day_obs" in universe["exposure"].implies


def test_required_dimensions_closure(universe: DimensionUniverse) -> None:
    assert universe["patch"].required_dimensions == ("skymap", "tract")
    assert universe["patch"].key_columns == ("skymap", "tract", "patch")
    assert universe["visit_detector_region"].required_dimensions == ("instrument", "detector", "visit")
    assert universe["visit_definition"].key_columns == ("instrument", "exposure", "visit")
    assert universe["instrument"].required_dimensions == ()


def test_field_specs(universe: DimensionUniverse) -> None:
    instrument = universe["instrument"]
    assert instrument.key is not None
    assert instrument.key.type is FieldType.STRING
    assert instrument.key.length == 32
    assert universe["detector"].key is not None
    assert universe["detector"].key.type.python_type is int
    exposure = universe["exposure"]
    assert exposure.has_timespan and not exposure.has_region
    assert "timespan" in exposure.record_fields
    assert "exposure_time" in exposure.record_fields
    assert universe["visit"].has_region
    assert universe["patch"].record_fields[-1] == "region"


def test_spatial_joins(universe: DimensionUniverse) -> None:
    assert ("visit_detector_region", "patch") in universe.spatial_joins


def test_sorted_puts_names_in_universe_order(universe: DimensionUniverse) -> None:
    assert universe.sorted(["patch", "instrument", "visit", "skymap"]) == (
        "instrument",
        "visit",
        "skymap",
        "patch",
    )
    with pytest.raises(DimensionNameError, match="did you mean 'visit'"):
        universe.sorted(["instrument", "vist"])


# -- groups -------------------------------------------------------------------------


def test_group_exposure(universe: DimensionUniverse) -> None:
    group = universe.group(["exposure"])
    assert group.required == ("instrument", "exposure")
    assert set(group.implied) == {"physical_filter", "band", "day_obs"}
    assert set(group.names) == {"instrument", "exposure", "physical_filter", "band", "day_obs"}
    assert group.data_id_keys[:2] == ("instrument", "exposure")
    assert set(group.data_id_keys) == set(group.names)


def test_group_patch(universe: DimensionUniverse) -> None:
    group = universe.group(["patch"])
    assert group.required == ("skymap", "tract", "patch")
    assert group.implied == ()


def test_group_physical_filter_implies_band(universe: DimensionUniverse) -> None:
    group = universe.group(["physical_filter"])
    assert group.required == ("instrument", "physical_filter")
    assert group.implied == ("band",)


def test_group_band_alone_is_required(universe: DimensionUniverse) -> None:
    group = universe.group(["band"])
    assert group.required == ("band",)
    assert group.implied == ()


def test_group_visit_detector_includes_region_element(universe: DimensionUniverse) -> None:
    group = universe.group(["visit", "detector"])
    assert "visit_detector_region" in group.elements
    assert "visit_detector_region" not in group.names
    assert "visit_definition" not in group.elements


def test_group_visit_exposure_includes_visit_definition(universe: DimensionUniverse) -> None:
    group = universe.group(["visit", "exposure"])
    assert "visit_definition" in group.elements
    assert "visit_detector_region" not in group.elements
    assert group.required == ("instrument", "exposure", "visit")


def test_empty_group(universe: DimensionUniverse) -> None:
    assert len(universe.empty) == 0
    assert universe.empty.elements == ()
    assert repr(universe.empty) == "{}"


def test_group_is_cached_and_compares_by_names(universe: DimensionUniverse) -> None:
    a = universe.group(["exposure"])
    assert universe.group(["exposure"]) is a
    # Naming the implied dimensions too gives an equal group.
    b = universe.group(["exposure", "band", "physical_filter", "instrument"])
    assert a == b
    assert hash(a) == hash(b)
    assert a != universe.group(["visit"])


def test_group_set_operations(universe: DimensionUniverse) -> None:
    exposure = universe.group(["exposure"])
    detector = universe.group(["detector"])
    union = exposure.union(detector)
    assert isinstance(union, DimensionGroup)
    assert union == universe.group(["exposure", "detector"])
    assert exposure.union(["detector"]) == union
    assert exposure.issubset(union)
    assert not union.issubset(exposure)
    assert "exposure" in union
    assert list(union) == list(union.names)
    assert repr(universe.group(["physical_filter"])) == "{instrument, band, physical_filter}"


def test_unknown_name_suggests(universe: DimensionUniverse) -> None:
    with pytest.raises(
        DimensionNameError, match=r"Unknown dimension element 'expsoure'; did you mean 'exposure'"
    ):
        universe.group(["expsoure"])
    with pytest.raises(DimensionNameError, match="did you mean"):
        universe["detecter"]


def test_unknown_name_without_close_match_lists_known(universe: DimensionUniverse) -> None:
    with pytest.raises(DimensionNameError, match=r"known: instrument, .*patch"):
        universe["zzzzzz"]


def test_dimension_name_error_is_a_key_error_with_plain_message(universe: DimensionUniverse) -> None:
    with pytest.raises(KeyError) as info:
        universe["nope"]
    assert str(info.value).startswith("Unknown dimension element 'nope'")
    assert isinstance(info.value, ButlerError)


@pytest.mark.parametrize("name", ["visit_definition", "visit_detector_region"])
def test_join_element_cannot_be_group_dimension(universe: DimensionUniverse, name: str) -> None:
    with pytest.raises(DimensionNameError, match=f"'{name}' is a join element, not a dimension"):
        universe.group([name, "instrument"])


def test_is_compatible_with(universe: DimensionUniverse) -> None:
    assert universe.is_compatible_with("quanta", 2)
    assert not universe.is_compatible_with("quanta", 3)
    assert not universe.is_compatible_with("other", 1)


# -- custom universes from YAML -------------------------------------------------------


def test_custom_universe_from_file(tmp_path: Path) -> None:
    universe = DimensionUniverse.from_file(write_universe(tmp_path, SMALL_UNIVERSE))
    assert (universe.name, universe.version) == ("tiny", 3)
    assert universe.dimension_names == ("camera", "colour", "frame", "sky")
    group = universe.group(["frame", "sky"])
    assert group.required == ("camera", "frame", "sky")
    assert group.implied == ("colour",)
    assert "frame_sky" in group.elements
    assert universe["frame"].has_timespan
    assert universe["frame"].metadata[0].type is FieldType.FLOAT
    assert universe.spatial_joins == (("frame_sky", "sky"),)
    assert not universe.is_compatible_with("quanta", 1)
    assert universe.is_compatible_with("tiny", 3)


def test_custom_universe_unknown_key(tmp_path: Path) -> None:
    path = write_universe(
        tmp_path,
        """\
        name: bad
        version: 1
        elements:
          camera:
            key: {name: name, type: string}
            requirs: [nothing]
        """,
    )
    with pytest.raises(ButlerError, match=r"dimensions\.yaml.*'camera' has unknown keys \['requirs'\]"):
        DimensionUniverse.from_file(path)


def test_custom_universe_undefined_reference(tmp_path: Path) -> None:
    path = write_universe(
        tmp_path,
        """\
        name: bad
        version: 1
        elements:
          frame:
            key: {name: id, type: int}
            requires: [camera]
        """,
    )
    with pytest.raises(
        ButlerError, match="element 'frame' refers to 'camera', which is not defined before it"
    ):
        DimensionUniverse.from_file(path)


def test_custom_universe_reference_out_of_order(tmp_path: Path) -> None:
    path = write_universe(
        tmp_path,
        """\
        name: bad
        version: 1
        elements:
          frame:
            key: {name: id, type: int}
            implies: [colour]
          colour:
            key: {name: name, type: string}
        """,
    )
    with pytest.raises(ButlerError, match="'frame' refers to 'colour'"):
        DimensionUniverse.from_file(path)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: bad\nversion: 1\nelements:\n  a: {key: {name: id, type: integer}}\n", "integer"),
        ("name: bad\nelements: {}\n", "version"),
        ("version: 1\nelements: {}\n", "name"),
        ("name: bad\nversion: one\nelements: {}\n", "one"),
        ("", "NoneType"),
    ],
    ids=["bad-field-type", "no-version", "no-name", "bad-version", "empty-file"],
)
def test_custom_universe_malformed_is_butler_error(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "dimensions.yaml"
    path.write_text(text)
    with pytest.raises(
        ButlerError, match=rf"Invalid dimension universe in {re.escape(str(path))}.*{expected}"
    ):
        DimensionUniverse.from_file(path)


@pytest.mark.parametrize(
    "text",
    [
        "name: bad\nversion: 1\nelements: [instrument, detector]\n",
        "name: bad\nversion: 1\nelements:\n  a: [key]\n",
    ],
    ids=["elements-list", "element-spec-list"],
)
def test_custom_universe_list_instead_of_mapping_is_butler_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "dimensions.yaml"
    path.write_text(text)
    with pytest.raises(ButlerError, match="Invalid dimension universe"):
        DimensionUniverse.from_file(path)


def test_custom_universe_spatial_join_to_undefined_element(tmp_path: Path) -> None:
    path = write_universe(tmp_path, SMALL_UNIVERSE.replace("[frame_sky, sky]", "[frame_sky, skyy]"))
    with pytest.raises(ButlerError, match="skyy"):
        DimensionUniverse.from_file(path)
