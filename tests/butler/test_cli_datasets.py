"""``butler`` commands that move datasets and files, check repositories and show their configuration.

Run through click's CliRunner as a user would type them, on both backends; second repositories
(import, transfer) are SQLite.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner, Result
from databases import DatabaseLocation
from registry_campaign import populate

from butler import DatasetType
from butler.butler import Butler
from butler.cli import main
from butler.image import Image
from butler.repository import CONFIG_NAME, open_registry

RAW = DatasetType("raw", ["instrument", "exposure", "detector"], "StructuredDataDict")
BIAS = DatasetType("bias", ["instrument", "detector"], "StructuredDataDict", is_calibration=True)
RAW_IDS = [(exposure, detector) for exposure in (1, 4) for detector in (0, 1)]
"""(exposure, detector) of the raws `ingested` holds; exposure 1 is on 2026-05-01, 4 on 2026-05-02."""


def run(*args: str, exit_code: int = 0, input: str | None = None) -> Result:
    """Invoke ``butler ARGS`` and check its exit code (showing what it wrote if that is wrong)."""
    result = CliRunner().invoke(main, list(args), input=input)
    assert result.exit_code == exit_code, (result.output, result.exception)
    return result


def as_json(result: Result) -> Any:
    return json.loads(result.stdout)


def datasets(repo: str | Path, *args: str) -> list[dict[str, Any]]:
    """``query-datasets REPO ARGS --format json``."""
    rows: list[dict[str, Any]] = as_json(run("query-datasets", str(repo), *args, "--format", "json"))
    return rows


def stored_files(repo: str | Path) -> list[str]:
    """Dataset files under a repository root (relative paths, sorted)."""
    skip = {CONFIG_NAME, "registry.sqlite3", "registry.sqlite3-wal", "registry.sqlite3-shm"}
    root = Path(repo)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name not in skip)


@pytest.fixture(autouse=True)
def _restore_log_level() -> Iterator[None]:
    """``--log-level`` sets the root logger's level; give other tests back the level they had."""
    level = logging.getLogger().level
    yield
    logging.getLogger().setLevel(level)


@pytest.fixture
def repo(database: DatabaseLocation, tmp_path: Path) -> str:
    """A repository made with ``butler create`` holding the campaign's records and types raw and bias."""
    path = tmp_path / "repo"
    namespace = ["--namespace", database.namespace] if database.namespace else []
    run("create", str(path), "--db", database.url, *namespace)
    with open_registry(path) as registry:
        populate(registry)
        registry.register_dataset_type(RAW)
        registry.register_dataset_type(BIAS)
    return str(path)


