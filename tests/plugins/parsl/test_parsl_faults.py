"""Fault tests of the Parsl engine: retries, failures, memory escalation, kill -9 + restart, cancel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from parsl_workflows import RETRY, Spec, by_name, make_workflow, marker, run_to_end, runs, wait_until

from bps.errors import BpsError, EngineNotInstalledError, SubmitDirError
from bps.wms import WmsState
from bps.workflow import JobResources, WhenRun
from plugins.parsl.service import ParslService
from plugins.parsl.settings import ParslSiteSettings
from plugins.parsl.state import read_attempt_infos, read_driver_info


def service(site_class: str = "threads") -> ParslService:
    return ParslService(ParslSiteSettings.model_validate({"class": site_class, "maxWorkers": 2}))


def group_alive(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group ``pgid``."""
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            alive.append(int(entry))
    return alive


def test_a_job_failing_once_succeeds_on_retry(tmp_path: Path) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    flaky = f"{marker(m, 'flaky')}; if [ ! -e {m}/seen ]; then touch {m}/seen; exit 3; fi"
    workflow = make_workflow(
        submit, [Spec("flaky", flaky, resources=RETRY), Spec("after", marker(m, "after"), ("flaky",))]
    )
    engine = service()
    engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit)
    assert report.state is WmsState.SUCCEEDED
    flaky_job = by_name(report)["flaky"]
    assert flaky_job.attempts == 2 and flaky_job.exit_code == 0
    assert (runs(m, "flaky"), runs(m, "after")) == (2, 1)
    log = (submit / "jobs" / "task" / "flaky.log").read_text()
    assert "=== attempt 1" in log and "=== exit code 3" in log and "=== attempt 2" in log


def test_a_job_always_failing_is_not_retried_for_exit_1_and_blocks_downstream(tmp_path: Path) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    specs = [
        Spec("bad", f"{marker(m, 'bad')}; echo broken input >&2; exit 1", resources=RETRY),
        Spec("child", marker(m, "child"), ("bad",)),
        Spec("grandchild", marker(m, "grandchild"), ("child",)),
        Spec("good", marker(m, "good")),
    ]
    workflow = make_workflow(submit, specs, final=marker(m, "final"), when=WhenRun.ALWAYS)
    engine = service()
    engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit)
    assert report.state is WmsState.FAILED
    jobs = by_name(report)
    bad = jobs["bad"]
    assert (bad.state, bad.attempts, bad.exit_code, bad.reason) == (WmsState.FAILED, 1, 1, "exit code 1")
    assert "broken input" in bad.log_path.read_text()
    assert bad.log_path == submit.resolve() / "jobs" / "task" / "bad.log"
    for name in ("child", "grandchild"):
        assert jobs[name].state is WmsState.PRUNED and jobs[name].reason == "blocked by bad"
    assert jobs["finalJob"].state is WmsState.SUCCEEDED
    assert (runs(m, "bad"), runs(m, "child"), runs(m, "good"), runs(m, "final")) == (1, 0, 1, 1)
    assert report.counts["task"] == {WmsState.FAILED: 1, WmsState.PRUNED: 2, WmsState.SUCCEEDED: 1}
    assert report.expected == {"task": 4, "finalJob": 1}


def test_restart_after_a_failure_reruns_only_what_did_not_succeed(tmp_path: Path) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    specs = [
        Spec("good", marker(m, "good")),
        Spec("needs_input", f"{marker(m, 'needs_input')}; test -e {m}/input", resources=RETRY),
        Spec("below", marker(m, "below"), ("needs_input", "good")),
    ]
    workflow = make_workflow(submit, specs, init=marker(m, "init"), final=marker(m, "final"))
    engine = service()
    first = engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit)
    assert report.state is WmsState.FAILED
    assert by_name(report)["below"].state is WmsState.PRUNED
    (m / "input").touch()  # the operator fixes the cause
    second = engine.restart(submit)
    assert second.run_id != first.run_id
    report = run_to_end(engine, submit)
    assert report.state is WmsState.SUCCEEDED
    assert report.run_id == second.run_id
    assert (runs(m, "init"), runs(m, "good"), runs(m, "needs_input"), runs(m, "below"), runs(m, "final")) == (
        1, 1, 2, 1, 2,
    )  # fmt: skip


def test_final_job_when_success_is_skipped_after_a_failure(tmp_path: Path) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    workflow = make_workflow(submit, [Spec("bad", "exit 2")], final=marker(m, "final"), when=WhenRun.SUCCESS)
    engine = service()
    engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit)
    assert by_name(report)["finalJob"].state is WmsState.PRUNED
    assert runs(m, "final") == 0


def test_memory_escalation_kills_then_succeeds(tmp_path: Path) -> None:
    submit = tmp_path / "submit"
    hog = f"{sys.executable} -c \"import time; b = b'x' * (150 * 2**20); time.sleep(0.5)\""
    resources = JobResources(
        request_memory=60, memory_multiplier=4, request_memory_max=1000, number_of_retries=2
    )
    workflow = make_workflow(submit, [Spec("hog", hog, resources=resources)])
    engine = service()
    engine.submit(engine.prepare(workflow, submit))
    report = run_to_end(engine, submit)
    hog_job = by_name(report)["hog"]
    assert report.state is WmsState.SUCCEEDED
    assert hog_job.attempts == 2
    assert engine.job_memories(submit)["hog"] == [60, 240]
    log = (submit / "jobs" / "task" / "hog.log").read_text()
    assert "exceeded 60 MB" in log and "memory limit 240 MB" in log


