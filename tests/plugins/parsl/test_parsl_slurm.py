"""The Parsl engine on a real Slurm cluster (``.ci/start-slurm.sh`` starts a one-node one).

Skipped, with the reason, only outside CI when Slurm is not installed; in CI (``CI`` or
``QUANTA_TEST_SLURM`` set) an unreachable Slurm fails the tests.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from parsl_workflows import RETRY, Spec, by_name, make_workflow, marker, run_to_end, runs, wait_until

from bps.wms import WmsState
from bps.workflow import WhenRun
from plugins.parsl.service import ParslService
from plugins.parsl.settings import ParslSiteSettings
from plugins.parsl.state import read_driver_info
from tests.bps.wms_contract import WmsServiceContract

MUST_RUN = bool(os.environ.get("CI") or os.environ.get("QUANTA_TEST_SLURM"))


def slurm_service() -> ParslService:
    if shutil.which("sinfo") is None and not MUST_RUN:
        pytest.skip(
            "Slurm is not installed (sinfo not found) and CI/QUANTA_TEST_SLURM is unset; run .ci/start-slurm.sh"
        )
    settings = ParslSiteSettings.model_validate(
        {"class": "slurm", "partition": os.environ.get("SLURM_PARTITION", "debug"), "maxWorkers": 2,
         "walltime": "00:10:00", "launcher": "srun"}
    )  # fmt: skip
    service = ParslService(settings)
    service.ping()  # raises BpsError (a failure, not a skip) when Slurm does not answer
    return service


pytestmark = pytest.mark.slow


class TestParslSlurmContract(WmsServiceContract):
    """The shared contract, with every job run inside a Slurm batch job."""

    @pytest.fixture
    def service(self, tmp_path: Path) -> ParslService:
        return slurm_service()


def test_slurm_jobs_retry_fail_and_merge(tmp_path: Path) -> None:
    engine = slurm_service()
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    flaky = (
        f"{marker(m, 'flaky')}; echo job=$SLURM_JOB_ID; if [ ! -e {m}/seen ]; then touch {m}/seen; exit 3; fi"
    )
    specs = [
        Spec("flaky", flaky, resources=RETRY),
        Spec("bad", "exit 1", resources=RETRY),
        Spec("blocked", marker(m, "blocked"), ("bad",)),
        Spec("after", f'{marker(m, "after")}; test -n "$SLURM_JOB_ID"', ("flaky",)),
    ]
    workflow = make_workflow(
        submit, specs, init=marker(m, "init"), final=marker(m, "final"), when=WhenRun.ALWAYS
    )
    engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit, timeout=240)
    jobs = by_name(report)
    assert report.state is WmsState.FAILED
    assert jobs["flaky"].state is WmsState.SUCCEEDED and jobs["flaky"].attempts == 2
    assert jobs["bad"].exit_code == 1 and jobs["blocked"].state is WmsState.PRUNED
    assert jobs["after"].state is WmsState.SUCCEEDED
    assert (runs(m, "init"), runs(m, "flaky"), runs(m, "blocked"), runs(m, "final")) == (1, 2, 0, 1)
    job_ids = {
        line.split("=", 1)[1]
        for line in jobs["flaky"].log_path.read_text().splitlines()
        if line.startswith("job=")
    }
    assert job_ids and "" not in job_ids, "the job ran inside a Slurm batch job"
    # The driver's cleanup cancelled its blocks: none of them is still queued or running.
    queue = subprocess.run(
        ["squeue", "-h", "-o", "%i %T", "-j", ",".join(sorted(job_ids))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert "RUNNING" not in queue.stdout and "PENDING" not in queue.stdout


def test_democam_demo_through_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``bps submit --wait`` of the DemoCam demo (one detector, one band) with computeSite slurm."""
    slurm_service()  # skip or fail as the other Slurm tests do
    from click.testing import CliRunner

    from bps.cli import main
    from butler.repository import open_registry
    from tests.e2e.democam_repository import EXAMPLES, build_democam_repository

    monkeypatch.setenv("QUANTA_BPS_HOME", str(tmp_path / "bps_home"))
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    repo = build_democam_repository(tmp_path / "democam")
    submit_file = tmp_path / "slurm_submit.yaml"
    submit_file.write_text(
        f"includeConfigs: [{EXAMPLES / 'demo_submit.yaml'}]\n"
        "computeSite: slurm\n"
        "site:\n"
        "  slurm: {class: slurm, partition: debug, maxWorkers: 2, walltime: '00:20:00'}\n"
    )
    submit_dir = tmp_path / "submit"
    query = "instrument = 'DemoCam' AND detector = 0 AND band = 'g'"
    args = ["--no-progress", "submit", "--wait", str(submit_file), "-b", str(repo), "-p",
            str(EXAMPLES / "demo_pipeline.yaml"), "--submit-path", str(submit_dir), "-o", "u/t/slurm",
            "--output-run", "u/t/slurm/run", "-d", query]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, (result.output, (submit_dir / "parsl" / "driver.log").read_text())
    assert "ended SUCCEEDED" in result.stdout
    with open_registry(repo) as registry:
        assert len(registry.query_datasets("deepCoadd", "u/t/slurm")) == 6
    logs = list((submit_dir / "jobs").glob("*/*.log"))
    assert len(logs) == 26
    settings = (submit_dir / "parsl" / "settings.json").read_text()
    assert '"siteClass": "slurm"' in settings
    scripts = (submit_dir / "parsl" / "runinfo").glob("*/submit_scripts/parsl.quanta.block-*")
    assert any("#SBATCH" in path.read_text() for path in scripts if path.suffix not in {".stdout", ".stderr"})


def test_slurm_kill_9_then_restart_cancels_the_old_block(tmp_path: Path) -> None:
    engine = slurm_service()
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    specs = [Spec(f"s{i}", f"{marker(m, f's{i}')}; sleep 2") for i in range(4)]
    workflow = make_workflow(submit, specs, final=marker(m, "final"))
    engine.submit(engine.prepare(workflow, submit))
    wait_until(lambda: runs(m, "s0") + runs(m, "s1") >= 1, 120, "a job to start in Slurm")
    wait_until(lambda: bool(getattr(read_driver_info(submit), "batch_jobs", [])), 30, "the block id")
    info = read_driver_info(submit)
    assert info is not None
    old_blocks = info.batch_jobs
    os.kill(info.pid, signal.SIGKILL)
    wait_until(lambda: engine.status(submit) is WmsState.FAILED, 30, "the dead driver to be noticed")
    engine.restart(submit)
    queue = subprocess.run(
        ["squeue", "-h", "-t", "R,PD", "-o", "%i"], capture_output=True, text=True, check=True
    )
    assert not set(old_blocks) & set(queue.stdout.split()), "restart cancelled the old run's blocks"
    report = run_to_end(engine, submit, timeout=240)
    assert report.state is WmsState.SUCCEEDED
    assert all(1 <= runs(m, f"s{i}") <= 2 for i in range(4)) and runs(m, "final") == 1