def write_raws(directory: Path, ids: list[tuple[int, int]] = RAW_IDS) -> list[Path]:
    """One small YAML file per (exposure, detector)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for exposure, detector in ids:
        path = directory / f"raw_{exposure}_{detector}.yaml"
        path.write_text(yaml.safe_dump({"exposure": exposure, "detector": detector}))
        paths.append(path)
    return paths


def write_table(path: Path, rows: list[dict[str, Any]]) -> Path:
    """A CSV, ECSV or Parquet table (by ``path``'s suffix) of ``rows``; the first key is the file column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".csv":
        lines = [",".join(rows[0]), *(",".join(str(v) for v in row.values()) for row in rows)]
        path.write_text("\n".join(lines) + "\n")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    else:
        from astropy.table import Table

        Table(rows=[list(row.values()) for row in rows], names=list(rows[0])).write(path, format="ascii.ecsv")
    return path


@pytest.fixture
def ingested(repo: str, tmp_path: Path) -> str:
    """``repo`` with the raws of `RAW_IDS` ingested (copied) into run ``raw/all``."""
    write_raws(tmp_path / "incoming")
    rows = [{"file": f"raw_{e}_{d}.yaml", "exposure": e, "detector": d} for e, d in RAW_IDS]
    table = write_table(tmp_path / "incoming" / "raws.csv", rows)
    run(
        "ingest-files",
        repo,
        "raw",
        "raw/all",
        str(table),
        "--data-id",
        "instrument=DemoCam",
        "--transfer",
        "copy",
    )
    return repo


def test_create_with_a_datastore_root(tmp_path: Path) -> None:
    files = tmp_path / "files"
    files.mkdir()
    created = run("create", str(tmp_path / "repo"), "--datastore-root", str(files))
    assert created.stdout.rstrip().endswith(f"; datastore root: {files}).")
    assert run("config-dump", str(tmp_path / "repo"), "--subset", "datastore.root").stdout == f"{files}\n"
    with open_registry(tmp_path / "repo") as registry:
        populate(registry)
        registry.register_dataset_type(RAW)
    (source,) = write_raws(tmp_path / "incoming", [(1, 0)])
    table = write_table(
        tmp_path / "incoming" / "raws.csv", [{"file": source.name, "exposure": 1, "detector": 0}]
    )
    run("ingest-files", str(tmp_path / "repo"), "raw", "run", str(table), "--data-id", "instrument=DemoCam")
    assert [p.name for p in files.rglob("*.yaml")] == ["raw_r_r_01_DemoCam_1_0.yaml"]
    assert stored_files(tmp_path / "repo") == []


# -- ingest-files -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "transfer"), [(".csv", "copy"), (".parquet", "direct"), (".ecsv", "copy")]
)
def test_ingest_files_from_tables(repo: str, tmp_path: Path, suffix: str, transfer: str) -> None:
    sources = write_raws(tmp_path / "incoming")
    # Absolute paths in Parquet; paths relative to --prefix in ECSV; relative to the table in CSV.
    rows = [
        {"path": str(p) if suffix == ".parquet" else p.name, "exposure": e, "detector": d}
        for p, (e, d) in zip(sources, RAW_IDS, strict=True)
    ]
    table = write_table(tmp_path / "tables" / f"raws{suffix}", rows)
    prefix = ["--prefix", str(tmp_path / "incoming")] if suffix != ".csv" else []
    if suffix == ".csv":
        table = write_table(tmp_path / "incoming" / "raws.csv", rows)
    result = run(
        "ingest-files",
        repo,
        "raw",
        "raw/all",
        str(table),
        "--data-id",
        "instrument=DemoCam",
        "--transfer",
        transfer,
        *prefix,
        "--progress",
    )
    assert result.stdout == "Ingested 4 file(s) into raw/all.\n"
    assert "Ingesting 4 file(s)" in result.stderr  # the progress bar's label
    rows_found = datasets(repo, "raw", "--collections", "raw/all", "--show-uri")
    assert sorted((r["exposure"], r["detector"]) for r in rows_found) == sorted(RAW_IDS)
    inside = [r["uri"].startswith(Path(repo).resolve().as_uri()) for r in rows_found]
    assert inside == [transfer != "direct"] * 4
    assert all(p.exists() for p in sources)  # neither copy nor direct touches the sources
    with Butler(repo, collections="raw/all") as butler:
        assert butler.get("raw", instrument="DemoCam", exposure=4, detector=1) == {
            "exposure": 4,
            "detector": 1,
        }


def test_ingest_files_with_a_missing_file_ingests_nothing(repo: str, tmp_path: Path) -> None:
    write_raws(tmp_path / "incoming", RAW_IDS[:3])  # the last row's file is never written
    rows = [
        {"file": f"raw_{e}_{d}.yaml", "instrument": "DemoCam", "exposure": e, "detector": d}
        for e, d in RAW_IDS
    ]
    table = write_table(tmp_path / "incoming" / "raws.csv", rows)
    result = run("ingest-files", repo, "raw", "raw/all", str(table), "--transfer", "copy", exit_code=1)
    assert result.stderr.startswith(f"Error: {table} line 5: no such file ")
    assert "raw_4_1.yaml" in result.stderr and "Traceback" not in result.output
    assert datasets(repo) == []
    assert stored_files(repo) == []
    with open_registry(repo) as registry:
        assert "raw/all" not in registry.query_collections()


BAD_TABLES: list[tuple[str, str, list[str]]] = [
    # (CSV text, extra arguments, what the message must contain)
    (
        "file,exposure,detectr\nraw_1_0.yaml,1,0\n",
        "",
        ["bad.csv: Unknown data ID column 'detectr'; did you mean 'detector'?"],
    ),
    ("file,exposure,detector\nraw_1_0.yaml,one,0\n", "", ["line 2", "exposure must be an integer", "'one'"]),
    ("file,exposure\nraw_1_0.yaml,1\n", "", ["line 2", "no value for detector", "--data-id detector=VALUE"]),
    ("file,exposure,detector\nraw_1_0.yaml,1,0\n", "detector=0", ["detector given both as a column and by"]),
    ("file,exposure,detector\nraw_1_0.yaml,1,9\n", "", ["detector", "9"]),
]


