#!/usr/bin/env python
"""Merge scale benchmark: registering N files that batch jobs wrote without a registry.

For each backend (SQLite, PostgreSQL) and each size N the script builds a fresh data repository
holding one RUN collection and one dataset type, ``bench_summary`` with dimensions
(instrument, visit, detector) and the cheap storage class StructuredDataDict (a small YAML file).
A case runs in two fresh subprocesses, so the merge's peak memory is its own:

1. **jobs** (the script re-invoked with ``--phase jobs``): create the repository (PostgreSQL: in a
   schema created for the case), insert the dimension records (one instrument, band and physical
   filter, 100 detectors, the nights and N/100 visits), register the dataset type and run, predict
   N output refs ``DatasetRef(type, full data ID, run, uuid4)`` as a quantum graph would, save their
   UUIDs to a file (the "graph"), and write 99% of the files directly through the datastore as jobs
   do (``datastore.put``, no registry); the other 1% are failed quanta. The write time is reported
   for information only.
2. **merge** (``--phase merge``): open the repository, rebuild the N predicted refs from the saved
   UUIDs, then time `butler.merge.merge_outputs` (the headline figure), and a second merge of the
   same refs (the idempotent re-run, which must register nothing). It checks the reports (registered
   = 99% of N, missing = exactly the unwritten refs) and the registry contents (dataset and
   datastore-record counts), and records the process's peak resident memory.

The driver removes the repository directory (and drops the PostgreSQL schema) after each case.
Benchmarks report figures; they never pass or fail.

Usage::

    python benchmarks/merge.py [--sizes 10000,100000,1000000] [--backends sqlite,postgresql] [--quick]

PostgreSQL uses the server named by ``$QUANTA_TEST_POSTGRES`` (skipped with a note when unset).
N files of ~100 bytes take N inodes and about 4 KiB of disk each (1M: ~4 GiB); the driver checks
the free space of ``--workdir`` (default: the system temporary directory) before each case.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime
import gc
import json
import os
import platform
import pstats
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from butler.butler import Butler
from butler.data_coordinate import DataCoordinate, DataIdValue
from butler.datasets import DatasetRef, DatasetType, random_dataset_ids
from butler.file_datastore import FileDatastore
from butler.merge import MISSING_SAMPLE_SIZE, MergeReport, merge_outputs
from butler.repository import create_repository
from butler.timespan import Timespan
from butler.timing import peak_rss_mb

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BACKENDS = ("sqlite", "postgresql")
POSTGRES_ENV = "QUANTA_TEST_POSTGRES"
RESULT_PREFIX = "BENCH-RESULT "

INSTRUMENT = "BenchCam"
BAND = "r"
PHYSICAL_FILTER = "BenchCam-r"
N_DETECTORS = 100
VISITS_PER_NIGHT = 500
"""500 visits x 100 detectors: 50,000 files per night directory of the default file template."""
FIRST_VISIT = 2025_0101_00000
DATASET_TYPE = "bench_summary"
DIMENSIONS = ("instrument", "visit", "detector")
STORAGE_CLASS = "StructuredDataDict"
RUN = "bench/run"
FAILED_FRACTION = 0.01
"""Fraction of the predicted outputs whose quanta "failed": their files are never written."""
FAILED_SEED = 20250101
"""Seed choosing the failed quanta; both subprocesses of a case derive the same set from it."""
GRAPH_FILE = "predicted-ids.bin"
"""The predicted UUIDs (16 bytes each, index order), the part of a quantum graph the merge needs."""
BYTES_PER_FILE = 4096 + 512
"""Disk budgeted per output file (one filesystem block plus directory entries) by the space check."""

T = TypeVar("T")


@dataclass
class CaseResult:
    """Figures of one (backend, N) case; each phase's subprocess prints its part as one JSON line."""

    backend: str
    n: int
    setup_s: float = 0.0
    """Creating the repository and inserting dimension records (jobs process)."""
    write_s: float = 0.0
    """Writing the files through ``datastore.put`` (informational; not part of the merge)."""
    written: int = 0
    rss_jobs_mb: float = 0.0
    """Peak RSS of the jobs process."""
    refs_s: float = 0.0
    """Rebuilding the predicted refs from the saved UUIDs in the merge process (not in the merge figure)."""
    merge_s: float = 0.0
    """`merge_outputs` of the N predicted refs into an empty run (the headline figure)."""
    remerge_s: float = 0.0
    """`merge_outputs` of the same refs again (idempotent re-run)."""
    registered: int = 0
    already_registered: int = 0
    missing: int = 0
    reregistered: int = 0
    """Datasets the second merge registered (must be 0)."""
    rss_open_mb: float = 0.0
    """Peak RSS of the merge process with its modules imported and the repository open (the baseline)."""
    rss_refs_mb: float = 0.0
    """Peak RSS of the merge process once the predicted refs are built, before merging."""
    rss_merge_mb: float = 0.0
    """Peak RSS of the merge process after both merges (before the checks)."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds (user + system) of the phase's own process; the PostgreSQL server is not included."""
    errors: list[str] = field(default_factory=list)
    load_average: float = 0.0
    """One-minute load average when the merge process started (other work skews timings)."""


