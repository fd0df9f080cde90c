"""Tests of file-name templates (butler.file_templates)."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from butler.data_coordinate import DataCoordinate, DimensionRecord
from butler.datasets import DatasetRef, DatasetType
from butler.dimensions import DimensionUniverse
from butler.errors import ButlerError
from butler.file_templates import (
    DEFAULT_TEMPLATE,
    FileTemplate,
    FileTemplateError,
    FileTemplates,
    TemplateField,
)

RUN = "DemoCam/runs/w_2024_01"


@pytest.fixture
def universe() -> DimensionUniverse:
    """The packaged default universe."""
    return DimensionUniverse.default()


@pytest.fixture
def calexp() -> DatasetType:
    """A visit-detector dataset type."""
    return DatasetType("calexp", ["visit", "detector"], "ExposureF")


def full_data_id(
    universe: DimensionUniverse, values: dict[str, Any], **records: dict[str, Any]
) -> DataCoordinate:
    """A data ID with implied values (and optionally records) for the required keys of ``values``."""
    group = universe.group(values)
    attached = {name: DimensionRecord(universe[name], fields) for name, fields in records.items()}
    return DataCoordinate(group, tuple(values[k] for k in group.data_id_keys), attached if records else None)


VISIT_VALUES: dict[str, Any] = {
    "instrument": "DemoCam",
    "visit": 42,
    "detector": 7,
    "physical_filter": "DemoCam-r",
    "band": "r",
    "day_obs": 20240101,
}


def make_ref(
    dataset_type: DatasetType, data_id: DataCoordinate | dict[str, Any], run: str = RUN
) -> DatasetRef:
    """A ref with a random UUID."""
    if not isinstance(data_id, DataCoordinate):
        data_id = DataCoordinate.standardize(data_id)
    return DatasetRef(dataset_type, data_id, run, uuid.uuid4())


def fmt(template: str, ref: DatasetRef) -> str:
    """Parse and format in one go."""
    return FileTemplate(template).format(ref)


# -- parsing ----------------------------------------------------------------------------


def test_parse_fields() -> None:
    template = FileTemplate("{run}/{datasetType}/{band:?}/{visit:08d}_{detector:03d?}_{exposure.obs_id:?}")
    assert template.fields == (
        TemplateField("run", "", False),
        TemplateField("datasetType", "", False),
        TemplateField("band", "", True),
        TemplateField("visit", "08d", False),
        TemplateField("detector", "03d", True),
        TemplateField("exposure.obs_id", "", True),
    )
    assert [str(f) for f in template.fields][2:] == [
        "{band:?}",
        "{visit:08d}",
        "{detector:03d?}",
        "{exposure.obs_id:?}",
    ]
    assert template.fields[-1].element == "exposure"
    assert template.fields[-1].record_field == "obs_id"
    assert template.fields[0].element is None
    assert template.field_names(optional=False) == {"run", "datasetType", "visit"}
    assert str(template) == template.template
    assert template == FileTemplate(template.template)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{run}/{datasetType}/{vist}", "Unknown file template field 'vist'; did you mean 'visit'?"),
        ("{run}/{datasetTyp}", "did you mean 'datasetType'?"),
        (
            "{run}/{expsure.obs_id}",
            "in {expsure.obs_id}: Unknown dimension element 'expsure'; did you mean 'exposure'?",
        ),
        ("{run}/{exposure.obs_idd}", "Unknown exposure record field 'obs_idd'; did you mean 'obs_id'?"),
        ("{run}/{exposure.timespan}", "Unknown exposure record field 'timespan'"),
        ("{run}/{visit", "expected '}' before end of string"),
        ("{run}/visit}", "Single '}' encountered"),
        ("{run}/{}", "Unknown file template field ''"),
        ("{run}/{0}", "Unknown file template field '0'"),
        ("{run}/{band:08d}", "invalid format spec '08d' for field 'band'"),
        ("{run}/{visit:?08d}", "write it last, as in {visit:08d?}"),
        ("{run}/{visit:{width}}", "nested field"),
        ("{run}/{visit!r}", "conversions are not supported"),
        ("{run}/{visit_definition}", "join element, not a dimension"),
        ("/{run}/{id}", "relative path"),
        ("{run}/../{id}", "'..' path segments"),
        ("just/a/path", "no fields"),
    ],
)
def test_parse_errors(text: str, expected: str) -> None:
    with pytest.raises(FileTemplateError) as info:
        FileTemplate(text)
    message = str(info.value)
    assert message.startswith(f"Bad file template {text!r}: ")
    assert expected in message
    assert isinstance(info.value, ButlerError)


def test_literal_braces_and_dots_within_segments(calexp: DatasetType) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert fmt("{run}/{{x}}/{datasetType}..{visit}_{detector}", ref) == f"{RUN}/{{x}}/calexp__42_7"


# -- formatting: plain values, specials, specs ------------------------------------------


def test_format_minimal_data_id(calexp: DatasetType) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert FileTemplate(DEFAULT_TEMPLATE).format(ref) == f"{RUN}/calexp/calexp_DemoCam_42_7"


def test_format_expanded_data_id(universe: DimensionUniverse, calexp: DatasetType) -> None:
    ref = make_ref(calexp, full_data_id(universe, VISIT_VALUES))
    assert FileTemplate(DEFAULT_TEMPLATE).format(ref) == (
        f"{RUN}/calexp/r/20240101/calexp_r_DemoCam_DemoCam-r_20240101_42_7"
    )


def test_special_fields(calexp: DatasetType) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert fmt("{run}/{storageClass}/{datasetType}_{id}", ref) == f"{RUN}/ExposureF/calexp_{ref.id}"


def test_format_specs(calexp: DatasetType) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert fmt("{run}/{datasetType}_{visit:08d}_{detector:03d?}", ref) == f"{RUN}/calexp_00000042_007"
    assert fmt("{run}/{datasetType}_{visit:>5}", ref) == f"{RUN}/calexp____42"  # padding spaces made safe
    assert fmt("{run}/{datasetType}_{tract:05d?}_{visit}", ref) == f"{RUN}/calexp_42"


# -- optional fields --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{run}/{datasetType}_{band:?}_{visit}", f"{RUN}/calexp_42"),
        ("{run}/{datasetType}-{band:?}-{visit}", f"{RUN}/calexp-42"),
        ("{run}/{datasetType}_b{band:?}_v{visit}", f"{RUN}/calexp_v42"),
        ("{run}/{datasetType}{band:?}_{visit}", f"{RUN}/calexp_42"),
        ("{run}/{datasetType}_{band:?}_{tract:?}_{patch:?}_{visit}", f"{RUN}/calexp_42"),
        ("{run}/{datasetType}_{visit}_{band:?}", f"{RUN}/calexp_42"),
        # A dropped field that starts its segment takes the separator after it.
        ("{run}/{datasetType}/{day_obs:?}_{visit}", f"{RUN}/calexp/42"),
        ("{run}/{datasetType}/{day_obs:?}_{band:?}_{visit}", f"{RUN}/calexp/42"),
        # Empty segments disappear; no '//'.
        ("{run}/{band:?}/{day_obs:?}/{datasetType}_{visit}", f"{RUN}/calexp_42"),
        ("{band:?}/{run}/{datasetType}_{visit}", f"{RUN}/calexp_42"),
        ("{run}/{datasetType}_{visit}/{band:?}", f"{RUN}/calexp_42"),
        ("{run}/calexp_{band:?}/{visit}", f"{RUN}/calexp/42"),
    ],
)
def test_missing_optional_fields(calexp: DatasetType, text: str, expected: str) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert fmt(text, ref) == expected


def test_present_optional_fields_keep_separators(universe: DimensionUniverse, calexp: DatasetType) -> None:
    ref = make_ref(calexp, full_data_id(universe, VISIT_VALUES))
    assert fmt("{run}/{datasetType}/{day_obs:?}_{band:?}_{visit}", ref) == f"{RUN}/calexp/20240101_r_42"


def test_missing_required_field(calexp: DatasetType) -> None:
    ref = make_ref(calexp, {"instrument": "DemoCam", "visit": 42, "detector": 7})
    with pytest.raises(
        FileTemplateError, match=r"needs \{band\}.*band is implied and its data ID was not expanded"
    ):
        fmt("{run}/{datasetType}/{band}/{visit}_{detector}", ref)
    with pytest.raises(
        FileTemplateError, match=r"needs \{tract\}.*has no value for it \(dimensions \{instrument, band"
    ):
        fmt("{run}/{datasetType}/{tract}/{visit}_{detector}", ref)


def test_empty_path_is_an_error(universe: DimensionUniverse) -> None:
    dataset_type = DatasetType("bias", ["instrument", "detector"], "ExposureF")
    ref = make_ref(dataset_type, {"instrument": "DemoCam", "detector": 1})
    with pytest.raises(FileTemplateError, match="empty path"):
        fmt("{tract:?}/{patch:?}", ref)


# -- record fields ----------------------------------------------------------------------


@pytest.fixture
def raw() -> DatasetType:
    """An exposure-detector dataset type."""
    return DatasetType("raw", ["exposure", "detector"], "ExposureF")


def exposure_data_id(universe: DimensionUniverse, with_records: bool) -> DataCoordinate:
    """An expanded exposure-detector data ID, with an exposure record when asked."""
    values = {**VISIT_VALUES, "exposure": 2024010100042}
    del values["visit"]
    records = {}
    if with_records:
        records["exposure"] = {
            "instrument": "DemoCam",
            "id": 2024010100042,
            "physical_filter": "DemoCam-r",
            "day_obs": 20240101,
            "obs_id": "DC 2024-01-01:0042",
            "exposure_time": 30.0,
            "observation_type": "science",
            "science_program": None,
        }
    return full_data_id(universe, values, **records)


def test_record_fields(universe: DimensionUniverse, raw: DatasetType) -> None:
    ref = make_ref(raw, exposure_data_id(universe, with_records=True))
    text = "{run}/{datasetType}/{exposure.obs_id}/{datasetType}_{instrument}_{exposure.exposure_time:.1f}_{detector}"
    assert fmt(text, ref) == f"{RUN}/raw/DC_2024-01-01_0042/raw_DemoCam_30_0_7"
    # A record value that is None counts as missing.
    assert fmt("{run}/{datasetType}_{exposure.science_program:?}_{detector}", ref) == f"{RUN}/raw_7"
    with pytest.raises(FileTemplateError, match=r"needs \{exposure.science_program\}"):
        fmt("{run}/{datasetType}_{exposure.science_program}_{detector}", ref)


def test_record_fields_without_records(universe: DimensionUniverse, raw: DatasetType) -> None:
    ref = make_ref(raw, exposure_data_id(universe, with_records=False))
    with pytest.raises(
        FileTemplateError, match="has no dimension records; expand it with the registry first"
    ):
        fmt("{run}/{datasetType}_{exposure.obs_id}_{detector}", ref)
    assert fmt("{run}/{datasetType}_{exposure.obs_id:?}_{detector}", ref) == f"{RUN}/raw_7"
    # Keys and dimension values of a record come from the data ID itself.
    assert fmt("{run}/{datasetType}_{exposure.id}_{exposure.physical_filter}_{detector}", ref) == (
        f"{RUN}/raw_2024010100042_DemoCam-r_7"
    )


# -- components -------------------------------------------------------------------------


def test_component_field(calexp: DatasetType) -> None:
    wcs = calexp.make_component("wcs", "Wcs")
    data_id = {"instrument": "DemoCam", "visit": 42, "detector": 7}
    text = "{run}/{datasetType}.{component:?}/{datasetType}_{component:?}_{visit}_{detector}"
    assert fmt(text, make_ref(wcs, data_id)) == f"{RUN}/calexp.wcs/calexp_wcs_42_7"
    assert fmt(text, make_ref(calexp, data_id)) == f"{RUN}/calexp/calexp_42_7"
    # Non-optional {component} on a non-component behaves as missing and optional.
    assert fmt("{run}/{datasetType}_{component}_{visit}", make_ref(calexp, data_id)) == f"{RUN}/calexp_42"


def test_component_appended_when_template_lacks_it(calexp: DatasetType) -> None:
    data_id = {"instrument": "DemoCam", "visit": 42, "detector": 7}
    template = FileTemplate("{run}/{datasetType}/{datasetType}_{visit}_{detector}")
    parent = template.format(make_ref(calexp, data_id))
    wcs = template.format(make_ref(calexp.make_component("wcs", "Wcs"), data_id))
    psf = template.format(make_ref(calexp.make_component("psf", "Psf"), data_id))
    assert parent == f"{RUN}/calexp/calexp_42_7"
    assert wcs == f"{RUN}/calexp/calexp_42_7_wcs"
    assert len({parent, wcs, psf}) == 3


# -- path safety ------------------------------------------------------------------------


def test_run_slashes_become_directories(calexp: DatasetType) -> None:
    data_id = {"instrument": "DemoCam", "visit": 42, "detector": 7}
    text = "{run}/{datasetType}_{visit}_{detector}"
    assert fmt(text, make_ref(calexp, data_id, "DemoCam/raw/all")) == "DemoCam/raw/all/calexp_42_7"
    assert fmt(text, make_ref(calexp, data_id, "u/me//my run:1")) == "u/me/my_run_1/calexp_42_7"
    assert fmt(text, make_ref(calexp, data_id, "/abs/../.hidden")) == "abs/_./_hidden/calexp_42_7"


def test_unsafe_values_are_replaced(universe: DimensionUniverse, calexp: DatasetType) -> None:
    values = {**VISIT_VALUES, "instrument": "../Demo Cam/x", "physical_filter": ".r#1"}
    ref = make_ref(calexp, full_data_id(universe, values))
    text = "{run}/{instrument}/{physical_filter}/{datasetType}_{instrument}_{physical_filter}_{visit}"
    assert fmt(text, ref) == f"{RUN}/_._Demo_Cam_x/_r_1/calexp____Demo_Cam_x__r_1_42"


def test_dots_in_file_name_become_underscores(universe: DimensionUniverse, calexp: DatasetType) -> None:
    ref = make_ref(calexp, full_data_id(universe, {**VISIT_VALUES, "physical_filter": "r.2"}))
    assert fmt("{run}/{physical_filter}/{datasetType}_{physical_filter}_{visit}_{detector}", ref) == (
        f"{RUN}/r.2/calexp_r_2_42_7"
    )


# -- validation -------------------------------------------------------------------------


def test_validate_names_what_is_lacking(calexp: DatasetType) -> None:
    with pytest.raises(FileTemplateError) as info:
        FileTemplate("{run}/{datasetType}/{instrument}_{visit}").validate(calexp)
    assert str(info.value).startswith(
        "File template '{run}/{datasetType}/{instrument}_{visit}' cannot give unique names to calexp: "
        "it lacks detector (dimensions instrument, detector, visit)."
    )
    with pytest.raises(FileTemplateError, match="it lacks run, datasetType, instrument, detector"):
        FileTemplate("{visit}").validate(calexp)
    with pytest.raises(FileTemplateError, match="cannot give unique names to datasets: it lacks run"):
        FileTemplate("{datasetType}/{visit}").validate()


def test_validate_accepts(raw: DatasetType, calexp: DatasetType) -> None:
    FileTemplate("{run}/{datasetType}/{instrument:?}_{visit:?}_{detector:?}").validate(calexp)
    FileTemplate("{id}").validate(calexp)  # the UUID alone is unique
    FileTemplate("{run}/{datasetType}/{instrument}_{visit}_{detector}").validate(
        calexp
    )  # implied ones not needed
    # A record field of a dimension stands for that dimension.
    FileTemplate("{run}/{datasetType}/{instrument}/{exposure.obs_id}_{detector}").validate(raw)
    FileTemplate(DEFAULT_TEMPLATE).validate(calexp)


def test_validate_refuses_required_fields_the_type_lacks(calexp: DatasetType) -> None:
    template = FileTemplate("{run}/{datasetType}/{instrument}_{visit}_{detector}_{tract}_{exposure.obs_id}")
    with pytest.raises(FileTemplateError, match=r"it requires \{tract\}, \{exposure.obs_id\} but calexp has"):
        template.validate(calexp)


def test_default_template_is_unique_for_every_dimension_group(universe: DimensionUniverse) -> None:
    template = FileTemplate(DEFAULT_TEMPLATE)
    names = universe.dimension_names
    for size in range(1, len(names) + 1):
        for combo in itertools.combinations(names, size):
            template.validate(DatasetType("x", combo, "StructuredDataDict"))


def test_default_template_distinguishes_neighbours(universe: DimensionUniverse) -> None:
    coadd = DatasetType("deepCoadd", ["skymap", "tract", "patch", "band"], "ExposureF")
    flat = DatasetType("flat", ["instrument", "physical_filter", "detector"], "ExposureF")
    template = FileTemplate(DEFAULT_TEMPLATE)
    paths = {
        template.format(make_ref(coadd, {"skymap": "sm", "tract": t, "patch": p, "band": b}))
        for t, p, b in itertools.product([0, 1], [0, 10], ["g", "r"])
    }
    paths |= {
        template.format(make_ref(flat, {"instrument": "DemoCam", "physical_filter": f, "detector": d}))
        for f, d in itertools.product(["DemoCam-g", "DemoCam-r"], [1, 11])
    }
    assert len(paths) == 12


# -- FileTemplates ----------------------------------------------------------------------


@pytest.fixture
def templates(universe: DimensionUniverse) -> FileTemplates:
    """A lookup table with one entry of every kind."""
    return FileTemplates(
        {
            "default": DEFAULT_TEMPLATE,
            "ExposureF": "{run}/exposures/{datasetType}_{instrument:?}_{visit:?}_{detector:?}_{exposure:?}",
            "calexp": "{run}/calexp/{datasetType}_{component:?}_{instrument}_{visit}_{detector}",
            "calexp.psf": "{run}/psf/{datasetType}_{instrument}_{visit}_{detector}",
        },
        universe,
    )


def test_lookup_precedence(templates: FileTemplates, calexp: DatasetType, raw: DatasetType) -> None:
    assert templates.template_for(calexp) is templates.templates["calexp"]
    assert templates.template_for(calexp.make_component("wcs", "Wcs")) is templates.templates["calexp"]
    assert templates.template_for(calexp.make_component("psf", "Psf")) is templates.templates["calexp.psf"]
    assert templates.template_for(raw) is templates.templates["ExposureF"]
    src = DatasetType("src", ["visit", "detector"], "SourceCatalog")
    assert templates.template_for(src) is templates.templates["default"]
    ref = make_ref(calexp.make_component("wcs", "Wcs"), {"instrument": "DemoCam", "visit": 42, "detector": 7})
    assert templates.format(ref) == f"{RUN}/calexp/calexp_wcs_DemoCam_42_7"


def test_lookup_without_default(calexp: DatasetType) -> None:
    templates = FileTemplates({"raw": "{run}/{datasetType}/{id}"})
    with pytest.raises(
        FileTemplateError, match="No file template for dataset type 'calexp'.*configured keys: raw"
    ):
        templates.template_for(calexp)


def test_bad_configuration_reports_every_problem() -> None:
    config: dict[str, Any] = {
        "default": "{run}/{datasetType}/{vist}",
        "calexp": "{datasetType}/{visit}",
        "raw": 42,
        "ok": "{run}/{datasetType}/{id}",
    }
    with pytest.raises(FileTemplateError) as info:
        FileTemplates(config)
    message = str(info.value)
    assert "default: Bad file template" in message and "did you mean 'visit'?" in message
    assert (
        "calexp: File template '{datasetType}/{visit}' cannot give unique names to datasets: it lacks run"
        in message
    )
    assert "raw: template must be a string, got int 42" in message
    assert "ok:" not in message


def test_validate_all(templates: FileTemplates, calexp: DatasetType) -> None:
    coadd = DatasetType("deepCoadd", ["skymap", "tract", "patch", "band"], "ExposureF")
    bias = DatasetType("bias", ["instrument", "detector"], "ExposureF")
    templates.validate_all([calexp, bias, DatasetType("src", ["visit", "detector"], "SourceCatalog")])
    with pytest.raises(FileTemplateError) as info:
        templates.validate_all([calexp, coadd, bias.make_component("image", "ImageF")])
    message = str(info.value)
    assert message.startswith("1 dataset type(s) fail file template validation:")
    assert "deepCoadd: it lacks band, skymap, tract, patch (dimensions" in message
    assert "bias" not in message
