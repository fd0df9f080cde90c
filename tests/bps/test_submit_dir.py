"""The submit directory: creation rules and the ``run.json`` / ``prepared.json`` records."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bps.errors import SubmitDirError
from bps.submit_dir import (
    PreparedRun,
    RunRecord,
    create_submit_dir,
    is_submit_dir,
    read_prepared,
    read_run_record,
    write_prepared,
    write_run_record,
)
from bps.wms import RunHandle, RunInfo

RUN = RunInfo("u_x_run", "u/x/run", "x", "proj", "camp", "demo", "local")


def test_create_makes_parents_and_accepts_an_empty_directory(tmp_path: Path) -> None:
    made = create_submit_dir(tmp_path / "a" / "b")
    assert made.is_dir() and made.is_absolute()
    assert create_submit_dir(made) == made  # still empty


def test_create_refuses_a_non_empty_directory_or_a_file(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(SubmitDirError, match="already exists and is not empty"):
        create_submit_dir(tmp_path)
    with pytest.raises(SubmitDirError, match="is not a directory"):
        create_submit_dir(tmp_path / "run.json")


def test_run_record_round_trip(tmp_path: Path) -> None:
    record = RunRecord.from_handle(RunHandle("parsl", "2024.1", "id-1", RUN.run_name, tmp_path), RUN, 12.5)
    path = write_run_record(record)
    assert path == tmp_path / "run.json"
    content = json.loads(path.read_text())
    assert content["format_version"] == 1 and content["run_id"] == "id-1" and content["payload"] == "demo"
    assert read_run_record(tmp_path) == record
    assert record.handle.run_id == "id-1"
    assert is_submit_dir(tmp_path)


def test_reading_a_missing_or_foreign_record_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(SubmitDirError, match="has no run.json"):
        read_run_record(tmp_path)
    (tmp_path / "run.json").write_text('{"format_version": 7}')
    with pytest.raises(SubmitDirError, match="format_version 7 is not 1"):
        read_run_record(tmp_path)
    (tmp_path / "run.json").write_text('{"format_version": 1, "engine": "parsl"}')
    with pytest.raises(SubmitDirError, match="incomplete run record"):
        read_run_record(tmp_path)


def test_prepared_round_trip(tmp_path: Path) -> None:
    prepared = PreparedRun("parsl", {"maxWorkers": 2}, RUN)
    write_prepared(tmp_path, prepared)
    assert read_prepared(tmp_path) == prepared
    with pytest.raises(SubmitDirError, match="prepared run"):
        read_prepared(tmp_path / "missing")
