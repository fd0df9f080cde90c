"""`ParslService`: the Parsl engine behind ``bps submit/status/report/cancel/restart/ping``.

``submit`` starts a detached driver (`plugins.parsl.driver`) and returns once it reports started;
everything else reads the state files in ``<submit>/parsl/`` (`plugins.parsl.state`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from bps.errors import BpsError, SubmitDirError
from bps.wms import (
    Capability,
    JobReport,
    RunHandle,
    RunReport,
    WmsService,
    WmsSettings,
    WmsState,
    WmsWorkflow,
)
from bps.workflow import GENERIC_WORKFLOW_FILE, GenericWorkflow

from . import parsl_adapter
from .driver import SETTINGS_FILE, kill_group, load_settings, new_run_id, save_settings
from .settings import ParslSiteSettings
from .state import (
    DriverInfo,
    engine_dir,
    job_log_path,
    process_alive,
    read_attempt_infos,
    read_driver_info,
    read_run_state,
)

__all__ = ["ParslService", "ParslWorkflow"]

DRIVER_LOG = "driver.log"
START_TIMEOUT = 120.0
"""Seconds `ParslService.submit` waits for the driver to load Parsl."""
CANCEL_TIMEOUT = 60.0
"""Seconds `ParslService.cancel` waits for the driver to finish before killing its process group."""


@dataclass(frozen=True)
class ParslWorkflow(WmsWorkflow):
    """A prepared Parsl run: the site settings are saved in ``<submit>/parsl/settings.json``."""

    settings: ParslSiteSettings | None = None


class ParslService(WmsService):
    """Runs a generic workflow with Parsl through a detached driver process."""

    name: ClassVar[str] = "parsl"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    settings_class: ClassVar[type[WmsSettings]] = ParslSiteSettings

    def __init__(self, settings: WmsSettings | None = None) -> None:
        parsl_adapter.ensure_parsl()
        if not isinstance(settings, ParslSiteSettings):
            extra = settings.model_dump(by_alias=True) if settings is not None else {}
            settings = ParslSiteSettings.model_validate(extra)
        super().__init__(settings)
        self.site: ParslSiteSettings = settings
        self._workflows: dict[Path, tuple[float, GenericWorkflow, list[tuple[str, str]]]] = {}

    @classmethod
    def engine_version(cls) -> str:
        """The installed Parsl version."""
        return parsl_adapter.parsl_version()

    # -- prepare and submit ---------------------------------------------------------------------

    def prepare(self, workflow: GenericWorkflow, submit_dir: Path) -> ParslWorkflow:
        """Validate the site settings (build the Parsl config) and save them for the driver."""
        workflow.validate()
        resolved = submit_dir.resolve()
        parsl_adapter.ParslAdapter(self.site, engine_dir(resolved) / "runinfo").build_config()
        path = save_settings(resolved, self.site)
        return ParslWorkflow(run=workflow.run, submit_dir=submit_dir, files=(path,), settings=self.site)

    def submit(self, prepared: WmsWorkflow) -> RunHandle:
        """Start the detached driver; return once it has loaded Parsl."""
        submit_dir = prepared.submit_dir.resolve()
        if not (engine_dir(submit_dir) / SETTINGS_FILE).exists():
            raise SubmitDirError(
                f"{submit_dir} was not prepared by the parsl engine (no parsl/{SETTINGS_FILE})."
            )
        if not (submit_dir / GENERIC_WORKFLOW_FILE).exists():
            raise SubmitDirError(f"{submit_dir / GENERIC_WORKFLOW_FILE} is missing.")
        info = read_driver_info(submit_dir)
        if info is not None:
            raise SubmitDirError(
                f"{submit_dir} already holds parsl run {info.run_id}; use restart, or a new submit directory."
            )
        run_id = self._start_driver(submit_dir, restart=False)
        return self._handle(submit_dir, run_id, prepared.run.run_name)

    def _handle(self, submit_dir: Path, run_id: str, run_name: str) -> RunHandle:
        return RunHandle(
            engine=self.name,
            engine_version=self.engine_version(),
            run_id=run_id,
            run_name=run_name,
            submit_dir=submit_dir,
        )

    def _start_driver(self, submit_dir: Path, restart: bool) -> str:
        run_id = new_run_id()
        log_path = engine_dir(submit_dir) / DRIVER_LOG
        log_path.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "plugins.parsl.driver", str(submit_dir), "--run-id", run_id]
        if restart:
            command.append("--restart")
        environment = dict(os.environ)
        environment["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), environment.get("PATH", "")])
        with open(log_path, "ab") as log:
            # The driver forks once and the parent exits, so the driver is nobody's child here.
            launcher = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=submit_dir,
                env=environment,
                start_new_session=True,
            )
        if launcher.wait(timeout=60) != 0:
            raise BpsError(f"The parsl driver did not start (exit {launcher.returncode}):\n{_tail(log_path)}")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            info = read_driver_info(submit_dir)
            if info is not None and info.run_id == run_id:
                if info.error or (info.finished is not None and not info.ready):
                    raise BpsError(f"The parsl driver failed early: {info.error}\n{_tail(log_path)}")
                if info.ready or info.finished is not None:
                    return run_id
                if not info.alive():
                    raise BpsError(
                        f"The parsl driver (pid {info.pid}) died while starting:\n{_tail(log_path)}"
                    )
            time.sleep(0.05)
        raise BpsError(
            f"The parsl driver did not report started within {START_TIMEOUT:g} s:\n{_tail(log_path)}"
        )

    # -- status and report ----------------------------------------------------------------------

    def _workflow(self, submit_dir: Path) -> GenericWorkflow:
        return self._cached(submit_dir)[1]

    def _cached(self, submit_dir: Path) -> tuple[float, GenericWorkflow, list[tuple[str, str]]]:
        """The saved workflow and its (job name, label) pairs, final job last; reloaded when it changes."""
        path = submit_dir / GENERIC_WORKFLOW_FILE
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            raise SubmitDirError(f"{path} is missing: is {submit_dir} a submit directory?") from None
        cached = self._workflows.get(path)
        if cached is None or cached[0] != mtime:
            workflow = GenericWorkflow.load(path)
            labels = [(job.name, job.label) for job in workflow.jobs()]
            if workflow.final_job is not None:
                labels.append((workflow.final_job.name, workflow.final_job.label))
            cached = self._workflows[path] = (mtime, workflow, labels)
        return cached

    def status(self, submit_dir: Path) -> WmsState:
        """The run's overall state."""
        submit_dir = submit_dir.resolve()
        _check_prepared(submit_dir)
        return self._run_state(read_driver_info(submit_dir))[0]

    @staticmethod
    def _run_state(info: DriverInfo | None) -> tuple[WmsState, list[str]]:
        if info is None:
            return WmsState.UNREADY, ["the run has not been submitted"]
        messages = [f"driver error: {info.error}"] if info.error else []
        if info.finished is not None:
            return WmsState[info.outcome or "FAILED"], messages
        if info.alive():
            return (WmsState.RUNNING if info.ready else WmsState.PENDING), messages
        messages.append(
            f"driver process {info.pid} is gone (see parsl/{DRIVER_LOG}); `bps restart` resumes the run"
        )
        return WmsState.FAILED, messages

    def report(self, submit_dir: Path) -> RunReport:
        """The run's state, per-label counts (with the expected ones) and every job's details."""
        submit_dir = submit_dir.resolve()
        _check_prepared(submit_dir)
        _, workflow, jobs_in_order = self._cached(submit_dir)
        info = read_driver_info(submit_dir)
        run_state, messages = self._run_state(info)
        folded = read_run_state(submit_dir).jobs
        pending = [name for name, job in folded.items() if job.state is WmsState.PENDING]
        started = read_attempt_infos(submit_dir, pending) if pending else {}
        counts: dict[str, dict[WmsState, int]] = {}
        exit_codes: dict[str, dict[int, int]] = {}
        reports: list[JobReport] = []
        for name, label in jobs_in_order:
            found = folded.get(name)
            state = found.state if found is not None else WmsState.UNREADY
            if state is WmsState.PENDING and found is not None:
                attempt_info = started.get(name, {})
                if attempt_info.get("attempt") == found.attempts and "exit_code" not in attempt_info:
                    state = WmsState.RUNNING
            per_label = counts.setdefault(label, {})
            per_label[state] = per_label.get(state, 0) + 1
            exit_code = found.exit_code if found is not None else None
            if state is WmsState.FAILED and exit_code is not None:
                per_code = exit_codes.setdefault(label, {})
                per_code[exit_code] = per_code.get(exit_code, 0) + 1
            reports.append(
                JobReport(
                    name=name,
                    label=label,
                    state=state,
                    attempts=found.attempts if found is not None else 0,
                    exit_code=exit_code,
                    reason=found.reason if found is not None else "",
                    log_path=job_log_path(submit_dir, label, name),
                )
            )
        return RunReport(
            run_id=info.run_id if info is not None else "",
            run=workflow.run,
            submit_dir=submit_dir,
            engine=self.name,
            state=run_state,
            expected=workflow.job_counts(),
            counts=counts,
            jobs=tuple(reports),
            messages=tuple(messages),
            submitted_at=info.started if info is not None else 0.0,
            exit_code_summary=exit_codes,
        )

    def job_memories(self, submit_dir: Path) -> dict[str, list[int]]:
        """Memory (MB) requested for each attempt of each job of the latest run."""
        return {name: job.memories for name, job in read_run_state(submit_dir.resolve()).jobs.items()}

    # -- cancel and restart ---------------------------------------------------------------------

    def cancel(self, submit_dir: Path) -> None:
        """SIGTERM the driver (it kills the running jobs, runs an ALWAYS final job, cleans up); wait,
        then kill whatever is left of its process group and of the jobs."""
        submit_dir = submit_dir.resolve()
        info = read_driver_info(submit_dir)
        if info is None:
            raise SubmitDirError(f"{submit_dir}: no parsl run was submitted there.")
        if info.host != socket.gethostname() and info.finished is None:
            raise BpsError(
                f"The parsl driver of {submit_dir} runs on host {info.host}; cancel the run there."
            )
        if info.alive():
            os.kill(info.pid, signal.SIGTERM)
            deadline = time.monotonic() + CANCEL_TIMEOUT
            while (
                time.monotonic() < deadline and info.host == socket.gethostname() and process_alive(info.pid)
            ):
                time.sleep(0.1)
        _kill_leftovers(submit_dir, info)

    def restart(self, submit_dir: Path) -> RunHandle:
        """Start a new driver that keeps succeeded jobs and reruns the others (and the final job)."""
        submit_dir = submit_dir.resolve()
        info = read_driver_info(submit_dir)
        if info is None:
            raise SubmitDirError(f"{submit_dir}: no parsl run was submitted there; use submit.")
        if info.alive():
            raise SubmitDirError(
                f"{submit_dir}: the parsl driver of run {info.run_id} (pid {info.pid}) is still running; "
                "cancel it first or wait for it to finish."
            )
        load_settings(submit_dir)  # fail here, not in the detached driver
        _kill_leftovers(submit_dir, info)
        run_id = self._start_driver(submit_dir, restart=True)
        return self._handle(submit_dir, run_id, self._workflow(submit_dir).run.run_name)

    def ping(self) -> str:
        """Parsl imports and the site answers (for slurm: ``sinfo``)."""
        return parsl_adapter.ping(self.site)


