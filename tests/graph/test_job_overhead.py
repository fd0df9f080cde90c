"""What a batch job (``pipetask run-qbb``) imports and how it exits, and the pandas-free Arrow helpers.

A campaign runs millions of jobs, so each module a job imports costs millions of times over. The
subprocess tests run the job as the ``pipetask`` console script does (`graph.cli.entry.main` with
no arguments, which then also skips the interpreter's teardown) on a small repository. They check
that the job never imports pandas (pyarrow loads it lazily from ``pa.array``, ``to_numpy`` and the
like), SQLAlchemy, click, networkx, ``pyarrow.compute`` or, for a local datastore, ``lsst.resources``,
and that exit codes, output and exit handlers survive the quick exit. They print the job's wall
time (``pytest -s``) without asserting on it: figures for a million-quanta graph come from
benchmarks/quantum_graph.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from test_execute import RUN, make_graph, make_repository

from butler.butler import Butler
from butler.datastore import DatastoreRecord
from butler.datastore_config import FileDatastoreConfig, default_datastore_mapping
from butler.dimensions import DimensionUniverse
from butler.file_datastore import FileDatastore
from butler.storage_classes import StorageClassRegistry
from graph.arrow_arrays import (
    _numpy_take,
    bool_array,
    contiguous,
    empty_table,
    fixed_binary_array,
    int_array,
    string_array,
    take,
    to_numpy,
    unique,
    uuid_array,
)
from graph.pipeline import Pipeline
from graph.pre_exec_init import pre_exec_init
from graph.qgraph_io import write_quantum_graph
from graph.quantum_graph import QuantumGraph

REPO_ROOT = Path(__file__).parents[2]
TESTS = Path(__file__).parent

FORBIDDEN = ("pandas", "sqlalchemy", "click", "networkx", "pyarrow.compute", "lsst.resources")
"""Modules a job on a local repository must not import."""

# The console script's way in (``main()`` reads sys.argv); an exit handler reports what was loaded.
_JOB = """
import atexit, gc, json, os, sys, time
start = time.perf_counter()

def report():
    print("JOB " + json.dumps({
        "loaded": sorted(sys.modules),
        "seconds": time.perf_counter() - start,
        "gc": gc.isenabled(),
        "blas": os.environ.get("OPENBLAS_NUM_THREADS"),
    }), flush=True)

