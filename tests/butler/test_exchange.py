"""Ingest, export/import, transfer between repositories and artifact retrieval."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from databases import DatabaseLocation
from registry_campaign import populate

from butler import DataCoordinate, DatasetRef, DatasetType
from butler.butler import Butler
from butler.datastore import DatastoreError
from butler.ingest import FileDataset, IngestError
from butler.repository import create_repository
from butler.verify import verify_datastore

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "StructuredDataDict")


def new_butler(database: DatabaseLocation | None, root: Path, name: str) -> Butler:
    if database is None:
        create_repository(root / name)
    else:
        create_repository(root / name, db=database.url, namespace=database.namespace)
    butler = Butler(root / name, run="raw/all")
    populate(butler.registry)
    butler.registry.register_dataset_type(RAW)
    return butler


@pytest.fixture
def butler(database: DatabaseLocation, tmp_path: Path) -> Iterator[Butler]:
    butler = new_butler(database, tmp_path, "repo")
    yield butler
    butler.close()


def raw_file(tmp_path: Path, detector: int) -> FileDataset:
    path = tmp_path / f"incoming/raw_{detector}.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({"detector": detector}))
    data_id = DataCoordinate.standardize(instrument="DemoCam", exposure=1, detector=detector)
    return FileDataset(str(path), [DatasetRef.new(RAW, data_id, "raw/all")])


@pytest.mark.parametrize("transfer", ["copy", "move", "symlink", "hardlink", "direct", "auto"])
def test_ingest_transfer_modes(butler: Butler, tmp_path: Path, transfer: str) -> None:
    dataset = raw_file(tmp_path, 0)
    (ref,) = butler.ingest(dataset, transfer=transfer)
    assert butler.get("raw", instrument="DemoCam", exposure=1, detector=0) == {"detector": 0}
    uri = butler.get_uri(ref)
    inside = butler.datastore.relative_path(uri) is not None
    assert inside == (transfer != "direct")  # auto copies a file from outside the root
    assert Path(dataset.path).exists() == (transfer != "move")
    # The repository never deletes a file it does not own.
    butler.prune_datasets([ref])
    assert Path(dataset.path).exists() == (transfer != "move")


def test_failed_ingest_changes_nothing(butler: Butler, tmp_path: Path) -> None:
    good = raw_file(tmp_path, 1)
    with pytest.raises(IngestError, match="no such file"):
        butler.ingest(good, FileDataset(str(tmp_path / "absent.yaml"), good.refs), transfer="copy")
    duplicate = raw_file(tmp_path, 1)
    butler.ingest(good, transfer="copy")
    with pytest.raises(DatastoreError, match="already exists"):
        butler.ingest(duplicate, transfer="copy")
    with pytest.raises(IngestError, match="Unknown transfer mode"):
        butler.ingest(raw_file(tmp_path, 2), transfer="teleport")
    assert len(butler.registry.query_datasets("raw", "raw/all")) == 1
    assert verify_datastore(butler.registry, butler.datastore).ok


def test_export_import_and_transfer(butler: Butler, tmp_path: Path) -> None:
    refs = [butler.put({"d": d}, "raw", instrument="DemoCam", exposure=2, detector=d) for d in range(3)]
    manifest = butler.export(tmp_path / "export", refs)
    assert manifest.exists()
    create_repository(tmp_path / "other")
    with Butler(tmp_path / "other") as other:
        imported = other.import_(tmp_path / "export")
        assert {r.id for r in imported} == {r.id for r in refs}
        assert other.import_(tmp_path / "export") == []  # idempotent
        assert other.get("raw", instrument="DemoCam", exposure=2, detector=1, collections="raw/all") == {
            "d": 1
        }
        assert other.registry.expand_data_id(instrument="DemoCam", exposure=2)["band"] == "i"
        assert verify_datastore(other.registry, other.datastore).ok
    create_repository(tmp_path / "third")
    with Butler(tmp_path / "third") as third:
        moved = third.transfer_from(butler, refs[:2])
        assert len(moved) == 2
        assert third.get(refs[0]) == {"d": 0}


def test_retrieve_artifacts(butler: Butler, tmp_path: Path) -> None:
    refs = [butler.put({"d": d}, "raw", instrument="DemoCam", exposure=3, detector=d) for d in range(2)]
    copies = butler.retrieve_artifacts(refs, tmp_path / "out")
    assert all(c.exists() for c in copies)
    assert all("raw/all" in str(c) for c in copies)
    flat = butler.retrieve_artifacts(refs, tmp_path / "flat", preserve_path=False)
    assert sorted(c.basename() for c in flat) == sorted(Path(c.ospath).name for c in copies)
    with pytest.raises(DatastoreError, match="already exists"):
        butler.retrieve_artifacts(refs, tmp_path / "flat", preserve_path=False)
