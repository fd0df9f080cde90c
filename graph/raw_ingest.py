"""Raw ingest: turn camera files into ``raw`` datasets, with the exposure and day_obs records their headers imply.

`ingest_raws` reads only primary headers, asks the instrument named by ``INSTRUME`` to translate
them, syncs the records in bulk and hands all files to `butler.ingest.ingest_files` at once. A
JSON sidecar (``_index.json``) in each directory remembers the translations, so re-ingesting a
directory whose files have not changed (same size and modification time) reads no headers.
Bad files and duplicates are reported and skipped, unless ``fail_fast``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

from astropy.io import fits
from astropy.utils.exceptions import AstropyWarning

from butler import ConflictingDefinitionError, DatasetIdGenerationMode, DatasetRef
from butler.butler import Butler
from butler.data_coordinate import DataCoordinate
from butler.errors import ButlerError
from butler.ingest import TRANSFER_MODES, FileDataset
from butler.timing import log_duration

from .errors import GraphError, RawIngestError
from .instrument import Instrument, ObservationInfo

__all__ = [
    "INDEX_NAME",
    "RAW_FORMATTER",
    "IngestReport",
    "IngestedRaw",
    "ProgressReporter",
    "SkippedRaw",
    "find_raw_files",
    "ingest_raws",
    "read_header",
]

_LOG = logging.getLogger(__name__)

INDEX_NAME = "_index.json"
"""Name of the per-directory sidecar index of translated headers."""

_INDEX_FORMAT = "quanta-raw-index"
_INDEX_VERSION = 1

RAW_FORMATTER = "butler.formatters.FitsImageFormatter"
"""Formatter recorded for ingested raw files."""

_RAW_SUFFIXES = (".fits", ".fit", ".fts")

T = TypeVar("T")


class ProgressReporter(Protocol):
    """Something that shows progress over items (``butler.cli.options.Progress`` is one)."""

    def items(self, items: Sequence[T], label: str) -> contextlib.AbstractContextManager[Iterable[T]]:
        """Yield ``items``, advancing a display as they are consumed."""
        ...


class _NoProgress:
    @contextlib.contextmanager
    def items(self, items: Sequence[T], label: str) -> Iterator[Iterable[T]]:
        yield items


@dataclass(frozen=True, slots=True)
class IngestedRaw:
    """A file that is now a dataset."""

    path: str
    """The file as given (or found in a given directory)."""
    ref: DatasetRef
    """Its dataset."""


@dataclass(frozen=True, slots=True)
class SkippedRaw:
    """A file that was not ingested, and why."""

    path: str
    """The file."""
    reason: str
    """What is wrong with it."""
    kind: Literal["bad", "duplicate", "already_ingested"]
    """``bad``: unreadable, not FITS, bad header, unknown or unregistered instrument; ``duplicate``: the
    same instrument, exposure and detector as another file given; ``already_ingested``: in the run already."""


@dataclass(slots=True)
class IngestReport:
    """What `ingest_raws` did."""

    ingested: list[IngestedRaw] = field(default_factory=list)
    """Files ingested, in path order."""
    skipped: list[SkippedRaw] = field(default_factory=list)
    """Files skipped, in path order."""
    runs: list[str] = field(default_factory=list)
    """RUN collections written to."""
    headers_read: int = 0
    """Headers parsed from files."""
    headers_from_index: int = 0
    """Headers taken from sidecar indexes instead."""
    new_exposures: int = 0
    """Exposure records created."""

    @property
    def bad(self) -> list[SkippedRaw]:
        """Skipped files that are broken."""
        return [s for s in self.skipped if s.kind == "bad"]

    @property
    def duplicates(self) -> list[SkippedRaw]:
        """Skipped files with the same data ID as another file given."""
        return [s for s in self.skipped if s.kind == "duplicate"]

    @property
    def already_ingested(self) -> list[SkippedRaw]:
        """Skipped files whose dataset is in the run already."""
        return [s for s in self.skipped if s.kind == "already_ingested"]


@dataclass(slots=True)
class _Raw:
    path: Path
    instrument: Instrument
    observation: ObservationInfo


# -- finding and reading files ---------------------------------------------------------------------


def find_raw_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[SkippedRaw]]:
    """Files given, plus ``*.fits`` (``.fit``, ``.fts``) found recursively in directories given; sorted, without repeats.

    Paths that do not exist come back as skipped (``bad``).
    """
    found: dict[Path, None] = {}
    missing = []
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for candidate in sorted(path.rglob("*")):
                if candidate.suffix.lower() in _RAW_SUFFIXES and candidate.is_file():
                    found.setdefault(candidate.absolute(), None)
        elif path.is_file():
            found.setdefault(path.absolute(), None)
        else:
            missing.append(SkippedRaw(str(given), "no such file or directory", "bad"))
    return sorted(found), missing


def read_header(path: Path) -> dict[str, Any]:
    """The primary header of a FITS file as keyword -> value (COMMENT and HISTORY left out).

    Raises `RawIngestError` naming the file when it cannot be read as FITS.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AstropyWarning)
            header = fits.getheader(path, 0)
    except (OSError, ValueError, TypeError, KeyError, IndexError) as err:
        raise RawIngestError(f"{path}: not a readable FITS file ({err}).") from None
    return {
        card.keyword: card.value for card in header.cards if card.keyword not in ("COMMENT", "HISTORY", "")
    }


