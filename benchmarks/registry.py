#!/usr/bin/env python
"""Registry scale benchmark: bulk dataset insertion and a find-first query through a collection chain.

For each backend (SQLite, PostgreSQL) and each size N the script builds a fresh registry holding
one dataset type with dimensions (instrument, exposure, detector) and three RUN collections:

* ``bench/A`` holds all N data IDs,
* ``bench/B`` every third of them (same data IDs, different datasets),
* ``bench/C`` every tenth of them,

chained as ``bench/chain = [C, B, A]``. It times `Registry.insert_datasets` for each run (the N-row
insert into A is the headline figure) and ``query_datasets(type, "bench/chain", find_first=True)``,
checks that the query returns N refs, each from the first run of the chain holding its data ID, and
records the process's peak resident memory.

Each (backend, N) case runs in a fresh subprocess (the script re-invokes itself with ``--case``)
so that peak memory is per case. Benchmarks report figures; they never pass or fail.

Usage::

    python benchmarks/registry.py [--sizes 10000,100000,1000000] [--backends sqlite,postgresql] [--quick]

PostgreSQL uses the server named by ``$QUANTA_TEST_POSTGRES`` (skipped with a note when unset), in a
schema created for the case and dropped afterwards.
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
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

from butler.collections import CollectionType
from butler.data_coordinate import DataCoordinate, DataIdValue
from butler.datasets import DatasetType
from butler.registry import Registry
from butler.timespan import Timespan

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (10_000, 100_000)
BACKENDS = ("sqlite", "postgresql")
POSTGRES_ENV = "QUANTA_TEST_POSTGRES"
RESULT_PREFIX = "BENCH-RESULT "

INSTRUMENT = "BenchCam"
BAND = "r"
PHYSICAL_FILTER = "BenchCam-r"
N_DETECTORS = 100
EXPOSURES_PER_NIGHT = 500
FIRST_EXPOSURE = 2025_0101_00000
DATASET_TYPE = "bench_calexp"
RUN_A, RUN_B, RUN_C, CHAIN = "bench/A", "bench/B", "bench/C", "bench/chain"
B_STRIDE, C_STRIDE = 3, 10
"""Run B holds every third data ID of run A, run C every tenth (so N/3 and N/10 rows)."""
SAMPLE_STRIDE = 97
"""Every this-many-th dataset of run C has its UUID remembered to check the query's answers."""

T = TypeVar("T")


@dataclass
class CaseResult:
    """Figures of one (backend, N) case; printed by the subprocess as one JSON line."""

    backend: str
    n: int
    rows_b: int = 0
    rows_c: int = 0
    dimensions_s: float = 0.0
    """Inserting instrument, band, physical_filter, day_obs, detector and exposure records."""
    insert_a_s: float = 0.0
    """`Registry.insert_datasets` of N data IDs into run A (the headline insert figure)."""
    insert_b_s: float = 0.0
    insert_c_s: float = 0.0
    query_s: float = 0.0
    """``query_datasets(type, chain, find_first=True)``."""
    refs: int = 0
    errors: list[str] = field(default_factory=list)
    rss_setup_mb: float = 0.0
    """Peak RSS when the data IDs are built, before any dataset insert."""
    rss_insert_mb: float = 0.0
    """Peak RSS after the inserts."""
    rss_peak_mb: float = 0.0
    """Peak RSS of the whole case (after the query)."""
    cpu_s: dict[str, float] = field(default_factory=dict)
    """CPU seconds (user + system) of this process per phase; PostgreSQL's server time is not included."""
    heap_peak_mb: dict[str, float] = field(default_factory=dict)
    """Python-heap peak per phase (only with --tracemalloc)."""

    @property
    def insert_total_s(self) -> float:
        return self.insert_a_s + self.insert_b_s + self.insert_c_s

    @property
    def rows_total(self) -> int:
        return self.n + self.rows_b + self.rows_c


