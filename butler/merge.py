"""Registering what batch jobs wrote: predicted outputs whose files exist go into the registry, idempotently."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .bulk_fetch import UUID_TYPE
from .datasets import DatasetRef
from .datastore import DatastoreRecord
from .file_datastore import FileDatastore
from .registry import Registry
from .storage_classes import StorageClassRegistry
from .timing import log_duration

__all__ = ["MISSING_SAMPLE_SIZE", "MergeReport", "merge_outputs"]

_LOG = logging.getLogger(__name__)

MISSING_SAMPLE_SIZE = 20
"""How many missing refs a `MergeReport` keeps as a sample (the rest are only counted)."""

_LOOKUP_BY_ID_BELOW = 2_000
"""Fewer refs of one dataset type and run than this are looked up by ID; more fetch the run's whole list."""


@dataclass
class MergeReport:
    """What a merge did."""

    registered: int = 0
    """Datasets newly registered with their datastore records."""
    already_registered: int = 0
    """Datasets found registered already (an earlier merge, or a re-run); their files are not looked at."""
    missing: int = 0
    """Predicted outputs whose files do not exist (the job failed or did not run); not registered."""
    missing_by_type: dict[str, int] = field(default_factory=dict)
    """`missing` by dataset type name."""
    missing_sample: list[DatasetRef] = field(default_factory=list)
    """The first `MISSING_SAMPLE_SIZE` missing outputs, in the order they were met."""

    def add_missing(self, ref: DatasetRef) -> None:
        """Count ``ref`` as missing (and keep it while the sample is not full)."""
        self.missing += 1
        name = ref.dataset_type.name
        self.missing_by_type[name] = self.missing_by_type.get(name, 0) + 1
        if len(self.missing_sample) < MISSING_SAMPLE_SIZE:
            self.missing_sample.append(ref)


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
    registered. Which refs are registered is asked of the registry in bulk (per dataset type and
    run) before any file is looked for, so a re-merge formats paths and stats files only for the
    outputs still unregistered. Dataset types and RUN collections must exist.
    """
    report = MergeReport()
    registered = _RegisteredRefs(registry)
    refs = iter(predicted)
    with log_duration(_LOG, "Merged outputs"):
        while batch := list(itertools.islice(refs, max(batch_size, 1))):
            todo = registered.unregistered(batch)
            report.already_registered += len(batch) - len(todo)
            located: list[tuple[DatasetRef, list[DatastoreRecord]]] = []
            for ref in todo:
                storage_class = storage_classes[ref.dataset_type.storage_class_name]
                records = datastore.with_file_sizes(datastore.predict_records(ref, storage_class))
                if records is None:
                    report.add_missing(ref)
                else:
                    located.append((ref, records))
            _register_batch(registry, datastore, located, report)
    _LOG.info(
        "Merge: %d registered, %d already registered, %d missing.",
        report.registered,
        report.already_registered,
        report.missing,
    )
    return report


class _RegisteredRefs:
    """Which predicted refs the registry holds already: one bulk query per dataset type and run.

    A ref counts as registered only if its ID is in its run with its dataset type and data ID;
    anything else (new, or a conflicting definition) takes the full path, where `import_datasets`
    raises for a conflict as before.
    """

    def __init__(self, registry: Registry) -> None:
        self._registry = registry
        self._runs: dict[tuple[str, str], pa.Table] = {}
        """Whole-run lookups kept while batches still hold that (dataset type, run)."""

    def unregistered(self, batch: list[DatasetRef]) -> list[DatasetRef]:
        """The refs of ``batch`` that are not registered yet, grouped by dataset type and run."""
        groups: dict[tuple[str, str], list[DatasetRef]] = {}
        for ref in batch:
            groups.setdefault((ref.dataset_type.name, ref.run), []).append(ref)
        self._runs = {key: table for key, table in self._runs.items() if key in groups}
        todo: list[DatasetRef] = []
        for key, refs in groups.items():
            todo.extend(_not_in(refs, self._lookup(key, refs)))
        return todo

    def _lookup(self, key: tuple[str, str], refs: list[DatasetRef]) -> pa.Table:
        table = self._runs.get(key)
        if table is not None:
            return table
        dataset_type, run = refs[0].dataset_type, key[1]
        if len(refs) < _LOOKUP_BY_ID_BELOW:
            return self._registry.datasets_in_run(dataset_type, run, [ref.id for ref in refs])
        table = self._registry.datasets_in_run(dataset_type, run).combine_chunks()
        self._runs[key] = table
        return table


def _not_in(refs: list[DatasetRef], registered: pa.Table) -> list[DatasetRef]:
    """``refs`` (one dataset type and run) less those ``registered`` holds with the same data ID."""
    if registered.num_rows == 0:
        return refs
    ids = pa.FixedSizeBinaryArray.from_buffers(
        UUID_TYPE, len(refs), [None, pa.py_buffer(b"".join(ref.id.bytes for ref in refs))]
    )
    # Python lists, not numpy: converting an arrow array to numpy imports pandas (0.2 s, 70 MB).
    positions = pc.index_in(ids, value_set=registered.column("dataset_id").combine_chunks())
    present = positions.is_valid()
    found = pc.indices_nonzero(present).to_pylist()
    if not found:
        return refs
    rows = registered.take(positions.filter(present))
    keys = rows.column_names[1:]
    values = (
        list(zip(*(rows.column(k).to_pylist() for k in keys), strict=True)) if keys else [()] * len(found)
    )
    same = {
        index
        for index, value in zip(found, values, strict=True)
        if refs[index].data_id.required_values == value
    }
    return [ref for index, ref in enumerate(refs) if index not in same]


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