class _Index:
    """The sidecar index of one directory: file name -> size, mtime and translated header."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / INDEX_NAME
        self.entries: dict[str, dict[str, Any]] = {}
        self.changed = False
        if not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text())
            if data.get("format") == _INDEX_FORMAT and data.get("version") == _INDEX_VERSION:
                self.entries = dict(data["files"])
            else:
                _LOG.warning("Ignoring %s: not a version %d raw index.", self.path, _INDEX_VERSION)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
            _LOG.warning("Ignoring unreadable raw index %s: %s", self.path, err)

    def lookup(self, path: Path, stat: os.stat_result) -> tuple[str, int, dict[str, Any]] | None:
        """(instrument name, translation version, observation JSON) if the entry matches the file."""
        entry = self.entries.get(path.name)
        if not isinstance(entry, dict):
            return None
        if entry.get("size") != stat.st_size or entry.get("mtime_ns") != stat.st_mtime_ns:
            return None
        try:
            return str(entry["instrument"]), int(entry["translation_version"]), dict(entry["observation"])
        except (KeyError, TypeError, ValueError):
            return None

    def store(
        self, path: Path, stat: os.stat_result, instrument: Instrument, observation: ObservationInfo
    ) -> None:
        entry = {
            "size": stat.st_size,
            "mtime_ns": stat.st_mtime_ns,
            "instrument": instrument.name,
            "translation_version": instrument.translation_version,
            "observation": observation.to_json(),
        }
        if self.entries.get(path.name) != entry:
            self.entries[path.name] = entry
            self.changed = True

    def forget(self, names: Iterable[str]) -> None:
        for name in names:
            if self.entries.pop(name, None) is not None:
                self.changed = True

    def save(self) -> None:
        """Write the index if it changed (atomically); an unwritable directory only logs a warning."""
        if not self.changed:
            return
        try:
            if not self.entries:
                self.path.unlink(missing_ok=True)
                return
            data = {
                "format": _INDEX_FORMAT,
                "version": _INDEX_VERSION,
                "files": dict(sorted(self.entries.items())),
            }
            temporary = self.path.with_name(f".{INDEX_NAME}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(data, indent=1) + "\n")
            os.replace(temporary, self.path)
        except OSError as err:
            _LOG.warning(
                "Cannot write raw index %s (headers will be read again next time): %s", self.path, err
            )


# -- ingest ----------------------------------------------------------------------------------------


def ingest_raws(
    butler: Butler,
    paths: Iterable[str | Path],
    *,
    transfer: str = "auto",
    run: str | None = None,
    fail_fast: bool = False,
    progress: ProgressReporter | None = None,
    use_index: bool = True,
) -> IngestReport:
    """Ingest raw files (and the ``*.fits`` files under directories) as ``raw`` datasets.

    Parameters
    ----------
    butler
        The repository to ingest into.
    paths
        Files and directories (searched recursively).
    transfer
        How files enter the datastore (see `butler.ingest.TRANSFER_MODES`).
    run
        RUN collection for every file [default: each instrument's `Instrument.raw_run`].
    fail_fast
        Raise `RawIngestError` at the first bad or duplicate file, before anything is written to
        the registry or datastore. Otherwise such files are reported in the result and skipped.
    progress
        Shows progress over the header pass.
    use_index
        Read and write ``_index.json`` sidecars (translated headers keyed by file size and mtime).

    Returns
    -------
    report
        Ingested and skipped files with reasons, runs written to, and how headers were obtained.
    """
    if transfer not in TRANSFER_MODES:
        raise RawIngestError(
            f"Unknown transfer mode {transfer!r}; expected one of {', '.join(TRANSFER_MODES)}."
        )
    report = IngestReport()
    files, missing = find_raw_files(paths)
    for skipped in missing:
        _skip(report, skipped, fail_fast)
    raws = _read_headers(files, report, fail_fast, progress or _NoProgress(), use_index)
    raws = _check_instruments(butler, raws, report, fail_fast)
    raws = _drop_duplicates(butler, raws, run, report, fail_fast)
    raws = _sync_records(butler, raws, report, fail_fast)
    if raws:
        _ingest(butler, raws, run, transfer, report)
        if transfer == "move" and use_index:
            _forget_moved(raws)
    report.ingested.sort(key=lambda r: r.path)
    report.skipped.sort(key=lambda s: s.path)
    return report


def _skip(report: IngestReport, skipped: SkippedRaw, fail_fast: bool) -> None:
    if fail_fast:
        reason = skipped.reason.rstrip(".")
        raise RawIngestError(f"{skipped.path}: {reason}; nothing was ingested (fail fast).")
    _LOG.info("Skipping %s: %s", skipped.path, skipped.reason)
    report.skipped.append(skipped)


def _read_headers(
    files: Sequence[Path], report: IngestReport, fail_fast: bool, progress: ProgressReporter, use_index: bool
) -> list[_Raw]:
    """Translate every file's header (from the sidecar index when it is current)."""
    instruments: dict[str, Instrument] = {}
    indexes: dict[Path, _Index] = {}
    raws = []
    with progress.items(files, "Reading raw headers") as items:
        for path in items:
            index = None
            if use_index:
                index = indexes.get(path.parent)
                if index is None:
                    index = indexes[path.parent] = _Index(path.parent)
            try:
                raw, from_index = _translate(path, index, instruments)
            except GraphError as err:
                _skip(report, SkippedRaw(str(path), _reason(err, path), "bad"), fail_fast)
                continue
            if from_index:
                report.headers_from_index += 1
            else:
                report.headers_read += 1
            raws.append(raw)
    for index in indexes.values():
        index.save()
    return raws


def _reason(err: Exception, path: Path) -> str:
    """The error's message without the leading file name (the report shows the path already)."""
    message = str(err)
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _translate(path: Path, index: _Index | None, instruments: dict[str, Instrument]) -> tuple[_Raw, bool]:
    try:
        stat = path.stat()
    except OSError as err:
        raise RawIngestError(f"{path}: cannot read ({err.strerror}).") from None
    cached = index.lookup(path, stat) if index is not None else None
    if cached is not None:
        name, version, values = cached
        instrument = _instrument(name, instruments)
        if version == instrument.translation_version:
            try:
                return _Raw(path, instrument, ObservationInfo.from_json(values)), True
            except (KeyError, TypeError, ValueError) as err:
                _LOG.debug("Stale index entry for %s (%s); reading the header.", path, err)
    header = read_header(path)
    instrument_name = header.get("INSTRUME")
    if not isinstance(instrument_name, str) or not instrument_name.strip():
        raise RawIngestError(f"{path}: header has no INSTRUME keyword naming the instrument.")
    instrument = _instrument(instrument_name.strip(), instruments)
    observation = instrument.translate_header(header, str(path))
    if index is not None:
        index.store(path, stat, instrument, observation)
    return _Raw(path, instrument, observation), False


def _instrument(name: str, instruments: dict[str, Instrument]) -> Instrument:
    if name not in instruments:
        instruments[name] = Instrument.from_name(name)
    return instruments[name]


def _check_instruments(butler: Butler, raws: list[_Raw], report: IngestReport, fail_fast: bool) -> list[_Raw]:
    """Drop (report) files of instruments not registered in the repository."""
    problems: dict[str, str] = {}
    for name in {raw.instrument.name for raw in raws}:
        instrument = next(raw.instrument for raw in raws if raw.instrument.name == name)
        try:
            instrument.check_registered(butler.registry)
        except GraphError as err:
            problems[name] = str(err)
    kept = []
    for raw in raws:
        if raw.instrument.name in problems:
            _skip(report, SkippedRaw(str(raw.path), problems[raw.instrument.name], "bad"), fail_fast)
        else:
            kept.append(raw)
    return kept


def _run_of(raw: _Raw, run: str | None) -> str:
    return run or raw.instrument.raw_run


def _drop_duplicates(
    butler: Butler, raws: list[_Raw], run: str | None, report: IngestReport, fail_fast: bool
) -> list[_Raw]:
    """Drop files whose (instrument, exposure, detector) is given twice or already ingested into the run."""
    first: dict[tuple[str, int, int], _Raw] = {}
    kept = []
    for raw in raws:
        key = (raw.observation.instrument, raw.observation.exposure, raw.observation.detector)
        if key in first:
            reason = f"same instrument, exposure and detector {key} as {first[key].path}"
            _skip(report, SkippedRaw(str(raw.path), reason, "duplicate"), fail_fast)
            continue
        first[key] = raw
        kept.append(raw)
    existing: set[tuple[str, str, int, int]] = set()
    groups: dict[tuple[str, str], list[_Raw]] = {}
    for raw in kept:
        groups.setdefault((raw.instrument.name, _run_of(raw, run)), []).append(raw)
    registry = butler.registry
    for (name, target), members in groups.items():
        if not registry.has_collection(target):
            continue
        dataset_type = members[0].instrument.raw_dataset_type.name
        exposures = sorted({raw.observation.exposure for raw in members})
        for start in range(0, len(exposures), 500):
            chunk = ", ".join(str(e) for e in exposures[start : start + 500])
            for ref in registry.query_datasets(
                dataset_type, target, where=f"exposure IN ({chunk})", data_id={"instrument": name}
            ):
                existing.add((target, name, int(ref.data_id["exposure"]), int(ref.data_id["detector"])))
    result = []
    for raw in kept:
        target = _run_of(raw, run)
        if (
            target,
            raw.observation.instrument,
            raw.observation.exposure,
            raw.observation.detector,
        ) in existing:
            _skip(
                report,
                SkippedRaw(str(raw.path), f"already ingested into {target}", "already_ingested"),
                fail_fast,
            )
        else:
            result.append(raw)
    return result


def _sync_records(butler: Butler, raws: list[_Raw], report: IngestReport, fail_fast: bool) -> list[_Raw]:
    """Insert (idempotently) the day_obs and exposure records of the files; drop files that conflict."""
    by_exposure: dict[tuple[str, int], list[_Raw]] = {}
    for raw in raws:
        by_exposure.setdefault((raw.instrument.name, raw.observation.exposure), []).append(raw)
    records: dict[tuple[str, int], dict[str, Any]] = {}
    kept = []
    for key, members in by_exposure.items():
        record = members[0].observation.exposure_record()
        good = [members[0]]
        for raw in members[1:]:
            other = raw.observation.exposure_record()
            diffs = [name for name in record if record[name] != other[name]]
            if diffs:
                reason = (
                    f"header disagrees with {members[0].path} about exposure {key[1]} "
                    f"({', '.join(f'{d}: {record[d]!r} != {other[d]!r}' for d in diffs)})"
                )
                _skip(report, SkippedRaw(str(raw.path), reason, "bad"), fail_fast)
            else:
                good.append(raw)
        records[key] = record
        kept.extend(good)
    registry = butler.registry
    day_obs = {
        (raw.instrument.name, raw.observation.day_obs): raw.instrument.day_obs_record(raw.observation.day_obs)
        for raw in kept
    }
    conflicts: dict[tuple[str, int], str] = {}
    with log_duration(_LOG, f"Synced records of {len(records)} exposure(s)"):
        try:
            with registry.transaction():
                registry.sync_dimension_records("day_obs", list(day_obs.values()))
                inserted = registry.sync_dimension_records("exposure", list(records.values()))
            report.new_exposures += sum(inserted)
        except ConflictingDefinitionError as err:
            if fail_fast:
                raise RawIngestError(f"{err} Nothing was ingested (fail fast).") from err
            conflicts = _sync_one_by_one(butler, day_obs, records, report)
        except ButlerError as err:
            raise RawIngestError(f"Cannot record the exposures of the raws: {err}") from err
    result = []
    for raw in kept:
        key = (raw.instrument.name, raw.observation.exposure)
        if key in conflicts:
            _skip(report, SkippedRaw(str(raw.path), conflicts[key], "bad"), fail_fast)
        else:
            result.append(raw)
    return result


def _sync_one_by_one(
    butler: Butler,
    day_obs: dict[tuple[str, int], dict[str, Any]],
    records: dict[tuple[str, int], dict[str, Any]],
    report: IngestReport,
) -> dict[tuple[str, int], str]:
    """After a batch conflict: sync each day_obs and exposure alone; returns exposure -> conflict message."""
    registry = butler.registry
    bad_days: dict[tuple[str, int], str] = {}
    for key, record in day_obs.items():
        try:
            registry.sync_dimension_records("day_obs", [record])
        except ConflictingDefinitionError as err:
            bad_days[key] = str(err)
    conflicts = {}
    for key, record in records.items():
        day_key = (key[0], record["day_obs"])
        if day_key in bad_days:
            conflicts[key] = bad_days[day_key]
            continue
        try:
            report.new_exposures += sum(registry.sync_dimension_records("exposure", [record]))
        except ConflictingDefinitionError as err:
            conflicts[key] = str(err)
    return conflicts


def _ingest(butler: Butler, raws: list[_Raw], run: str | None, transfer: str, report: IngestReport) -> None:
    universe = butler.registry.universe
    datasets = []
    for raw in raws:
        dataset_type = raw.instrument.raw_dataset_type
        target = _run_of(raw, run)
        data_id = DataCoordinate.standardize(
            raw.observation.data_id, universe=universe, dimensions=dataset_type.dimensions
        )
        ref = DatasetRef.new(dataset_type, data_id, target, DatasetIdGenerationMode.DATAID_TYPE_RUN)
        datasets.append(FileDataset(str(raw.path), [ref], RAW_FORMATTER))
    try:
        with log_duration(_LOG, f"Ingested {len(datasets)} raw file(s) with transfer={transfer}"):
            refs = butler.ingest(*datasets, transfer=transfer)
    except ButlerError as err:
        raise RawIngestError(
            f"Cannot ingest {len(datasets)} raw file(s); nothing was ingested: {err}"
        ) from err
    for raw, ref in zip(raws, refs, strict=True):
        report.ingested.append(IngestedRaw(str(raw.path), ref))
    report.runs = sorted({ref.run for ref in refs})


def _forget_moved(raws: list[_Raw]) -> None:
    """Remove moved files from their directories' indexes."""
    by_directory: dict[Path, list[str]] = {}
    for raw in raws:
        by_directory.setdefault(raw.path.parent, []).append(raw.path.name)
    for directory, names in by_directory.items():
        index = _Index(directory)
        index.forget(names)
        index.save()