# -- one case (runs in its own subprocess) ------------------------------------------------------------


def _peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (ru_maxrss is KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


_VERBOSE = False


def _log(message: str) -> None:
    """Progress of a case on stderr (with --verbose)."""
    if not _VERBOSE:
        return
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class Phases:
    """Times phases, optionally under cProfile (one .prof file each) and tracemalloc (heap peak each)."""

    def __init__(self, label: str, profile_dir: Path | None, trace_heap: bool) -> None:
        self._label = label
        self._profile_dir = profile_dir
        self._trace_heap = trace_heap
        self.heap_peak_mb: dict[str, float] = {}
        self.cpu_s: dict[str, float] = {}

    def run(self, phase: str, function: Callable[[], T]) -> tuple[T, float]:
        """Call ``function``; return its result and wall-clock seconds."""
        profiler = cProfile.Profile() if self._profile_dir is not None else None
        if self._trace_heap:
            tracemalloc.start()
        start = time.perf_counter()
        cpu_start = time.process_time()
        if profiler is not None:
            profiler.enable()
        try:
            result = function()
        finally:
            if profiler is not None:
                profiler.disable()
            seconds = time.perf_counter() - start
            self.cpu_s[phase] = time.process_time() - cpu_start
            if self._trace_heap:
                self.heap_peak_mb[phase] = tracemalloc.get_traced_memory()[1] / 2**20
                tracemalloc.stop()
        if profiler is not None and self._profile_dir is not None:
            path = self._profile_dir / f"{self._label}-{phase}.prof"
            profiler.dump_stats(path)
            _log(f"{phase}: profile written to {path}; top functions by cumulative time:")
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(25)
        _log(f"{phase}: {seconds:.2f} s (CPU {self.cpu_s[phase]:.2f} s)")
        return result, seconds


@contextmanager
def _registry(backend: str, n: int) -> Iterator[Registry]:
    """A new, empty registry for one case; its database (file or schema) is removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="quanta-bench-") as tmp:
            registry = Registry.create(f"sqlite:///{tmp}/registry.sqlite3")
            try:
                yield registry
            finally:
                registry.close()
        return
    url = os.environ[POSTGRES_ENV]
    namespace = f"bench_{n}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    try:
        registry = Registry.create(url, namespace=namespace)
        try:
            yield registry
        finally:
            registry.close()
    finally:
        driver_url = (
            "postgresql+psycopg://" + url.removeprefix("postgresql://")
            if url.startswith("postgresql://")
            else url
        )
        engine = sa.create_engine(driver_url)
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
        except sa.exc.SQLAlchemyError as err:  # do not hide the error that ended the case, if any
            print(f"WARNING: could not drop schema {namespace}: {err}", file=sys.stderr)
        finally:
            engine.dispose()


def _night(exposure_index: int) -> int:
    """The day_obs (YYYYMMDD) of an exposure: EXPOSURES_PER_NIGHT exposures a night from 2025-01-01."""
    day = datetime.date(2025, 1, 1) + datetime.timedelta(days=exposure_index // EXPOSURES_PER_NIGHT)
    return int(day.strftime("%Y%m%d"))


def _insert_dimension_records(registry: Registry, n_exposures: int) -> None:
    """One instrument, band and physical filter; N_DETECTORS detectors; the nights and exposures."""
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
    nights = sorted({_night(i) for i in range(n_exposures)})
    night_records = []
    for night in nights:
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
    exposures = []
    for i in range(n_exposures):
        begin_ns = (
            start_ns + (i // EXPOSURES_PER_NIGHT) * 86_400 * 10**9 + (i % EXPOSURES_PER_NIGHT) * 60 * 10**9
        )
        exposures.append(
            {
                "instrument": INSTRUMENT,
                "id": FIRST_EXPOSURE + i,
                "physical_filter": PHYSICAL_FILTER,
                "day_obs": _night(i),
                "timespan": Timespan(begin_ns, begin_ns + 30 * 10**9),
                "obs_id": f"BC_{FIRST_EXPOSURE + i}",
                "exposure_time": 30.0,
                "observation_type": "science",
                "science_program": "bench",
                "zenith_angle": 30.0,
            }
        )
    registry.insert_dimension_records("exposure", exposures)


def _make_data_ids(dataset_type: DatasetType, n: int) -> list[DataCoordinate]:
    """N data IDs, exposure-major: index i is exposure i // N_DETECTORS, detector i % N_DETECTORS."""
    group = dataset_type.dimensions
    required = group.required
    assert set(required) == {"instrument", "exposure", "detector"}, required
    data_ids = []
    for i in range(n):
        by_name: dict[str, DataIdValue] = {
            "instrument": INSTRUMENT,
            "exposure": FIRST_EXPOSURE + i // N_DETECTORS,
            "detector": i % N_DETECTORS,
        }
        data_ids.append(DataCoordinate.from_required_values(group, tuple(by_name[k] for k in required)))
    return data_ids


def _expected_run(data_id: DataCoordinate) -> str:
    """The run a find-first search of [C, B, A] must take this data ID's dataset from."""
    return _run_of_index((int(data_id["exposure"]) - FIRST_EXPOSURE) * N_DETECTORS + int(data_id["detector"]))


def _run_of_index(index: int) -> str:
    if index % C_STRIDE == 0:
        return RUN_C
    if index % B_STRIDE == 0:
        return RUN_B
    return RUN_A


def run_case(backend: str, n: int, profile_dir: Path | None, trace_heap: bool) -> CaseResult:
    """Build, fill and query one registry; return its figures."""
    result = CaseResult(backend, n)
    phases = Phases(f"{backend}-{n}", profile_dir, trace_heap)
    with _registry(backend, n) as registry:
        _log(f"{backend} N={n}: registry at {registry.db_url}")
        dataset_type = DatasetType(
            DATASET_TYPE, ["instrument", "exposure", "detector"], "ExposureF", universe=registry.universe
        )
        registry.register_dataset_type(dataset_type)
        for run in (RUN_A, RUN_B, RUN_C):
            registry.register_run(run)
        registry.register_collection(CHAIN, CollectionType.CHAINED)
        registry.set_collection_chain(CHAIN, [RUN_C, RUN_B, RUN_A])
        n_exposures = -(-n // N_DETECTORS)
        result.dimensions_s = phases.run(
            "dimensions", partial(_insert_dimension_records, registry, n_exposures)
        )[1]

        sample_c = _insert_runs(registry, dataset_type, result, phases)
        gc.collect()
        result.rss_insert_mb = _peak_rss_mb()

        found, result.query_s = phases.run(
            "query", partial(registry.query_datasets, dataset_type, CHAIN, find_first=True)
        )
        result.rss_peak_mb = _peak_rss_mb()
        result.refs = len(found)
        result.errors = _check_found(found, n, sample_c)
    result.heap_peak_mb = phases.heap_peak_mb
    result.cpu_s = phases.cpu_s
    return result


def _insert_runs(
    registry: Registry, dataset_type: DatasetType, result: CaseResult, phases: Phases
) -> dict[DataCoordinate, uuid.UUID]:
    """Insert N datasets into run A, N/3 into B, N/10 into C; return the UUIDs of a sample of C's datasets."""
    data_ids = _make_data_ids(dataset_type, result.n)
    subset_b, subset_c = data_ids[::B_STRIDE], data_ids[::C_STRIDE]
    result.rows_b, result.rows_c = len(subset_b), len(subset_c)
    gc.collect()
    result.rss_setup_mb = _peak_rss_mb()
    # [1]: the returned refs of A and B are dropped at once, so they do not add to later phases' memory.
    result.insert_a_s = phases.run(
        "insert_A", partial(registry.insert_datasets, dataset_type, data_ids, RUN_A)
    )[1]
    result.insert_b_s = phases.run(
        "insert_B", partial(registry.insert_datasets, dataset_type, subset_b, RUN_B)
    )[1]
    refs_c, result.insert_c_s = phases.run(
        "insert_C", partial(registry.insert_datasets, dataset_type, subset_c, RUN_C)
    )
    return {ref.data_id: ref.id for ref in refs_c[::SAMPLE_STRIDE]}


def _check_found(found: Sequence[Any], n: int, sample_c: dict[DataCoordinate, uuid.UUID]) -> list[str]:
    """Problems with the find-first answer: wrong count, wrong run for a data ID, wrong dataset from C."""
    errors = []
    if len(found) != n:
        errors.append(f"find-first query returned {len(found)} refs, expected {n}")
    wrong_run = [ref for ref in found if ref.run != _expected_run(ref.data_id)]
    if wrong_run:
        ref = wrong_run[0]
        expected_run = _expected_run(ref.data_id)
        errors.append(f"{len(wrong_run)} refs from the wrong run, e.g. {ref} (expected {expected_run})")
    distinct = len({ref.data_id for ref in found})
    if distinct != len(found):
        errors.append(f"{len(found) - distinct} data IDs returned more than once")
    by_data_id = {ref.data_id: ref.id for ref in found if ref.data_id in sample_c}
    wrong_id = [d for d, dataset_id in sample_c.items() if by_data_id.get(d) != dataset_id]
    if wrong_id:
        errors.append(
            f"{len(wrong_id)} of {len(sample_c)} sampled run-C data IDs did not give their run-C dataset, "
            f"e.g. {wrong_id[0]}"
        )
    runs = Counter(ref.run for ref in found)
    expected = Counter(_run_of_index(i) for i in range(n))
    if runs != expected:
        errors.append(f"refs per run {dict(sorted(runs.items()))}, expected {dict(sorted(expected.items()))}")
    _log(f"refs per run: {dict(sorted(runs.items()))}")
    return errors


# -- driver: one subprocess per case, then the table --------------------------------------------------------


def _run_subprocess(backend: str, n: int, extra: Sequence[str]) -> CaseResult | str:
    """Run one case in a fresh interpreter; its result, or a failure message."""
    command = [sys.executable, str(Path(__file__).resolve()), "--case", f"{backend}:{n}", *extra]
    completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line.removeprefix(RESULT_PREFIX))
            return CaseResult(**data)
    return f"case failed (exit code {completed.returncode}); see the messages above"


COLUMNS = (
    ("backend", 10, "<"),
    ("N datasets", 10, ">"),
    ("insert s", 8, ">"),
    ("(cpu)", 6, ">"),
    ("rows/s", 7, ">"),
    ("all runs s", 10, ">"),
    ("find-first s", 12, ">"),
    ("(cpu)", 6, ">"),
    ("refs returned", 13, ">"),
    ("RSS setup", 9, ">"),
    ("RSS insert", 10, ">"),
    ("peak RSS MB", 11, ">"),
)


def _format_row(cells: Sequence[str]) -> str:
    return "  ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True))


def _result_cells(r: CaseResult) -> list[str]:
    return [
        r.backend,
        f"{r.n:,}",
        f"{r.insert_a_s:.2f}",
        f"{r.cpu_s.get('insert_A', 0.0):.1f}",
        f"{r.n / r.insert_a_s:,.0f}" if r.insert_a_s else "-",
        f"{r.insert_total_s:.2f}",
        f"{r.query_s:.2f}",
        f"{r.cpu_s.get('query', 0.0):.1f}",
        f"{r.refs:,}",
        f"{r.rss_setup_mb:.0f}",
        f"{r.rss_insert_mb:.0f}",
        f"{r.rss_peak_mb:.0f}",
    ]


def _print_header(sizes: Sequence[int]) -> None:
    print(
        f"quanta registry benchmark  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
        f"sqlalchemy {sa.__version__}  {os.cpu_count()} CPUs  {platform.machine()}"
    )
    print("insert s     = Registry.insert_datasets of N data IDs into run A (N rows; the headline figure)")
    print(
        f"all runs s   = the inserts into A, B and C together: N + N/{B_STRIDE} + N/{C_STRIDE} rows "
        f"(e.g. {sizes[0] + -(-sizes[0] // B_STRIDE) + -(-sizes[0] // C_STRIDE):,} for N={sizes[0]:,})"
    )
    print(f"find-first s = query_datasets(type, {CHAIN!r} = [C, B, A], find_first=True); must return N refs")
    print("(cpu)        = CPU seconds of the benchmark process in the phase to its left (excludes the")
    print("               PostgreSQL server's own work)")
    print("RSS setup / RSS insert / peak RSS MB = process peak resident memory (MiB) after building the")
    print(
        "               data IDs, after the inserts, and after the query; each case runs in a fresh process"
    )
    load = os.getloadavg()
    print(
        f"load average before the first case: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
        "(other work on the machine inflates the wall-clock figures; CPU figures are steadier)"
    )
    print()
    print(_format_row([name for name, _, _ in COLUMNS]))
    print("  ".join("-" * width for _, width, _ in COLUMNS), flush=True)


def _parse_sizes(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--sizes",
        type=_parse_sizes,
        default=None,
        help="comma-separated dataset counts N (default 10000,100000,1000000)",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="sizes 10000 and 100000 only")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write a cProfile .prof per phase into DIR (timings include profiler overhead)",
    )
    parser.add_argument(
        "--tracemalloc",
        action="store_true",
        help="record the Python-heap peak of each phase (slows everything down)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each phase's progress on stderr")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # backend:N, run in this process (internal)
    args = parser.parse_args(argv)
    global _VERBOSE
    _VERBOSE = args.verbose or args.profile is not None

    extra: list[str] = ["--verbose"] if _VERBOSE else []
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
        extra += ["--profile", str(args.profile)]
    if args.tracemalloc:
        extra.append("--tracemalloc")

    if args.case:
        backend, _, size = args.case.partition(":")
        result = run_case(backend, int(size), args.profile, args.tracemalloc)
        for error in result.errors:
            print(f"ERROR: {error}", file=sys.stderr, flush=True)
        print(RESULT_PREFIX + json.dumps(asdict(result)), flush=True)
        return 0

    sizes = args.sizes or list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        parser.error(f"unknown backend(s) {unknown}; choose from {', '.join(BACKENDS)}")
    notes: list[str] = []
    if "postgresql" in backends and not os.environ.get(POSTGRES_ENV):
        backends.remove("postgresql")
        notes.append(f"NOTE: PostgreSQL skipped: set {POSTGRES_ENV} to a server URL to include it.")
    for note in notes:
        print(note)

    _print_header(sizes)
    results: list[CaseResult] = []
    for backend in backends:
        for n in sizes:
            outcome = _run_subprocess(backend, n, extra)
            if isinstance(outcome, str):
                cells = [backend, f"{n:,}", *["-"] * (len(COLUMNS) - 2)]
                print(f"{_format_row(cells)}  {outcome}", flush=True)
                continue
            results.append(outcome)
            print(_format_row(_result_cells(outcome)), flush=True)
            for error in outcome.errors:
                print(f"ERROR: {backend} N={n:,}: {error}", flush=True)
    if any(r.heap_peak_mb for r in results):
        print("\nPython-heap peak per phase (tracemalloc, MiB):")
        for r in results:
            phases = "  ".join(f"{phase} {mb:.0f}" for phase, mb in r.heap_peak_mb.items())
            print(f"  {r.backend:<10} N={r.n:>11,}  {phases}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
