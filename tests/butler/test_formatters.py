"""Tests for the file formatters: round trips, write options, read parameters, components, errors."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pydantic
import pytest
import yaml

from butler.formatter import Formatter, FormatterError, formatter_class
from butler.formatters import (
    ButlerLogRecordsFormatter,
    FitsImageFormatter,
    JsonFormatter,
    NpyFormatter,
    PackagesFormatter,
    ParquetFormatter,
    PydanticConfigFormatter,
    TaskMetadataFormatter,
    YamlFormatter,
)
from butler.image import Image
from butler.log_records import ButlerLogRecord, ButlerLogRecords
from butler.packages import Packages
from butler.storage_classes import StorageClass, StorageClassRegistry
from butler.task_metadata import TaskMetadata

ALL_FORMATTERS: list[type[Formatter]] = [
    YamlFormatter,
    JsonFormatter,
    ParquetFormatter,
    NpyFormatter,
    FitsImageFormatter,
    PydanticConfigFormatter,
    TaskMetadataFormatter,
    ButlerLogRecordsFormatter,
    PackagesFormatter,
]


class DemoConfig(pydantic.BaseModel):
    """A task configuration with a nested model and a tuple (which JSON mode turns into a list)."""

    class Nested(pydantic.BaseModel):
        threshold: float = 5.0

    name: str = "isr"
    do_flat: bool = True
    bands: tuple[str, ...] = ("g", "r")
    nested: Nested = Nested()


def storage_class(name: str) -> StorageClass:
    return StorageClassRegistry.default()[name]


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {"flux": [1.5, np.nan, 3.25], "band": ["g", "r", None], "n": np.array([1, 2, 3], dtype=np.int32)},
        index=pd.Index([10, 20, 30], name="id"),
    )


def arrow_table() -> pa.Table:
    return pa.table({"a": pa.array([1, 2, 3], pa.int64()), "b": ["x", "y", "z"], "c": [0.5, 1.5, None]})


def image(dtype: type[np.floating[Any]] = np.float32, metadata: dict[str, Any] | None = None) -> Image:
    rng = np.random.default_rng(7)
    shape = (20, 30)
    return Image(
        image=rng.normal(size=shape).astype(dtype),
        mask=rng.integers(-(2**31), 2**31 - 1, size=shape, dtype=np.int32),
        variance=rng.random(size=shape),
        metadata={} if metadata is None else metadata,
    )


METADATA = {
    "EXPTIME": 30.0,
    "FILTER": "r",
    "visit": 903342,
    "Detector.Name": "R22_S11",
    "a_rather_long_key_name": 0.1,
    "flagged": False,
    "comment_text": "x" * 120,
}

LOG_RECORDS = ButlerLogRecords(
    [
        ButlerLogRecord("lsst.isr", "INFO", "Processing visit 1 — détecteur 5", 1.7e9, "isr.py", 42, 1234),
        ButlerLogRecord("lsst.isr", "WARNING", 'quote " and\nnewline', 1.7e9 + 0.5),
    ]
)

# name -> (formatter, object written, storage class read as, expected object or None for the one written)
ROUND_TRIPS: dict[str, tuple[type[Formatter], Any, str, Any]] = {
    "yaml-dict": (YamlFormatter, {"b": [1, 2.5, None], "a": {"x": "y", 3: True}}, "StructuredDataDict", None),
    "yaml-list": (YamlFormatter, [1, "two", {"three": 3.0}], "StructuredDataList", None),
    "json-dict": (JsonFormatter, {"b": [1, 2.5, None], "a": {"x": "é"}}, "StructuredDataDict", None),
    "json-list": (JsonFormatter, [1, "two", {"three": 3.0}], "StructuredDataList", None),
    "parquet-arrow": (ParquetFormatter, arrow_table(), "ArrowTable", None),
    "parquet-frame": (ParquetFormatter, frame(), "DataFrame", None),
    "parquet-frame-as-arrow": (ParquetFormatter, frame(), "ArrowTable", pa.Table.from_pandas(frame())),
    "parquet-arrow-as-frame": (ParquetFormatter, arrow_table(), "DataFrame", arrow_table().to_pandas()),
    "npy-float": (NpyFormatter, np.linspace(0, 1, 24).reshape(2, 3, 4), "NumpyArray", None),
    "npy-int-fortran": (
        NpyFormatter,
        np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),
        "NumpyArray",
        None,
    ),
    "npy-0d": (NpyFormatter, np.array(3.5), "NumpyArray", None),
    "npy-empty": (NpyFormatter, np.zeros((0, 3)), "NumpyArray", None),
    "fits-float32": (FitsImageFormatter, image(np.float32, METADATA), "Image", None),
    "fits-float64": (FitsImageFormatter, image(np.float64), "Image", None),
    "config": (PydanticConfigFormatter, DemoConfig(name="calibrate", bands=("i",)), "Config", None),
    "task-metadata": (
        TaskMetadataFormatter,
        TaskMetadata({"isr": {"timing": {"cpu": 1.5}, "n": 3}, "flags": [True, False], "label": "x"}),
        "TaskMetadata",
        None,
    ),
    "log-records": (ButlerLogRecordsFormatter, LOG_RECORDS, "ButlerLogRecords", None),
    "log-records-empty": (ButlerLogRecordsFormatter, ButlerLogRecords(), "ButlerLogRecords", None),
    "packages": (
        PackagesFormatter,
        Packages({"numpy": "1.10", "python": "3.11.9", "quanta": "0.1.0"}),
        "Packages",
        None,
    ),
}


def assert_same(expected: Any, actual: Any) -> None:
    """Equality that is strict about types and dtypes."""
    assert type(actual) is type(expected)
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected)
    elif isinstance(expected, pa.Table):
        assert actual.equals(expected, check_metadata=True)
    elif isinstance(expected, np.ndarray):
        assert actual.dtype == expected.dtype and actual.dtype.isnative
        np.testing.assert_array_equal(actual, expected)
    elif isinstance(expected, Image):
        for plane in ("image", "mask", "variance"):
            assert_same(getattr(expected, plane), getattr(actual, plane))
        assert actual.metadata == expected.metadata
        assert [type(v) for v in actual.metadata.values()] == [type(v) for v in expected.metadata.values()]
    else:
        assert actual == expected


@pytest.mark.parametrize("case", ROUND_TRIPS)
def test_round_trip(case: str, tmp_path: Path) -> None:
    formatter_type, obj, read_as, expected = ROUND_TRIPS[case]
    formatter = formatter_type()
    path = tmp_path / f"dataset{formatter.extension}"
    formatter.write(obj, path)
    assert_same(obj if expected is None else expected, formatter.read(path, storage_class(read_as)))


def test_formatters_are_found_by_their_recorded_name() -> None:
    for formatter_type in ALL_FORMATTERS:
        assert formatter_class(formatter_type.name()) is formatter_type
        assert formatter_type.extension.startswith(".")


def test_structured_file_of_the_wrong_shape(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    YamlFormatter().write([1, 2], path)
    with pytest.raises(FormatterError, match=r"list\.yaml.*StructuredDataDict.*builtins\.dict"):
        YamlFormatter().read(path, storage_class("StructuredDataDict"))
    path = tmp_path / "scalar.json"
    path.write_text("3\n")
    with pytest.raises(FormatterError, match=r"scalar\.json.*StructuredDataList"):
        JsonFormatter().read(path, storage_class("StructuredDataList"))


def test_yaml_refuses_what_safe_dump_cannot_represent(tmp_path: Path) -> None:
    with pytest.raises(FormatterError, match="YamlFormatter cannot write"):
        YamlFormatter().write({"when": object()}, tmp_path / "x.yaml")


@pytest.mark.parametrize(
    ("options", "codec"),
    [
        ({}, "ZSTD"),
        ({"compression": "snappy"}, "SNAPPY"),
        ({"compression": "gzip", "compression_level": 9}, "GZIP"),
        ({"compression": "none"}, "UNCOMPRESSED"),
        ({"compression": "zstd", "compression_level": 19}, "ZSTD"),
    ],
)
def test_parquet_compression(options: dict[str, Any], codec: str, tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    ParquetFormatter(options).write(arrow_table(), path)
    metadata = pq.ParquetFile(path).metadata
    assert {metadata.row_group(0).column(i).compression for i in range(metadata.num_columns)} == {codec}
    assert ParquetFormatter().read(path, storage_class("ArrowTable")).equals(arrow_table())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"compresion": "zstd"},
            r"accepts write options \['compression', 'compression_level'\], not \['compresion'\]",
        ),
        ({"compression": "rar"}, "rar"),
        ({"compression": "snappy", "compression_level": 3}, "snappy"),
        ({"compression": "none", "compression_level": 3}, "compression_level"),
        ({"compression_level": "high"}, "must be an integer"),
        ({"compression": 5}, "codec name"),
    ],
)
def test_parquet_bad_write_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(FormatterError, match=message):
        ParquetFormatter(options)


def test_parquet_columns(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    ParquetFormatter().write(frame(), path)
    as_frame = ParquetFormatter().read(
        path, storage_class("DataFrame"), parameters={"columns": ["band", "flux"]}
    )
    pd.testing.assert_frame_equal(as_frame, frame()[["band", "flux"]])  # the index is kept
    as_table = ParquetFormatter().read(path, storage_class("ArrowTable"), parameters={"columns": "n"})
    assert as_table.column_names == ["n"] and as_table.column("n").to_pylist() == [1, 2, 3]
    with pytest.raises(
        FormatterError, match=r"no column\(s\) \['mag'\]; available columns are \['flux', 'band', 'n'"
    ):
        ParquetFormatter().read(path, storage_class("ArrowTable"), parameters={"columns": ["flux", "mag"]})
    with pytest.raises(FormatterError, match="list of column names"):
        ParquetFormatter().read(path, storage_class("ArrowTable"), parameters={"columns": [1]})


def test_npy_slice_reads_only_the_slice(tmp_path: Path) -> None:
    big = np.arange(2_000 * 1_000, dtype=np.float64).reshape(2_000, 1_000)  # 16 MB
    path = tmp_path / "big.npy"
    NpyFormatter().write(big, path)
    tracemalloc.start()
    try:
        part = NpyFormatter().read(
            path, storage_class("NumpyArray"), parameters={"slice": (slice(100, 110), 5)}
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, f"reading 10 values allocated {peak} bytes"
    assert type(part) is np.ndarray and part.flags.owndata
    np.testing.assert_array_equal(part, big[100:110, 5])
    path.unlink()  # the result does not depend on the file any more
    np.testing.assert_array_equal(part, big[100:110, 5])


@pytest.mark.parametrize(
    "key", [slice(1, 3), (slice(None), 2), (1, 2), (Ellipsis, slice(0, 4, 2)), np.int64(2), (slice(2, 2),)]
)
def test_npy_slice_forms(key: Any, tmp_path: Path) -> None:
    array = np.arange(24).reshape(4, 6)
    path = tmp_path / "a.npy"
    NpyFormatter().write(array, path)
    result = NpyFormatter().read(path, storage_class("NumpyArray"), parameters={"slice": key})
    assert type(result) is np.ndarray
    np.testing.assert_array_equal(result, array[key])


def test_npy_bad_slices(tmp_path: Path) -> None:
    path = tmp_path / "a.npy"
    NpyFormatter().write(np.arange(6).reshape(2, 3), path)
    with pytest.raises(FormatterError, match=r"slice 5 to .*a\.npy of shape \(2, 3\)"):
        NpyFormatter().read(path, storage_class("NumpyArray"), parameters={"slice": 5})
    with pytest.raises(FormatterError, match="must be a slice"):
        NpyFormatter().read(path, storage_class("NumpyArray"), parameters={"slice": [0, 1]})


def test_npy_refuses_object_and_masked_arrays(tmp_path: Path) -> None:
    with pytest.raises(FormatterError, match=r"NpyFormatter cannot write an array of dtype object"):
        NpyFormatter().write(np.array([{}, []], dtype=object), tmp_path / "o.npy")
    assert not (tmp_path / "o.npy").exists()
    with pytest.raises(FormatterError, match="drop the mask"):
        NpyFormatter().write(np.ma.masked_array([1, 2], mask=[False, True]), tmp_path / "m.npy")


def test_npy_writes_exactly_the_given_path(tmp_path: Path) -> None:
    path = tmp_path / "dataset.npy.tmp"
    NpyFormatter().write(np.arange(3), path)
    assert [p.name for p in tmp_path.iterdir()] == ["dataset.npy.tmp"]


def test_fits_components_read_alone(tmp_path: Path) -> None:
    original = image(np.float64, METADATA)
    path = tmp_path / "image.fits"
    FitsImageFormatter().write(original, path)
    sc = storage_class("Image")
    for component in ("image", "mask", "variance", "metadata"):
        assert_same(getattr(original, component), FitsImageFormatter().read(path, sc, component=component))
    # Cut the file inside the VARIANCE data: the other components still read, each from its own HDU.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 2 * 2880])
    for component in ("image", "mask", "metadata"):
        assert_same(getattr(original, component), FitsImageFormatter().read(path, sc, component=component))
    for broken in ("variance", None):
        with pytest.raises(FormatterError, match=r"image\.fits"):
            FitsImageFormatter().read(path, sc, component=broken)


def test_fits_bbox(tmp_path: Path) -> None:
    original = image(np.float32, {"EXPTIME": 15.0})
    original.mask = original.mask.astype(np.uint16)  # scaled (BZERO) data reads through the section too
    path = tmp_path / "image.fits"
    FitsImageFormatter().write(original, path)
    sc = storage_class("Image")
    bbox = ((2, 9), (5, 25))
    expected = sc.delegate.apply_parameters(original, {"bbox": bbox}) if sc.delegate else None
    assert_same(expected, FitsImageFormatter().read(path, sc, parameters={"bbox": bbox}))
    mask = FitsImageFormatter().read(path, sc, component="mask", parameters={"bbox": bbox})
    assert_same(original.mask[2:9, 5:25], mask)
    empty = FitsImageFormatter().read(path, sc, component="image", parameters={"bbox": ((3, 3), (0, 30))})
    assert empty.shape == (0, 30) and empty.dtype == np.float32
    for bad in [((0, 21), (0, 30)), ((5, 2), (0, 3)), ((-1, 2), (0, 3)), ((0.5, 2), (0, 3)), (0, 3)]:
        with pytest.raises(FormatterError, match="bbox"):
            FitsImageFormatter().read(path, sc, parameters={"bbox": bad})


def test_fits_bbox_reads_only_the_region(tmp_path: Path) -> None:
    shape = (200, 100)
    original = Image(np.arange(20_000.0).reshape(shape), np.zeros(shape, np.int32), np.ones(shape))
    path = tmp_path / "image.fits"
    FitsImageFormatter().write(original, path)
    # Keep the primary header (one 2880-byte block) and the first 20 rows of pixels only.
    path.write_bytes(path.read_bytes()[: 2880 + 20 * 100 * 8])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy warns that the file may have been truncated
        part = FitsImageFormatter().read(
            path, storage_class("Image"), component="image", parameters={"bbox": ((5, 15), (10, 60))}
        )
    assert_same(original.image[5:15, 10:60], part)


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({"seeing": [0.7, 0.8]}, r"metadata 'seeing' is a list"),
        ({"airmass": None}, r"metadata 'airmass' is a NoneType"),
        ({"nan_value": float("nan")}, r"metadata 'nan_value' cannot be a FITS card.*nan"),
        ({"observer": "Mélanie"}, r"metadata 'observer' cannot be a FITS card"),
        ({"padded": "r  "}, r"metadata 'padded' = 'r  ' would read back as 'padded' = 'r'"),
        ({"naxis1": 5}, r"metadata key 'naxis1' is a reserved FITS keyword"),
        ({"k" * 75: 1}, r"metadata 'kkkk+' cannot be a FITS card"),
        ({3: 1}, r"metadata key 3 is not a string"),
    ],
)
def test_fits_metadata_that_fits_cannot_hold(metadata: dict[Any, Any], message: str, tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    with pytest.raises(FormatterError, match=message):
        FitsImageFormatter().write(image(metadata=metadata), path)
    assert not path.exists()


def test_fits_metadata_numpy_scalars_become_python_scalars(tmp_path: Path) -> None:
    path = tmp_path / "image.fits"
    FitsImageFormatter().write(image(metadata={"gain": np.float32(1.5), "n": np.int64(3)}), path)
    metadata = FitsImageFormatter().read(path, storage_class("Image"), component="metadata")
    assert metadata == {"gain": 1.5, "n": 3} and type(metadata["n"]) is int


def test_fits_unsupported_pixel_type(tmp_path: Path) -> None:
    bad = image()
    bad.mask = bad.mask.astype(bool)
    with pytest.raises(FormatterError, match="FitsImageFormatter cannot write"):
        FitsImageFormatter().write(bad, tmp_path / "image.fits")
    assert not (tmp_path / "image.fits").exists()


def test_config_errors(tmp_path: Path) -> None:
    class LocalConfig(pydantic.BaseModel):
        x: int = 1

    with pytest.raises(FormatterError, match=r"cannot write .*LocalConfig.*top level"):
        PydanticConfigFormatter().write(LocalConfig(), tmp_path / "c.yaml")
    with pytest.raises(FormatterError, match=r"cannot write .*DemoConfig\.Nested"):
        PydanticConfigFormatter().write(DemoConfig.Nested(), tmp_path / "c.yaml")
    sc = storage_class("Config")
    cases = {
        "not_model.yaml": ({"class": "builtins.dict", "config": {}}, r"'builtins.dict' is not a pydantic"),
        "unknown.yaml": ({"class": "no_such_module.Config", "config": {}}, r"unknown\.yaml: Cannot import"),
        "invalid.yaml": ({"class": f"{__name__}.DemoConfig", "config": {"do_flat": "maybe"}}, r"do_flat"),
        "shape.yaml": ({"config": {}}, r"keys 'class'"),
    }
    for name, (content, message) in cases.items():
        (tmp_path / name).write_text(yaml.safe_dump(content))
        with pytest.raises(FormatterError, match=message):
            PydanticConfigFormatter().read(tmp_path / name, sc)


def test_packages_file_with_non_string_versions(tmp_path: Path) -> None:
    path = tmp_path / "packages.yaml"
    path.write_text("numpy: 1.10\n")  # unquoted: YAML reads a float
    with pytest.raises(FormatterError, match="version strings"):
        PackagesFormatter().read(path, storage_class("Packages"))


WRONG_OBJECTS: dict[type[Formatter], tuple[Any, str]] = {
    YamlFormatter: ((1, 2), r"builtins\.tuple; expected builtins\.dict or builtins\.list"),
    JsonFormatter: ("text", r"builtins\.str; expected builtins\.dict or builtins\.list"),
    ParquetFormatter: ({"a": [1]}, r"builtins\.dict; expected pyarrow\..*Table or pandas\..*DataFrame"),
    NpyFormatter: ([1, 2], r"builtins\.list; expected numpy\.ndarray"),
    FitsImageFormatter: (np.zeros((2, 2)), r"numpy\.ndarray; expected butler\.image\.Image"),
    PydanticConfigFormatter: ({"x": 1}, r"builtins\.dict; expected pydantic\.main\.BaseModel"),
    TaskMetadataFormatter: ({"x": 1}, r"builtins\.dict; expected butler\.task_metadata\.TaskMetadata"),
    ButlerLogRecordsFormatter: ([], r"builtins\.list; expected butler\.log_records\.ButlerLogRecords"),
    PackagesFormatter: ({"numpy": "2.0"}, r"builtins\.dict; expected butler\.packages\.Packages"),
}


@pytest.mark.parametrize("formatter_type", ALL_FORMATTERS, ids=lambda t: t.__name__)
def test_wrong_object_type(formatter_type: type[Formatter], tmp_path: Path) -> None:
    obj, message = WRONG_OBJECTS[formatter_type]
    path = tmp_path / f"x{formatter_type.extension}"
    with pytest.raises(FormatterError, match=rf"{formatter_type.__name__} cannot write {message}"):
        formatter_type().write(obj, path)
    assert not path.exists()


READ_AS = {
    YamlFormatter: "StructuredDataDict",
    JsonFormatter: "StructuredDataList",
    ParquetFormatter: "DataFrame",
    NpyFormatter: "NumpyArray",
    FitsImageFormatter: "Image",
    PydanticConfigFormatter: "Config",
    TaskMetadataFormatter: "TaskMetadata",
    ButlerLogRecordsFormatter: "ButlerLogRecords",
    PackagesFormatter: "Packages",
}

GARBAGE = bytes(range(256)) * 12 + b"\x00garbage: [unclosed\n{"


@pytest.mark.parametrize("warning_filter", ["error", "ignore"])
@pytest.mark.parametrize("formatter_type", ALL_FORMATTERS, ids=lambda t: t.__name__)
def test_corrupt_file(
    formatter_type: type[Formatter], warning_filter: Literal["error", "ignore"], tmp_path: Path
) -> None:
    path = tmp_path / f"corrupt{formatter_type.extension}"
    path.write_bytes(GARBAGE)
    with warnings.catch_warnings():
        warnings.simplefilter(warning_filter)  # astropy warns before failing; either way a FormatterError
        with pytest.raises(FormatterError, match=rf"{formatter_type.__name__} cannot read .*corrupt") as info:
            formatter_type().read(path, storage_class(READ_AS[formatter_type]))
    assert info.value.__cause__ is not None


TRUNCATABLE: dict[type[Formatter], tuple[Any, str]] = {
    ParquetFormatter: (frame(), "DataFrame"),
    NpyFormatter: (np.arange(10_000.0), "NumpyArray"),
    FitsImageFormatter: (image(), "Image"),
    JsonFormatter: ({"a": list(range(100))}, "StructuredDataDict"),
    ButlerLogRecordsFormatter: (LOG_RECORDS, "ButlerLogRecords"),
}


@pytest.mark.parametrize("formatter_type", TRUNCATABLE, ids=lambda t: t.__name__)
def test_truncated_file(formatter_type: type[Formatter], tmp_path: Path) -> None:
    obj, read_as = TRUNCATABLE[formatter_type]
    path = tmp_path / f"truncated{formatter_type.extension}"
    formatter_type().write(obj, path)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(FormatterError, match=r"truncated\."):
        formatter_type().read(path, storage_class(read_as))
    if formatter_type is NpyFormatter:
        with pytest.raises(FormatterError, match=r"truncated\."):
            formatter_type().read(path, storage_class(read_as), parameters={"slice": slice(0, 2)})


@pytest.mark.parametrize("formatter_type", ALL_FORMATTERS, ids=lambda t: t.__name__)
def test_unknown_write_option(formatter_type: type[Formatter]) -> None:
    with pytest.raises(FormatterError, match=r"not \['level'\]"):
        formatter_type({"level": 3})


@pytest.mark.parametrize("formatter_type", ALL_FORMATTERS, ids=lambda t: t.__name__)
def test_unknown_component_and_missing_file(formatter_type: type[Formatter], tmp_path: Path) -> None:
    sc = storage_class(READ_AS[formatter_type])
    with pytest.raises(FormatterError, match=rf"{formatter_type.__name__} cannot read component 'wcs'"):
        formatter_type().read(tmp_path / "x", sc, component="wcs")
    with pytest.raises(FileNotFoundError):
        formatter_type().read(tmp_path / f"missing{formatter_type.extension}", sc)


def test_read_as_incompatible_storage_class(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    TaskMetadataFormatter().write(TaskMetadata({"a": 1}), path)
    with pytest.raises(FormatterError, match=r"as storage class StructuredDataDict: .*got .*TaskMetadata"):
        TaskMetadataFormatter().read(path, storage_class("StructuredDataDict"))
    path = tmp_path / "table.parquet"
    ParquetFormatter().write(arrow_table(), path)
    with pytest.raises(FormatterError, match=r"as storage class NumpyArray: .*expects numpy\.ndarray"):
        ParquetFormatter().read(path, storage_class("NumpyArray"))


def test_structured_formatters_do_not_import_heavy_libraries() -> None:
    code = (
        "import sys, butler.formatters as f; f.YamlFormatter; f.PackagesFormatter; "
        "print(sorted(m for m in ('pyarrow', 'pandas', 'astropy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