# -- helpers shared by both phases ---------------------------------------------------------------

_VERBOSE = False


def _log(message: str) -> None:
    """Progress of a case on stderr (with --verbose)."""
    if _VERBOSE:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _timed(function: Callable[[], T]) -> tuple[T, float, float]:
    """Call ``function``; its result, wall-clock seconds and CPU seconds."""
    start, cpu_start = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - start, time.process_time() - cpu_start


def _night(visit_index: int) -> int:
    """The day_obs (YYYYMMDD) of a visit: VISITS_PER_NIGHT visits a night from 2025-01-01."""
    day = datetime.date(2025, 1, 1) + datetime.timedelta(days=visit_index // VISITS_PER_NIGHT)
    return int(day.strftime("%Y%m%d"))


def _failed_indices(n: int) -> set[int]:
    """Indices of the predicted outputs whose quanta failed (deterministic for a given N)."""
    return set(random.Random(FAILED_SEED).sample(range(n), round(n * FAILED_FRACTION)))


def _predicted_refs(dataset_type: DatasetType, ids: Sequence[uuid.UUID]) -> list[DatasetRef]:
    """The refs a quantum graph predicts: index i is visit i // N_DETECTORS, detector i % N_DETECTORS.

    Data IDs carry full values (required and implied, in ``data_id_keys`` order), as the graph
    builder's expanded data IDs do, so neither writing nor merging queries the registry per ref.
    """
    group = dataset_type.dimensions
    keys = group.data_id_keys
    assert set(group.required) == set(DIMENSIONS), group.required
    nights: dict[int, int] = {}
    refs = []
    for i, dataset_id in enumerate(ids):
        visit_index = i // N_DETECTORS
        night = nights.get(visit_index)
        if night is None:
            night = nights[visit_index] = _night(visit_index)
        by_name: dict[str, DataIdValue] = {
            "instrument": INSTRUMENT,
            "visit": FIRST_VISIT + visit_index,
            "detector": i % N_DETECTORS,
            "physical_filter": PHYSICAL_FILTER,
            "band": BAND,
            "day_obs": night,
        }
        data_id = DataCoordinate.from_full_values(group, tuple(by_name[k] for k in keys))
        refs.append(DatasetRef(dataset_type, data_id, RUN, dataset_id))
    return refs


def _file_datastore(butler: Butler) -> FileDatastore:
    """The repository's datastore, which must be a plain file datastore (what `merge_outputs` takes)."""
    datastore = butler.datastore
    if not isinstance(datastore, FileDatastore):
        raise TypeError(
            f"The benchmark needs a file datastore; the repository has a {type(datastore).__name__}."
        )
    return datastore


def _read_ids(path: Path) -> list[uuid.UUID]:
    data = path.read_bytes()
    return [uuid.UUID(bytes=data[i : i + 16]) for i in range(0, len(data), 16)]


# -- phase 1: the jobs (own subprocess) -------------------------------------------------------------------


def _insert_dimension_records(butler: Butler, n_visits: int) -> None:
    """One instrument, band and physical filter; N_DETECTORS detectors; the nights and visits."""
    registry = butler.registry
    registry.insert_dimension_records(
        "instrument",
        [
            {
                "name": INSTRUMENT,
                "class_name": "bench.BenchCam",
                "detector_max": N_DETECTORS,
                "visit_max": 10**13,
                "exposure_max": 10**13,
            }
        ],
    )
    registry.insert_dimension_records("band", [{"name": BAND}])
    registry.insert_dimension_records(
        "physical_filter", [{"instrument": INSTRUMENT, "name": PHYSICAL_FILTER, "band": BAND}]
    )
    registry.insert_dimension_records(
        "detector",
        [
            {"instrument": INSTRUMENT, "id": d, "full_name": f"D{d:03d}", "purpose": "SCIENCE"}
            for d in range(N_DETECTORS)
        ],
    )
    night_records = []
    for night in sorted({_night(i) for i in range(n_visits)}):
        begin = datetime.datetime.strptime(str(night), "%Y%m%d").replace(tzinfo=datetime.UTC)
        night_records.append(
            {
                "instrument": INSTRUMENT,
                "id": night,
                "timespan": Timespan.from_datetimes(begin, begin + datetime.timedelta(days=1)),
            }
        )
    registry.insert_dimension_records("day_obs", night_records)
    start_ns = 1_735_689_600 * 10**9  # 2025-01-01T00:00:00Z
    visits = []
    for i in range(n_visits):
        begin_ns = start_ns + (i // VISITS_PER_NIGHT) * 86_400 * 10**9 + (i % VISITS_PER_NIGHT) * 60 * 10**9
        visits.append(
            {
                "instrument": INSTRUMENT,
                "id": FIRST_VISIT + i,
                "physical_filter": PHYSICAL_FILTER,
                "day_obs": _night(i),
                "timespan": Timespan(begin_ns, begin_ns + 30 * 10**9),
                "name": f"BC_{FIRST_VISIT + i}",
                "exposure_time": 30.0,
                "science_program": "bench",
                "zenith_angle": 30.0,
            }
        )
    registry.insert_dimension_records("visit", visits)


def run_jobs(backend: str, n: int, case_dir: Path, namespace: str | None) -> CaseResult:
    """Create and fill the repository, save the predicted UUIDs, write 99% of the files."""
    result = CaseResult(backend, n)
    repo = case_dir / "repo"
    start, cpu_start = time.perf_counter(), time.process_time()
    if backend == "postgresql":
        create_repository(repo, db=os.environ[POSTGRES_ENV], namespace=namespace)
    else:
        create_repository(repo)
    with Butler(repo) as butler:
        _insert_dimension_records(butler, -(-n // N_DETECTORS))
        dataset_type = DatasetType(DATASET_TYPE, DIMENSIONS, STORAGE_CLASS, universe=butler.registry.universe)
        butler.registry.register_dataset_type(dataset_type)
        butler.registry.register_run(RUN)
        ids = random_dataset_ids(n)
        (case_dir / GRAPH_FILE).write_bytes(b"".join(i.bytes for i in ids))
        refs = _predicted_refs(dataset_type, ids)
        result.setup_s = time.perf_counter() - start
        result.cpu_s["setup"] = time.process_time() - cpu_start
        _log(f"{backend} N={n:,}: repository {repo} ready in {result.setup_s:.1f} s; writing files")

        failed = _failed_indices(n)
        storage_class = butler.storage_classes[STORAGE_CLASS]
        datastore = _file_datastore(butler)

        def write() -> int:
            count = 0
            for i, ref in enumerate(refs):
                if i in failed:
                    continue
                datastore.put(_payload(refs, i), ref, storage_class)
                count += 1
                if _VERBOSE and count % 100_000 == 0:
                    _log(f"{count:,} files written")
            return count

        result.written, result.write_s, result.cpu_s["write"] = _timed(write)
    result.rss_jobs_mb = peak_rss_mb()
    _log(f"{result.written:,} files written in {result.write_s:.1f} s")
    return result


# -- phase 2: the merge (own subprocess) ------------------------------------------------------------


def _profiled(label: str, profile_dir: Path | None, function: Callable[[], T]) -> tuple[T, float, float]:
    """`_timed`, under cProfile when ``profile_dir`` is set (one .prof file per call)."""
    if profile_dir is None:
        return _timed(function)
    profiler = cProfile.Profile()
    result = _timed(lambda: profiler.runcall(function))
    path = profile_dir / f"{label}.prof"
    profiler.dump_stats(path)
    _log(f"profile written to {path}; top functions by own time, then by cumulative time:")
    stats = pstats.Stats(profiler, stream=sys.stderr)
    stats.sort_stats("tottime").print_stats(20)
    stats.sort_stats("cumulative").print_stats(30)
    return result


def run_merge(backend: str, n: int, case_dir: Path, profile_dir: Path | None) -> CaseResult:
    """Merge the predicted outputs twice; check the reports and the registry."""
    result = CaseResult(backend, n, load_average=os.getloadavg()[0])
    label = f"{backend}-{n}"
    with Butler(case_dir / "repo") as butler:
        dataset_type = butler.registry.get_dataset_type(DATASET_TYPE)
        datastore = _file_datastore(butler)
        result.rss_open_mb = peak_rss_mb()
        refs, result.refs_s, result.cpu_s["refs"] = _timed(
            lambda: _predicted_refs(dataset_type, _read_ids(case_dir / GRAPH_FILE))
        )
        gc.collect()
        result.rss_refs_mb = peak_rss_mb()
        _log(f"{backend} N={n:,}: {len(refs):,} predicted refs rebuilt in {result.refs_s:.1f} s; merging")

        def merge() -> MergeReport:
            return merge_outputs(butler.registry, datastore, butler.storage_classes, refs)

        first, result.merge_s, result.cpu_s["merge"] = _profiled(f"{label}-merge", profile_dir, merge)
        _log(f"merge: {result.merge_s:.2f} s (CPU {result.cpu_s['merge']:.2f} s)")
        second, result.remerge_s, result.cpu_s["remerge"] = _profiled(f"{label}-remerge", profile_dir, merge)
        _log(f"re-merge: {result.remerge_s:.2f} s (CPU {result.cpu_s['remerge']:.2f} s)")
        result.rss_merge_mb = peak_rss_mb()

        result.registered = first.registered
        result.already_registered = second.already_registered
        result.missing = first.missing
        result.reregistered = second.registered
        result.errors = _check(butler, refs, first, second)
    return result


def _check(butler: Butler, refs: Sequence[DatasetRef], first: MergeReport, second: MergeReport) -> list[str]:
    """Problems with the merge reports or with what the registry holds afterwards."""
    errors = []
    failed = _failed_indices(len(refs))
    expected_missing = {refs[i].id for i in failed}
    expected_registered = len(refs) - len(failed)
    missing_sample = {ref.id for ref in first.missing_sample}
    if first.missing != len(failed) or len(missing_sample) != min(len(failed), MISSING_SAMPLE_SIZE):
        errors.append(f"first merge reported {first.missing} missing, expected the {len(failed)} failed")
    if not missing_sample <= expected_missing:
        errors.append(f"sample of missing refs holds {len(missing_sample - expected_missing)} written ones")
    if (first.registered, first.already_registered) != (expected_registered, 0):
        errors.append(
            f"first merge: {first.registered} registered, {first.already_registered} already registered; "
            f"expected {expected_registered}, 0"
        )
    if (second.registered, second.already_registered, second.missing) != (
        0,
        expected_registered,
        len(failed),
    ):
        errors.append(
            f"re-merge: {second.registered} registered, {second.already_registered} already registered, "
            f"{second.missing} missing; expected 0, {expected_registered}, {len(failed)}"
        )
    found = butler.registry.query_datasets(DATASET_TYPE, RUN, find_first=False)
    found_ids = {ref.id for ref in found}
    if len(found) != expected_registered or found_ids & expected_missing:
        errors.append(
            f"registry holds {len(found)} datasets in {RUN} ({len(found_ids & expected_missing)} of them "
            f"failed quanta); expected {expected_registered}"
        )
    records = butler.all_datastore_records()
    if len(records) != expected_registered or {r.dataset_id for r in records} != found_ids:
        errors.append(
            f"{len(records)} datastore records; expected one for each of {expected_registered} datasets"
        )
    index_of = {ref.id: i for i, ref in enumerate(refs)}
    sample = records[:: max(1, len(records) // 100)]
    wrong = [
        r
        for r in sample
        if butler.get(refs[index_of[r.dataset_id]]) != _payload(refs, index_of[r.dataset_id])
    ]
    if wrong:
        errors.append(f"{len(wrong)} of {len(sample)} sampled merged datasets read back wrong")
    return errors


def _payload(refs: Sequence[DatasetRef], index: int) -> dict[str, Any]:
    """What the job of predicted output ``index`` writes."""
    data_id = refs[index].data_id
    return {"visit": data_id["visit"], "detector": data_id["detector"], "flux": index * 0.5}


# -- driver: two subprocesses per case, then the table ---------------------------------------------------------


def _run_phase(
    phase: str, backend: str, n: int, case_dir: Path, extra: Sequence[str]
) -> dict[str, Any] | str:
    """Run one phase of a case in a fresh interpreter; its JSON result, or a failure message."""
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--phase",
        phase,
        "--case",
        f"{backend}:{n}",
        "--case-dir",
        str(case_dir),
        *extra,
    ]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data: dict[str, Any] = json.loads(line.removeprefix(RESULT_PREFIX))
            return data
    return f"{phase} phase failed (exit code {completed.returncode}); see the messages above"


def _namespace(n: int) -> str:
    return f"bench_merge_{n}_{os.getpid()}_{uuid.uuid4().hex[:6]}"


def _drop_schema(namespace: str) -> None:
    url = os.environ[POSTGRES_ENV]
    engine = sa.create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"))
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
    finally:
        engine.dispose()


def run_case(backend: str, n: int, workdir: Path | None, extra: Sequence[str]) -> CaseResult | str:
    """Both phases of one case, each in its own subprocess; removes the repository afterwards."""
    case_dir = Path(tempfile.mkdtemp(prefix=f"quanta-merge-{backend}-{n}-", dir=workdir))
    namespace = _namespace(n) if backend == "postgresql" else None
    namespace_args = ["--namespace", namespace] if namespace else []
    try:
        jobs = _run_phase("jobs", backend, n, case_dir, [*extra, *namespace_args])
        if isinstance(jobs, str):
            return jobs
        merged = _run_phase("merge", backend, n, case_dir, extra)
        if isinstance(merged, str):
            return merged
    finally:
        start = time.perf_counter()
        shutil.rmtree(case_dir, ignore_errors=True)
        if namespace is not None:
            _drop_schema(namespace)
        _log(f"{backend} N={n:,}: cleaned up in {time.perf_counter() - start:.1f} s")
    result = CaseResult(**merged)
    result.setup_s, result.write_s, result.written = jobs["setup_s"], jobs["write_s"], jobs["written"]
    result.rss_jobs_mb = jobs["rss_jobs_mb"]
    result.cpu_s = jobs["cpu_s"] | result.cpu_s
    result.errors = jobs["errors"] + result.errors
    return result


COLUMNS = (
    ("backend", 10, "<"),
    ("N predicted", 11, ">"),
    ("write s", 7, ">"),
    ("files/s", 7, ">"),
    ("merge s", 7, ">"),
    ("(cpu)", 6, ">"),
    ("refs/s", 7, ">"),
    ("re-merge s", 10, ">"),
    ("(cpu)", 6, ">"),
    ("registered", 10, ">"),
    ("missing", 7, ">"),
    ("re-reg", 6, ">"),
    ("RSS open", 8, ">"),
    ("RSS refs", 8, ">"),
    ("peak RSS MB", 11, ">"),
    ("load", 4, ">"),
)


def _format_row(cells: Sequence[str]) -> str:
    return "  ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True))


def _result_cells(r: CaseResult) -> list[str]:
    return [
        r.backend,
        f"{r.n:,}",
        f"{r.write_s:.1f}",
        f"{r.written / r.write_s:,.0f}" if r.write_s else "-",
        f"{r.merge_s:.2f}",
        f"{r.cpu_s.get('merge', 0.0):.1f}",
        f"{r.n / r.merge_s:,.0f}" if r.merge_s else "-",
        f"{r.remerge_s:.2f}",
        f"{r.cpu_s.get('remerge', 0.0):.1f}",
        f"{r.registered:,}",
        f"{r.missing:,}",
        f"{r.reregistered:,}",
        f"{r.rss_open_mb:.0f}",
        f"{r.rss_refs_mb:.0f}",
        f"{r.rss_merge_mb:.0f}",
        f"{r.load_average:.1f}",
    ]


def _print_header() -> None:
    print(
        f"quanta merge benchmark  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
        f"sqlalchemy {sa.__version__}  {os.cpu_count()} CPUs  {platform.machine()}"
    )
    print(f"N predicted  = predicted outputs ({DATASET_TYPE}: instrument, visit, detector; {STORAGE_CLASS})")
    print(
        f"write s      = jobs writing {1 - FAILED_FRACTION:.0%} of the N files via datastore.put (informational,"
    )
    print("               separate process; the rest are failed quanta); files/s = files written per second")
    print("merge s      = merge_outputs of the N predicted refs (the headline figure); refs/s = N / merge s")
    print("re-merge s   = merge_outputs of the same refs again (idempotent: re-reg must be 0)")
    print("(cpu)        = CPU seconds of the merge process in the phase to its left (excludes the")
    print("               PostgreSQL server's own work)")
    print("registered / missing = the first merge's report (missing = the failed quanta)")
    print("RSS open / RSS refs / peak RSS MB = peak resident memory (MiB) of the merge process with the")
    print("               repository open (imports: the baseline), once the N predicted refs are built, and")
    print("               after both merges (the jobs ran in another process)")
    print("load         = 1-minute load average when the merge process started")
    print()
    print(_format_row([name for name, _, _ in COLUMNS]))
    print("  ".join("-" * width for _, width, _ in COLUMNS), flush=True)


def _space_note(n: int, workdir: Path | None) -> str | None:
    """Why the files of a case would not fit in ``workdir``, or None."""
    target = workdir or Path(tempfile.gettempdir())
    stats = os.statvfs(target)
    free_bytes, free_inodes = stats.f_bavail * stats.f_frsize, stats.f_favail
    need_bytes, need_inodes = n * BYTES_PER_FILE * 1.1, n * 1.1 + 10_000
    if free_bytes < need_bytes or (stats.f_files and free_inodes < need_inodes):
        return (
            f"skipped: needs ~{need_bytes / 2**30:.1f} GiB and {need_inodes:,.0f} inodes in {target}, "
            f"has {free_bytes / 2**30:.1f} GiB and {free_inodes:,} inodes"
        )
    return None


def _parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=_parse_sizes,
        default=None,
        help="comma-separated predicted output counts N (default 10000,100000,1000000)",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="sizes 10000 and 100000 only")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="directory for the case repositories (default: system temporary directory)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile each merge into DIR/<backend>-<N>-(re)merge.prof (timings include profiler overhead)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each phase's progress on stderr")
    parser.add_argument("--phase", choices=("jobs", "merge"), help=argparse.SUPPRESS)  # internal
    parser.add_argument("--case", help=argparse.SUPPRESS)  # backend:N (internal)
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--namespace", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    global _VERBOSE
    _VERBOSE = args.verbose or args.profile is not None

    if args.phase:
        backend, _, size = args.case.partition(":")
        if args.phase == "jobs":
            result = run_jobs(backend, int(size), args.case_dir, args.namespace)
        else:
            result = run_merge(backend, int(size), args.case_dir, args.profile)
        for error in result.errors:
            print(f"ERROR: {error}", file=sys.stderr, flush=True)
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
        return 0

    extra: list[str] = ["--verbose"] if _VERBOSE else []
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        extra += ["--profile", str(args.profile.resolve())]
    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    if "postgresql" in backends and not os.environ.get(POSTGRES_ENV):
        backends.remove("postgresql")
        print(f"NOTE: PostgreSQL skipped: set {POSTGRES_ENV} to a server URL to include it.")

    _print_header()
    results: list[CaseResult] = []
    for backend in backends:
        for n in sizes:
            outcome = _space_note(n, args.workdir) or run_case(backend, n, args.workdir, extra)
            if isinstance(outcome, str):
                cells = [backend, f"{n:,}", *["-"] * (len(COLUMNS) - 2)]
                print(f"{_format_row(cells)}  {outcome}", flush=True)
                continue
            results.append(outcome)
            print(_format_row(_result_cells(outcome)), flush=True)
            for error in outcome.errors:
                print(f"ERROR: {backend} N={n:,}: {error}", flush=True)
    if results:
        print("\nOther phases (s): setup = create repository + dimension records (jobs process);")
        print("refs = rebuild the predicted refs from the saved UUIDs (merge process, before the merge)")
        for r in results:
            print(
                f"  {r.backend:<10} N={r.n:>11,}  setup {r.setup_s:.1f}  refs {r.refs_s:.1f}  "
                f"jobs peak RSS {r.rss_jobs_mb:.0f} MB"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
