"""The ``pipetask`` console script: batch-job subcommands go to argparse, everything else to click.

``run-qbb`` and ``pre-exec-init-qbb`` run once per batch job, so their start-up time counts
millions of times: they are dispatched to `graph.cli.run_qbb` without importing click, and
``run-qbb`` then imports neither the registry nor SQLAlchemy. Run as the console script, a
``run-qbb`` job also trims what the interpreter itself costs (`_run_job`).
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

__all__ = ["main"]

_QBB_COMMANDS = ("run-qbb", "pre-exec-init-qbb")
"""As `graph.cli.run_qbb.QBB_COMMANDS` (not imported: this module must stay import-free)."""

_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
"""What sets the size of OpenBLAS's thread pool (numpy's BLAS), most specific first."""


def main(argv: Sequence[str] | None = None) -> None:
    """Dispatch ``pipetask`` by its subcommand; exits with the command's exit code.

    Without ``argv`` (the console script, which owns its process) ``run-qbb`` goes to `_run_job`.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    command = _subcommand(args)
    if command == "run-qbb" and argv is None:
        _run_job(args)
    if command in _QBB_COMMANDS:
        from .run_qbb import main as qbb_main

        sys.exit(qbb_main(args))
    from .pipetask import main as click_main

    click_main(args=args, prog_name="pipetask")


def _run_job(args: list[str]) -> NoReturn:
    """``pipetask run-qbb`` as the whole process of a batch job, with what the interpreter costs cut.

    Measured on a trivial quantum (~0.3 s in all):

    * one BLAS thread unless the environment asks for more (~45 ms; `_single_threaded_blas`);
    * no garbage collection while the job's modules are imported: the ~100k objects they make live
      as long as the process, so collecting is wasted work; `graph.cli.run_qbb` freezes them
      (`gc.freeze`) and turns collection back on before any quantum runs (~20 ms);
    * no interpreter teardown once the job is done (~40 ms; `_exit_now`).
    """
    _single_threaded_blas()
    gc.disable()
    from .run_qbb import main as qbb_main

    try:
        code = qbb_main(args)
    finally:
        gc.enable()  # a usage error returns before the job's imports turned it back on
    _exit_now(code)


def _exit_now(code: int) -> NoReturn:
    """Exit with ``code`` like `sys.exit`, without freeing every object and module first.

    `atexit` handlers run (logging's flush, `weakref.finalize` clean-ups such as temporary
    directories, multiprocessing's) and the standard streams are flushed. While another thread
    runs, this is a normal `sys.exit`, which waits for it.
    """
    threading = sys.modules.get("threading")
    if threading is not None and threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be written there
            pass
    os._exit(code)


def _single_threaded_blas() -> None:
    """One BLAS thread for a batch job, unless its environment asks for more.

    A job runs in a slot of one core, and starting OpenBLAS's thread pool when numpy is imported
    costs every job about 45 ms whatever its size. ``OMP_NUM_THREADS`` (or the OpenBLAS variables)
    in the job's environment still set the number of threads. Only a process that has not imported
    numpy yet (the console script) is changed.
    """
    if "numpy" not in sys.modules and not any(name in os.environ for name in _THREAD_VARIABLES):
        os.environ["OPENBLAS_NUM_THREADS"] = "1"


def _subcommand(args: Sequence[str]) -> str | None:
    """The first argument that is neither an option nor the value of ``--log-level``."""
    skip_value = False
    for arg in args:
        if skip_value:
            skip_value = False
            continue
        if arg == "--log-level":
            skip_value = True
            continue
        if not arg.startswith("-"):
            return arg
    return None
