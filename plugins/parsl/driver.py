"""The detached driver of a Parsl run: ``python -m plugins.parsl.driver SUBMIT_DIR [--restart] [--run-id ID]``.

It owns the DataFlowKernel, hands jobs to Parsl as their parents succeed (a ready queue and a
bounded number in flight; no Parsl dependency chains), retries failed attempts with escalated
memory, prunes the descendants of a failed job, runs the final job according to ``whenRun``,
records everything in the event log (`plugins.parsl.state`) and exits. SIGTERM cancels the run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import socket
import sys
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from pathlib import Path
from typing import Any

import numpy as np

from bps.errors import BpsError, SubmitDirError
from bps.wms import WmsState
from bps.workflow import GENERIC_WORKFLOW_FILE, GenericWorkflow, GenericWorkflowJob, WhenRun

from .json_files import read_json_object
from .parsl_adapter import ParslAdapter
from .settings import ParslSiteSettings
from .state import (
    DriverInfo,
    EventLog,
    attempt_info_path,
    engine_dir,
    job_log_path,
    read_run_state,
    write_driver_info,
    write_json_atomically,
)

__all__ = ["SETTINGS_FILE", "Driver", "kill_group", "load_settings", "main", "new_run_id", "save_settings"]

_log = logging.getLogger("plugins.parsl.driver")

SETTINGS_FILE = "settings.json"
STOP_FILE = "stop"
_FINAL = -1  # index of the final job in the ready queue


def new_run_id() -> str:
    """A short unique run id."""
    return f"parsl-{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:6]}"


def save_settings(submit_dir: Path, settings: ParslSiteSettings) -> Path:
    """Write the site settings the driver will use to ``<submit>/parsl/settings.json``."""
    path = engine_dir(submit_dir) / SETTINGS_FILE
    write_json_atomically(
        path, {"format_version": 1, "settings": settings.model_dump(mode="json", by_alias=True)}
    )
    return path


def load_settings(submit_dir: Path) -> ParslSiteSettings:
    """Read the settings `save_settings` wrote."""
    path = engine_dir(submit_dir) / SETTINGS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ParslSiteSettings.model_validate(data["settings"])
    except FileNotFoundError:
        raise SubmitDirError(f"{path} is missing: the run was not prepared by the parsl engine.") from None
    except (ValueError, KeyError, TypeError) as err:
        raise SubmitDirError(f"{path}: unreadable settings: {err}") from None


def kill_group(pgid: int, sig: int = signal.SIGKILL) -> bool:
    """Signal process group ``pgid`` unless it is ours; True if it existed."""
    if pgid <= 1 or pgid == os.getpgrp():
        return False
    try:
        os.killpg(pgid, sig)
    except OSError:
        return False
    return True


class Driver:
    """One run (or restart) of a prepared submit directory."""

    def __init__(self, submit_dir: Path, run_id: str, restart: bool) -> None:
        self.submit_dir = submit_dir
        self.run_id = run_id
        self.workflow = GenericWorkflow.load(submit_dir / GENERIC_WORKFLOW_FILE)
        self.settings = load_settings(submit_dir)
        self.adapter = ParslAdapter(self.settings, engine_dir(submit_dir) / "runinfo")
        self.names = self.workflow.job_names()
        self.states: list[WmsState] = [WmsState.UNREADY] * len(self.names)
        self.cancelled = False
        self.stop_file = engine_dir(submit_dir) / STOP_FILE
        self.stop_file.unlink(missing_ok=True)
        self.in_flight: dict[Future[Any], tuple[int, int, int]] = {}  # future -> (index, attempt, memory)
        self.ready: deque[tuple[int, int]] = deque()  # (index, attempt)
        self.final_state = WmsState.UNREADY
        self.info: DriverInfo | None = None
        self._new_worker_pgids: set[int] = set()
        previous = read_run_state(submit_dir) if restart else None
        self.events = EventLog(submit_dir)
        if previous is not None:
            for index, name in enumerate(self.names):
                job = previous.jobs.get(name)
                if job is not None and job.state is WmsState.SUCCEEDED:
                    self.states[index] = WmsState.SUCCEEDED
        parents, children = self.workflow.edges()
        offsets_order = np.argsort(parents, kind="stable")
        self._child_targets = children[offsets_order]
        self._child_offsets = np.searchsorted(parents[offsets_order], np.arange(len(self.names) + 1))
        succeeded = np.array([s is WmsState.SUCCEEDED for s in self.states], dtype=bool)
        keep = ~succeeded[parents] if len(parents) else np.empty(0, dtype=bool)
        self.waiting = np.bincount(children[keep], minlength=len(self.names)).astype(np.int64)

    # -- the run ------------------------------------------------------------------------------------

    def run(self, on_started: Callable[[], None] | None = None, info: DriverInfo | None = None) -> WmsState:
        """Run every job that has not succeeded yet, then the final job; return the run's state."""
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, self._on_sigterm)
        self.info = info
        self.adapter.start()
        self.events.run_started(self.run_id)
        if on_started is not None:
            on_started()
        kept = sum(s is WmsState.SUCCEEDED for s in self.states)
        _log.info(
            "run %s: %d jobs (%d kept from before), %d in flight at most",
            self.run_id,
            len(self.names),
            kept,
            self.settings.max_in_flight,
        )
        for index in self.workflow.order().tolist():
            if self.waiting[index] == 0 and self.states[index] is not WmsState.SUCCEEDED:
                self.ready.append((index, 1))
        self._drain()
        if self.cancelled:
            self._delete_unfinished()
        self._run_final()
        return self._outcome()

    def _drain(self) -> None:
        """Submit ready jobs and collect finished ones until nothing is ready or in flight."""
        limit = self.settings.max_in_flight
        while True:
            if self.cancelled:
                self._kill_in_flight()
                return
            while self.ready and len(self.in_flight) < limit:
                self._submit(*self.ready.popleft())
            if not self.in_flight:
                return
            done, _ = wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                self._finished(future)
            self._record_resources()

    def _record_resources(self) -> None:
        """Keep ``driver.json`` up to date with the Slurm blocks and worker pools to clean up after a crash."""
        if self.info is None:
            return
        batch_jobs = self.adapter.batch_jobs()
        if batch_jobs != self.info.batch_jobs or self._new_worker_pgids:
            self.info.batch_jobs = batch_jobs
            self.info.worker_pgids = sorted({*self.info.worker_pgids, *self._new_worker_pgids})
            self._new_worker_pgids.clear()
            write_driver_info(self.submit_dir, self.info)

    def _job(self, index: int) -> GenericWorkflowJob:
        if index == _FINAL:
            final = self.workflow.final_job
            assert final is not None
            return final
        return self.workflow.job(self.names[index])

    def _submit(self, index: int, attempt: int) -> None:
        job = self._job(index)
        resources = job.resources
        memory = resources.memory_for_attempt(attempt)
        log = job_log_path(self.submit_dir, job.label, job.name)
        log.parent.mkdir(parents=True, exist_ok=True)
        wrapper = [
            sys.executable, "-m", "plugins.parsl.job_wrapper",
            "--log", str(log),
            "--info", str(attempt_info_path(self.submit_dir, job.name)),
            "--attempt", str(attempt),
            "--cwd", str(self.submit_dir),
        ]  # fmt: skip
        if self.settings.enforce_memory:
            wrapper += ["--memory-mb", str(memory)]
        if resources.request_walltime:
            wrapper += ["--walltime", str(resources.request_walltime)]
        for key, value in job.environment.items():
            wrapper += ["--env", f"{key}={value}"]
        if index != _FINAL:
            wrapper += ["--stop-file", str(self.stop_file)]
        wrapper += ["--", "/bin/bash", "-c", self.workflow.resolve_command(job)]
        attempt_info_path(self.submit_dir, job.name).unlink(
            missing_ok=True
        )  # no stale record of an old attempt
        self.events.job(job.name, WmsState.PENDING, attempt=attempt, memory=memory)
        self._set_state(index, WmsState.PENDING)
        future = self.adapter.submit("exec " + shlex.join(wrapper), log)
        self.in_flight[future] = (index, attempt, memory)

    def _finished(self, future: Future[Any]) -> None:
        index, attempt, _memory = self.in_flight.pop(future)
        job = self._job(index)
        exit_code, reason = self.adapter.outcome(future)
        info = read_json_object(attempt_info_path(self.submit_dir, job.name)) or {}
        self._note_worker_group(info)
        if exit_code != 0 and info.get("attempt") == attempt and "exit_code" in info:
            exit_code, reason = int(info["exit_code"]), str(info.get("reason") or reason)
        if exit_code == 0:
            self.events.job(job.name, WmsState.SUCCEEDED, attempt=attempt, exit_code=0)
            self._set_state(index, WmsState.SUCCEEDED)
            if index != _FINAL:
                self._release_children(index)
            return
        if self.cancelled:
            self._record_deleted(index, attempt, exit_code)
            return
        if job.resources.should_retry(attempt, exit_code):
            _log.info("%s attempt %d failed (%s); retrying", job.name, attempt, reason)
            self.events.job(job.name, WmsState.READY, attempt=attempt, exit_code=exit_code,
                            reason=f"attempt {attempt}: {reason}; retrying")  # fmt: skip
            self._set_state(index, WmsState.READY)
            self.ready.appendleft((index, attempt + 1))
            return
        _log.info("%s failed after %d attempt(s): %s", job.name, attempt, reason)
        self.events.job(job.name, WmsState.FAILED, attempt=attempt, exit_code=exit_code, reason=reason)
        self._set_state(index, WmsState.FAILED)
        if index != _FINAL:
            self._prune_below(index)

    def _note_worker_group(self, info: dict[str, Any]) -> None:
        """Remember the process group of the worker pool that ran an attempt (to clean up after a crash)."""
        pgid = info.get("worker_pgid")
        known = self.info.worker_pgids if self.info is not None else []
        local = info.get("host") == socket.gethostname()
        if isinstance(pgid, int) and local and pgid not in known and pgid != os.getpgrp():
            self._new_worker_pgids.add(pgid)

    def _set_state(self, index: int, state: WmsState) -> None:
        if index == _FINAL:
            self.final_state = state
        else:
            self.states[index] = state

    def _children(self, index: int) -> list[int]:
        targets: list[int] = self._child_targets[
            self._child_offsets[index] : self._child_offsets[index + 1]
        ].tolist()
        return targets

    def _release_children(self, index: int) -> None:
        for child in self._children(index):
            self.waiting[child] -= 1
            if self.waiting[child] == 0 and self.states[child] is WmsState.UNREADY:
                self.ready.append((child, 1))

    def _prune_below(self, index: int) -> None:
        """Mark every descendant of failed job ``index`` PRUNED (iteratively)."""
        reason = f"blocked by {self.names[index]}"
        stack = self._children(index)
        while stack:
            child = stack.pop()
            if self.states[child] is not WmsState.UNREADY:
                continue
            self.states[child] = WmsState.PRUNED
            self.events.job(self.names[child], WmsState.PRUNED, reason=reason)
            stack.extend(self._children(child))

    # -- cancel -------------------------------------------------------------------------------------

    def _on_sigterm(self, signum: int, _frame: object) -> None:
        if not self.cancelled:
            _log.info("signal %d: cancelling the run", signum)
            self.cancelled = True
            self.stop_file.touch()

    def _kill_in_flight(self) -> None:
        """Kill the running attempts' process groups; wait (bounded) for Parsl to report them."""
        self.events.cancelled()
        self.ready.clear()
        for index, _attempt, _memory in self.in_flight.values():
            info = read_json_object(attempt_info_path(self.submit_dir, self._job(index).name)) or {}
            if "pgid" in info and "exit_code" not in info and info.get("host") == socket.gethostname():
                kill_group(int(info["pgid"]), signal.SIGTERM)
        deadline = time.time() + 30
        while self.in_flight and time.time() < deadline:
            done, _ = wait(list(self.in_flight), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                index, attempt, _memory = self.in_flight.pop(future)
                self._record_deleted(index, attempt, self.adapter.outcome(future)[0])
        for index, attempt, _memory in self.in_flight.values():
            self._record_deleted(index, attempt, None)
        self.in_flight.clear()

    def _record_deleted(self, index: int, attempt: int, exit_code: int | None) -> None:
        job = self._job(index)
        self.events.job(job.name, WmsState.DELETED, attempt=attempt, exit_code=exit_code, reason="cancelled")
        self._set_state(index, WmsState.DELETED)

    def _delete_unfinished(self) -> None:
        for index, state in enumerate(self.states):
            if not state.is_final:
                self.states[index] = WmsState.DELETED
                self.events.job(self.names[index], WmsState.DELETED, reason="cancelled before it ran")

    # -- final job and outcome ----------------------------------------------------------------------

    def _run_final(self) -> None:
        final = self.workflow.final_job
        if final is None:
            return
        all_ok = all(s is WmsState.SUCCEEDED for s in self.states)
        when = self.workflow.final_when
        if when is WhenRun.ALWAYS or (when is WhenRun.SUCCESS and all_ok and not self.cancelled):
            was_cancelled, self.cancelled = self.cancelled, False
            self.ready.append((_FINAL, 1))
            self._drain()
            self.cancelled = self.cancelled or was_cancelled
        else:
            self.final_state = WmsState.PRUNED
            self.events.job(final.name, WmsState.PRUNED, reason=f"whenRun {when}: not every job succeeded")

    def _outcome(self) -> WmsState:
        if self.cancelled:
            return WmsState.DELETED
        if all(s is WmsState.SUCCEEDED for s in self.states) and self.final_state in (
            WmsState.SUCCEEDED,
            WmsState.UNREADY,
        ):
            return WmsState.SUCCEEDED
        return WmsState.FAILED


def main(argv: list[str] | None = None) -> int:
    """Entry point of the detached driver process."""
    parser = argparse.ArgumentParser(prog="python -m plugins.parsl.driver")
    parser.add_argument("submit_dir", type=Path)
    parser.add_argument("--restart", action="store_true")
    parser.add_argument("--run-id", default=None)
    parser.add_argument("--foreground", action="store_true", help="do not fork into the background")
    args = parser.parse_args(argv)
    if not args.foreground:
        if os.fork():
            return 0  # the launcher exits at once; the driver is reparented and never a zombie of bps
        os.setsid()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("parsl").propagate = False  # Parsl logs to <submit>/parsl/runinfo/*/parsl.log
    submit_dir: Path = args.submit_dir.resolve()
    run_id = args.run_id or new_run_id()
    info = DriverInfo(run_id=run_id, pid=os.getpid(), pgid=os.getpgrp(), host=socket.gethostname(),
                      started=time.time())  # fmt: skip
    write_driver_info(submit_dir, info)
    driver: Driver | None = None
    try:
        driver = Driver(submit_dir, run_id, args.restart)

        def started() -> None:
            info.ready = True
            write_driver_info(submit_dir, info)  # submit() waits for this (or for an error)

        outcome = driver.run(started, info)
    except (BpsError, Exception) as err:
        _log.error("driver failed: %s", err)
        traceback.print_exc()
        info.error = f"{type(err).__name__}: {err}"[:500]
        outcome = WmsState.FAILED
    finally:
        if driver is not None:
            try:
                driver.adapter.cleanup()
            except Exception:
                _log.exception("Parsl cleanup failed")
            driver.events.close()
    info.finished, info.outcome = time.time(), outcome.name
    write_driver_info(submit_dir, info)
    _log.info("run %s finished: %s", run_id, outcome.name)
    return 0 if outcome is WmsState.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
