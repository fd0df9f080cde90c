"""The run index under ``$QUANTA_BPS_HOME``: recording runs, finding them by id, name or path."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bps import run_index
from bps.errors import RunNotFoundError
from bps.run_index import find_run, list_runs, record_run
from bps.submit_dir import RunRecord, write_run_record
from bps.wms import RunHandle, RunInfo


def submitted(tmp_path: Path, run_id: str, operator: str = "alice", age_days: float = 0.0) -> RunRecord:
    """A run.json in its own submit directory, recorded in the index."""
    submit_dir = tmp_path / run_id.replace("/", "_")
    submit_dir.mkdir()
    run = RunInfo(f"name_{run_id}", f"u/{operator}/{run_id}", operator, "", "", "demo", "local")
    record = RunRecord.from_handle(
        RunHandle("parsl", "1", run_id, run.run_name, submit_dir), run, time.time() - age_days * 86400
    )
    write_run_record(record)
    record_run(record)
    return record


def test_home_comes_from_the_environment(bps_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_index.bps_home() == bps_home
    monkeypatch.delenv("QUANTA_BPS_HOME")
    assert run_index.bps_home() == Path.home() / ".quanta" / "bps"


def test_find_by_id_name_or_path(tmp_path: Path, bps_home: Path) -> None:
    record = submitted(tmp_path, "run/1")
    assert (bps_home / "runs" / "run_1.json").is_file()
    assert find_run("run/1") == record
    assert find_run("name_run/1") == record
    assert find_run(str(record.submit_dir)) == record


def test_unknown_id_and_vanished_directory(tmp_path: Path) -> None:
    with pytest.raises(RunNotFoundError, match="No run with id 'nope'"):
        find_run("nope")
    record = submitted(tmp_path, "gone")
    (record.submit_dir / "run.json").unlink()
    with pytest.raises(RunNotFoundError, match="no longer holds a run.json"):
        find_run("gone")


def test_list_filters_by_user_and_age_newest_first(tmp_path: Path, bps_home: Path) -> None:
    submitted(tmp_path, "old", age_days=10)
    submitted(tmp_path, "new")
    submitted(tmp_path, "bob", operator="bob", age_days=1)
    (bps_home / "runs" / "broken.json").write_text("not json")
    assert [r.run_id for r in list_runs()] == ["new", "bob", "old"]
    assert [r.run_id for r in list_runs(user="alice")] == ["new", "old"]
    assert [r.run_id for r in list_runs(hist_days=2)] == ["new", "bob"]


def test_a_restarted_run_is_listed_once_under_its_latest_id(tmp_path: Path) -> None:
    first = submitted(tmp_path, "first", age_days=1)
    restarted = RunRecord.from_handle(
        RunHandle("parsl", "1", "second", first.run_name, first.submit_dir),
        RunInfo(first.run_name, first.output_run, first.operator, "", "", "demo", "local"),
    )
    write_run_record(restarted)
    record_run(restarted)
    assert [r.run_id for r in list_runs()] == ["second"]
    assert find_run("first") == find_run("second") == restarted