@pytest.mark.parametrize(("text", "data_id", "expected"), BAD_TABLES)
def test_bad_ingest_tables_are_named(
    repo: str, tmp_path: Path, text: str, data_id: str, expected: list[str]
) -> None:
    write_raws(tmp_path / "incoming", [(1, 0)])
    table = tmp_path / "incoming" / "bad.csv"
    table.write_text(text)
    extra = ["--data-id", data_id] if data_id else []
    result = run(
        "ingest-files", repo, "raw", "run", str(table), "--data-id", "instrument=DemoCam", *extra, exit_code=1
    )
    assert result.stderr.startswith("Error: ")
    for fragment in expected:
        assert fragment in result.stderr
    assert datasets(repo) == []


def test_ingest_files_usage_errors(repo: str, tmp_path: Path) -> None:
    table = tmp_path / "raws.txt"
    table.write_text("file\n")
    assert (
        "unknown table type '.txt'" in run("ingest-files", repo, "raw", "run", str(table), exit_code=1).stderr
    )
    csv_table = write_table(tmp_path / "raws.csv", [{"file": "x.yaml", "exposure": 1, "detector": 0}])
    bad_formatter = run(
        "ingest-files", repo, "raw", "run", str(csv_table), "--formatter", "nowhere.Formatter", exit_code=1
    )
    assert "Unknown formatter 'nowhere.Formatter'" in bad_formatter.stderr
    assert (
        "NAME=VALUE"
        in run("ingest-files", repo, "raw", "run", str(csv_table), "--data-id", "x", exit_code=2).stderr
    )
    assert (
        "'teleport' is not one of"
        in run(
            "ingest-files", repo, "raw", "run", str(csv_table), "--transfer", "teleport", exit_code=2
        ).stderr
    )


# -- associate and certify-calibrations -------------------------------------------------------------


def test_associate(ingested: str) -> None:
    args = ["--collections", "raw/all", "--dataset-type", "raw", "--where", "detector = 0"]
    assert (
        run("associate", ingested, "good", *args).stdout
        == "Associated 2 dataset(s) with good (new TAGGED collection).\n"
    )
    assert (
        run("associate", ingested, "good", *args).stdout == "Associated 2 dataset(s) with good.\n"
    )  # idempotent
    tagged = datasets(ingested, "--collections", "good")
    assert sorted((r["exposure"], r["detector"], r["run"]) for r in tagged) == [
        (1, 0, "raw/all"),
        (4, 0, "raw/all"),
    ]
    with open_registry(ingested) as registry:
        assert registry.get_collection_type("good").name == "TAGGED"
    wrong = run("associate", ingested, "raw/all", "--collections", "raw/all", exit_code=1)
    assert "already exists as RUN, not TAGGED" in wrong.stderr


def test_certify_calibrations_then_find_by_exposure_time(repo: str, tmp_path: Path) -> None:
    for detector in (0, 1):
        (tmp_path / f"bias_{detector}.yaml").write_text(f"bias: {detector}\n")
    table = write_table(tmp_path / "biases.csv", [{"path": f"bias_{d}.yaml", "detector": d} for d in (0, 1)])
    run("ingest-files", repo, "bias", "calib/run1", str(table), "--data-id", "instrument=DemoCam")
    result = run(
        "certify-calibrations", repo, "calib/run1", "calib", "bias",
        "--begin-date", "2026-05-01", "--end-date", "2026-05-02T00:00:00",
    )  # fmt: skip
    assert result.stdout == (
        "Certified 2 bias dataset(s) into calib, valid [2026-05-01T00:00:00+00:00, 2026-05-02T00:00:00+00:00).\n"
    )
    # Exposure 1 was taken on 2026-05-01 at 21:00, exposure 4 the next day.
    found = datasets(repo, "bias", "--collections", "calib", "--where", "exposure = 1 AND detector = 1")
    assert [(r["detector"], r["run"]) for r in found] == [(1, "calib/run1")]
    assert datasets(repo, "bias", "--collections", "calib", "--where", "exposure = 4") == []
    overlapping = run(
        "certify-calibrations",
        repo,
        "calib/run1",
        "calib",
        "bias",
        "--begin-date",
        "2026-05-01T12:00",
        exit_code=1,
    )
    assert "already valid" in overlapping.stderr
    reversed_range = run(
        "certify-calibrations", repo, "calib/run1", "calib", "bias",
        "--begin-date", "2026-06-02", "--end-date", "2026-06-01", exit_code=2,
    )  # fmt: skip
    assert "the end is before --begin-date" in reversed_range.stderr
    assert (
        "ISO-8601"
        in run(
            "certify-calibrations",
            repo,
            "calib/run1",
            "calib",
            "bias",
            "--begin-date",
            "May 1st",
            exit_code=2,
        ).stderr
    )
    # Later validity (unbounded end) is fine; raw is not a calibration dataset type.
    run("certify-calibrations", repo, "calib/run1", "calib", "bias", "--begin-date", "2026-05-02")
    assert len(datasets(repo, "bias", "--collections", "calib", "--where", "exposure = 4")) == 2


