"""The ``butler`` command, run through click's CliRunner as a user would type it, on both backends."""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from databases import DatabaseLocation

import butler.cli.app
from butler import DatasetIdGenerationMode
from butler.cli import main
from butler.cli.format import cell_text, render, render_table, sort_key
from butler.repository import open_registry

INSTRUMENT_YAML = """\
- {name: DemoCam, class_name: graph.instrument.DemoCam, detector_max: 4}
"""
BAND_CSV = "name\ng\nr\n"
FILTER_YAML = """\
records:
  - {instrument: DemoCam, name: g_01, band: g}
  - {instrument: DemoCam, name: r_01, band: r}
"""
DETECTOR_CSV = """\
instrument,id,full_name,purpose
DemoCam,0,S00,SCIENCE
DemoCam,1,S01,SCIENCE
DemoCam,2,W00,
"""
EXPOSURE_CSV = """\
instrument,id,physical_filter,obs_id,exposure_time,timespan_begin,timespan_end
DemoCam,1001,g_01,DC_1001,30.0,2024-03-01T03:00:00,2024-03-01T03:00:30
DemoCam,1002,r_01,DC_1002,15.5,2024-03-01T03:01:00,2024-03-01T03:01:30
DemoCam,1003,g_01,DC_1003,,,
"""
VISIT_YAML = """\
- instrument: DemoCam
  id: 1
  physical_filter: g_01
  name: first
  timespan: {begin: 2024-03-01T03:00:00, end: 2024-03-01T03:01:30}
  region: {polygon: [[10, -1], [11, -1], [11, 1], [10, 1]]}
"""


def run(*args: str, exit_code: int = 0) -> Result:
    """Invoke ``butler ARGS`` and check its exit code (printing what it wrote if that is wrong)."""
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def create_args(database: DatabaseLocation, repo: Path) -> list[str]:
    args = ["create", str(repo), "--db", database.url]
    return args + (["--namespace", database.namespace] if database.namespace else [])


