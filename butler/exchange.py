"""Moving datasets between repositories: export to a directory, import from one, transfer between butlers.

All three go through a `Bundle`: the dimension records, dataset types, runs and datasets (with
the URIs of their files) that make a self-contained set.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from lsst.resources import ResourcePath

from .data_coordinate import DataCoordinate, DimensionRecord
from .datasets import DatasetRef, DatasetType
from .datastore import DatastoreRecord
from .errors import ButlerError, UniverseMismatchError
from .spatial import encode_region
from .timespan import Timespan
from .yaml_io import safe_load

if TYPE_CHECKING:
    from .butler import Butler

__all__ = ["EXPORT_FILE", "Bundle", "export_datasets", "import_datasets", "transfer_datasets"]

_LOG = logging.getLogger(__name__)

EXPORT_FILE = "export.yaml"
"""The manifest `export_datasets` writes at the top of its directory."""
_FORMAT_VERSION = 1


@dataclass
class BundledFile:
    """One artifact of a bundled dataset."""

    component: str
    uri: ResourcePath
    formatter: str
    storage_class: str


@dataclass
class Bundle:
    """Everything needed to recreate some datasets in another repository."""

    universe: tuple[str, int]
    records: dict[str, dict[tuple[Any, ...], dict[str, Any]]] = field(default_factory=dict)
    dataset_types: dict[str, DatasetType] = field(default_factory=dict)
    runs: dict[str, str | None] = field(default_factory=dict)
    datasets: list[tuple[DatasetRef, list[BundledFile]]] = field(default_factory=list)


def collect(butler: Butler, refs: Iterable[DatasetRef]) -> Bundle:
    """The bundle of ``refs`` in ``butler``: their files' URIs, types, runs and every dimension record they use."""
    registry = butler.registry
    bundle = Bundle((registry.universe.name, registry.universe.version))
    for ref in refs:
        parent = registry.get_dataset_type(ref.dataset_type.parent_name)
        bundle.dataset_types[parent.name] = parent
        bundle.runs.setdefault(ref.run, registry.get_collection_documentation(ref.run))
        expanded = registry.expand_data_id(ref.data_id.required, dimensions=parent.dimensions.names)
        for name, dimension_record in expanded.records.items():
            bundle.records.setdefault(name, {})[dimension_record.key_values] = _record_to_simple(
                dimension_record
            )
        files = []
        for stored in butler.datastore_records(ref):
            uri = butler.datastore.uris([stored])[stored.component]
            files.append(BundledFile(stored.component, uri, stored.formatter, stored.storage_class))
        if not files:
            raise ButlerError(f"{ref} has no file in datastore {butler.datastore.name}; nothing to transfer.")
        bundle.datasets.append((DatasetRef(parent, expanded, ref.run, ref.id), files))
    return bundle


def apply(butler: Butler, bundle: Bundle) -> list[DatasetRef]:
    """Create the bundle's records, types, runs and datasets in ``butler``, copying the files.

    Datasets already present (same UUID) are skipped; files copied for a failed attempt are removed.
    """
    registry = butler.registry
    universe = registry.universe
    if not universe.is_compatible_with(*bundle.universe):
        raise UniverseMismatchError(
            f"Datasets come from universe {bundle.universe}, not {universe.name} v{universe.version}."
        )
    for element in universe.elements:
        if element.name in bundle.records:
            registry.sync_dimension_records(element.name, list(bundle.records[element.name].values()))
    for dataset_type in bundle.dataset_types.values():
        registry.register_dataset_type(dataset_type)
    for run, doc in bundle.runs.items():
        registry.register_run(run, doc)
    copied: list[ResourcePath] = []
    try:
        with registry.transaction():
            new = {ref.id for ref in registry.import_datasets(ref for ref, _ in bundle.datasets)}
            rows = []
            for ref, files in bundle.datasets:
                if ref.id in new:
                    rows.extend(_copy_files(butler, ref, files, copied))
            registry.insert_datastore_records(rows)
    except BaseException:
        for uri in copied:
            uri.remove()
        raise
    return [ref for ref, _ in bundle.datasets if ref.id in new]


def _copy_files(
    butler: Butler, ref: DatasetRef, files: list[BundledFile], copied: list[ResourcePath]
) -> list[dict[str, Any]]:
    datastore = butler.file_datastore
    if not ref.data_id.has_full_values:
        expanded = butler.registry.expand_data_id(
            ref.data_id.required, dimensions=ref.dataset_type.dimensions.names
        )
        ref = DatasetRef(ref.dataset_type, expanded, ref.run, ref.id)
    storage_class = butler.storage_classes[ref.dataset_type.storage_class_name]
    predicted = {r.component: r for r in datastore.predict_records(ref, storage_class)}
    rows = []
    for bundled in files:
        base = predicted.get(bundled.component) or next(iter(predicted.values()))
        path = str(Path(base.path).with_suffix("")) + (bundled.uri.getExtension() or "")
        if bundled.component and bundled.component not in predicted:
            path = f"{Path(path).with_suffix('')}_{bundled.component}{bundled.uri.getExtension()}"
        destination = datastore.root.join(path)
        if destination.exists():
            raise ButlerError(f"Cannot bring in {ref}: {destination} already exists.")
        destination.transfer_from(bundled.uri, transfer="copy")
        copied.append(destination)
        rows.append(
            DatastoreRecord(
                ref.id,
                datastore.name,
                bundled.component,
                path,
                bundled.formatter,
                bundled.storage_class,
                None,
                destination.size(),
            ).to_row()
        )
    return rows