def test_certify_a_non_calibration_or_nothing(ingested: str) -> None:
    not_calib = run("certify-calibrations", ingested, "raw/all", "calib", "raw", exit_code=1)
    assert "raw" in not_calib.stderr and "calibration" in not_calib.stderr
    nothing = run("certify-calibrations", ingested, "raw/all", "calib", "bias", exit_code=1)
    assert "No bias datasets in 'raw/all'" in nothing.stderr


# -- export, import, transfer, retrieve -------------------------------------------------------------


def test_export_import_round_trip(ingested: str, tmp_path: Path) -> None:
    export_dir = tmp_path / "export"
    exported = run(
        "export",
        ingested,
        str(export_dir),
        "--collections",
        "raw/all",
        "--where",
        "exposure = 4",
        "--progress",
    )
    assert exported.stdout == f"Exported 2 dataset(s) to {export_dir} (manifest: export.yaml).\n"
    other = str(tmp_path / "other")
    run("create", other)
    assert run("import", other, str(export_dir)).stdout == f"Imported 2 new dataset(s) from {export_dir}.\n"
    assert run("import", other, str(export_dir)).stdout == f"Imported 0 new dataset(s) from {export_dir}.\n"
    original = datasets(ingested, "--collections", "raw/all", "--where", "exposure = 4")
    assert datasets(other, "--collections", "raw/all") == original
    with Butler(other, collections="raw/all") as butler:
        assert butler.get("raw", instrument="DemoCam", exposure=4, detector=0) == {
            "exposure": 4,
            "detector": 0,
        }
    assert run("verify", other).exit_code == 0
    not_empty = run("export", ingested, str(export_dir), exit_code=1)
    assert "is not empty" in not_empty.stderr


def test_transfer_datasets(ingested: str, tmp_path: Path) -> None:
    target = str(tmp_path / "target")
    run("create", target)
    moved = run("transfer-datasets", ingested, target, "--dataset-type", "r*", "--where", "detector = 1")
    assert moved.stdout == f"Transferred 2 dataset(s) from {ingested} to {target}.\n"
    again = run("transfer-datasets", ingested, target, "--collections", "raw/all")
    assert again.stdout == f"Transferred 2 dataset(s) from {ingested} to {target} (2 already present).\n"
    assert datasets(target, "--collections", "raw/all") == datasets(ingested, "--collections", "raw/all")
    assert run("verify", target).exit_code == 0
    unknown = run("transfer-datasets", ingested, target, "--dataset-type", "rwa", exit_code=1)
    assert "Unknown dataset type 'rwa'; did you mean 'raw'?" in unknown.stderr


