"""In-memory and chained datastores: round trips, copy semantics, routing by constraints, fallback, all-or-nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from storage_samples import SAMPLES, same

from butler import DataCoordinate, DatasetRef, DatasetType, DimensionUniverse
from butler.chained_datastore import ChainedDatastore, make_datastore
from butler.datastore import DatasetFileMissingError, Datastore, DatastoreError, DatastoreRecord
from butler.datastore_config import (
    Constraints,
    DatastoreConfigError,
    FileDatastoreConfig,
    default_datastore_mapping,
)
from butler.file_datastore import FileDatastore
from butler.formatter import FormatterError
from butler.in_memory_datastore import InMemoryDatastore
from butler.storage_classes import StorageClass, StorageClassError, StorageClassRegistry

UNIVERSE = DimensionUniverse.default()
STORAGE_CLASSES = StorageClassRegistry.default()


def make_ref(name: str, storage_class: str = "StructuredDataDict", detector: int = 1) -> DatasetRef:
    dataset_type = DatasetType(name, ["instrument", "detector"], storage_class)
    data_id = DataCoordinate.standardize(
        {"instrument": "Cam", "detector": detector}, dimensions=dataset_type.dimensions
    )
    return DatasetRef.new(dataset_type, data_id, "run")


def sc(name: str) -> StorageClass:
    return STORAGE_CLASSES[name]


def file_datastore(tmp_path: Path, name: str, **overrides: Any) -> FileDatastore:
    root = tmp_path / name
    root.mkdir()
    mapping = default_datastore_mapping() | {"root": str(root), "name": name} | overrides
    return FileDatastore(FileDatastoreConfig.from_mapping(mapping, "test", None), STORAGE_CLASSES, UNIVERSE)


def files_under(path: Path) -> list[Path]:
    return [p for p in path.rglob("*") if p.is_file()]


def put(datastore: Datastore, obj: Any, ref: DatasetRef) -> list[DatastoreRecord]:
    return datastore.put(obj, ref, sc(ref.dataset_type.storage_class_name))


def get(datastore: Datastore, ref: DatasetRef, records: list[DatastoreRecord], **kwargs: Any) -> Any:
    read_class = kwargs.pop("storage_class", ref.dataset_type.storage_class_name)
    return datastore.get(ref, records, sc(read_class), **kwargs)


def assert_same(a: Any, b: Any) -> None:
    assert same(a, b)


# -- in-memory datastore -------------------------------------------------------------------------------


@pytest.mark.parametrize("storage_class", sorted(SAMPLES))
def test_in_memory_round_trip(storage_class: str) -> None:
    store = InMemoryDatastore()
    ref = make_ref(f"ds_{storage_class}", storage_class)
    records = put(store, SAMPLES[storage_class], ref)
    assert records == [
        DatastoreRecord(ref.id, "InMemoryDatastore", "", f"memory:{ref.id.hex}", "", storage_class)
    ]
    assert store.artifacts_exist(records)
    assert_same(get(store, ref, records), SAMPLES[storage_class])


def test_in_memory_components_parameters_and_conversion() -> None:
    store = InMemoryDatastore()
    image_ref = make_ref("calexp", "Image")
    records = put(store, SAMPLES["Image"], image_ref)
    image = SAMPLES["Image"]
    assert np.array_equal(
        get(store, image_ref, records, storage_class="NumpyArray", component="mask"), image.mask
    )
    metadata = get(store, image_ref, records, storage_class="StructuredDataDict", component="metadata")
    assert metadata == {"EXPTIME": 30.0, "FILTER": "g"}
    corner = get(store, image_ref, records, parameters={"bbox": ((0, 2), (3, 5))})
    assert np.array_equal(corner.variance, image.variance[0:2, 3:5])
    pixels = get(
        store,
        image_ref,
        records,
        storage_class="NumpyArray",
        component="image",
        parameters={"slice": (1, ...)},
    )
    assert np.array_equal(pixels, image.image[1])
    with pytest.raises(StorageClassError, match="no component 'psf'"):
        get(store, image_ref, records, storage_class="NumpyArray", component="psf")

    array_ref = make_ref("array", "NumpyArray")
    records = put(store, SAMPLES["NumpyArray"], array_ref)
    rows = get(store, array_ref, records, parameters={"slice": slice(1, 3)})
    assert np.array_equal(rows, SAMPLES["NumpyArray"][1:3])
    with pytest.raises(DatastoreError, match="must be a slice"):
        get(store, array_ref, records, parameters={"slice": [1, 2]})
    with pytest.raises(StorageClassError, match="accepts read parameters"):
        get(store, array_ref, records, parameters={"columns": ["x"]})

    table_ref = make_ref("table", "ArrowTable")
    records = put(store, SAMPLES["ArrowTable"], table_ref)
    assert get(store, table_ref, records, parameters={"columns": ["y"]}).column_names == ["y"]
    frame = get(store, table_ref, records, storage_class="DataFrame", parameters={"columns": "x"})
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == ["x"] and list(frame["x"]) == [1, 2, 3]
    with pytest.raises(DatastoreError, match=r"no column\(s\) \['z'\]"):
        get(store, table_ref, records, parameters={"columns": ["z"]})

    # put converts to the storage class's type too.
    converted_ref = make_ref("converted", "ArrowTable")
    records = put(store, SAMPLES["DataFrame"], converted_ref)
    assert isinstance(get(store, converted_ref, records), pa.Table)
    with pytest.raises(StorageClassError, match="expects builtins.dict"):
        put(store, [1, 2], make_ref("wrong"))


def test_in_memory_copies_on_put_and_get() -> None:
    store = InMemoryDatastore()
    original = {"values": [1, 2]}
    ref = make_ref("d")
    records = put(store, original, ref)
    original["values"].append(3)
    first = get(store, ref, records)
    first["values"].append(4)
    assert get(store, ref, records) == {"values": [1, 2]}

    array = np.zeros(3)
    array_ref = make_ref("array", "NumpyArray")
    records = put(store, array, array_ref)
    array[0] = 1
    view = get(store, array_ref, records, parameters={"slice": slice(0, 2)})
    view[:] = 5
    assert np.array_equal(get(store, array_ref, records), np.zeros(3))


def test_in_memory_no_clobber_missing_uris_and_removal() -> None:
    store = InMemoryDatastore("mem")
    ref = make_ref("d")
    records = put(store, {"a": 1}, ref)
    with pytest.raises(DatastoreError, match="Refusing to overwrite"):
        put(store, {"a": 2}, ref)
    uri = store.uris(records)[""]
    assert uri.scheme == "mem" and str(uri) == f"mem://mem/{ref.id}"
    store.remove_artifacts(records)
    store.remove_artifacts(records)  # missing ones are ignored
    assert not store.artifacts_exist(records)
    assert not store.artifacts_exist([])
    with pytest.raises(DatasetFileMissingError, match=str(ref.id)):
        get(store, ref, records)
    # A new process has an empty datastore; the records alone do not bring the dataset back.
    with pytest.raises(DatasetFileMissingError, match="in-memory copy"):
        get(InMemoryDatastore("mem"), ref, records)


def test_in_memory_refuses_objects_it_cannot_copy() -> None:
    class Locked(dict[str, Any]):
        def __deepcopy__(self, memo: dict[int, Any]) -> Any:
            raise TypeError("cannot pickle '_thread.lock' object")

    store = InMemoryDatastore()
    ref = make_ref("d")
    with pytest.raises(DatastoreError, match="cannot be copied"):
        put(store, Locked(a=1), ref)
    assert not store.artifacts_exist([DatastoreRecord(ref.id, store.name, "", "", "", "StructuredDataDict")])


# -- chained datastore -------------------------------------------------------------------------------------


def test_chain_writes_to_every_accepting_child_and_routes_by_constraints(tmp_path: Path) -> None:
    memory = InMemoryDatastore("mem", Constraints(reject=["big", "NumpyArray"]))
    files = file_datastore(tmp_path, "files", constraints={"accept": ["big", "small", "NumpyArray"]})
    chain = ChainedDatastore("chain", [memory, files])
    assert chain.names == ("mem", "files")

    small = make_ref("small")  # both take it
    big = make_ref("big")  # rejected by name in memory
    array = make_ref("array", "NumpyArray")  # rejected by storage class in memory, accepted in files
    other = make_ref("other")  # only memory takes it
    for ref in (small, big, array, other):
        assert chain.accepts(ref, sc(ref.dataset_type.storage_class_name))
    records = {
        ref: put(chain, SAMPLES["NumpyArray"] if ref is array else {"n": 1}, ref)
        for ref in (small, big, array, other)
    }
    assert [r.datastore_name for r in records[small]] == ["mem", "files"]
    assert [r.datastore_name for r in records[big]] == ["files"]
    assert [r.datastore_name for r in records[array]] == ["files"]
    assert [r.datastore_name for r in records[other]] == ["mem"]
    assert len(files_under(tmp_path / "files")) == 3

    assert get(chain, big, records[big]) == {"n": 1}
    assert get(chain, other, records[other]) == {"n": 1}
    assert np.array_equal(
        get(chain, array, records[array], parameters={"slice": 0}), SAMPLES["NumpyArray"][0]
    )
    assert chain.uris(records[small])[""].scheme == "mem"  # the first child holding it
    assert chain.uris(records[big])[""].isLocal

    chain.remove_artifacts(records[small])
    assert not memory.artifacts_exist(records[small][:1]) and not files.artifacts_exist(records[small][1:])
    assert not chain.artifacts_exist(records[small])


def test_chain_get_falls_back_to_the_next_child(tmp_path: Path) -> None:
    memory = InMemoryDatastore("mem")
    files = file_datastore(tmp_path, "files")
    chain = ChainedDatastore("chain", [memory, files])
    ref = make_ref("d")
    records = put(chain, {"a": 1}, ref)
    mem_records = [r for r in records if r.datastore_name == "mem"]
    file_records = [r for r in records if r.datastore_name == "files"]
    memory.remove_artifacts(mem_records)  # e.g. the process restarted
    assert chain.artifacts_exist(records)
    assert get(chain, ref, records) == {"a": 1}
    assert chain.uris(records)[""].isLocal

    files.remove_artifacts(file_records)
    assert not chain.artifacts_exist(records)
    with pytest.raises(DatasetFileMissingError, match="mem, files have records but not the artifacts"):
        get(chain, ref, records)
    with pytest.raises(DatasetFileMissingError, match="no member has records"):
        get(chain, ref, [])


def test_chain_put_is_all_or_nothing(tmp_path: Path) -> None:
    # The second child cannot write: its formatter for the storage class does not exist.
    memory = InMemoryDatastore("mem")
    broken = file_datastore(
        tmp_path, "broken", formatters={"StructuredDataDict": "butler.formatters.NoSuchFormatter"}
    )
    chain = ChainedDatastore("chain", [memory, broken])
    ref = make_ref("d")
    with pytest.raises(FormatterError, match="NoSuchFormatter"):
        put(chain, {"a": 1}, ref)
    assert not memory.artifacts_exist([DatastoreRecord(ref.id, "mem", "", "", "", "StructuredDataDict")])
    assert files_under(tmp_path / "broken") == []

    # The second child refuses to overwrite: the file the first one wrote is removed again.
    files = file_datastore(tmp_path, "files")
    memory.put({"a": 0}, ref, sc("StructuredDataDict"))
    with pytest.raises(DatastoreError, match="Refusing to overwrite"):
        put(ChainedDatastore("chain", [files, memory]), {"a": 1}, ref)
    assert files_under(tmp_path / "files") == []


def test_chain_refuses_what_no_child_accepts_and_foreign_records(tmp_path: Path) -> None:
    chain = ChainedDatastore(
        "chain",
        [
            InMemoryDatastore("a", Constraints(accept=["calexp"])),
            InMemoryDatastore("b", Constraints(reject=["raw"])),
        ],
    )
    ref = make_ref("raw")
    assert not chain.accepts(ref, sc("StructuredDataDict"))
    with pytest.raises(DatastoreError, match="No datastore in chain chain accepts raw/StructuredDataDict"):
        put(chain, {"a": 1}, ref)
    foreign = DatastoreRecord(ref.id, "elsewhere", "", "x", "", "StructuredDataDict")
    with pytest.raises(DatastoreError, match="'elsewhere', which is not in chain chain"):
        chain.artifacts_exist([foreign])


def test_chain_validates_its_children() -> None:
    with pytest.raises(DatastoreError, match="at least one child"):
        ChainedDatastore("chain", [])
    with pytest.raises(DatastoreError, match="several children named a"):
        ChainedDatastore(
            "chain", [InMemoryDatastore("a"), ChainedDatastore("inner", [InMemoryDatastore("a")])]
        )


def test_nested_chain_dispatches_records_to_the_leaf_that_wrote_them() -> None:
    inner = ChainedDatastore("inner", [InMemoryDatastore("b"), InMemoryDatastore("c")])
    outer = ChainedDatastore("outer", [InMemoryDatastore("a"), inner])
    assert outer.names == ("a", "b", "c")
    ref = make_ref("d")
    records = put(outer, {"a": 1}, ref)
    assert [r.datastore_name for r in records] == ["a", "b", "c"]
    outer.remove_artifacts(records[:2])
    assert get(outer, ref, records) == {"a": 1}
    assert outer.artifacts_exist(records)


# -- building from configuration -----------------------------------------------------------------------------


def build(mapping: dict[str, Any], root: Path) -> Datastore:
    return make_datastore(mapping, STORAGE_CLASSES, UNIVERSE, str(root), "butler.yaml")


def test_make_datastore_builds_each_kind(tmp_path: Path) -> None:
    file_mapping = default_datastore_mapping()  # no cls: a file datastore under <butlerRoot>
    assert isinstance(build(file_mapping, tmp_path), FileDatastore)
    memory = build({"cls": "in_memory", "name": "cache", "constraints": {"reject": ["raw"]}}, tmp_path)
    assert isinstance(memory, InMemoryDatastore) and memory.name == "cache"
    assert not memory.accepts(make_ref("raw"), sc("StructuredDataDict"))

    (tmp_path / "archive").mkdir()
    chain = build(
        {
            "cls": "chained",
            "name": "outer",
            "children": [
                {"cls": "in_memory"},
                {
                    "cls": "chained",
                    "name": "inner",
                    "children": [
                        {"cls": "file", **file_mapping},
                        file_mapping | {"name": "archive", "root": "<butlerRoot>/archive"},
                    ],
                },
            ],
        },
        tmp_path,
    )
    assert isinstance(chain, ChainedDatastore)
    assert chain.name == "outer" and chain.names == ("InMemoryDatastore", "FileDatastore", "archive")
    inner = chain.children[1]
    assert isinstance(inner, ChainedDatastore) and isinstance(inner.children[1], FileDatastore)
    assert inner.children[1].root.ospath.rstrip("/") == str(tmp_path / "archive")
    ref = make_ref("d")
    records = put(chain, {"a": 1}, ref)
    assert len(records) == 3 and get(chain, ref, records) == {"a": 1}


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"cls": "s3"}, r"unknown datastore cls 's3'; expected one of chained, file, in_memory"),
        (
            {"cls": "chained", "children": [{"cls": "nope"}]},
            r"butler.yaml \(ChainedDatastore child 0\): unknown datastore cls 'nope'",
        ),
        ({"cls": "chained", "children": [{"cls": "file"}]}, r"child 0\): root: Field required"),
        ({"cls": "chained", "children": []}, r"children: List should have at least 1 item"),
        ({"cls": "in_memory", "size": 3}, r"size: Extra inputs are not permitted"),
        ({"cls": "chained", "children": ["mem"]}, r"children.0: Input should be a valid dictionary"),
        (
            {"cls": "chained", "children": [{"cls": "in_memory"}, {"cls": "in_memory"}]},
            r"several children named InMemoryDatastore",
        ),
    ],
)
def test_make_datastore_rejects_bad_configuration(
    tmp_path: Path, mapping: dict[str, Any], message: str
) -> None:
    with pytest.raises(DatastoreConfigError, match=message):
        build(mapping, tmp_path)
