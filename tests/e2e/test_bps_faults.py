"""Faults on the real DemoCam demo run by Parsl: jobs that fail (always, or once), the driver killed
with SIGKILL mid-run then ``bps restart``, and ``bps cancel`` mid-run."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import psutil
import pytest
from test_bps_demo import DEMO_SUBMIT, bps, butler_verify, repo, run_id_of, submit_args, table_rows

from bps.wms import WmsState
from butler.repository import open_registry

__all__ = ["repo"]  # the module-scoped repository fixture, shared with test_bps_demo

FAULTS = """\
includeConfigs:
  - {demo}
pipetask:
  makeWarp:
    # Every warp of the first g visit fails with exit code 1 (a payload error: never retried).
    runQuantumCommand: >-
      case {{jobName}} in makeWarp_2025123000001_*) echo "refusing {{jobName}}"; exit 1;; esac;
      pipetask run-qbb {{butlerConfig}} <FILE:qgraphFile> --qgraph-node-id {{qgraphNodeId}}
  consolidateVisitSummary:
    # The first attempt of each visit summary fails with exit code 3 (retried), the second runs.
    runQuantumCommand: >-
      mkdir {{jobName}}.once 2>/dev/null && echo "first attempt of {{jobName}} fails" && exit 3;
      pipetask run-qbb {{butlerConfig}} <FILE:qgraphFile> --qgraph-node-id {{qgraphNodeId}}
"""


def wait_for(submit_dir: Path, succeeded: int, timeout: float = 120.0) -> None:
    """Wait until at least ``succeeded`` jobs of the run in ``submit_dir`` succeeded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _, out, _ = bps("report", "--id", submit_dir, "--json")
        counts = json.loads(out)["runs"][0]["counts"]
        if sum(per_state.get("SUCCEEDED", 0) for per_state in counts.values()) >= succeeded:
            return
        time.sleep(0.2)
    raise AssertionError(f"fewer than {succeeded} jobs succeeded in {timeout} s")


def driver_info(submit_dir: Path) -> dict[str, object]:
    content: dict[str, object] = json.loads((submit_dir / "parsl" / "driver.json").read_text())
    return content


def group_gone(pgid: int) -> bool:
    """True when no process of group ``pgid`` runs any more (zombies not reaped yet do not count)."""
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                return False
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return True


@pytest.mark.slow
def test_failing_jobs_block_downstream_and_the_final_job_merges_the_rest(repo: Path, tmp_path: Path) -> None:
    submit_file = tmp_path / "faults.yaml"
    submit_file.write_text(FAULTS.format(demo=DEMO_SUBMIT))
    submit_dir = tmp_path / "submit"
    code, out, _ = bps(
        "--no-progress", "submit", "--wait", submit_file, *submit_args(repo, submit_dir, "u/t/faults")
    )
    assert code == WmsState.FAILED
    assert "ended FAILED" in out
    run_id = run_id_of(out)

    _, out, _ = bps("report", "--id", run_id, "--return-exit-codes")
    labels = table_rows(out, "LABEL")
    assert labels["makeWarp"]["FAILED"] == "4" and labels["makeWarp"]["SUCCEEDED"] == "4"
    assert int(labels["assembleCoadd"]["PRUNED"]) > 0 and labels["finalJob"]["SUCCEEDED"] == "1"
    assert labels["consolidateVisitSummary"]["SUCCEEDED"] == "2"
    failed = table_rows(out, "JOB ")
    assert sorted(failed) == sorted(name for name in failed if name.startswith("makeWarp_2025123000001_"))
    assert len(failed) == 4
    for name, row in failed.items():
        assert row["EXIT"] == "1" and row["ATTEMPTS"] == "1"
        log = submit_dir / "jobs" / "makeWarp" / f"{name}.log"
        assert str(log) in out and f"refusing {name}" in log.read_text()
    codes = out[out.index("Exit codes of failed jobs:") :].splitlines()
    # Payload errors: 4 jobs with exit code 1; no infrastructure errors.
    assert next(line for line in codes if line.startswith("makeWarp")).split() == [
        "makeWarp",
        "4",
        "1",
        "(x4)",
        "0",
    ]

    content = json.loads(bps("report", "--id", run_id, "--json")[1])["runs"][0]
    summaries = [job for job in content["jobs"] if job["label"] == "consolidateVisitSummary"]
    assert [job["attempts"] for job in summaries] == [2, 2]

    # The final job merged what succeeded: both calexps, the second visit's warps, no first-visit warp.
    with open_registry(repo) as registry:
        assert len(registry.query_datasets("calexp", "u/t/faults")) == 2
        warps = registry.query_datasets("deepCoadd_directWarp", "u/t/faults")
        assert sorted({ref.data_id["visit"] for ref in warps}) == [2025123100001]
        assert len(warps) == 4
    assert bps("status", "--id", run_id)[0] == WmsState.FAILED