def test_retrieve_artifacts(ingested: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    kept = run("retrieve-artifacts", ingested, str(out), "--where", "exposure = 1")
    lines = kept.stdout.splitlines()
    assert lines[-1] == f"Retrieved 2 file(s) of 2 dataset(s) into {out}."
    assert all(line.startswith(f"{out}/raw/all/raw/") for line in lines[:-1])
    assert yaml.safe_load(Path(lines[0]).read_text()) == {"exposure": 1, "detector": 0}
    flat = run("retrieve-artifacts", ingested, str(out), "--where", "exposure = 1", "--no-preserve-path")
    assert [Path(line).parent for line in flat.stdout.splitlines()[:-1]] == [out, out]
    again = run(
        "retrieve-artifacts", ingested, str(out), "--where", "exposure = 1", "--no-preserve-path", exit_code=1
    )
    assert "Refusing to overwrite" in again.stderr
    run(
        "retrieve-artifacts", ingested, str(out), "--where", "exposure = 1", "--no-preserve-path", "--clobber"
    )
    assert len(stored_files(ingested)) == 4  # the repository is unchanged
    (Path(ingested) / stored_files(ingested)[0]).unlink()
    missing = run("retrieve-artifacts", ingested, str(tmp_path / "more"), exit_code=1)
    assert (
        missing.stderr.startswith("Error: Cannot retrieve a dataset's file:")
        and "Traceback" not in missing.output
    )


# -- prune-datasets and remove-runs -----------------------------------------------------------------


def test_prune_datasets(ingested: str) -> None:
    args = ["--collections", "raw/all", "--where", "exposure = 4"]
    declined = run("prune-datasets", ingested, *args, input="n\n")
    assert "raw  raw/all        2" in declined.stdout
    assert "Delete 2 dataset(s)? [y/N]" in declined.stdout
    assert declined.stdout.rstrip().endswith("Aborted; nothing was deleted.")
    assert len(datasets(ingested)) == 4 and len(stored_files(ingested)) == 4

    pruned = run("prune-datasets", ingested, *args, "--no-confirm")
    assert pruned.stdout.rstrip().endswith("Deleted 2 dataset(s).")
    assert sorted(r["exposure"] for r in datasets(ingested)) == [1, 1]
    assert len(stored_files(ingested)) == 2
    assert run("verify", ingested).exit_code == 0
    assert (
        run("prune-datasets", ingested, *args, "--force").stdout == "No datasets found; nothing to delete.\n"
    )
    assert "prune-datasets never selects every dataset" in run("prune-datasets", ingested, exit_code=2).stderr


def test_remove_runs(ingested: str) -> None:
    declined = run("remove-runs", ingested, "raw/*", input="n\n")
    assert "raw/all        4" in declined.stdout
    assert "Delete 1 run(s) and 4 dataset(s)? [y/N]" in declined.stdout
    assert len(datasets(ingested)) == 4 and len(stored_files(ingested)) == 4

    run("collection-chain", ingested, "defaults", "raw/all")
    chained = run("remove-runs", ingested, "raw/all", "--no-confirm", exit_code=1)
    assert "listed by chained collection(s) defaults" in chained.stderr
    assert len(stored_files(ingested)) == 4
    assert (
        "is a CHAINED collection, not a RUN" in run("remove-runs", ingested, "defaults", exit_code=1).stderr
    )
    assert "Unknown collection 'nothing'" in run("remove-runs", ingested, "nothing", exit_code=1).stderr

    run("collection-chain", ingested, "defaults", "raw/all", "--mode", "remove")
    removed = run("remove-runs", ingested, "raw/all", input="y\n")
    assert removed.stdout.rstrip().endswith("Removed 1 RUN collection(s) and 4 dataset(s).")
    assert stored_files(ingested) == []
    with open_registry(ingested) as registry:
        assert registry.query_collections() == ["defaults"]
    assert run("remove-runs", ingested, "raw/*").stdout == "No RUN collections match; nothing to remove.\n"


# -- verify, config-dump, config-validate -----------------------------------------------------------


def test_verify(ingested: str) -> None:
    clean = run("verify", ingested, "--no-progress")
    assert clean.stdout.endswith("registry and datastore agree.\n")
    assert clean.stdout.startswith("Checked 4 datastore record(s)")
    (lost,) = [f for f in stored_files(ingested) if f.endswith("_DemoCam_4_0.yaml")]
    (Path(ingested) / lost).unlink()
    (Path(ingested) / "raw" / "stray.txt").write_text("not a dataset")
    broken = run("verify", ingested, exit_code=1)
    lines = broken.stdout.splitlines()
    assert lines[0].startswith(
        "Missing file of raw {instrument: 'DemoCam', detector: 0, exposure: 4} in raw/all ("
    )
    assert lines[0].endswith(Path(lost).name)
    assert lines[1] == f"File without a dataset: {(Path(ingested) / 'raw' / 'stray.txt').resolve()}"
    assert lines[2].endswith("1 missing file(s), 1 file(s) without a dataset.")


def test_config_dump(repo: str) -> None:
    dumped = yaml.safe_load(run("config-dump", repo).stdout)
    root = str(Path(repo).resolve())
    assert dumped["datastore"]["root"] == root  # <butlerRoot> resolved
    assert dumped["datastore"]["cls"] == "file"
    assert dumped["datastore"]["checksum"] is False
    assert dumped["datastore"]["formatters"]["NumpyArray"] == {
        "formatter": "butler.formatters.NpyFormatter",
        "write_options": {},
    }  # shorthand expanded
    assert dumped["datastore"]["constraints"] == {"accept": [], "reject": []}  # defaults filled in
    assert "<butlerRoot>" not in run("config-dump", repo).stdout
    registry = yaml.safe_load(run("config-dump", repo, "--subset", "registry").stdout)
    assert set(registry) == {"db", "namespace"}
    assert run("config-dump", repo, "--subset", ".datastore.checksum").stdout == "False\n"
    bad = run("config-dump", repo, "--subset", "datastore.formaters", exit_code=2)
    assert "'datastore.formaters' is not in the configuration" in bad.stderr and "formatters" in bad.stderr


def test_config_dump_hides_the_password(tmp_path: Path) -> None:
    path = tmp_path / "repo"
    run("create", str(path))
    config = yaml.safe_load((path / CONFIG_NAME).read_text())
    config["registry"]["db"] = "postgresql://alice:secret@db.example.org/butler"
    (path / CONFIG_NAME).write_text(yaml.safe_dump(config))
    dumped = run("config-dump", str(path), "--subset", "registry.db").stdout
    assert dumped == "postgresql://alice:***@db.example.org/butler\n"


def test_config_validate(repo: str) -> None:
    assert run("config-validate", repo).stdout == "No problems found.\n"
    config_path = Path(repo) / CONFIG_NAME
    config = yaml.safe_load(config_path.read_text())
    config["datastore"]["formatters"]["NumpyArray"] = "butler.formatters.NoSuchFormatter"
    config["datastore"]["formatters"]["NoSuchClass"] = "butler.formatters.YamlFormatter"
    config["datastore"]["formatters"]["raw"] = {
        "formatter": "butler.formatters.YamlFormatter",
        "write_options": {"level": 3},
    }
    config["datastore"]["disassemble"] = ["Imagee"]
    config["datastore"]["templates"]["bias"] = "{run}/{datasetType}"
    config_path.write_text(yaml.safe_dump(config))
    result = run("config-validate", repo, exit_code=1)
    problems = result.stdout.splitlines()
    assert problems[-1] == f"5 problem(s) found in {config_path}."
    text = result.stdout
    assert "datastore.formatters.NumpyArray: Unknown formatter 'butler.formatters.NoSuchFormatter'" in text
    assert "datastore.formatters.NoSuchClass: neither a storage class nor a registered dataset type" in text
    assert "datastore.formatters.raw" in text and "level" in text
    assert "datastore.disassemble: unknown storage class 'Imagee'" in text
    assert "datastore.templates" in text and "bias" in text and "detector" in text
    config["datastore"]["checksum"] = "sometimes"
    config_path.write_text(yaml.safe_dump(config))
    invalid = run("config-validate", repo, exit_code=1).stdout
    assert invalid.startswith("- Invalid datastore configuration in ") and "checksum" in invalid


# -- query-datasets --show-uri ----------------------------------------------------------------------


def test_query_datasets_show_uri_lists_components(repo: str) -> None:
    config_path = Path(repo) / CONFIG_NAME
    config = yaml.safe_load(config_path.read_text())
    config["datastore"]["disassemble"] = ["Image"]
    config_path.write_text(yaml.safe_dump(config))
    with Butler(repo, run="run") as butler:
        butler.registry.register_dataset_type(
            DatasetType("calexp", ["instrument", "visit", "detector"], "Image")
        )
        planes = np.zeros((2, 3), dtype=np.float32)
        image = Image(planes, np.zeros((2, 3), dtype=np.int32), planes, {"BAND": "g"})
        ref = butler.put(image, "calexp", instrument="DemoCam", visit=1, detector=0)
        butler.put({"a": 1}, "raw", instrument="DemoCam", exposure=1, detector=0)
        uris = {component: str(uri) for component, uri in butler.get_uris(ref).items()}
    rows = datasets(repo, "--collections", "run", "--show-uri")
    assert [(r["type"], r["uri"]) for r in rows[:4]] == [(f"calexp.{c}", uris[c]) for c in sorted(uris)]
    assert rows[4]["type"] == "raw" and rows[4]["uri"].endswith(".yaml")
    assert all(r["id"] == str(ref.id) for r in rows[:4])
    table = run("query-datasets", repo, "--collections", "run", "--show-uri").stdout
    blocks = table.split("\n\n")
    assert len(blocks) == 2  # one block per dataset type, components included
    assert blocks[0].splitlines()[0].split()[-1] == "uri"
    assert "uri" not in run("query-datasets", repo, "--collections", "run").stdout
