"""The Parsl engine's state in ``<submit>/parsl/``: an append-only event log and ``driver.json``.

The driver appends one JSON line per job state change to ``events.jsonl`` (one ``write`` per line
on an ``O_APPEND`` descriptor, so a ``kill -9`` tears at most the last line, which readers ignore).
Folding the log gives every job's latest state. ``driver.json`` says which process drives the run.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bps.errors import SubmitDirError
from bps.wms import WmsState

from .json_files import read_json_object, write_json_atomically

__all__ = [
    "ENGINE_DIR",
    "DriverInfo",
    "EventLog",
    "JobState",
    "RunState",
    "attempt_info_path",
    "engine_dir",
    "job_log_path",
    "process_alive",
    "read_attempt_infos",
    "read_driver_info",
    "read_run_state",
    "write_driver_info",
    "write_json_atomically",
]

FORMAT_VERSION = 1
ENGINE_DIR = "parsl"
EVENTS_FILE = "events.jsonl"
DRIVER_FILE = "driver.json"
ATTEMPTS_DIR = "attempts"


def engine_dir(submit_dir: Path) -> Path:
    """``<submit>/parsl``: where the engine keeps its files."""
    return submit_dir / ENGINE_DIR


def job_log_path(submit_dir: Path, label: str, job_name: str) -> Path:
    """``<submit>/jobs/<label>/<job>.log``: the job's stdout and stderr, every attempt appended."""
    return submit_dir / "jobs" / label / f"{job_name}.log"


def attempt_info_path(submit_dir: Path, job_name: str) -> Path:
    """Where the job wrapper records the running attempt's process group and, at the end, its outcome."""
    return engine_dir(submit_dir) / ATTEMPTS_DIR / f"{job_name}.json"


def process_alive(pid: int) -> bool:
    """True if ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class DriverInfo:
    """``driver.json``: the driver process of the current (latest) run."""

    run_id: str
    pid: int
    pgid: int
    host: str
    started: float
    finished: float | None = None
    outcome: str | None = None
    """Run state name when the driver finished (``SUCCEEDED``, ``FAILED``, ``DELETED``)."""
    error: str | None = None
    ready: bool = False
    """True once the DataFlowKernel is loaded and jobs are being submitted."""
    batch_jobs: list[str] = field(default_factory=list)
    """Slurm job ids of the Parsl blocks (scancelled by cancel and restart when left over)."""
    worker_pgids: list[int] = field(default_factory=list)
    """Process groups of local worker pools seen so far (killed when left over)."""

    def alive(self) -> bool:
        """Whether the driver still runs (on this host: checked through /proc)."""
        if self.finished is not None:
            return False
        if self.host != socket.gethostname():
            return True  # cannot check another host; trust the record
        return process_alive(self.pid) and _is_driver(self.pid)


def _is_driver(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return b"plugins.parsl.driver" in cmdline.read()
    except OSError:
        return False


def write_driver_info(submit_dir: Path, info: DriverInfo) -> None:
    """Write ``driver.json`` atomically."""
    data: dict[str, Any] = {"format_version": FORMAT_VERSION, **info.__dict__}
    write_json_atomically(engine_dir(submit_dir) / DRIVER_FILE, data)


def read_driver_info(submit_dir: Path) -> DriverInfo | None:
    """``driver.json``, or None before a driver started."""
    path = engine_dir(submit_dir) / DRIVER_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise SubmitDirError(f"{path}: unreadable driver record: {err}.") from None
    if data.pop("format_version", None) != FORMAT_VERSION:
        raise SubmitDirError(f"{path}: format_version is not {FORMAT_VERSION}.")
    try:
        return DriverInfo(**data)
    except TypeError as err:
        raise SubmitDirError(f"{path}: unexpected content: {err}.") from None


@dataclass
class JobState:
    """A job's latest state folded from the event log."""

    state: WmsState = WmsState.UNREADY
    attempts: int = 0
    exit_code: int | None = None
    reason: str = ""
    memories: list[int] = field(default_factory=list)
    """Memory (MB) requested for each attempt, in order."""


@dataclass
class RunState:
    """Everything the event log says: run ids in order and each job's state."""

    run_ids: list[str] = field(default_factory=list)
    jobs: dict[str, JobState] = field(default_factory=dict)
    cancelled: bool = False


