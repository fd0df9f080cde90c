"""Checking that registry and datastore agree: every recorded file exists, every file is recorded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from lsst.resources import ResourcePath

from .datastore import DatastoreRecord
from .file_datastore import FileDatastore
from .registry import Registry

__all__ = ["VerifyReport", "verify_datastore"]

# Files a repository root holds that are not datasets.
_REPOSITORY_FILES = ("butler.yaml", "registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm")


@dataclass
class VerifyReport:
    """Disagreements between the registry's datastore records and the files under the root."""

    missing_files: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    """(dataset ID, URI) of recorded files that do not exist."""
    unrecorded_files: list[str] = field(default_factory=list)
    """URIs of files under the datastore root that no record names."""
    checked_records: int = 0
    """How many datastore records were checked."""
    trashed_files: int = 0
    """Files of pruned datasets still waiting to be deleted (``Butler.empty_trash`` removes them)."""

    @property
    def ok(self) -> bool:
        """Whether registry and datastore agree."""
        return not self.missing_files and not self.unrecorded_files


def verify_datastore(registry: Registry, datastore: FileDatastore) -> VerifyReport:
    """Compare the records of ``datastore`` in ``registry`` with the files below its root."""
    records = [DatastoreRecord.from_row(r) for r in registry.all_datastore_records(datastore.name)]
    report = VerifyReport(checked_records=len(records))
    recorded: set[str] = set()
    for record in records:
        uri = datastore.uris([record])[record.component]
        recorded.add(str(uri))
        if not uri.exists():
            report.missing_files.append((record.dataset_id, str(uri)))
    trashed = [DatastoreRecord.from_row(r) for r in registry.trashed_datastore_records(datastore.name)]
    report.trashed_files = len(trashed)
    recorded.update(str(datastore.uris([r])[r.component]) for r in trashed)
    for directory, _, files in datastore.root.walk():
        assert isinstance(directory, ResourcePath)
        for name in files:
            uri = directory.join(name)
            at_top = (
                str(directory).rstrip("/") == str(datastore.root).rstrip("/") and name in _REPOSITORY_FILES
            )
            if str(uri) not in recorded and not at_top and not name.startswith("."):
                report.unrecorded_files.append(str(uri))
    report.unrecorded_files.sort()
    return report