def _check_prepared(submit_dir: Path) -> None:
    if not (engine_dir(submit_dir) / SETTINGS_FILE).exists():
        raise SubmitDirError(
            f"{submit_dir} holds no parsl run (no parsl/{SETTINGS_FILE}); is it a submit directory of the parsl engine?"
        )


def _kill_leftovers(submit_dir: Path, info: DriverInfo) -> None:
    """SIGKILL the old driver's process group and every attempt that never recorded its end."""
    host = socket.gethostname()
    groups = {info.pgid} if info.host == host else set()
    for attempt in read_attempt_infos(submit_dir).values():
        if "exit_code" in attempt or attempt.get("host") != host:
            continue
        groups.update(attempt[key] for key in ("pgid", "worker_pgid") if isinstance(attempt.get(key), int))
    if info.host == host:
        groups.update(info.worker_pgids)
    _cancel_batch_jobs(info.batch_jobs)
    killed = [pgid for pgid in groups if kill_group(pgid)]
    deadline = time.monotonic() + 10
    while killed and time.monotonic() < deadline:  # SIGKILL is delivered asynchronously
        killed = [pgid for pgid in killed if group_alive(pgid)]
        time.sleep(0.05)


def _cancel_batch_jobs(job_ids: list[str]) -> None:
    """``scancel`` Slurm blocks of an old driver (the ones already gone are ignored)."""
    scancel = shutil.which("scancel")
    if job_ids and scancel is not None:
        subprocess.run([scancel, *job_ids], capture_output=True, check=False, timeout=60)


def group_alive(pgid: int) -> bool:
    """True if a live (non-zombie) process of process group ``pgid`` is left."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                return True
    return False


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"({path} is unreadable)"
    return "\n".join(text.splitlines()[-lines:])
