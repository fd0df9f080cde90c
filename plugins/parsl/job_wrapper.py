"""What every Parsl job runs: ``python -m plugins.parsl.job_wrapper [options] -- COMMAND...``.

Runs COMMAND in its own session with stdout and stderr appended to the job log, records the
attempt's process group (so cancel and restart can kill it) and, at the end, its outcome in
``--info``. With ``--memory-mb`` it polls the resident memory of the command's process tree and
kills the tree when it exceeds the request (exit code `EXIT_MEMORY`): the memory request is enforced
here because the local executors cannot. ``--walltime`` likewise (exit code `EXIT_WALLTIME`).
Imports little (psutil only when memory is enforced) to keep per-job overhead low.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .json_files import write_json_atomically

EXIT_MEMORY = 247
"""Exit code when the job exceeded its memory request."""
EXIT_WALLTIME = 248
"""Exit code when the job exceeded its walltime."""
EXIT_USAGE = 249
"""Exit code for a wrapper usage error."""
EXIT_CANCELLED = 143
"""Exit code when the run was cancelled before the job started (``--stop-file`` exists)."""

_OPTIONS = frozenset(
    {"--log", "--memory-mb", "--walltime", "--info", "--attempt", "--cwd", "--env", "--stop-file"}
)

_USAGE = (
    "usage: python -m plugins.parsl.job_wrapper --log LOG [--memory-mb N] [--walltime S] [--info JSON] "
    "[--attempt N] [--cwd DIR] [--env K=V ...] [--stop-file PATH] -- COMMAND..."
)


def _parse(argv: list[str]) -> tuple[dict[str, str], list[str], list[str]]:
    options: dict[str, str] = {}
    env: list[str] = []
    index = 0
    while index < len(argv) and argv[index] != "--":
        key = argv[index]
        if key not in _OPTIONS:
            raise ValueError(f"unknown option {key!r}")
        if index + 1 >= len(argv):
            raise ValueError(f"option {key} needs a value")
        if key == "--env":
            env.append(argv[index + 1])
        else:
            options[key[2:]] = argv[index + 1]
        index += 2
    command = argv[index + 1 :]
    if "log" not in options or not command:
        raise ValueError("--log and a command after -- are required")
    return options, env, command


def _tree_rss(psutil: Any, root: Any) -> int:
    total = 0
    try:
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.Error:
            continue
    return total


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(OSError):
        os.killpg(pgid, signal.SIGKILL)


def _write_info(path: Path | None, info: dict[str, Any]) -> None:
    if path is not None:
        write_json_atomically(path, info)


def run(argv: list[str]) -> int:
    """Run the command described by ``argv``; return the exit code to exit with."""
    try:
        options, env_pairs, command = _parse(argv)
        memory_mb = int(options.get("memory-mb", "0"))
        walltime = float(options.get("walltime", "0"))
    except ValueError as err:
        print(f"job_wrapper: {err}\n{_USAGE}", file=sys.stderr)
        return EXIT_USAGE
    info_path = Path(options["info"]) if "info" in options else None
    log_path = Path(options["log"])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environment = dict(os.environ)
    for pair in env_pairs:
        key, _, value = pair.partition("=")
        environment[key] = value
    started = time.time()
    if "stop-file" in options and os.path.exists(options["stop-file"]):
        _write_info(
            info_path,
            {
                "attempt": int(options.get("attempt", "1")),
                "exit_code": EXIT_CANCELLED,
                "reason": "run cancelled before the job started",
                "host": socket.gethostname(),
            },
        )
        return EXIT_CANCELLED
    with open(log_path, "ab", buffering=0) as log:
        limit_text = f"{memory_mb} MB" if memory_mb else "none"
        log.write(
            f"=== attempt {options.get('attempt', '1')} on {socket.gethostname()} at "
            f"{time.strftime('%Y-%m-%dT%H:%M:%S%z')}; memory limit {limit_text}\n".encode()
        )
        try:
            child = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=options.get("cwd"),
                env=environment,
            )
        except OSError as err:
            log.write(f"=== cannot start {command[0]!r}: {err}\n".encode())
            return 127
        info: dict[str, Any] = {
            "pgid": child.pid,
            "wrapper_pid": os.getpid(),
            "worker_pgid": os.getpgrp(),
            "host": socket.gethostname(),
            "attempt": int(options.get("attempt", "1")),
            "memory_mb": memory_mb,
            "started": started,
        }
        _write_info(info_path, info)
        terminated: list[int] = []

        def on_signal(signum: int, _frame: object) -> None:
            terminated.append(signum)
            _kill_group(child.pid)

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        exit_code, reason, peak = _supervise(child, memory_mb, walltime, started)
        if terminated:
            reason = f"terminated by signal {terminated[0]}"
        detail = f" ({reason})" if reason and reason != f"exit code {exit_code}" else ""
        log.write(f"=== exit code {exit_code}{detail}\n".encode())
    info.update(exit_code=exit_code, reason=reason, peak_rss_mb=peak, ended=time.time())
    _write_info(info_path, info)
    return exit_code


def _supervise(
    child: subprocess.Popen[bytes], memory_mb: int, walltime: float, started: float
) -> tuple[int, str, int]:
    """Wait for ``child``, enforcing memory and walltime; return (exit code, reason, peak RSS MB)."""
    psutil: Any = None
    root: Any = None
    if memory_mb > 0:
        import psutil as psutil_module  # only jobs with a memory limit pay for the import

        psutil = psutil_module
        try:
            root = psutil.Process(child.pid)
        except psutil.Error:
            root = None
    peak = 0
    interval = 0.02
    reason = ""
    forced: int | None = None
    while True:
        try:
            code = child.wait(timeout=interval)
            break
        except subprocess.TimeoutExpired:
            pass
        interval = min(interval * 2, 0.5)
        if root is not None:
            rss_mb = _tree_rss(psutil, root) // (1024 * 1024)
            peak = max(peak, rss_mb)
            if rss_mb > memory_mb:
                _kill_group(child.pid)
                reason, forced = f"exceeded {memory_mb} MB (resident {rss_mb} MB)", EXIT_MEMORY
        if walltime and time.time() - started > walltime and forced is None:
            _kill_group(child.pid)
            reason, forced = f"exceeded walltime {walltime:g} s", EXIT_WALLTIME
    _kill_group(child.pid)  # leftovers of the command's session
    if forced is not None:
        return forced, reason, peak
    if code < 0:
        return 128 - code, f"killed by signal {-code}", peak
    return code, ("" if code == 0 else f"exit code {code}"), peak


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
