"""The Butler: every storage class round-trips; failed puts leave nothing behind; missing files are named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from databases import DatabaseLocation
from registry_campaign import populate
from storage_samples import SAMPLES, same

from butler import ButlerError, CollectionType, CollectionTypeError, ConflictingDefinitionError, DatasetType
from butler.butler import Butler, DatasetNotFoundError
from butler.datastore import DatasetChecksumError, DatasetFileMissingError, DatastoreError
from butler.formatter import FormatterError
from butler.repository import CONFIG_NAME, create_repository
from butler.storage_classes import StorageClassError
from butler.verify import verify_datastore

VISIT_DETECTOR = ["instrument", "visit", "detector"]
DATA_ID = {"instrument": "DemoCam", "visit": 1, "detector": 2}


def make_repo(database: DatabaseLocation, parent: Path, **datastore: Any) -> Path:
    repo = parent / "repo"
    create_repository(repo, db=database.url, namespace=database.namespace)
    if datastore:
        config_path = repo / CONFIG_NAME
        config = yaml.safe_load(config_path.read_text())
        config["datastore"].update(datastore)
        config_path.write_text(yaml.safe_dump(config))
    with Butler(repo) as butler:
        populate(butler.registry)
        for storage_class in SAMPLES:
            butler.registry.register_dataset_type(
                DatasetType(f"ds_{storage_class}", VISIT_DETECTOR, storage_class)
            )
    return repo


def dataset_files(repo: Path) -> list[str]:
    skip = {CONFIG_NAME, "registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"}
    return sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file() and p.name not in skip)


@pytest.fixture
def repo(database: DatabaseLocation, tmp_path: Path) -> Path:
    return make_repo(database, tmp_path)


@pytest.mark.parametrize("storage_class", sorted(SAMPLES))
def test_every_storage_class_round_trips(repo: Path, storage_class: str) -> None:
    with Butler(repo, run="u/test/run") as butler:
        ref = butler.put(SAMPLES[storage_class], f"ds_{storage_class}", DATA_ID)
        assert same(SAMPLES[storage_class], butler.get(f"ds_{storage_class}", DATA_ID))
        assert same(SAMPLES[storage_class], butler.get(ref))
        assert butler.exists(ref)
        uri = butler.get_uri(ref)
        assert uri.exists() and "u/test/run" in str(uri)
        assert verify_datastore(butler.registry, butler.datastore).ok


def test_parameters_components_and_conversion(repo: Path) -> None:
    with Butler(repo, run="run") as butler:
        butler.put(SAMPLES["ArrowTable"], "ds_ArrowTable", DATA_ID)
        butler.put(SAMPLES["NumpyArray"], "ds_NumpyArray", DATA_ID)
        butler.put(SAMPLES["Image"], "ds_Image", DATA_ID)
        assert butler.get("ds_ArrowTable", DATA_ID, parameters={"columns": ["y"]}).column_names == ["y"]
        frame = butler.get("ds_ArrowTable", DATA_ID, storage_class="DataFrame")
        assert isinstance(frame, pd.DataFrame) and list(frame["x"]) == [1, 2, 3]
        cut = butler.get("ds_NumpyArray", DATA_ID, parameters={"slice": (slice(2, 4), slice(None))})
        assert np.array_equal(cut, SAMPLES["NumpyArray"][2:4])
        mask = butler.get("ds_Image.mask", DATA_ID)
        assert np.array_equal(mask, SAMPLES["Image"].mask)
        assert butler.get("ds_Image.metadata", DATA_ID)["FILTER"] == "g"
        corner = butler.get("ds_Image", DATA_ID, parameters={"bbox": ((0, 5), (10, 20))})
        assert np.array_equal(corner.image, SAMPLES["Image"].image[0:5, 10:20])
        with pytest.raises(StorageClassError, match="accepts read parameters"):
            butler.get("ds_ArrowTable", DATA_ID, parameters={"rows": 3})


def test_disassembled_composite(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = make_repo(database, tmp_path, disassemble=["Image"])
    with Butler(repo, run="run") as butler:
        ref = butler.put(SAMPLES["Image"], "ds_Image", DATA_ID)
        assert sorted(butler.get_uris(ref)) == ["image", "mask", "metadata", "variance"]
        assert len(dataset_files(repo)) == 4
        assert butler.get(ref) == SAMPLES["Image"]
        Path(butler.get_uris(ref)["image"].ospath).unlink()  # reading the mask needs only its own file
        assert np.array_equal(butler.get("ds_Image.mask", DATA_ID), SAMPLES["Image"].mask)
        with pytest.raises(DatasetFileMissingError):
            butler.get(ref)


def test_failed_puts_leave_nothing(repo: Path) -> None:
    with Butler(repo, run="run") as butler:
        butler.registry.register_collection("tag", CollectionType.TAGGED)
        with pytest.raises(CollectionTypeError):
            butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID, run="tag")
        with pytest.raises(StorageClassError, match="expects builtins.dict"):
            butler.put([1, 2], "ds_StructuredDataDict", DATA_ID)
        ref = butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        with pytest.raises(ConflictingDefinitionError):
            butler.put({"a": 2}, "ds_StructuredDataDict", DATA_ID)
        assert butler.get(ref) == {"a": 1}
        assert len(dataset_files(repo)) == 1
        # A file where the run's directory should be: the write fails part-way, as on a full disk.
        (repo / "blocked").write_text("not a directory")
        with pytest.raises(DatastoreError, match="Cannot write"):
            butler.put({"b": 1}, "ds_StructuredDataDict", DATA_ID, run="blocked")
        assert "blocked" not in butler.registry.query_collections()  # the new run rolled back too
        assert len(butler.registry.query_datasets("ds_StructuredDataDict", "run")) == 1
        report = verify_datastore(butler.registry, butler.datastore)
        assert report.missing_files == []
        assert [Path(u).name for u in report.unrecorded_files] == ["blocked"]


def test_unknown_formatter_is_named(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = make_repo(database, tmp_path, formatters={"StructuredDataDict": "nowhere.NoFormatter"})
    with Butler(repo, run="run") as butler:
        with pytest.raises(FormatterError, match="nowhere.NoFormatter"):
            butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        assert butler.registry.query_datasets("ds_StructuredDataDict", "run") == []
    assert dataset_files(repo) == []


def test_missing_file_and_checksum(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = make_repo(database, tmp_path, checksum=True)
    with Butler(repo, run="run") as butler:
        ref = butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        path = Path(butler.get_uri(ref).ospath)
        path.write_text("a: 2\n")
        with pytest.raises(DatasetChecksumError, match="checksum"):
            butler.get(ref)
        path.unlink()
        with pytest.raises(DatasetFileMissingError, match="missing"):
            butler.get(ref)
        assert not butler.exists(ref)
        report = verify_datastore(butler.registry, butler.datastore)
        assert [dataset_id for dataset_id, _ in report.missing_files] == [ref.id]
        with pytest.raises(DatasetNotFoundError):
            butler.get("ds_StructuredDataDict", DATA_ID | {"detector": 3})


def test_missing_datastore_root(database: DatabaseLocation, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    create_repository(
        repo, db=database.url, namespace=database.namespace, datastore_root=str(tmp_path / "data")
    )
    assert (tmp_path / "data").is_dir()  # create makes a local root
    (tmp_path / "data").rmdir()  # ... which then disappears (an unmounted disk)
    with pytest.raises(DatastoreError, match="does not exist"):
        Butler(repo)


def test_prune_and_remove_runs(repo: Path) -> None:
    with Butler(repo, run="run") as butler:
        refs = [butler.put({"d": d}, "ds_StructuredDataDict", DATA_ID | {"detector": d}) for d in range(3)]
        butler.prune_datasets(refs[:1])
        assert len(dataset_files(repo)) == 2
        assert not butler.exists(refs[0])
        butler.remove_runs(["run"])
        assert dataset_files(repo) == []
        assert "run" not in butler.registry.query_collections()
        assert verify_datastore(butler.registry, butler.datastore).ok


def test_chained_datastore_repository(database: DatabaseLocation, tmp_path: Path) -> None:
    """A repository whose butler.yaml chains an in-memory datastore (small dicts) before the files."""
    repo = make_repo(database, tmp_path)
    config_path = repo / CONFIG_NAME
    config = yaml.safe_load(config_path.read_text())
    files = config["datastore"]
    config["datastore"] = {
        "cls": "chained",
        "name": "chain",
        "children": [
            {"cls": "in_memory", "name": "memory", "constraints": {"accept": ["StructuredDataDict"]}},
            files,
        ],
    }
    config_path.write_text(yaml.safe_dump(config))
    with Butler(repo, run="run") as butler:
        assert butler.datastore.names == ("memory", "FileDatastore")
        ref = butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        array_ref = butler.put(SAMPLES["NumpyArray"], "ds_NumpyArray", DATA_ID)
        assert {r.datastore_name for r in butler.datastore_records(ref)} == {"memory", "FileDatastore"}
        assert {r.datastore_name for r in butler.datastore_records(array_ref)} == {"FileDatastore"}
        assert butler.get(ref) == {"a": 1}
        butler.prune_datasets([ref, array_ref])
        assert dataset_files(repo) == []
    with Butler(repo, run="run") as butler:  # a new process: the in-memory copy is gone, the file serves
        ref = butler.put({"b": 2}, "ds_StructuredDataDict", DATA_ID)
    with Butler(repo, collections="run") as butler:
        assert butler.get("ds_StructuredDataDict", DATA_ID) == {"b": 2}


def test_prune_interrupted_before_files_are_deleted(repo: Path) -> None:
    """The deletion commits first; files wait in the trash until emptied, and verify knows them."""
    with Butler(repo, run="run") as butler:
        ref = butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        with butler.registry.transaction():  # what prune does before a crash could stop it
            butler.registry.trash_datastore_records(butler.datastore.name, [ref.id])
            butler.registry.remove_datasets([ref])
        assert len(dataset_files(repo)) == 1
        report = butler.verify()
        assert report.ok and report.trashed_files == 1
        assert butler.empty_trash() == 1
        assert dataset_files(repo) == []
        assert butler.verify().trashed_files == 0


def test_remove_runs_refused_for_a_chained_run_deletes_nothing(repo: Path) -> None:
    with Butler(repo, run="run") as butler:
        ref = butler.put({"a": 1}, "ds_StructuredDataDict", DATA_ID)
        butler.registry.register_collection("chain", CollectionType.CHAINED)
        butler.registry.set_collection_chain("chain", ["run"])
        with pytest.raises(ButlerError, match="chain"):
            butler.remove_runs(["run"])
        assert butler.exists(ref)
        with butler.registry.transaction():  # a prune inside a caller's transaction keeps files until commit
            butler.prune_datasets([ref])
            assert len(dataset_files(repo)) == 1
        assert butler.verify().trashed_files == 1
        butler.empty_trash()
        assert dataset_files(repo) == []
