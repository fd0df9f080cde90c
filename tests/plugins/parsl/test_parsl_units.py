"""Quick tests of the Parsl engine's pieces: settings, the state log and the job wrapper."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from bps.errors import SubmitDirError
from bps.wms import WmsState
from plugins.parsl.job_wrapper import EXIT_CANCELLED, EXIT_MEMORY, EXIT_USAGE, EXIT_WALLTIME
from plugins.parsl.parsl_adapter import ParslAdapter
from plugins.parsl.settings import ParslSiteSettings
from plugins.parsl.state import (
    DriverInfo,
    EventLog,
    engine_dir,
    read_driver_info,
    read_run_state,
    write_driver_info,
)


def settings(**values: object) -> ParslSiteSettings:
    return ParslSiteSettings.model_validate(values)


# -- settings -------------------------------------------------------------------------------------


def test_settings_defaults_and_aliases() -> None:
    assert settings().site_class == "local"
    assert settings(cores=3).max_workers == 3
    assert settings(**{"class": "lsst.ctrl.bps.parsl.sites.Slurm"}).site_class == "slurm"
    slurm = settings(**{"class": "slurm", "maxWorkers": 2, "maxBlocks": 3, "nodes": 2, "walltime": 3725})
    assert slurm.walltime == "01:02:05"
    assert slurm.workers == 12
    assert slurm.max_in_flight == 24


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"maxWorker": 2}, "maxWorker"),
        ({"class": "condor"}, "class"),
        ({"walltime": "1h"}, "walltime"),
        ({"maxWorkers": 0}, "maxWorkers"),
        ({"minBlocks": 3, "maxBlocks": 1}, "minBlocks"),
        ({"launcher": "mpirun"}, "launcher"),
    ],
)
def test_settings_refuse_bad_values(values: dict[str, object], expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        settings(**values)


def test_settings_round_trip_through_json() -> None:
    original = settings(**{"class": "slurm", "partition": "debug", "schedulerOptions": "#SBATCH -x"})
    again = ParslSiteSettings.model_validate(original.model_dump(mode="json", by_alias=True))
    assert again == original


@pytest.mark.parametrize("site_class", ["local", "threads", "slurm"])
def test_parsl_config_is_built_without_starting(site_class: str, tmp_path: Path) -> None:
    config = ParslAdapter(settings(**{"class": site_class}), tmp_path / "runinfo").build_config()
    assert len(config.executors) == 1
    assert not (tmp_path / "runinfo").exists()


# -- state ----------------------------------------------------------------------------------------


def test_event_log_folds_and_ignores_a_torn_line(tmp_path: Path) -> None:
    log = EventLog(tmp_path)
    log.run_started("run-1")
    log.job("a", WmsState.PENDING, attempt=1, memory=100)
    log.job("a", WmsState.READY, attempt=1, exit_code=247, reason="exceeded 100 MB")
    log.job("a", WmsState.PENDING, attempt=2, memory=400)
    log.job("a", WmsState.SUCCEEDED, attempt=2, exit_code=0)
    log.job("b", WmsState.FAILED, attempt=1, exit_code=1, reason="exit code 1")
    log.job("c", WmsState.PRUNED, reason="blocked by b")
    log.close()
    with open(engine_dir(tmp_path) / "events.jsonl", "ab") as handle:
        handle.write(b'{"ev":"job","j":"c","s":"SUCC')  # kill -9 in the middle of a write
    state = read_run_state(tmp_path)
    assert state.run_ids == ["run-1"]
    assert state.jobs["a"].state is WmsState.SUCCEEDED
    assert state.jobs["a"].memories == [100, 400]
    assert (state.jobs["b"].exit_code, state.jobs["b"].reason) == (1, "exit code 1")
    assert state.jobs["c"].state is WmsState.PRUNED
    # A restart appends after the torn line and resets what did not succeed.
    log = EventLog(tmp_path)
    log.run_started("run-2")
    log.job("b", WmsState.PENDING, attempt=1, memory=100)
    log.close()
    state = read_run_state(tmp_path)
    assert state.run_ids == ["run-1", "run-2"]
    assert state.jobs["a"].state is WmsState.SUCCEEDED
    assert state.jobs["b"].state is WmsState.PENDING
    assert state.jobs["c"].state is WmsState.UNREADY


def test_driver_info_round_trip_and_liveness(tmp_path: Path) -> None:
    assert read_driver_info(tmp_path) is None
    info = DriverInfo(run_id="r", pid=2**22 + 12345, pgid=1, host="elsewhere", started=time.time())
    write_driver_info(tmp_path, info)
    again = read_driver_info(tmp_path)
    assert again == info
    assert again.alive()  # another host: trusted
    info.host = __import__("socket").gethostname()
    assert not info.alive()  # no such process here
    (engine_dir(tmp_path) / "driver.json").write_text('{"format_version": 9}')
    with pytest.raises(SubmitDirError, match="format_version"):
        read_driver_info(tmp_path)


# -- job wrapper ----------------------------------------------------------------------------------


def wrapper(tmp_path: Path, *args: str, command: str) -> tuple[int, str, dict[str, object]]:
    log, info = tmp_path / "job.log", tmp_path / "info.json"
    done = subprocess.run(
        [sys.executable, "-m", "plugins.parsl.job_wrapper", "--log", str(log), "--info", str(info), *args,
         "--", "/bin/bash", "-c", command],
        check=False, timeout=60,
    )  # fmt: skip
    text = log.read_text() if log.exists() else ""
    return done.returncode, text, json.loads(info.read_text()) if info.exists() else {}


def test_wrapper_passes_exit_code_output_and_environment(tmp_path: Path) -> None:
    code, log, info = wrapper(
        tmp_path, "--env", "GREETING=hi there", command="echo $GREETING; echo err >&2; exit 5"
    )
    assert code == 5
    assert "hi there\nerr\n" in log
    assert info["exit_code"] == 5 and info["reason"] == "exit code 5"


def test_wrapper_kills_a_job_over_its_memory(tmp_path: Path) -> None:
    hog = f"{sys.executable} -c \"import time; b = b'x' * (150 * 2**20); time.sleep(5)\""
    started = time.monotonic()
    code, log, info = wrapper(tmp_path, "--memory-mb", "60", command=hog)
    assert code == EXIT_MEMORY
    assert time.monotonic() - started < 4
    assert "exceeded 60 MB" in str(info["reason"]) and "exceeded 60 MB" in log
    code, _, info = wrapper(tmp_path, "--memory-mb", "400", command=hog.replace("sleep(5)", "sleep(0.3)"))
    assert code == 0
    assert 100 < int(str(info["peak_rss_mb"])) < 400


def test_wrapper_walltime_stop_file_and_usage(tmp_path: Path) -> None:
    code, _, info = wrapper(tmp_path, "--walltime", "0.5", command="sleep 10")
    assert code == EXIT_WALLTIME and "walltime" in str(info["reason"])
    stop = tmp_path / "stop"
    stop.touch()
    code, _, info = wrapper(tmp_path, "--stop-file", str(stop), command="echo never")
    assert code == EXIT_CANCELLED and "cancelled" in str(info["reason"])
    done = subprocess.run(
        [sys.executable, "-m", "plugins.parsl.job_wrapper", "--bogus"], capture_output=True, check=False
    )
    assert done.returncode == EXIT_USAGE and b"unknown option" in done.stderr


def test_ping_slurm_without_sinfo_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bps.errors import BpsError
    from plugins.parsl.service import ParslService

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BpsError, match="'sinfo' is not on PATH"):
        ParslService(settings(**{"class": "slurm"})).ping()