@pytest.fixture(autouse=True)
def _restore_log_level() -> Iterator[None]:
    """``--log-level`` sets the root logger's level; give other tests back the level they had."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def repo(database: DatabaseLocation, tmp_path: Path) -> str:
    """An empty repository made with ``butler create`` on each backend."""
    run(*create_args(database, tmp_path / "repo"))
    return str(tmp_path / "repo")


@pytest.fixture
def filled(repo: str, tmp_path: Path) -> str:
    """A repository with DemoCam records (inserted from YAML and CSV), dataset type raw and datasets.

    Runs ``DemoCam/raw/all`` (raw for exposures 1001, 1002 x detectors 0-2) and ``DemoCam/raw/extra``
    (raw for exposure 1001, detector 0), with chain ``DemoCam/defaults`` = [extra, all].
    """
    for element, name, text in [
        ("instrument", "instrument.yaml", INSTRUMENT_YAML),
        ("band", "band.csv", BAND_CSV),
        ("physical_filter", "filters.yaml", FILTER_YAML),
        ("detector", "detectors.csv", DETECTOR_CSV),
        ("exposure", "exposures.csv", EXPOSURE_CSV),
    ]:
        run("insert-dimension-records", repo, element, write(tmp_path, name, text))
    run("register-dataset-type", repo, "raw", "Exposure", "instrument", "exposure", "detector")
    with open_registry(repo) as registry:
        for run_name in ("DemoCam/raw/all", "DemoCam/raw/extra"):
            registry.register_run(run_name)
        all_ids = [
            {"instrument": "DemoCam", "exposure": e, "detector": d} for e in (1001, 1002) for d in range(3)
        ]
        mode = DatasetIdGenerationMode.DATAID_TYPE_RUN
        registry.insert_datasets("raw", all_ids, "DemoCam/raw/all", mode)
        registry.insert_datasets("raw", all_ids[:1], "DemoCam/raw/extra", mode)
    run("collection-chain", repo, "DemoCam/defaults", "DemoCam/raw/extra", "DemoCam/raw/all")
    return repo


def record_rows(repo: str, element: str, *args: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = as_json(
        run("query-dimension-records", repo, element, "--format", "json", *args)
    )
    return rows


# -- create ---------------------------------------------------------------------------------------


def test_create_twice_is_an_error_and_wipes_nothing(database: DatabaseLocation, tmp_path: Path) -> None:
    result = run(*create_args(database, tmp_path / "repo"))
    assert result.stdout.startswith("Created data repository")
    if database.namespace:
        assert f"namespace {database.namespace}" in result.stdout
    repo = str(tmp_path / "repo")
    run("insert-dimension-records", repo, "instrument", write(tmp_path, "i.yaml", INSTRUMENT_YAML))

    again = run(*create_args(database, tmp_path / "repo"), exit_code=1)
    assert again.stderr.startswith("Error: A data repository already exists")
    assert "Traceback" not in again.output
    # Another directory naming the same database is refused as well, and not left behind.
    elsewhere = run(*create_args(database, tmp_path / "other"), exit_code=1)
    assert "refusing to overwrite" in elsewhere.stderr
    assert not (tmp_path / "other").exists()
    assert [r["name"] for r in record_rows(repo, "instrument")] == ["DemoCam"]


def test_create_defaults_to_sqlite_inside_the_repository(tmp_path: Path) -> None:
    result = run("create", str(tmp_path / "repo"))
    assert f"sqlite:///{(tmp_path / 'repo').resolve()}/registry.sqlite3" in result.stdout
    assert (tmp_path / "repo" / "registry.sqlite3").is_file()


def test_commands_on_a_missing_repository_fail_cleanly(tmp_path: Path) -> None:
    result = run("query-collections", str(tmp_path / "nowhere"), exit_code=1)
    assert result.stderr.startswith("Error: No data repository at")
    assert "butler create" in result.stderr


# -- insert-dimension-records ---------------------------------------------------------------------------


def test_insert_records_from_yaml_and_csv(filled: str) -> None:
    assert record_rows(filled, "physical_filter") == [
        {"instrument": "DemoCam", "name": "g_01", "band": "g"},
        {"instrument": "DemoCam", "name": "r_01", "band": "r"},
    ]
    detectors = record_rows(filled, "detector")
    assert [(d["id"], d["purpose"]) for d in detectors] == [(0, "SCIENCE"), (1, "SCIENCE"), (2, None)]
    exposures = {row["id"]: row for row in record_rows(filled, "exposure")}
    assert exposures[1001]["timespan_begin"] == "2024-03-01T03:00:00+00:00"
    assert exposures[1001]["timespan_end"] == "2024-03-01T03:00:30+00:00"
    assert exposures[1002]["exposure_time"] == 15.5
    assert exposures[1003]["exposure_time"] is None and exposures[1003]["timespan_begin"] is None


def test_insert_prints_counts_and_handles_existing_records(repo: str, tmp_path: Path) -> None:
    path = write(tmp_path, "instrument.yaml", INSTRUMENT_YAML)
    assert (
        run("insert-dimension-records", repo, "instrument", path).stdout
        == "Inserted 1 instrument record(s).\n"
    )
    again = run("insert-dimension-records", repo, "instrument", path, exit_code=1)
    assert again.stderr.startswith(f"Error: {path}: 1 instrument record(s) already exist")
    skipped = run("insert-dimension-records", repo, "instrument", path, "--skip-existing")
    assert skipped.stdout == "Inserted 0 instrument record(s) (1 already present).\n"
    assert "(1 already present)" in run("insert-dimension-records", repo, "instrument", path, "--sync").stdout
    changed = write(tmp_path, "changed.yaml", "- {name: DemoCam, detector_max: 8}\n")
    conflict = run("insert-dimension-records", repo, "instrument", changed, "--sync", exit_code=1)
    assert "detector_max: 4 in registry, 8 given" in conflict.stderr
    both = run("insert-dimension-records", repo, "instrument", path, "--sync", "--skip-existing", exit_code=2)
    assert "cannot be combined" in both.stderr
    assert record_rows(repo, "instrument")[0]["detector_max"] == 4


def test_exported_csv_can_be_inserted_elsewhere(filled: str, tmp_path: Path) -> None:
    other = str(tmp_path / "other")
    run("create", other)
    for element in ("instrument", "band", "physical_filter", "exposure"):
        exported = run("query-dimension-records", filled, element, "--format", "csv").stdout
        run("insert-dimension-records", other, element, write(tmp_path, f"{element}.csv", exported))
    assert record_rows(other, "exposure") == record_rows(filled, "exposure")


def test_regions_and_timespans_from_yaml(filled: str, tmp_path: Path) -> None:
    run("insert-dimension-records", filled, "visit", write(tmp_path, "visit.yaml", VISIT_YAML))
    (visit,) = record_rows(filled, "visit")
    assert visit["timespan_end"] == "2024-03-01T03:01:30+00:00"
    assert isinstance(visit["region"], str) and bytes.fromhex(visit["region"])
    table = run("query-dimension-records", filled, "visit").stdout
    assert "region" not in table.splitlines()[0] and "first" in table


BAD_FILES: list[tuple[str, str, str, list[str]]] = [
    # (element, file name, contents, what the message must contain)
    ("instrument", "bad.yaml", "- {name: DemoCam\n- x", ["bad.yaml: invalid YAML", "line"]),
    ("instrument", "bad.yaml", "name: DemoCam\n", ["bad.yaml", "'records'"]),
    ("instrument", "bad.yaml", "- {name: A}\n- [1, 2]\n", ["bad.yaml record 2", "mapping"]),
    (
        "instrument",
        "bad.yaml",
        "- {name: A}\n- {name: B, detectr_max: 3}\n",
        ["bad.yaml record 2", "'detectr_max'", "did you mean 'detector_max'"],
    ),
    ("detector", "bad.csv", "instrument,id,purpse\nDemoCam,1,SCIENCE\n", ["bad.csv line 1", "'purpse'"]),
    (
        "detector",
        "bad.csv",
        "instrument,id\nDemoCam,1\nDemoCam,two\n",
        ["bad.csv line 3", "'id' must be int", "'two'"],
    ),
    ("detector", "bad.csv", "instrument,id\nDemoCam,1,extra\n", ["bad.csv line 2", "header has 2 column(s)"]),
    ("instrument", "bad.txt", "name\nDemoCam\n", ["bad.txt", "unknown record file type"]),
    (
        "instrument",
        "bad.yaml",
        "- {name: A, detector_max: many}\n",
        ["bad.yaml", "detector_max", "must be int"],
    ),
    (
        "physical_filter",
        "bad.yaml",
        "- {instrument: DemoCam, name: x, band: g}\n",
        ["bad.yaml", "no band record"],
    ),
]


@pytest.mark.parametrize(("element", "name", "text", "expected"), BAD_FILES)
def test_bad_record_files_name_the_file_and_insert_nothing(
    repo: str, tmp_path: Path, element: str, name: str, text: str, expected: list[str]
) -> None:
    run("insert-dimension-records", repo, "instrument", write(tmp_path, "i.yaml", "- {name: DemoCam}\n"))
    result = run("insert-dimension-records", repo, element, write(tmp_path, name, text), exit_code=1)
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.output
    for fragment in expected:
        assert fragment in result.stderr
    # Nothing from the file was inserted: only the instrument record made above exists.
    assert [r["name"] for r in record_rows(repo, "instrument")] == ["DemoCam"]
    if element != "instrument":
        assert record_rows(repo, element) == []


def test_missing_record_file_and_unknown_element(repo: str, tmp_path: Path) -> None:
    missing = run("insert-dimension-records", repo, "instrument", str(tmp_path / "nope.yaml"), exit_code=2)
    assert "nope.yaml" in missing.stderr and "does not exist" in missing.stderr
    path = write(tmp_path, "i.yaml", INSTRUMENT_YAML)
    unknown = run("insert-dimension-records", repo, "instrumnet", path, exit_code=1)
    assert "Unknown dimension element 'instrumnet'; did you mean 'instrument'?" in unknown.stderr


# -- dataset types --------------------------------------------------------------------------------------


def test_register_and_query_dataset_types(repo: str) -> None:
    new = run("register-dataset-type", repo, "raw", "Exposure", "instrument", "exposure", "detector")
    assert new.stdout == "Registered dataset type raw.\n"
    same = run("register-dataset-type", repo, "raw", "Exposure", "exposure", "detector")
    assert "already registered with this definition" in same.stdout
    conflict = run("register-dataset-type", repo, "raw", "Image", "exposure", "detector", exit_code=1)
    assert "storage class 'Exposure' != 'Image'" in conflict.stderr
    bad_dim = run("register-dataset-type", repo, "calexp", "Exposure", "visitt", exit_code=1)
    assert "Unknown dimension element 'visitt'" in bad_dim.stderr
    run("register-dataset-type", repo, "bias", "Exposure", "instrument", "detector", "--is-calibration")

    assert run("query-dataset-types", repo).stdout.split() == ["name", "----", "bias", "raw"]
    assert as_json(run("query-dataset-types", repo, "r*", "--verbose", "--format", "json")) == [
        {
            "name": "raw",
            "dimensions": ["instrument", "detector", "exposure"],
            "storage_class": "Exposure",
            "is_calibration": False,
        }
    ]
    csv_text = run("query-dataset-types", repo, "--verbose", "--format", "csv").stdout
    assert csv_text.splitlines() == [
        "name,dimensions,storage_class,is_calibration",
        'bias,"instrument, detector",Exposure,True',
        'raw,"instrument, detector, exposure",Exposure,False',
    ]
    assert run("query-dataset-types", repo, "nothing*").stdout == "No dataset types found.\n"


# -- collections ------------------------------------------------------------------------------------------


def test_collection_chain_modes(repo: str) -> None:
    with open_registry(repo) as registry:
        for name in "abc":
            registry.register_run(name)

    def chain(*args: str) -> str:
        return run("collection-chain", repo, "chain", *args).stdout.strip()

    assert chain("a", "b") == "[a, b]"
    assert chain("--mode", "extend", "c") == "[a, b, c]"
    assert chain("--mode", "redefine", "b,a") == "[b, a]"
    assert chain("--mode", "prepend", "c") == "[c, b, a]"
    assert chain("--mode", "remove", "b") == "[c, a]"
    assert chain("--mode", "pop") == "[a]"
    assert chain("--mode", "extend", "b", "c", "--doc", "Everything.") == "[a, b, c]"
    assert chain("--mode", "pop", "--", "-1", "0") == "[b]"
    with open_registry(repo) as registry:
        assert registry.get_collection_documentation("chain") == "Everything."

    missing_child = run("collection-chain", repo, "new", "a", "zzz", exit_code=1)
    assert "Unknown collection 'zzz'" in missing_child.stderr
    missing_parent = run("collection-chain", repo, "nothing", "a", "--mode", "remove", exit_code=1)
    assert "Unknown collection 'nothing'" in missing_parent.stderr
    not_a_chain = run("collection-chain", repo, "a", "b", exit_code=1)
    assert "already exists as RUN, not CHAINED" in not_a_chain.stderr
    no_children = run("collection-chain", repo, "chain", exit_code=2)
    assert "needs at least one CHILD" in no_children.stderr
    names = [row["name"] for row in as_json(run("query-collections", repo, "--format", "json"))]
    assert names == ["a", "b", "c", "chain"]  # failed commands created nothing


def test_collection_chain_refuses_cycles(repo: str) -> None:
    with open_registry(repo) as registry:
        registry.register_run("run")
    run("collection-chain", repo, "inner", "run")
    run("collection-chain", repo, "outer", "inner")
    cycle = run("collection-chain", repo, "inner", "outer", "--mode", "extend", exit_code=1)
    assert cycle.stderr == "Error: Cannot add 'outer' to chain 'inner': the chain would contain itself.\n"
    assert run("collection-chain", repo, "self", "self", exit_code=1).stderr.startswith(
        "Error: Cannot add 'self'"
    )
    with open_registry(repo) as registry:
        assert registry.get_collection_chain("inner") == ("run",)
        assert "self" not in registry.query_collections()


def test_remove_collections(filled: str) -> None:
    has_datasets = run("remove-collections", filled, "DemoCam/raw/extra", exit_code=1)
    assert "still holds 1 dataset(s)" in has_datasets.stderr and "--purge" in has_datasets.stderr
    listed = run("remove-collections", filled, "DemoCam/raw/extra", "--purge", exit_code=1)
    assert "child of chained collection(s) DemoCam/defaults" in listed.stderr
    extra = ["--collections", "DemoCam/raw/extra", "--format", "json"]
    assert len(as_json(run("query-datasets", filled, *extra))) == 1  # the failed purge was rolled back
    removed = run("remove-collections", filled, "DemoCam/raw/extra", "DemoCam/defaults", "--purge")
    assert removed.stdout.splitlines() == [
        "Removed collection DemoCam/defaults.",
        "Removed collection DemoCam/raw/extra.",
    ]
    assert [r["name"] for r in as_json(run("query-collections", filled, "--format", "json"))] == [
        "DemoCam/raw/all"
    ]
    assert run("remove-collections", filled, "gone", exit_code=1).stderr.startswith(
        "Error: Unknown collection"
    )


def test_query_collections(filled: str) -> None:
    run("collection-chain", filled, "outer", "DemoCam/defaults")
    table = run("query-collections", filled).stdout.splitlines()
    assert table[0].split() == ["name", "type", "children"]
    assert table[2].split() == ["DemoCam/defaults", "CHAINED", "DemoCam/raw/extra,", "DemoCam/raw/all"]
    assert [line.split()[0] for line in table[2:]] == [
        "DemoCam/defaults",
        "DemoCam/raw/all",
        "DemoCam/raw/extra",
        "outer",
    ]
    tree = run("query-collections", filled, "outer", "--chains", "tree").stdout.splitlines()
    assert [line.rstrip() for line in tree[2:]] == [
        "outer                 CHAINED",
        "  DemoCam/defaults    CHAINED",
        "    DemoCam/raw/extra RUN",
        "    DemoCam/raw/all   RUN",
    ]
    tree_json = as_json(run("query-collections", filled, "outer", "--chains", "tree", "--format", "json"))
    assert [(r["name"], r["depth"]) for r in tree_json] == [
        ("outer", 0),
        ("DemoCam/defaults", 1),
        ("DemoCam/raw/extra", 2),
        ("DemoCam/raw/all", 2),
    ]
    flat = run("query-collections", filled, "outer", "--chains", "flatten", "--format", "csv").stdout
    assert flat.splitlines() == ["name,type", "DemoCam/raw/extra,RUN", "DemoCam/raw/all,RUN"]
    runs = as_json(run("query-collections", filled, "--collection-type", "run", "--format", "json"))
    assert runs == [
        {"name": "DemoCam/raw/all", "type": "RUN", "children": []},
        {"name": "DemoCam/raw/extra", "type": "RUN", "children": []},
    ]
    chains_csv = run("query-collections", filled, "DemoCam/d*", "--format", "csv").stdout
    assert chains_csv.splitlines()[1] == 'DemoCam/defaults,CHAINED,"DemoCam/raw/extra, DemoCam/raw/all"'
    assert run("query-collections", filled, "zzz*").stdout == "No collections found.\n"


# -- queries ----------------------------------------------------------------------------------------------


def test_query_data_ids(filled: str) -> None:
    table = run(
        "query-data-ids", filled, "exposure", "--where", "exposure.exposure_time > 20 OR exposure = 1003"
    )
    assert table.stdout.splitlines() == [
        "instrument exposure band physical_filter day_obs",
        "---------- -------- ---- --------------- -------",
        "DemoCam        1001 g    g_01",
        "DemoCam        1003 g    g_01",
    ]
    rows = as_json(
        run(
            "query-data-ids",
            filled,
            "detector",
            "exposure",
            "-d",
            "band = :b",
            "--bind",
            "b=r",
            "--format",
            "json",
        )
    )
    assert [(r["exposure"], r["detector"]) for r in rows] == [(1002, 0), (1002, 1), (1002, 2)]
    assert set(rows[0]) == {"instrument", "detector", "exposure", "band", "physical_filter", "day_obs"}
    bound = run(
        "query-data-ids",
        filled,
        "detector",
        "--where",
        "detector >= :low",
        "--bind",
        "low=1",
        "--format",
        "csv",
    )
    assert bound.stdout.splitlines() == ["instrument,detector", "DemoCam,1", "DemoCam,2"]
    with_datasets = as_json(
        run(
            "query-data-ids",
            filled,
            "--datasets",
            "raw",
            "--collections",
            "DemoCam/raw/extra",
            "--format",
            "json",
        )
    )
    assert with_datasets == [
        {
            "instrument": "DemoCam",
            "detector": 0,
            "exposure": 1001,
            "band": "g",
            "physical_filter": "g_01",
            "day_obs": None,
        }
    ]
    limited = run("query-data-ids", filled, "detector", "--limit", "2")
    assert len(limited.stdout.splitlines()) == 4 and "Showing the first 2 of 3 data IDs." in limited.stderr
    assert (
        run("query-data-ids", filled, "detector", "--where", "detector > 5").stdout == "No data IDs found.\n"
    )
    assert "Give at least one DIMENSION" in run("query-data-ids", filled, exit_code=2).stderr
    assert "NAME=VALUE" in run("query-data-ids", filled, "detector", "--bind", "oops", exit_code=2).stderr


def test_where_errors_show_where_the_problem_is(filled: str) -> None:
    syntax = run("query-data-ids", filled, "exposure", "--where", "exposure = = 3", exit_code=1)
    assert syntax.stderr.startswith("Error: Syntax error in WHERE expression at column 12")
    assert syntax.stderr.splitlines()[1:] == ["  exposure = = 3", "             ^"]
    unknown = run("query-dimension-records", filled, "detector", "--where", "detectr = 1", exit_code=1)
    assert "Unknown identifier 'detectr'" in unknown.stderr and "did you mean 'detector'" in unknown.stderr
    unbound = run(
        "query-datasets",
        filled,
        "raw",
        "--collections",
        "DemoCam/raw/all",
        "--where",
        "detector = :d",
        exit_code=1,
    )
    assert "Unknown bind parameter ':d'" in unbound.stderr


def test_query_dimension_records(filled: str) -> None:
    table = run(
        "query-dimension-records", filled, "exposure", "--where", "exposure.obs_id = 'DC_1002'"
    ).stdout
    header, separator, row = table.splitlines()
    assert header.split() == [
        "instrument",
        "id",
        "physical_filter",
        "day_obs",
        "obs_id",
        "exposure_time",
        "observation_type",
        "science_program",
        "zenith_angle",
        "tracking_ra",
        "tracking_dec",
        "sky_angle",
        "timespan_begin",
        "timespan_end",
    ]
    assert set(separator) == {"-", " "}
    assert row.split() == [
        "DemoCam",
        "1002",
        "r_01",
        "DC_1002",
        "15.5",
        "2024-03-01T03:01:00+00:00",
        "2024-03-01T03:01:30+00:00",
    ]
    detectors = run("query-dimension-records", filled, "detector", "--limit", "1", "--format", "csv")
    assert detectors.stdout.splitlines() == ["instrument,id,full_name,purpose", "DemoCam,0,S00,SCIENCE"]
    assert "Showing the first 1 of 3 detector records." in detectors.stderr
    assert run("query-dimension-records", filled, "visit").stdout == "No visit records found.\n"


def test_query_datasets(filled: str) -> None:
    first = as_json(
        run(
            "query-datasets",
            filled,
            "raw",
            "--collections",
            "DemoCam/defaults",
            "--where",
            "detector = 0",
            "--format",
            "json",
        )
    )
    assert [(r["exposure"], r["run"]) for r in first] == [
        (1001, "DemoCam/raw/extra"),
        (1002, "DemoCam/raw/all"),
    ]
    assert set(first[0]) == {"type", "run", "id", "instrument", "detector", "exposure"}
    every = as_json(
        run(
            "query-datasets",
            filled,
            "r?w",
            "--collections",
            "DemoCam/defaults",
            "--where",
            "detector = 0",
            "--find-all",
            "--format",
            "json",
        )
    )
    assert [(r["exposure"], r["run"]) for r in every] == [
        (1001, "DemoCam/raw/all"),
        (1001, "DemoCam/raw/extra"),
        (1002, "DemoCam/raw/all"),
    ]
    with open_registry(filled) as registry:
        expected_ids = {str(ref.id) for ref in registry.query_datasets("raw", "DemoCam/raw/all")}
    listed = run(
        "query-datasets", filled, "--collections", "DemoCam/raw/all", "--format", "csv"
    ).stdout.splitlines()
    assert listed[0] == "type,run,id,instrument,detector,exposure"
    assert {line.split(",")[2] for line in listed[1:]} == expected_ids
    everywhere = as_json(run("query-datasets", filled, "--format", "json"))
    assert len(everywhere) == 7  # no --collections: every collection, every dataset

    run("register-dataset-type", filled, "calexp", "ExposureF", "instrument", "exposure", "detector")
    with open_registry(filled) as registry:
        registry.insert_datasets(
            "calexp", [{"instrument": "DemoCam", "exposure": 1001, "detector": 1}], "DemoCam/raw/all"
        )
    table = run(
        "query-datasets",
        filled,
        "--collections",
        "DemoCam/raw/all",
        "--where",
        "exposure = 1001 AND detector = 1",
    ).stdout
    blocks = table.split("\n\n")
    assert [block.splitlines()[2].split()[0] for block in blocks] == ["calexp", "raw"]
    assert all(block.splitlines()[0].split()[:3] == ["type", "run", "id"] for block in blocks)
    unknown = run("query-datasets", filled, "raww", "--collections", "DemoCam/raw/all", exit_code=1)
    assert "Unknown dataset type 'raww'; did you mean 'raw'?" in unknown.stderr
    assert (
        run(
            "query-datasets", filled, "raw", "--collections", "DemoCam/raw/all", "--where", "detector = 9"
        ).stdout
        == "No datasets found.\n"
    )


# -- errors, logging, help, plugins -----------------------------------------------------------------------


def test_traceback_only_with_debug_log_level(repo: str) -> None:
    quiet = run("query-datasets", repo, "raw", "--collections", "nowhere", exit_code=1)
    assert quiet.stderr.startswith("Error: Unknown dataset type 'raw'")
    assert "Traceback" not in quiet.output
    loud = run("--log-level", "DEBUG", "query-datasets", repo, "raw", "--collections", "nowhere", exit_code=1)
    assert loud.stderr.startswith("Traceback (most recent call last):")
    assert "MissingDatasetTypeError" in loud.stderr
    assert loud.stderr.rstrip().splitlines()[-1].startswith("Error: Unknown dataset type 'raw'")


@pytest.mark.parametrize("command", sorted(main.commands))
def test_every_command_has_help(command: str) -> None:
    result = run(command, "--help")
    assert f"{command} [OPTIONS]" in result.stdout.splitlines()[0]
    summary = main.commands[command].get_short_help_str(limit=200)
    assert summary and summary in " ".join(result.stdout.split())


def test_top_level_help_lists_commands() -> None:
    result = run("--help")
    for command in ("create", "insert-dimension-records", "query-datasets", "--log-level"):
        assert command in result.stdout


class _FakeEntryPoint:
    def __init__(self, name: str, loaded: object) -> None:
        self.name = name
        self.value = f"tests:{name}"
        self._loaded = loaded

    def load(self) -> object:
        if isinstance(self._loaded, Exception):
            raise self._loaded
        return self._loaded


def test_subcommands_from_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    import click

    @click.command("say-hello")
    def hello() -> None:
        """Greet."""
        click.echo("hello")

    plugins = [_FakeEntryPoint("say-hello", hello), _FakeEntryPoint("broken", ImportError("no module"))]
    monkeypatch.setattr(butler.cli.app, "_command_entry_points", lambda: plugins)
    assert run("say-hello").stdout == "hello\n"
    assert "say-hello" in run("--help").stdout
    assert "No such command 'broken'" in run("broken", exit_code=2).stderr


# -- rendering ---------------------------------------------------------------------------------------------


def test_render_formats() -> None:
    rows = [{"name": "b", "n": 10, "tags": ["x", "y"]}, {"name": "long name", "n": 2, "tags": None}]
    assert render_table(rows, ["name", "n", "tags"]) == textwrap.dedent("""\
        name       n tags
        --------- -- ----
        b         10 x, y
        long name  2""")
    assert json.loads(render(rows, ["name", "tags"], "json")) == [
        {"name": "b", "tags": ["x", "y"]},
        {"name": "long name", "tags": None},
    ]
    assert render(rows, ["n", "name"], "csv") == "n,name\n10,b\n2,long name"
    assert render([], ["a"], "csv") == "a"
    assert cell_text(None) == "" and cell_text(1.5) == "1.5"
    assert sorted([(2, None), (1, "a"), (2, 5)], key=sort_key) == [(1, "a"), (2, 5), (2, None)]
    with pytest.raises(ValueError, match="Unknown output format"):
        render(rows, ["n"], "xml")