def transfer_datasets(target: Butler, source: Butler, refs: Iterable[DatasetRef]) -> list[DatasetRef]:
    """Copy datasets (same UUIDs) with their files and dimension records from ``source`` into ``target``."""
    return apply(target, collect(source, refs))


def export_datasets(butler: Butler, directory: str | Path, refs: Iterable[DatasetRef]) -> Path:
    """Write ``refs``' files and an ``export.yaml`` manifest into ``directory`` (which must be empty or new)."""
    root = Path(directory)
    if root.exists() and any(root.iterdir()):
        raise ButlerError(f"Export directory {root} is not empty.")
    root.mkdir(parents=True, exist_ok=True)
    bundle = collect(butler, refs)
    datasets = []
    for ref, files in bundle.datasets:
        entries = []
        for bundled in files:
            relative = (
                butler.file_datastore.relative_path(bundled.uri)
                or f"external/{ref.id.hex}_{bundled.uri.basename()}"
            )
            ResourcePath(root / relative).transfer_from(bundled.uri, transfer="copy")
            entries.append(
                {
                    "component": bundled.component,
                    "path": relative,
                    "formatter": bundled.formatter,
                    "storage_class": bundled.storage_class,
                }
            )
        datasets.append(
            {
                "id": str(ref.id),
                "dataset_type": ref.dataset_type.name,
                "run": ref.run,
                "data_id": ref.data_id.required,
                "files": entries,
            }
        )
    manifest = {
        "version": _FORMAT_VERSION,
        "universe": {"name": bundle.universe[0], "version": bundle.universe[1]},
        "dimension_records": {name: list(rows.values()) for name, rows in bundle.records.items()},
        "dataset_types": [
            {
                "name": t.name,
                "dimensions": list(t.dimensions.required),
                "storage_class": t.storage_class_name,
                "is_calibration": t.is_calibration,
            }
            for t in bundle.dataset_types.values()
        ],
        "runs": [{"name": name, "doc": doc} for name, doc in bundle.runs.items()],
        "datasets": datasets,
    }
    (root / EXPORT_FILE).write_text(yaml.safe_dump(manifest, sort_keys=False))
    _LOG.info("Exported %d dataset(s) to %s.", len(datasets), root)
    return root / EXPORT_FILE


def import_datasets(butler: Butler, directory: str | Path) -> list[DatasetRef]:
    """Bring in what `export_datasets` wrote; datasets already present are skipped."""
    root = Path(directory)
    manifest_path = root / EXPORT_FILE
    try:
        manifest = safe_load(manifest_path.read_text())
        if manifest.get("version") != _FORMAT_VERSION:
            raise ButlerError(
                f"{manifest_path}: export format version {manifest.get('version')!r} is not {_FORMAT_VERSION}."
            )
        bundle = _bundle_from_manifest(butler, manifest, root)
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        raise ButlerError(f"Cannot read export manifest {manifest_path}: {err!r}") from err
    return apply(butler, bundle)


def _bundle_from_manifest(butler: Butler, manifest: Mapping[str, Any], root: Path) -> Bundle:
    universe = butler.registry.universe
    bundle = Bundle((manifest["universe"]["name"], int(manifest["universe"]["version"])))
    for name, rows in manifest["dimension_records"].items():
        universe[name]  # an unknown element is named here, before anything is written
        bundle.records[name] = {(index,): row for index, row in enumerate(rows)}
    for entry in manifest["dataset_types"]:
        bundle.dataset_types[entry["name"]] = DatasetType(
            entry["name"],
            universe.group(entry["dimensions"]),
            entry["storage_class"],
            is_calibration=entry["is_calibration"],
        )
    bundle.runs = {entry["name"]: entry.get("doc") for entry in manifest["runs"]}
    for entry in manifest["datasets"]:
        dataset_type = bundle.dataset_types[entry["dataset_type"]]
        data_id = DataCoordinate.standardize(entry["data_id"], dimensions=dataset_type.dimensions)
        ref = DatasetRef(dataset_type, data_id, entry["run"], uuid.UUID(entry["id"]))
        files = [
            BundledFile(f["component"], ResourcePath(root / f["path"]), f["formatter"], f["storage_class"])
            for f in entry["files"]
        ]
        bundle.datasets.append((ref, files))
    return bundle


def _record_to_simple(record: DimensionRecord) -> dict[str, Any]:
    values = record.to_dict()
    timespan = values.get("timespan")
    if isinstance(timespan, Timespan):
        values["timespan"] = {
            "begin": timespan.begin.isoformat() if timespan.begin else None,
            "end": timespan.end.isoformat() if timespan.end else None,
        }
    if values.get("region") is not None:
        values["region"] = (encode_region(values["region"]) or b"").hex()
    return values
