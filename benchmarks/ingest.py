#!/usr/bin/env python
"""Raw ingest scale benchmark: `graph.raw_ingest.ingest_raws` and `graph.visits.define_visits` for N DemoCam raws.

The driver first writes the largest N raws once (see "The raws" below), then runs each
(backend, N) case in a fresh subprocess (the script re-invoked with ``--case``), which times, on
the first N files (4 detectors per exposure, so N/4 exposures):

1. ``first``: `ingest_raws(files, transfer="direct")` into a new repository: every header is
   read and translated, the exposure and day_obs records synced, the files registered in place;
   the ``_index.json`` sidecars are written (the case deletes old ones before this phase).
2. ``again``: the same call into the same repository: the headers come from the sidecars and
   every file is skipped as already ingested.
3. ``indexed``: `ingest_raws(files, transfer="direct")` into a second new repository: headers
   from the sidecars, everything registered.
4. ``copy``: `ingest_raws(files, transfer="copy")` into a third new repository: headers from the
   sidecars, every file copied into the datastore (N x 0.8 MB).
5. ``visits``: `define_visits(butler, "DemoCam")` on the first repository: one visit per exposure,
   with its region and the 4 per-detector regions.
6. ``visits-again``: the same call again (defines nothing).

It checks the reports (counts ingested, skipped, headers read and taken from the sidecars; visits
defined) and reads one copied raw back through the butler. Repositories (and PostgreSQL schemas)
are removed after each case; the generated raws at the end. Benchmarks report figures; they never
pass or fail.

The raws: `graph.demo.simulate.simulate` writes one exposure of the 4 DemoCam detectors (pixels
with stars, noise, bias and flat; 14 ms a file). Every other raw is a clone: the template's bytes
with a new primary header built from ``simulate.raw_metadata`` for a pointing of
``simulate.plan_survey`` (exposure id, observation id, day_obs, times, pointing and WCS cards), so
each is a valid DemoCam raw with its own data ID and sky position, holding the template's pixels
(2 to 3 ms a file). Exposures are spread over nights of at most 300.

Usage::

    python benchmarks/ingest.py [--sizes 100,1000,5000] [--backends sqlite,postgresql] [--quick]

PostgreSQL uses the server named by ``$QUANTA_TEST_POSTGRES`` (skipped with a note when unset),
one schema per repository, dropped after the case.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import platform
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TypeVar

import sqlalchemy as sa
from astropy.io import fits

from butler.butler import Butler
from butler.repository import create_repository
from butler.timing import peak_rss_mb
from graph.demo import camera, simulate
from graph.demo.instrument import DemoCam
from graph.raw_ingest import INDEX_NAME, IngestReport, ingest_raws
from graph.visits import define_visits

DEFAULT_SIZES = (100, 1_000, 5_000)
QUICK_SIZES = (100, 1_000)
BACKENDS = ("sqlite", "postgresql")
POSTGRES_ENV = "QUANTA_TEST_POSTGRES"
RESULT_PREFIX = "BENCH-RESULT "

SEED = 7
DETECTORS = len(camera.DETECTORS)
EXPOSURES_PER_NIGHT = 300
BYTES_PER_FILE = 806_400
"""Size of one DemoCam raw (256 x 256 image, mask and variance planes)."""
PHASES = ("first", "again", "indexed", "copy", "visits", "visits-again")

T = TypeVar("T")


@dataclass
class PhaseResult:
    """Figures of one phase of a case."""

    phase: str
    seconds: float
    cpu_s: float
    items: int
    """Files given (ingest phases) or science exposures (visit phases)."""
    ingested: int = 0
    skipped: int = 0
    headers_read: int = 0
    headers_from_index: int = 0
    visits: int = 0
    """Visits defined."""
    rss_mb: float = 0.0
    """Peak RSS of the case process after the phase (MiB); the process's peak so far, not the phase's own."""


@dataclass
class CaseResult:
    """Figures of one (backend, N) case; printed by the subprocess as one JSON line."""

    backend: str
    n: int
    phases: list[PhaseResult] = field(default_factory=list)
    setup_s: float = 0.0
    """Creating the three repositories and registering DemoCam (not in the table)."""
    rss_open_mb: float = 0.0
    """Peak RSS once the modules are imported and the repositories are open (the baseline)."""
    load_average: float = 0.0
    """One-minute load average when the case started."""
    errors: list[str] = field(default_factory=list)


_VERBOSE = False


def _log(message: str) -> None:
    """Progress on stderr (with --verbose)."""
    if _VERBOSE:
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the raws (driver) -------------------------------------------------------------------------------


def generate_raws(out: Path, n: int) -> list[Path]:
    """Write ``n`` DemoCam raws under ``out/raw/<day_obs>/<exposure>/`` (see the module docstring)."""
    exposures = -(-n // DETECTORS)
    template = out / "template"
    simulated = simulate.simulate(template, visits=1, detectors=DETECTORS, seed=SEED, calibrations=False)
    parts: dict[int, tuple[fits.Header, int, bytes]] = {}
    for path in simulated.raws:
        data = path.read_bytes()
        header = fits.getheader(path, 0)
        size = len(header.tostring(padding=True))
        parts[int(header["DETECTOR"])] = (header, size, data[size:])
    shutil.rmtree(template)
    nights = max(1, -(-exposures // EXPOSURES_PER_NIGHT))
    files: list[Path] = []
    for pointing in simulate.plan_survey(exposures, seed=SEED, nights=nights):
        directory = out / "raw" / str(pointing.day_obs) / str(pointing.exposure)
        directory.mkdir(parents=True, exist_ok=True)
        for detector in range(min(DETECTORS, n - len(files))):
            template_header, size, pixels = parts[detector]
            header = template_header.copy()
            for key, value in simulate.raw_metadata(pointing, detector).items():
                header[key] = value
            text = header.tostring(padding=True).encode("ascii")
            if len(text) != size:
                raise RuntimeError(
                    "A cloned raw header changed size; the template's data would not follow it."
                )
            path = directory / f"raw_{pointing.exposure}_{detector}.fits"
            path.write_bytes(text + pixels)
            files.append(path)
    return files


# -- one case (own subprocess) ---------------------------------------------------------------------


def _new_butler(path: Path, backend: str, namespace: str | None) -> Butler:
    if backend == "postgresql":
        create_repository(path, db=os.environ[POSTGRES_ENV], namespace=namespace)
    else:
        create_repository(path)
    butler = Butler(path)
    DemoCam().register(butler.registry)
    return butler


def _timed(label: str, profile_dir: Path | None, function: Callable[[], T]) -> tuple[T, float, float]:
    """Call ``function`` (under cProfile with ``profile_dir``); its result, wall and CPU seconds."""
    profiler = cProfile.Profile() if profile_dir is not None else None
    start, cpu_start = time.perf_counter(), time.process_time()
    result = profiler.runcall(function) if profiler is not None else function()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if profiler is not None and profile_dir is not None:
        path = profile_dir / f"{label}.prof"
        profiler.dump_stats(path)
        _log(f"profile written to {path}; top functions by cumulative time:")
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(30)
    return result, seconds, cpu


def _ingest_phase(
    name: str, butler: Butler, files: Sequence[Path], transfer: str, label: str, profile_dir: Path | None
) -> PhaseResult:
    report: IngestReport
    report, seconds, cpu = _timed(
        f"{label}-{name}", profile_dir, lambda: ingest_raws(butler, files, transfer=transfer)
    )
    result = PhaseResult(
        name,
        seconds,
        cpu,
        len(files),
        ingested=len(report.ingested),
        skipped=len(report.skipped),
        headers_read=report.headers_read,
        headers_from_index=report.headers_from_index,
        rss_mb=peak_rss_mb(),
    )
    _log(f"{name}: {seconds:.2f} s (CPU {cpu:.2f} s), {result.ingested:,} ingested")
    return result


def _visits_phase(
    name: str, butler: Butler, exposures: int, label: str, profile_dir: Path | None
) -> PhaseResult:
    visits, seconds, cpu = _timed(f"{label}-{name}", profile_dir, lambda: define_visits(butler, "DemoCam"))
    _log(f"{name}: {seconds:.2f} s (CPU {cpu:.2f} s), {len(visits):,} visits")
    return PhaseResult(name, seconds, cpu, exposures, visits=len(visits), rss_mb=peak_rss_mb())


def run_case(
    backend: str, n: int, raw_dir: Path, case_dir: Path, namespaces: Sequence[str], profile_dir: Path | None
) -> CaseResult:
    """All phases of one case on the first ``n`` raws under ``raw_dir``."""
    result = CaseResult(backend, n, load_average=os.getloadavg()[0])
    label = f"{backend}-{n}"
    files = sorted(raw_dir.rglob("*.fits"))[:n]
    for index in raw_dir.rglob(INDEX_NAME):
        index.unlink()
    start = time.perf_counter()
    first, second, third = (
        _new_butler(case_dir / name, backend, namespace)
        for name, namespace in zip(("direct", "indexed", "copy"), namespaces, strict=True)
    )
    result.setup_s = time.perf_counter() - start
    result.rss_open_mb = peak_rss_mb()
    exposures = len({path.parent for path in files})
    try:
        result.phases.append(_ingest_phase("first", first, files, "direct", label, profile_dir))
        result.phases.append(_ingest_phase("again", first, files, "direct", label, profile_dir))
        result.phases.append(_ingest_phase("indexed", second, files, "direct", label, profile_dir))
        result.phases.append(_ingest_phase("copy", third, files, "copy", label, profile_dir))
        result.phases.append(_visits_phase("visits", first, exposures, label, profile_dir))
        result.phases.append(_visits_phase("visits-again", first, exposures, label, profile_dir))
        result.errors = _check(result, n, exposures, third, files)
    finally:
        for butler in (first, second, third):
            butler.close()
    return result


def _check(result: CaseResult, n: int, exposures: int, copied: Butler, files: Sequence[Path]) -> list[str]:
    """Problems with the reports, and whether a copied raw reads back as the file it came from."""
    expected = {
        "first": (n, 0, n, 0, 0),
        "again": (0, n, 0, n, 0),
        "indexed": (n, 0, 0, n, 0),
        "copy": (n, 0, 0, n, 0),
        "visits": (0, 0, 0, 0, exposures),
        "visits-again": (0, 0, 0, 0, 0),
    }
    errors = []
    for phase in result.phases:
        got = (phase.ingested, phase.skipped, phase.headers_read, phase.headers_from_index, phase.visits)
        if got != expected[phase.phase]:
            errors.append(
                f"{phase.phase}: (ingested, skipped, headers read, from index, visits) = {got}, "
                f"expected {expected[phase.phase]}"
            )
    sample = files[len(files) // 2]
    header = fits.getheader(sample, 0)
    data_id = {"instrument": "DemoCam", "exposure": header["EXPID"], "detector": header["DETECTOR"]}
    raw = copied.get("raw", data_id, collections="DemoCam/raw/all")
    uri = copied.get_uri("raw", data_id, collections="DemoCam/raw/all")
    if raw.metadata["OBSID"] != header["OBSID"] or not uri.ospath.startswith(
        str(copied.file_datastore.root.ospath)
    ):
        errors.append(f"copied raw {data_id} reads back as {raw.metadata['OBSID']} from {uri}")
    return errors


# -- driver ------------------------------------------------------------------------------------------


def _drop_schemas(namespaces: Sequence[str]) -> None:
    url = os.environ[POSTGRES_ENV]
    engine = sa.create_engine("postgresql+psycopg://" + url.removeprefix("postgresql://"))
    try:
        with engine.begin() as conn:
            for namespace in namespaces:
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{namespace}" CASCADE'))
    finally:
        engine.dispose()


def _run_subprocess(
    backend: str, n: int, raw_dir: Path, workdir: Path | None, extra: Sequence[str]
) -> CaseResult | str:
    """One case in a fresh interpreter; removes its repositories (and schemas) afterwards."""
    case_dir = Path(tempfile.mkdtemp(prefix=f"quanta-ingest-{backend}-{n}-", dir=workdir))
    namespaces = [f"bench_ingest_{n}_{os.getpid()}_{uuid.uuid4().hex[:6]}_{i}" for i in range(3)]
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--case",
        f"{backend}:{n}",
        "--raw-dir",
        str(raw_dir),
        "--case-dir",
        str(case_dir),
        "--namespaces",
        ",".join(namespaces),
        *extra,
    ]
    try:
        completed = subprocess.run(command, stdout=subprocess.PIPE, text=True, check=False)
    finally:
        shutil.rmtree(case_dir, ignore_errors=True)
        if backend == "postgresql":
            _drop_schemas(namespaces)
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            data = json.loads(line.removeprefix(RESULT_PREFIX))
            data["phases"] = [PhaseResult(**phase) for phase in data["phases"]]
            return CaseResult(**data)
    return f"case failed (exit code {completed.returncode}); see the messages above"


COLUMNS = (
    ("backend", 10, "<"),
    ("N files", 7, ">"),
    ("phase", 12, "<"),
    ("seconds", 7, ">"),
    ("(cpu)", 6, ">"),
    ("per s", 7, ">"),
    ("ingested", 8, ">"),
    ("skipped", 7, ">"),
    ("read", 5, ">"),
    ("indexed", 7, ">"),
    ("visits", 6, ">"),
    ("peak RSS MB", 11, ">"),
)


def _format_row(cells: Sequence[str]) -> str:
    return "  ".join(f"{cell:{align}{width}}" for cell, (_, width, align) in zip(cells, COLUMNS, strict=True))


def _phase_cells(r: CaseResult, p: PhaseResult) -> list[str]:
    return [
        r.backend,
        f"{r.n:,}",
        p.phase,
        f"{p.seconds:.2f}",
        f"{p.cpu_s:.1f}",
        f"{p.items / p.seconds:,.0f}" if p.seconds else "-",
        f"{p.ingested:,}",
        f"{p.skipped:,}",
        f"{p.headers_read:,}",
        f"{p.headers_from_index:,}",
        f"{p.visits:,}",
        f"{p.rss_mb:.0f}",
    ]


def _print_header() -> None:
    print(
        f"quanta raw ingest benchmark  {time.strftime('%Y-%m-%d %H:%M')}  python {platform.python_version()}  "
        f"sqlalchemy {sa.__version__}  {os.cpu_count()} CPUs  {platform.machine()}"
    )
    print(f"N files      = DemoCam raws ({DETECTORS} detectors per exposure: N/{DETECTORS} exposures)")
    print("phase        = first: ingest_raws(transfer='direct') into a new repository, reading every header;")
    print("               again: the same into the same repository (all skipped, headers from _index.json);")
    print("               indexed: 'direct' into a new repository, headers from _index.json;")
    print("               copy: transfer='copy' into a new repository, headers from _index.json;")
    print("               visits: define_visits (one visit per exposure); visits-again: nothing new")
    print("(cpu)        = CPU seconds of the case process (excludes the PostgreSQL server's work)")
    print("per s        = files per second (ingest phases) or exposures per second (visit phases)")
    print("ingested / skipped / read / indexed = the ingest report: files ingested, skipped, headers read")
    print("               from files, headers taken from _index.json; visits = visits defined")
    print("peak RSS MB  = peak resident memory (MiB) of the case process so far (one process per backend")
    print("               and N, phases in order; 'RSS open' below is its baseline)")
    print()
    print(_format_row([name for name, _, _ in COLUMNS]))
    print("  ".join("-" * width for _, width, _ in COLUMNS), flush=True)


def _space_note(n: int, workdir: Path | None) -> str | None:
    """Why the raws and one copy of them would not fit in ``workdir``, or None."""
    target = workdir or Path(tempfile.gettempdir())
    stats = os.statvfs(target)
    free = stats.f_bavail * stats.f_frsize
    need = 2.2 * n * BYTES_PER_FILE
    if free < need:
        return (
            f"needs ~{need / 2**30:.1f} GiB in {target} (raws and their copies), has {free / 2**30:.1f} GiB"
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
        help="comma-separated raw counts N (default 100,1000,5000)",
    )
    parser.add_argument("--backends", default=",".join(BACKENDS), help="comma-separated: sqlite,postgresql")
    parser.add_argument("--quick", action="store_true", help="sizes 100 and 1000 only")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="directory for the raws and repositories (default: system temporary directory)",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="cProfile each phase into DIR/<backend>-<N>-<phase>.prof (timings include profiler overhead)",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each phase's progress on stderr")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # backend:N (internal)
    parser.add_argument("--raw-dir", type=Path, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--case-dir", type=Path, help=argparse.SUPPRESS)  # internal
    parser.add_argument("--namespaces", default="", help=argparse.SUPPRESS)  # internal
    args = parser.parse_args(argv)
    global _VERBOSE
    _VERBOSE = args.verbose or args.profile is not None

    if args.case:
        backend, _, size = args.case.partition(":")
        namespaces = args.namespaces.split(",")
        result = run_case(backend, int(size), args.raw_dir, args.case_dir, namespaces, args.profile)
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
    space = _space_note(max(sizes), args.workdir)
    if space:
        print(f"NOTE: not run: {space}.")
        return 0

    load = os.getloadavg()
    raw_root = Path(tempfile.mkdtemp(prefix="quanta-ingest-raws-", dir=args.workdir))
    try:
        start = time.perf_counter()
        generate_raws(raw_root, max(sizes))
        generate_s = time.perf_counter() - start
        _print_header()
        results: list[CaseResult] = []
        for backend in backends:
            for n in sizes:
                outcome = _run_subprocess(backend, n, raw_root / "raw", args.workdir, extra)
                if isinstance(outcome, str):
                    cells = [backend, f"{n:,}", *["-"] * (len(COLUMNS) - 2)]
                    print(f"{_format_row(cells)}  {outcome}", flush=True)
                    continue
                results.append(outcome)
                for phase in outcome.phases:
                    print(_format_row(_phase_cells(outcome, phase)), flush=True)
                for error in outcome.errors:
                    print(f"ERROR: {backend} N={n:,}: {error}", flush=True)
    finally:
        shutil.rmtree(raw_root, ignore_errors=True)
    print(
        f"\nRaws: {max(sizes):,} written in {generate_s:.1f} s ({max(sizes) / generate_s:,.0f} files/s; "
        f"{DETECTORS} simulated, the rest cloned). Load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}."
    )
    for r in results:
        print(
            f"  {r.backend:<10} N={r.n:>6,}  setup (3 repositories) {r.setup_s:.1f} s  RSS open {r.rss_open_mb:.0f} MB  "
            f"load {r.load_average:.2f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
