"""The one module that imports Parsl: builds the Parsl `Config` from the site settings, runs the
DataFlowKernel, submits shell commands as ``bash_app`` tasks and tells how they ended.

Parsl is imported on first use (it takes most of a second), so ``bps report``/``status``, which
only read the state files, never pay for it.
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import shutil
import subprocess
import sys
from concurrent.futures import Future
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bps.errors import BpsConfigError, BpsError, EngineNotInstalledError

from .settings import ParslSiteSettings

__all__ = ["ParslAdapter", "ensure_parsl", "parsl_version", "python_bin_on_path"]

EXECUTOR_LABEL = "quanta"


def ensure_parsl() -> None:
    """Raise `EngineNotInstalledError` naming the extra when Parsl (or psutil) is not installed."""
    for package in ("parsl", "psutil"):
        try:
            found = importlib.util.find_spec(package) is not None
        except ValueError:
            found = False
        if not found:
            raise EngineNotInstalledError(
                f"The parsl engine needs the Python package {package!r}, which is not installed; "
                "install it with: pip install 'quanta[parsl]'."
            )


def parsl_version() -> str:
    """The installed Parsl version (from the package metadata: no import of Parsl)."""
    ensure_parsl()
    return importlib.metadata.version("parsl")


@functools.cache
def _parsl() -> SimpleNamespace:
    """The Parsl names this module uses, imported on first call."""
    ensure_parsl()
    try:
        import parsl
        from parsl.app.app import bash_app
        from parsl.app.errors import BashExitFailure
        from parsl.config import Config
        from parsl.executors import HighThroughputExecutor, ThreadPoolExecutor
        from parsl.launchers import SingleNodeLauncher, SrunLauncher
        from parsl.providers import LocalProvider, SlurmProvider
    except ImportError as err:
        raise EngineNotInstalledError(
            f"Parsl cannot be imported ({err}); reinstall it with: pip install 'quanta[parsl]'."
        ) from err
    return SimpleNamespace(
        parsl=parsl,
        bash_app=bash_app,
        BashExitFailure=BashExitFailure,
        Config=Config,
        HighThroughputExecutor=HighThroughputExecutor,
        ThreadPoolExecutor=ThreadPoolExecutor,
        SingleNodeLauncher=SingleNodeLauncher,
        SrunLauncher=SrunLauncher,
        LocalProvider=LocalProvider,
        SlurmProvider=SlurmProvider,
    )


def python_bin_on_path() -> str:
    """Put the directory of this Python first on PATH (HTEX starts interchange.py by name); return it."""
    directory = os.path.dirname(sys.executable)
    parts = os.environ.get("PATH", "").split(os.pathsep)
    if directory not in parts:
        os.environ["PATH"] = os.pathsep.join([directory, *parts])
    return directory


def _run_job(command: str, stdout: str | None = None, stderr: str | None = None) -> str:
    """The bash app: Parsl runs the returned command line."""
    return command


class ParslAdapter:
    """A Parsl DataFlowKernel for one driver run."""

    def __init__(self, settings: ParslSiteSettings, run_dir: Path) -> None:
        ensure_parsl()
        self.settings = settings
        self.run_dir = run_dir
        self._dfk: Any = None
        self._app: Any = None

    def build_config(self) -> Any:
        """The Parsl `Config` for the site (built, not started: also validates the settings)."""
        settings = self.settings
        p = _parsl()
        if settings.site_class == "threads":
            executor: Any = p.ThreadPoolExecutor(label=EXECUTOR_LABEL, max_threads=settings.max_workers)
        else:
            executor = p.HighThroughputExecutor(
                label=EXECUTOR_LABEL,
                address=settings.address,
                loopback_address="127.0.0.1",
                max_workers_per_node=settings.max_workers,
                cores_per_worker=1,
                heartbeat_period=settings.heartbeat_period,
                heartbeat_threshold=settings.heartbeat_threshold,
                poll_period=10,
                provider=self._provider(),
                encrypted=False,
            )
        return p.Config(
            executors=[executor],
            run_dir=str(self.run_dir),
            retries=0,
            strategy="simple" if settings.site_class == "slurm" else "none",
            strategy_period=settings.strategy_period,
            usage_tracking=0,
        )

    def _provider(self) -> Any:
        settings = self.settings
        p = _parsl()
        bin_dir = os.path.dirname(sys.executable)
        worker_init = f"export PATH={bin_dir}:$PATH"
        if settings.worker_init:
            worker_init += f"\n{settings.worker_init}"
        if settings.site_class == "local":
            return p.LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1, worker_init=worker_init)
        try:
            return p.SlurmProvider(
                partition=settings.partition,
                account=settings.account,
                qos=settings.qos,
                nodes_per_block=settings.nodes,
                mem_per_node=settings.mem_per_node,
                init_blocks=settings.init_blocks,
                min_blocks=settings.min_blocks,
                max_blocks=settings.max_blocks,
                walltime=settings.walltime,
                scheduler_options=settings.scheduler_options,
                worker_init=worker_init,
                cmd_timeout=settings.cmd_timeout,
                exclusive=settings.exclusive,
                launcher=p.SrunLauncher() if settings.launcher == "srun" else p.SingleNodeLauncher(),
            )
        except Exception as err:  # Parsl's own validation (typeguard, missing commands)
            raise BpsConfigError(f"site settings for slurm are not usable by Parsl: {err}") from err

    def start(self) -> None:
        """Load the DataFlowKernel (starts the interchange and the first block)."""
        python_bin_on_path()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        config = self.build_config()
        self._dfk = _parsl().parsl.load(config)
        self._app = _parsl().bash_app(_run_job, data_flow_kernel=self._dfk, executors=[EXECUTOR_LABEL])

    def submit(self, command: str, log: Path, walltime: int | None = None) -> Future[Any]:
        """Run ``command`` (one shell line) as a task; its stdout and stderr are appended to ``log``."""
        if self._app is None:
            raise BpsError("ParslAdapter.submit before start.")
        future: Future[Any] = self._app(command, stdout=str(log), stderr=str(log))
        return future

    def batch_jobs(self) -> list[str]:
        """Ids of the Slurm batch jobs (blocks) Parsl submitted so far; [] for other sites."""
        if self._dfk is None or self.settings.site_class != "slurm":
            return []
        provider = getattr(self._dfk.executors[EXECUTOR_LABEL], "provider", None)
        return sorted(str(job_id) for job_id in getattr(provider, "resources", {}))

    @staticmethod
    def outcome(future: Future[Any]) -> tuple[int | None, str]:
        """(exit code, reason) of a finished task; exit code None when Parsl lost the task."""
        error = future.exception()
        if error is None:
            return 0, ""
        if isinstance(error, _parsl().BashExitFailure):
            return int(error.exitcode), f"exit code {error.exitcode}"
        return None, f"{type(error).__name__}: {error}"[:300]

    def cleanup(self) -> None:
        """Shut the DataFlowKernel and its executor down (workers, blocks, interchange)."""
        if self._dfk is not None:
            try:
                self._dfk.cleanup()
            finally:
                _parsl().parsl.clear()
                self._dfk = None


def ping(settings: ParslSiteSettings) -> str:
    """Check that Parsl imports and the site answers; a one-line description."""
    version = parsl_version()
    if settings.site_class != "slurm":
        return f"parsl {version}: site class {settings.site_class} ({settings.max_workers} workers) is usable"
    sinfo = shutil.which("sinfo")
    if sinfo is None:
        raise BpsError("parsl site class slurm: the command 'sinfo' is not on PATH; is Slurm installed?")
    command = [sinfo, "-h", "-o", "%P %a %D %t"]
    if settings.partition:
        command += ["-p", settings.partition]
    try:
        answer = subprocess.run(command, capture_output=True, text=True, timeout=settings.cmd_timeout)
    except subprocess.TimeoutExpired:
        raise BpsError(
            f"parsl site class slurm: 'sinfo' did not answer in {settings.cmd_timeout} s."
        ) from None
    if answer.returncode != 0 or not answer.stdout.strip():
        raise BpsError(
            f"parsl site class slurm: 'sinfo' failed (exit {answer.returncode}): "
            f"{(answer.stderr or answer.stdout).strip() or 'no partition found'}"
        )
    return f"parsl {version}: slurm answers: {answer.stdout.strip().splitlines()[0]}"
