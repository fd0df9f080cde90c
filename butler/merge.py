"""Registering what batch jobs wrote: predicted outputs whose files exist go into the registry, idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from .datasets import DatasetRef
from .datastore import DatastoreRecord
from .file_datastore import FileDatastore
from .registry import Registry
from .storage_classes import StorageClassRegistry
from .timing import log_duration

__all__ = ["MergeReport", "merge_outputs"]

_LOG = logging.getLogger(__name__)


@dataclass
class MergeReport:
    """What a merge did."""

    registered: int = 0
    """Datasets newly registered with their datastore records."""
    already_registered: int = 0
    """Datasets found registered already (an earlier merge, or a re-run)."""
    missing: list[DatasetRef] = field(default_factory=list)
    """Predicted outputs whose files do not exist (the job failed or did not run); not registered."""


def merge_outputs(
    registry: Registry,
    datastore: FileDatastore,
    storage_classes: StorageClassRegistry,
    predicted: Iterable[DatasetRef],
    batch_size: int = 50_000,
) -> MergeReport:
    """Register every predicted output whose file(s) exist, in one transaction per batch.

    Refs already registered are skipped, so running the merge again (after a crash, or twice)
    changes nothing and completes what was left; a ref whose file is missing is reported, never
    registered. Dataset types and RUN collections must exist.
    """
    report = MergeReport()
    batch: list[tuple[DatasetRef, list[DatastoreRecord]]] = []
    with log_duration(_LOG, "Merged outputs"):
        for ref in predicted:
            storage_class = storage_classes[ref.dataset_type.storage_class_name]
            records = datastore.with_file_sizes(datastore.predict_records(ref, storage_class))
            if records is None:
                report.missing.append(ref)
                continue
            batch.append((ref, records))
            if len(batch) >= batch_size:
                _register_batch(registry, datastore, batch, report)
                batch = []
        _register_batch(registry, datastore, batch, report)
    _LOG.info(
        "Merge: %d registered, %d already registered, %d missing.",
        report.registered,
        report.already_registered,
        len(report.missing),
    )
    return report


def _register_batch(
    registry: Registry,
    datastore: FileDatastore,
    batch: list[tuple[DatasetRef, list[DatastoreRecord]]],
    report: MergeReport,
) -> None:
    if not batch:
        return
    with registry.transaction():
        new = {ref.id for ref in registry.import_datasets(ref for ref, _ in batch)}
        registry.insert_datastore_records(
            record.to_row() for ref, records in batch if ref.id in new for record in records
        )
    report.registered += len(new)
    report.already_registered += len(batch) - len(new)