def test_missing_parsl_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['parsl'] = None\n"
        "from plugins.parsl.service import ParslService\n"
        "try:\n    ParslService()\nexcept Exception as err:\n    print(type(err).__name__, err)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert EngineNotInstalledError.__name__ in done.stdout
    assert "quanta[parsl]" in done.stdout


def test_a_driver_failing_early_is_reported_by_submit(tmp_path: Path) -> None:
    submit = tmp_path / "submit"
    workflow = make_workflow(submit, [Spec("a", "true")])
    engine = service()
    prepared = engine.prepare(workflow, submit)
    (submit / "generic_workflow.json").write_text("{not json")
    with pytest.raises(BpsError, match="driver failed early"):
        engine.submit(prepared)
    assert engine.status(submit) is WmsState.FAILED


def test_ping_local() -> None:
    assert "parsl" in service("local").ping()


@pytest.mark.parametrize("site_class", ["threads", pytest.param("local", marks=pytest.mark.slow)])
def test_cancel_mid_run_and_refusals_while_running(tmp_path: Path, site_class: str) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    specs = [Spec(f"s{i}", f"{marker(m, f's{i}')}; sleep 60") for i in range(4)]
    specs.append(Spec("after", marker(m, "after"), ("s0",)))
    workflow = make_workflow(submit, specs, final=marker(m, "final"), when=WhenRun.ALWAYS)
    engine = service(site_class)
    prepared = engine.prepare(workflow, submit)
    engine.submit(prepared)
    wait_until(lambda: sum(runs(m, f"s{i}") for i in range(4)) == 2, 60, "two jobs to run")
    with pytest.raises(SubmitDirError, match="already holds parsl run"):
        engine.submit(prepared)
    with pytest.raises(SubmitDirError, match="still running"):
        engine.restart(submit)
    info = read_driver_info(submit)
    assert info is not None
    job_groups = [a["pgid"] for a in read_attempt_infos(submit).values()]
    worker_groups = {a["worker_pgid"] for a in read_attempt_infos(submit).values()}
    started = time.monotonic()
    engine.cancel(submit)
    assert time.monotonic() - started < 30
    report = engine.report(submit)
    assert report.state is WmsState.DELETED
    jobs = by_name(report)
    assert {jobs[f"s{i}"].state for i in range(4)} == {WmsState.DELETED}
    assert jobs["after"].state is WmsState.DELETED
    assert jobs["finalJob"].state is WmsState.SUCCEEDED and runs(m, "final") == 1
    assert sum(runs(m, f"s{i}") for i in range(4)) == 2, "no queued job started after the cancel"
    for pgid in {info.pgid, *job_groups, *worker_groups}:
        if pgid != os.getpgrp():
            assert group_alive(pgid) == [], f"process group {pgid} still has processes"


@pytest.mark.slow
@pytest.mark.parametrize("site_class", ["threads", "local"])
def test_kill_9_of_the_driver_then_restart(tmp_path: Path, site_class: str) -> None:
    m, submit = tmp_path / "m", tmp_path / "submit"
    m.mkdir()
    specs = [Spec("first", marker(m, "first"))]
    specs += [Spec(f"mid{i}", f"{marker(m, f'mid{i}')}; sleep 1.5", ("first",)) for i in range(5)]
    specs.append(Spec("last", marker(m, "last"), tuple(f"mid{i}" for i in range(5))))
    workflow = make_workflow(submit, specs, init=marker(m, "init"), final=marker(m, "final"))
    engine = service(site_class)
    first_handle = engine.submit(engine.prepare(workflow, submit))
    wait_until(lambda: runs(m, "mid2") + runs(m, "mid3") >= 1, 60, "the middle jobs to start")
    info = read_driver_info(submit)
    assert info is not None
    os.kill(info.pid, signal.SIGKILL)
    wait_until(lambda: engine.status(submit) is WmsState.FAILED, 30, "the dead driver to be noticed")
    report = engine.report(submit)
    assert any(f"driver process {info.pid} is gone" in message for message in report.messages)
    done_before = {job.name for job in report.jobs if job.state is WmsState.SUCCEEDED}
    assert {"pipetaskInit", "first"} <= done_before
    handle = engine.restart(submit)
    assert handle.run_id != first_handle.run_id
    report = run_to_end(engine, submit)
    assert report.state is WmsState.SUCCEEDED, report
    assert all(job.state is WmsState.SUCCEEDED for job in report.jobs)
    for name in done_before:
        assert runs(m, "init" if name == "pipetaskInit" else name) == 1, f"{name} ran again after restart"
    for i in range(5):
        assert 1 <= runs(m, f"mid{i}") <= 2
    assert (runs(m, "last"), runs(m, "final")) == (1, 1)
    assert group_alive(info.pgid) == []