@pytest.mark.slow
def test_driver_killed_then_restart_loses_and_duplicates_nothing(repo: Path, tmp_path: Path) -> None:
    submit_dir = tmp_path / "submit"
    code, out, err = bps("submit", DEMO_SUBMIT, *submit_args(repo, submit_dir, "u/t/killed"))
    assert code == 0, err
    first_id = run_id_of(out)
    wait_for(submit_dir, 6)
    info = driver_info(submit_dir)
    os.kill(int(str(info["pid"])), signal.SIGKILL)
    deadline = time.monotonic() + 30
    while bps("status", "--id", first_id)[0] != WmsState.FAILED and time.monotonic() < deadline:
        time.sleep(0.2)
    _, out, _ = bps("report", "--id", first_id)
    assert "driver process" in out and "is gone" in out

    code, out, err = bps("--no-progress", "restart", "--id", first_id, "--wait")
    assert code == 0, out + err
    second_id = run_id_of(out)
    assert second_id != first_id and json.loads((submit_dir / "run.json").read_text())["run_id"] == second_id
    labels = table_rows(bps("report", "--id", second_id)[1], "LABEL")
    assert labels["TOTAL"]["SUCCEEDED"] == labels["TOTAL"]["EXPECTED"] == "26"

    with open_registry(repo) as registry:
        for dataset_type, expected in (("calexp", 2), ("deepCoadd_directWarp", 8), ("deepCoadd", 6)):
            refs = registry.query_datasets(dataset_type, "u/t/killed/run", find_first=False)
            assert len(refs) == expected, dataset_type
            assert len({ref.data_id for ref in refs}) == expected
    assert "registry and datastore agree" in butler_verify(repo)
    assert group_gone(int(str(info["pgid"])))


@pytest.mark.slow
def test_prepared_dir_submitted_then_cancelled(repo: Path, tmp_path: Path) -> None:
    submit_dir = tmp_path / "submit"
    code, out, err = bps("prepare", DEMO_SUBMIT, *submit_args(repo, submit_dir, "u/t/cancel"))
    assert code == 0, err
    assert (
        "Run Id" not in out
        and (submit_dir / "prepared.json").is_file()
        and not (submit_dir / "run.json").exists()
    )
    code, out, err = bps("submit", "--from-submit-dir", submit_dir)
    assert code == 0, err
    run_id = run_id_of(out)
    code, _, err = bps("submit", "--from-submit-dir", submit_dir)
    assert code == 1 and f"was already submitted as run {run_id}" in err
    wait_for(submit_dir, 3)
    assert bps("cancel", "--id", run_id)[:2] == (0, f"Cancelled run {run_id} (u_t_cancel_run).\n")
    code, out, _ = bps("status", "--id", run_id)
    assert code == WmsState.DELETED and out == "DELETED\n"
    assert group_gone(int(str(driver_info(submit_dir)["pgid"])))
    _, out, _ = bps("report")
    assert out.splitlines()[2].split()[0] == "DELETED"
    labels = table_rows(bps("report", "--id", run_id)[1], "LABEL")
    assert int(labels["TOTAL"]["SUCCEEDED"]) < 26