atexit.register(report)
sys.argv[0] = "pipetask"
from graph.cli.entry import main
main()
"""


def _pipeline(**add: object) -> Pipeline:
    """framework_tasks only: nothing the test modules import hides what the job imports."""
    pipe = Pipeline.from_tasks({"add": "framework_tasks.AddTask", "gather": "framework_tasks.GatherTask"})
    if add:
        pipe.add_config_overrides("add", add)
    return pipe


@pytest.fixture(scope="module")
def job_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, QuantumGraph]:
    tmp_path = tmp_path_factory.mktemp("job")
    repo = make_repository(tmp_path / "repo")
    graph = make_graph(repo, _pipeline())
    path = tmp_path / "graph.qg"
    write_quantum_graph(graph, path)
    with Butler(repo) as butler:
        pre_exec_init(butler, graph)
    return repo, path, graph


def _run_job(*args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(TESTS)]), **env}
    for name in ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS"):
        if name not in env:
            environment.pop(name, None)
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", _JOB, *args], capture_output=True, text=True, env=environment, timeout=120
    )
    wall = time.perf_counter() - start
    (line,) = [text for text in result.stdout.splitlines() if text.startswith("JOB ")]
    report: dict[str, object] = json.loads(line.removeprefix("JOB "))
    # Only times: a child forked from this (large) process would report this process's pages as its peak.
    print(f"pipetask {' '.join(args[:1])}: {wall:.2f} s wall, {report['seconds']:.2f} s from start to exit")
    return result, report


def _forbidden(report: dict[str, object]) -> list[str]:
    loaded = report["loaded"]
    assert isinstance(loaded, list)
    return [name for name in FORBIDDEN if name in loaded]


def test_a_job_of_one_quantum_imports_only_what_it_needs(job_setup: tuple[Path, Path, QuantumGraph]) -> None:
    repo, path, graph = job_setup
    (first, *_) = graph.node_ids("add")
    result, report = _run_job("run-qbb", str(repo), str(path), "--qgraph-node-id", str(first))
    assert result.returncode == 0, result.stderr
    assert _forbidden(report) == []
    assert "1 quanta in" in result.stdout and "1 succeeded" in result.stdout  # flushed before the exit
    assert "add {instrument: 'Cam', detector: 0} succeeded" in result.stderr  # the log handler's too
    assert report["gc"] is True and report["blas"] == "1"


def test_a_clustered_job_imports_only_what_it_needs(job_setup: tuple[Path, Path, QuantumGraph]) -> None:
    repo, path, graph = job_setup
    ids = [str(n) for n in reversed(graph.topological_order())]
    result, report = _run_job("run-qbb", str(repo), str(path), "--qgraph-node-id", *ids, OMP_NUM_THREADS="2")
    assert result.returncode == 0, result.stderr
    assert _forbidden(report) == []
    assert report["blas"] is None  # the job's environment chose its threads
    assert (repo / RUN / "gather_metadata").exists()


def test_exit_codes_of_the_console_script(job_setup: tuple[Path, Path, QuantumGraph], tmp_path: Path) -> None:
    repo, path, _ = job_setup
    failing = make_graph(repo, _pipeline(fail=True), run="u/test/failing", output=None)
    failing_path = tmp_path / "failing.qg"
    write_quantum_graph(failing, failing_path)
    adds = [str(n) for n in failing.node_ids("add")]
    result, _ = _run_job("run-qbb", str(repo), str(failing_path), "--qgraph-node-id", *adds, "--keep-going")
    assert result.returncode == 1
    assert result.stderr.count("FAILED add") == 4 and "4 failed" in result.stdout
    usage, report = _run_job("run-qbb", str(repo), str(path))
    assert usage.returncode == 2 and "--qgraph-node-id" in usage.stderr
    assert report["gc"] is True
    unreadable, _ = _run_job("run-qbb", str(repo), str(tmp_path / "none.qg"), "--qgraph-node-id", adds[0])
    assert unreadable.returncode == 3 and "none.qg does not exist" in unreadable.stderr


# -- a local file datastore without lsst.resources ------------------------------------------------------


def _file_datastore(root: str) -> FileDatastore:
    mapping = default_datastore_mapping() | {"root": root}
    return FileDatastore(
        FileDatastoreConfig.from_mapping(mapping, "test"),
        StorageClassRegistry.default(),
        DimensionUniverse.default(),
    )


def test_local_paths_are_where_resource_paths_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lsst.resources import ResourcePath

    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path)
    for root in ("repo", "./repo/", str(tmp_path / "repo"), "x/../repo", f"file://{tmp_path}/repo"):
        datastore = _file_datastore(root)
        assert datastore.root.ospath == ResourcePath(root, forceDirectory=True).ospath
        for path in ("a/b.fits", "/elsewhere/c.fits", "../outside.fits", "a//d.fits", "a b.fits"):
            expected = ResourcePath(path, root=datastore.root, forceAbsolute=True).ospath
            record = DatastoreRecord(uuid.uuid4(), "FileDatastore", "", path, "f", "sc")
            location = datastore._location(record)
            assert isinstance(location, Path) and str(location) == expected, (root, path)
            inside = ResourcePath(path, root=datastore.root, forceAbsolute=True).relative_to(datastore.root)
            assert datastore._inside_root(location) is (inside is not None), (root, path)
    special = DatastoreRecord(uuid.uuid4(), "FileDatastore", "", "a%20b.fits", "f", "sc")
    assert not isinstance(_file_datastore("repo")._location(special), Path)  # ResourcePath's own reading


def test_a_local_datastore_works_without_lsst_resources(tmp_path: Path) -> None:
    code = (
        "import sys, uuid\n"
        "from butler import DataCoordinate, DatasetRef, DatasetType\n"
        "from butler.datastore_config import FileDatastoreConfig, default_datastore_mapping\n"
        "from butler.dimensions import DimensionUniverse\n"
        "from butler.file_datastore import FileDatastore\n"
        "from butler.storage_classes import StorageClassRegistry\n"
        f"mapping = default_datastore_mapping() | {{'root': {str(tmp_path)!r}}}\n"
        "config = FileDatastoreConfig.from_mapping(mapping, 'test')\n"
        "store = FileDatastore(config, StorageClassRegistry.default(), DimensionUniverse.default())\n"
        "dataset_type = DatasetType('thing', ['instrument'], 'StructuredDataDict')\n"
        "data_id = DataCoordinate.standardize({'instrument': 'Cam'}, dimensions=dataset_type.dimensions)\n"
        "ref = DatasetRef.new(dataset_type, data_id, 'run')\n"
        "sc = store._storage_classes['StructuredDataDict']\n"
        "records = store.put({'a': 1}, ref, sc)\n"
        "assert store.artifacts_exist(records) and store.get(ref, records, sc) == {'a': 1}\n"
        "store.remove_artifacts(records)\n"
        "assert not store.artifacts_exist(records)\n"
        "print(sorted(m for m in ('lsst.resources', 'pandas') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- the helpers, in this process ----------------------------------------------------------------------


def test_numpy_of_sliced_and_chunked_columns() -> None:
    values = np.arange(10, dtype=np.int64)
    array = int_array(values)
    assert to_numpy(array.slice(3, 4)).tolist() == [3, 4, 5, 6]
    assert to_numpy(pa.chunked_array([array.slice(0, 2), array.slice(8, 2)])).tolist() == [0, 1, 8, 9]
    assert to_numpy(pa.chunked_array([], pa.int64())).dtype == np.int64
    assert to_numpy(int_array([1, -2], pa.int8())).tolist() == [1, -2]
    mask = bool_array([True, False, True, True, False, False, True, False, True])
    assert to_numpy(mask.slice(2, 6)).tolist() == [True, True, False, False, True, False]
    with pytest.raises(ValueError, match="null"):
        to_numpy(pa.nulls(2, pa.int64()))
    with pytest.raises(ValueError, match="string"):
        to_numpy(string_array(["a"]))


def test_ids_strings_tables_and_unique() -> None:
    ids = [uuid.uuid4() for _ in range(3)]
    binary = uuid_array(ids)
    assert [uuid.UUID(bytes=value) for value in binary.to_pylist()] == ids
    as_numpy = np.array([i.bytes for i in ids], dtype="S16")
    assert fixed_binary_array(as_numpy).equals(binary)
    strings = string_array(["", "déjà", "vu"])
    assert strings.to_pylist() == ["", "déjà", "vu"]
    table = pa.Table.from_arrays([binary, strings], names=["id", "name"])
    assert take(table, np.array([2, 0])).column("name").to_pylist() == ["vu", ""]
    assert take(strings, [1]).to_pylist() == ["déjà"]
    empty = empty_table(table.schema)
    assert empty.num_rows == 0 and contiguous(empty.column("name")).type == pa.string()
    assert unique(np.array([3, 1, 3, 2, 1])).tolist() == [1, 2, 3]
    assert unique(np.array([b"b", b"a", b"b"], dtype="S16")).tolist() == [b"a", b"b"]
    assert len(unique(np.empty(0, dtype="S16"))) == 0


def test_take_matches_arrow() -> None:
    import pyarrow.compute as pc

    ids = [uuid.uuid4().bytes for _ in range(6)]
    table = pa.table(
        {
            "id": pa.array(ids, pa.binary(16)),
            "name": pa.array(["a", None, "", "ccc", "dd", None], pa.string()),
            "blob": pa.array([b"x", b"", None, b"yz", b"w", b"v"], pa.binary()),
            "size": pa.array([1, None, 3, 4, None, 6], pa.int64()),
            "kind": pa.array([0, 1, 2, 3, 4, 5], pa.int8()),
            "flag": pa.array([True, False, None, True, True, False], pa.bool_()),
            "when": pa.array([1, 2, 3, 4, 5, 6], pa.timestamp("s")),  # another type: Arrow's kernel
        }
    )
    for source in (table, table.slice(1, 5), pa.concat_tables([table.slice(0, 2), table.slice(2, 4)])):
        for rows in ([4, 0, 0, 2], [], list(range(source.num_rows))[::-1]):
            expected = source.take(pa.array(rows, pa.int64()))
            selected = np.array(rows, dtype=np.int64)
            assert take(source, selected).equals(expected), (source, rows)
            assert _numpy_take(source, selected).equals(expected), (source, rows)  # as in a job
    column = table.column("name")
    assert _numpy_take(column, np.array([5, 0])).to_pylist() == [None, "a"]
    assert _numpy_take(column.chunk(0), np.array([3])).to_pylist() == ["ccc"]
    assert pc.equal(take(table, [1]).column("kind"), 1).to_pylist() == [True]
    with pytest.raises(IndexError):
        take(table, [6])
    with pytest.raises(IndexError):
        take(table, [-1])


def test_the_helpers_do_not_import_pandas() -> None:
    code = (
        "import sys, uuid, numpy as np\n"
        "from graph.arrow_arrays import *\n"
        "t = empty_table(__import__('pyarrow').schema([('a', __import__('pyarrow').int64())]))\n"
        "contiguous(t.column('a')); to_numpy(t.column('a'))\n"
        "take(string_array(['x', 'y']), np.array([1])); to_numpy(bool_array([True]))\n"
        "uuid_array([uuid.uuid4()]); unique(np.array([2, 1]))\n"
        "print(sorted(m for m in ('pandas', 'pyarrow.compute', 'pyarrow._compute', 'numpy.ma') if m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