class EventLog:
    """Appends events to ``<submit>/parsl/events.jsonl`` (crash-safe: one write per line)."""

    def __init__(self, submit_dir: Path) -> None:
        self.path = engine_dir(submit_dir) / EVENTS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        if os.fstat(self._fd).st_size == 0:
            self._write({"ev": "header", "format_version": FORMAT_VERSION})
        else:
            self._terminate_torn_line()

    def _terminate_torn_line(self) -> None:
        with open(self.path, "rb") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                os.write(self._fd, b"\n")

    def _write(self, event: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(event, separators=(",", ":")) + "\n").encode())

    def run_started(self, run_id: str) -> None:
        """A driver started run ``run_id``."""
        self._write({"ev": "run", "run_id": run_id, "t": round(time.time(), 3)})

    def cancelled(self) -> None:
        """The run was cancelled."""
        self._write({"ev": "cancel", "t": round(time.time(), 3)})

    def job(
        self,
        name: str,
        state: WmsState,
        *,
        attempt: int | None = None,
        memory: int | None = None,
        exit_code: int | None = None,
        reason: str = "",
    ) -> None:
        """Job ``name`` entered ``state`` (with the attempt's number, memory, exit code, reason)."""
        event: dict[str, Any] = {"ev": "job", "j": name, "s": state.name}
        if attempt is not None:
            event["a"] = attempt
        if memory is not None:
            event["m"] = memory
        if exit_code is not None:
            event["x"] = exit_code
        if reason:
            event["r"] = reason
        self._write(event)

    def close(self) -> None:
        """Close the file."""
        os.close(self._fd)


def iter_events(path: Path) -> Iterator[dict[str, Any]]:
    """Events of a log, skipping a torn (unparseable) line."""
    if not path.exists():
        return
    with open(path, "rb") as handle:
        for line in handle:
            try:
                event = json.loads(line)
            except ValueError:
                continue  # a line torn by kill -9
            if isinstance(event, dict):
                yield event


def read_run_state(submit_dir: Path) -> RunState:
    """Fold ``events.jsonl`` into each job's latest state (a new run resets what it reruns)."""
    result = RunState()
    jobs = result.jobs
    for event in iter_events(engine_dir(submit_dir) / EVENTS_FILE):
        kind = event.get("ev")
        if kind == "job":
            job = jobs.get(event["j"])
            if job is None:
                job = jobs[event["j"]] = JobState()
            state = WmsState[event["s"]]
            if "m" in event:
                if event.get("a") == 1:
                    job.memories = []
                job.memories.append(event["m"])
            job.state = state
            job.attempts = event.get("a", job.attempts)
            job.exit_code = event.get("x")
            job.reason = event.get("r", "")
        elif kind == "run":
            result.run_ids.append(event["run_id"])
            result.cancelled = False
            for job in jobs.values():  # a new run reruns every job that did not succeed
                if job.state is not WmsState.SUCCEEDED:
                    job.state, job.exit_code, job.reason, job.attempts = WmsState.UNREADY, None, "", 0
                    job.memories = []
        elif kind == "cancel":
            result.cancelled = True
        elif kind == "header" and event.get("format_version") != FORMAT_VERSION:
            raise SubmitDirError(
                f"{engine_dir(submit_dir) / EVENTS_FILE}: format_version {event.get('format_version')!r} "
                f"is not {FORMAT_VERSION}."
            )
    return result


def read_attempt_infos(submit_dir: Path, names: Iterable[str] | None = None) -> dict[str, dict[str, Any]]:
    """The job wrapper's records by job name (running attempts have no ``exit_code``).

    With ``names``, only those jobs' records are read (a report of a big run asks for the few
    pending jobs, not every job's file).
    """
    infos: dict[str, dict[str, Any]] = {}
    directory = engine_dir(submit_dir) / ATTEMPTS_DIR
    if not directory.is_dir():
        return infos
    paths = directory.glob("*.json") if names is None else (directory / f"{name}.json" for name in names)
    for path in paths:
        info = read_json_object(path)
        if info is not None:  # None: missing, or being replaced right now
            infos[path.stem] = info
    return infos
